"""DatabaseState: each weekly `.sql` dump becomes one table of the course's SQL database.

The file is streamed once: records are split (with every era's escaping rules, utils/tsv.py),
rows with the wrong number of fields or invalid UTF-8 are rejected and kept, the column types are
inferred, and the good records are written unchanged to a spool file. The store then replaces the
table atomically from the spool (MySQL: `LOAD DATA LOCAL INFILE`; SQLite: batched inserts in one
transaction).
"""

from __future__ import annotations

import os
from pathlib import Path

from base_service import Context, Entry, IngestResult, Service
from core.errors import Interrupted, TerminalError, TransientError, UnsafeNameError
from core.rejects import Rejects
from services.database_state.columns import ColumnTypes, null_columns
from services.database_state.filenames import parse_dump_name
from stores.sql.base import LoadSpec
from stores.sql.identifiers import column_name
from utils.fingerprint import file_fingerprint
from utils.tsv import iter_records, split_fields

BATCH_ROWS = 20000


class DatabaseStateService(Service):
    name = "DatabaseState"

    def wants(self, entry: Entry) -> bool:
        return (
            entry.area == "database_state"
            and not entry.is_dir
            and (entry.path.name.endswith(".sql") or entry.path.name.endswith(".sql.failed"))
        )

    def ingest(self, path: Path, ctx: Context) -> IngestResult:
        dump = parse_dump_name(path.name)
        if path.is_symlink() and not path.exists():
            raise TerminalError(f"{path}: broken symbolic link")
        if dump.failed_export:
            raise TerminalError(f"{path}: the exporter failed for this table: {_failure_text(path)}")
        if not dump.known_table:
            ctx.log.warning("%s: table %s is not a known edX table; loading it anyway", path, dump.table)
        before = file_fingerprint(path)
        tmp_dir = ctx.settings.tmp_dir
        tmp_dir.mkdir(parents=True, exist_ok=True)
        spool = tmp_dir / f"{dump.database}.{dump.table}.{os.getpid()}.spool"
        assert ctx.rejects is not None
        try:
            columns, loaded_rows, warnings = self._spool(path, spool, ctx, ctx.rejects)
            if file_fingerprint(path) != before:
                raise TransientError(f"{path}: the file changed while it was being read")
            spec = LoadSpec(spool, columns, null_columns(columns, ctx.settings.LEGACY_SCHEMA))
            loaded = ctx.sql.load_table(dump.database, dump.table, spec)
        finally:
            spool.unlink(missing_ok=True)
        if loaded != loaded_rows:
            raise TerminalError(f"{path}: {loaded_rows} rows read but {loaded} loaded")
        for warning in warnings:
            ctx.log.warning("%s: %s", path, warning)
        return IngestResult(loaded, ctx.rejects.count, fingerprint=before, warnings=warnings)

    def _spool(self, path: Path, spool: Path, ctx: Context, rejects: Rejects) -> tuple[list, int, list[str]]:
        size = max(path.stat().st_size, 1)
        with path.open("rb") as source, spool.open("wb") as out:
            records = iter_records(source)
            header = next(records, None)
            if header is None:
                raise TerminalError(f"{path}: empty file, no header row")
            names = _header(path, header[1])
            width = len(names)
            types = ColumnTypes(names)
            batch: list[list[bytes]] = []
            good: list[bytes] = []
            total = 0
            for line_no, record in records:
                fields = split_fields(record)
                if len(fields) != width:
                    reason = "blank line" if not record else f"{len(fields)} fields, expected {width}"
                    rejects.add(line_no, reason, record)
                    continue
                try:
                    record.decode("utf-8")
                except UnicodeDecodeError as exc:
                    rejects.add(line_no, f"invalid UTF-8 at byte {exc.start}", record)
                    continue
                batch.append(fields)
                good.append(record)
                if len(batch) >= BATCH_ROWS:
                    total += self._flush(types, batch, good, out)
                    batch, good = [], []
                    ctx.progress(min(source.tell() / size, 0.99))
                    if ctx.should_stop():
                        raise Interrupted(f"{path}: stopped at line {line_no}")
            total += self._flush(types, batch, good, out)
        columns, warnings = types.columns(ctx.settings.LEGACY_SCHEMA)
        return columns, total, warnings

    @staticmethod
    def _flush(types: ColumnTypes, batch: list[list[bytes]], good: list[bytes], out: object) -> int:
        if not batch:
            return 0
        types.add_batch(batch)
        out.write(b"\n".join(good) + b"\n")  # type: ignore[attr-defined]
        return len(batch)


def _header(path: Path, record: bytes) -> list[str]:
    try:
        raw = [f.decode("utf-8") for f in split_fields(record)]
    except UnicodeDecodeError as exc:
        raise TerminalError(f"{path}:1: header row is not UTF-8") from exc
    try:
        names = [column_name(f) for f in raw]
    except UnsafeNameError as exc:
        raise UnsafeNameError(f"{path}:1: header row: {exc}") from exc
    seen: set[str] = set()
    for name in names:
        if name.lower() in seen:
            raise TerminalError(f"{path}:1: column {name} appears twice in the header row")
        seen.add(name.lower())
    return names


def _failure_text(path: Path) -> str:
    try:
        with path.open("rb") as stream:
            text = stream.read(4000).decode("utf-8", "replace").strip()
    except OSError as exc:
        return f"(unreadable: {exc})"
    lines = [line for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-3:]) if lines else "(empty)"
