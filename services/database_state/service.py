"""DatabaseState: each weekly `.sql` dump becomes one table of the course's SQL database.

The file is read once, in blocks: records are split (with every era's escaping rules, utils/tsv.py),
rows with the wrong number of fields or invalid UTF-8 are rejected and kept, and the column types
are inferred. The store then replaces the table atomically (MySQL: `LOAD DATA LOCAL INFILE`; SQLite:
batched inserts in one transaction) straight from the dump; only a dump with rejected rows is first
copied, without them, to a spool file.
"""

from __future__ import annotations

import os
from operator import methodcaller
from pathlib import Path

from base_service import Context, Entry, IngestResult, Service
from core.errors import Interrupted, TerminalError, UnsafeNameError
from core.rejects import Rejects
from services.database_state.columns import ColumnTypes, null_columns
from services.database_state.filenames import parse_dump_name
from stores.sql.base import Column, LoadSpec, StagedLoad
from stores.sql.identifiers import column_name
from utils.tsv import iter_record_blocks, split_fields


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
        if dump.failed_export:
            raise TerminalError(f"{path}: the exporter failed for this table: {_failure_text(path)}")
        if not dump.known_table:
            ctx.log.warning("%s: table %s is not a known edX table; loading it anyway", path, dump.table)
        assert ctx.rejects is not None
        staged = _start_background_load(path, dump.database, dump.table, ctx)
        try:
            columns, good_rows, bad_lines, warnings = _read(path, ctx, ctx.rejects)
            ctx.check_unchanged()
            loaded = None
            if staged is not None:
                load, guessed = staged
                same_types = [ctx.sql.column_type(c) for c in columns] == [
                    ctx.sql.column_type(c) for c in guessed
                ]
                if not bad_lines and same_types and load.wait() == good_rows:
                    load.commit()
                    loaded = good_rows
                else:
                    ctx.log.info("%s: the first rows did not predict the table; loading again", path)
                    load.abort()
                staged = None
                load.close()
            if loaded is None:
                loaded = _load(path, dump.database, dump.table, columns, bad_lines, ctx)
        finally:
            if staged is not None:
                staged[0].abort()
                staged[0].close()
        if loaded != good_rows:
            raise TerminalError(f"{path}: {good_rows} rows read but {loaded} loaded")
        for warning in warnings:
            ctx.log.warning("%s: %s", path, warning)
        return IngestResult(loaded, ctx.rejects.count, warnings=warnings)


def _start_background_load(
    path: Path, database: str, table: str, ctx: Context
) -> tuple[StagedLoad, list[Column]] | None:
    """Where the server can load while we read (MySQL), start loading now with the types of the
    first block; the full read then confirms them (or the load is dropped and done again)."""
    if not ctx.sql.supports_background_load:
        return None
    first_block = None
    with path.open("rb") as source:
        for block in iter_record_blocks(source, max_record=ctx.settings.DUMP_MAX_RECORD_BYTES):
            if block.too_long:
                return None  # read and rejected by the full pass; nothing to guess from
            if block.records:
                first_block = block
                break
    if first_block is None:
        return None
    records = first_block.records
    header = _header(path, records[0])
    types = ColumnTypes(header)
    types.add_batch([fields for fields in _split(records[1:], True) if len(fields) == len(header)])
    guessed, _ = types.columns(ctx.settings.LEGACY_SCHEMA)
    nulls = null_columns(guessed, ctx.settings.LEGACY_SCHEMA)
    load = ctx.sql.stage_load(database, table, LoadSpec(path, guessed, nulls, skip_lines=1), background=True)
    return load, guessed


def _load(
    path: Path, database: str, table: str, columns: list[Column], bad_lines: set[int], ctx: Context
) -> int:
    """Load the dump (or, if rows were rejected, a copy without them) and swap the table in."""
    nulls = null_columns(columns, ctx.settings.LEGACY_SCHEMA)
    if not bad_lines:
        return ctx.sql.load_table(database, table, LoadSpec(path, columns, nulls, skip_lines=1))
    spool = ctx.settings.tmp_dir / f"{database}.{table}.{os.getpid()}.spool"
    spool.parent.mkdir(parents=True, exist_ok=True)
    try:
        _write_spool(path, spool, bad_lines, ctx.settings.DUMP_MAX_RECORD_BYTES)
        return ctx.sql.load_table(database, table, LoadSpec(spool, columns, nulls))
    finally:
        spool.unlink(missing_ok=True)


