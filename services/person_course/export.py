"""CSV exports of the person-course tables in `STATE_DIR/exports/`.

After each run, `courseprofile` and every person-course table the run rebuilt are written as
`<table>-<run time YYYYmmddTHHMMSSZ>.csv` (so the newest file of a table is always its current
content), atomically (a temporary file renamed into place), read in pages of rows so that memory
does not grow with the table. Past `PERSON_COURSE_EXPORTS_KEEP` files of one table, the oldest are
removed.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from base_service import Context
from utils.atomic import atomic_writer

DATABASE = "Person_Course"
PAGE = 10000
_STAMP = re.compile(r"^(?P<table>.+)-(?P<stamp>\d{8}T\d{6}Z)\.csv$")


def export_table(ctx: Context, table: str, columns: Sequence[str], when: datetime) -> Path:
    """Write `table` (which has an integer `id`) as CSV; returns the file."""
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    path = ctx.settings.export_dir / f"{table}-{stamp}.csv"
    name = ctx.sql.quote(table)
    select = ", ".join(ctx.sql.quote(c) for c in ("id", *columns))
    with atomic_writer(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        out = csv.writer(text)
        out.writerow(("id", *columns))
        last = -1
        while True:
            rows = ctx.sql.query(
                DATABASE, f"SELECT {select} FROM {name} WHERE id > ? ORDER BY id LIMIT {PAGE}", (last,)
            )
            out.writerows(["" if v is None else v for v in r] for r in rows)
            if len(rows) < PAGE:
                break
            last = rows[-1][0]
        text.flush()
        text.detach()
    prune(ctx.settings.export_dir, table, ctx.settings.PERSON_COURSE_EXPORTS_KEEP)
    return path


def prune(directory: Path, table: str, keep: int) -> list[Path]:
    """Remove the oldest exports of `table` beyond the newest `keep`."""
    mine = sorted(
        (m.group("stamp"), p)
        for p in directory.glob(f"{table}-*.csv")
        if (m := _STAMP.match(p.name)) and m.group("table") == table
    )
    removed = [p for _, p in mine[: max(len(mine) - max(keep, 1), 0)]]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed
