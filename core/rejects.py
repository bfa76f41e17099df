"""Rejected records, kept for inspection under `<STATE_DIR>/rejects/<service>/`.

One TSV per (file, version), `<name>.<tracking row id>.v<version>.rejects.tsv`: line number, reason,
and the raw record with unprintable bytes escaped. A retry of the same version rewrites the file,
so nothing is listed twice.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import TracebackType
from typing import IO

from utils.paths import display

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


class Rejects:
    """Writes the rejects of one ingest; counts them."""

    def __init__(self, directory: Path, source: Path, version: int, row_id: int | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        safe = _UNSAFE.sub("_", source.name)[:180] or "unnamed"
        # The tracking row's id keeps apart files of the same name in different weeks' directories.
        row = f".{row_id}" if row_id is not None else ""
        self.path = directory / f"{safe}{row}.v{version}.rejects.tsv"
        self.source = source
        self.count = 0
        self._stream: IO[str] | None = None

    def add(self, line_no: int, reason: str, record: bytes | str) -> None:
        if self._stream is None:
            stream = self.path.open("w", encoding="utf-8")
            stream.write(f"# rejects of {display(self.source)}\nline\treason\trecord\n")
            self._stream = stream
        text = record.decode("utf-8", "backslashreplace") if isinstance(record, bytes) else record
        text = text[:20000].encode("unicode_escape").decode("ascii")
        self._stream.write(f"{line_no}\t{display(reason)}\t{text}\n")
        self.count += 1

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        elif self.path.exists():
            self.path.unlink()  # an earlier attempt's list; this one had none

    def __enter__(self) -> Rejects:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