def _read(path: Path, ctx: Context, rejects: Rejects) -> tuple[list[Column], int, set[int], list[str]]:
    """One pass: check every record, infer the types. Returns columns, good rows, bad line numbers."""
    size = max(path.stat().st_size, 1)
    bad_lines: set[int] = set()
    good_rows = 0
    types: ColumnTypes | None = None
    width = 0
    limit = ctx.settings.DUMP_MAX_RECORD_BYTES
    with path.open("rb") as source:
        for first, records, numbers, too_long in iter_record_blocks(source, max_record=limit):
            for line, length in too_long:
                if line == 1:
                    raise TerminalError(f"{path}:1: header row longer than {limit} bytes")
                bad_lines.add(line)
                rejects.add(
                    line, f"record of {length} bytes, longer than DUMP_MAX_RECORD_BYTES ({limit})", b""
                )
            if records:
                if types is None:
                    header = _header(path, records[0])
                    types, width = ColumnTypes(header), len(header)
                    records, first = records[1:], first + 1
                    numbers = numbers[1:] if numbers is not None else None
                good_rows += _check_batch(records, first, numbers, width, types, bad_lines, rejects)
            ctx.progress(min(source.tell() / size, 0.99))
            if ctx.should_stop():
                raise Interrupted(f"{path}: stopped before line {first + len(records)}")
    if types is None:
        raise TerminalError(f"{path}: empty file, no header row")
    columns, warnings = types.columns(ctx.settings.LEGACY_SCHEMA)
    return columns, good_rows, bad_lines, warnings


def _check_batch(
    records: list[bytes],
    first: int,
    numbers: list[int] | None,
    width: int,
    types: ColumnTypes,
    bad_lines: set[int],
    rejects: Rejects,
) -> int:
    """Reject the records of a block with the wrong width or invalid UTF-8, infer types from the
    rest; returns how many are good."""
    joined = b"\n".join(records)
    rows = _split(records, b"\\\t" in joined)
    lengths = list(map(len, rows))
    bad = [] if lengths.count(width) == len(rows) else [i for i, n in enumerate(lengths) if n != width]
    try:
        joined.decode("utf-8")
    except UnicodeDecodeError:
        bad = sorted(set(bad) | {i for i, r in enumerate(records) if not _is_utf8(r)})
    if bad:
        for i in bad:
            line = numbers[i] if numbers is not None else first + i
            bad_lines.add(line)
            rejects.add(line, _reason(records[i], len(rows[i]), width), records[i])
        skip = set(bad)
        rows = [fields for i, fields in enumerate(rows) if i not in skip]
    types.add_batch(rows)
    return len(rows)


_TAB_SPLIT = methodcaller("split", b"\t")


def _split(records: list[bytes], escaped_tabs: bool) -> list[list[bytes]]:
    """Fields of each record; the careful splitter only where a backslash precedes a TAB."""
    if not escaped_tabs:
        return list(map(_TAB_SPLIT, records))
    return [split_fields(r) if b"\\\t" in r else r.split(b"\t") for r in records]


def _is_utf8(record: bytes) -> bool:
    try:
        record.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _reason(record: bytes, fields: int, width: int) -> str:
    if not record:
        return "blank line"
    if fields != width:
        return f"{fields} fields, expected {width}"
    try:
        record.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8 at byte {exc.start}"
    return "rejected"


def _write_spool(path: Path, spool: Path, bad_lines: set[int], limit: int) -> None:
    """Copy the dump without its header and its rejected records (those too long are not read)."""
    with path.open("rb") as source, spool.open("wb") as out:
        for first, records, numbers, _ in iter_record_blocks(source, max_record=limit):
            lines = numbers if numbers is not None else range(first, first + len(records))
            keep = [r for r, n in zip(records, lines, strict=True) if n not in bad_lines and n != 1]
            if keep:
                out.write(b"\n".join(keep) + b"\n")


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
