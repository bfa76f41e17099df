"""DatabaseState: each weekly `.sql` dump becomes one table of the course's SQL database.

The file is read once, in blocks: records are split (with every era's escaping rules, utils/tsv.py),
rows with the wrong number of fields or invalid UTF-8 are rejected and kept, and the column types
are inferred. The store then replaces the table atomically (MySQL: `LOAD DATA LOCAL INFILE`; SQLite:
batched inserts in one transaction) straight from the dump; only a dump with rejected rows is first
copied, without them, to a spool file.
"""

from __future__ import annotations

import os
import re
from operator import methodcaller
from pathlib import Path

from base_service import Context, Entry, IngestResult, Service
from core.errors import Interrupted, TerminalError, UnsafeNameError
from core.rejects import Rejects
from services.database_state.columns import ColumnTypes, null_columns
from services.database_state.filenames import parse_dump_name
from stores.sql.base import Column, LoadSpec, StagedLoad
from stores.sql.identifiers import column_name
from utils.tsv import iter_record_blocks, iter_record_chunks, record_end, split_fields


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
    limit = ctx.settings.DUMP_MAX_RECORD_BYTES
    checker: _Checker | None = None
    bad_lines: set[int] = set()
    with path.open("rb") as source:
        for first, data, newlines, too_long in iter_record_chunks(source, CHUNK_BYTES, max_record=limit):
            for line, length in too_long:
                if line == 1:
                    raise TerminalError(f"{path}:1: header row longer than {limit} bytes")
                bad_lines.add(line)
                rejects.add(
                    line, f"record of {length} bytes, longer than DUMP_MAX_RECORD_BYTES ({limit})", b""
                )
            if data is not None:
                if checker is None:
                    end = record_end(data, 0)
                    checker = _Checker(_header(path, data[:end]), rejects, bad_lines)
                    if end < len(data):
                        header_lines = data.count(b"\n", 0, end) + 1
                        checker.chunk(data[end + 1 :], first + header_lines, newlines - header_lines)
                else:
                    checker.chunk(data, first, newlines)
                first += newlines + 1
            ctx.progress(min(source.tell() / size, 0.99))
            if ctx.should_stop():
                raise Interrupted(f"{path}: stopped before line {first}")
    if checker is None:
        raise TerminalError(f"{path}: empty file, no header row")
    columns, warnings = checker.types.columns(ctx.settings.LEGACY_SCHEMA)
    return columns, checker.good_rows, bad_lines, warnings


CHUNK_BYTES = 4 << 20  # read at a time
_PIECE_BYTES = 512 << 10  # matched at a time (a match holds the GIL, which the load thread needs)
_ESCAPED_DELIMITER = re.compile(rb"\\[\t\n]")


class _Checker:
    """Checks the records of a dump, chunk by chunk, and infers the column types.

    Most of a chunk is never split into records: each run of records with no backslash before a
    TAB or a LF is matched whole against `ColumnTypes.row_pattern`; then the TABs of the matched
    runs must number (width - 1) per line, which shows that every line is one row of the right
    width. A run that does not match (a rejected row, a value that widens a column or changes its
    type) and each record with such a backslash go the careful way, field by field (`_careful`).
    If the count of TABs is off, the matched runs go the careful way too.
    """

    def __init__(self, header: list[str], rejects: Rejects, bad_lines: set[int]) -> None:
        self.types = ColumnTypes(header)
        self.width = len(header)
        self.rejects = rejects
        self.bad_lines = bad_lines
        self.good_rows = 0
        self._data = b""
        self._first = self._known_at = self._known_line = 0

    def chunk(self, data: bytes, first: int, newlines: int) -> None:
        """Take in whole records joined by LF (`iter_record_chunks`): `newlines` LFs, the first
        record on line `first`."""
        self._data, self._first, self._known_at, self._known_line = data, first, 0, first
        utf8 = data.isascii() or _is_utf8(data)
        matched: list[tuple[int, int]] = []
        careful_lines = careful_tabs = 0
        pos = 0
        for match in _ESCAPED_DELIMITER.finditer(data):
            if match.start() < pos:
                continue  # inside a record already taken
            start = data.rfind(b"\n", pos, match.start()) + 1 or pos
            end = record_end(data, start)
            if start > pos:
                lines, tabs = self._run(pos, start - 1, utf8, matched)
                careful_lines, careful_tabs = careful_lines + lines, careful_tabs + tabs
            self._careful([data[start:end]], start)
            careful_lines += data.count(b"\n", start, end) + 1
            careful_tabs += data.count(b"\t", start, end)
            pos = end + 1
        if pos <= len(data):
            lines, tabs = self._run(pos, len(data), utf8, matched)
            careful_lines, careful_tabs = careful_lines + lines, careful_tabs + tabs
        if matched:
            matched_lines = newlines + 1 - careful_lines
            if data.count(b"\t") - careful_tabs == (self.width - 1) * matched_lines:
                self.good_rows += matched_lines
            else:  # some line is not one row: find it
                for start, end in matched:
                    self._careful(data[start:end].split(b"\n"), start)

    def _run(self, start: int, end: int, utf8: bool, matched: list[tuple[int, int]]) -> tuple[int, int]:
        """Records `data[start:end]`, joined by LF, none with a backslash before a TAB or a LF:
        the pieces that match the row pattern are added to `matched`, the others checked
        carefully. Returns the lines and TABs of those."""
        data = self._data
        lines = tabs = 0
        while True:
            cut = data.find(b"\n", start + _PIECE_BYTES, end) if end - start > _PIECE_BYTES else -1
            stop = end if cut < 0 else cut
            pattern = self.types.row_pattern()
            if (
                pattern is not None
                and (utf8 or _is_utf8(data[start:stop]))
                and pattern.fullmatch(data, start, stop) is not None
            ):
                matched.append((start, stop))
            else:
                records = data[start:stop].split(b"\n")
                self._careful(records, start)
                lines += len(records)
                tabs += data.count(b"\t", start, stop)
            if cut < 0:
                return lines, tabs
            start = cut + 1

    def _line_at(self, pos: int) -> int:
        """The line on which `self._data[pos]` is."""
        if pos < self._known_at:
            self._known_at, self._known_line = 0, self._first
        self._known_line += self._data.count(b"\n", self._known_at, pos)
        self._known_at = pos
        return self._known_line

    def _careful(self, records: list[bytes], start: int) -> None:
        """Reject the records with the wrong width or invalid UTF-8, infer types from the rest.
        `records` start at `start` of the chunk, one per line (or a single record)."""
        width = self.width
        joined = b"\n".join(records)
        rows = _split(records, b"\\\t" in joined)
        lengths = list(map(len, rows))
        bad = [] if lengths.count(width) == len(rows) else [i for i, n in enumerate(lengths) if n != width]
        try:
            joined.decode("utf-8")
        except UnicodeDecodeError:
            bad = sorted(set(bad) | {i for i, r in enumerate(records) if not _is_utf8(r)})
        if bad:
            first = self._line_at(start)
            for i in bad:
                self.bad_lines.add(first + i)
                self.rejects.add(first + i, _reason(records[i], len(rows[i]), width), records[i])
            skip = set(bad)
            rows = [fields for i, fields in enumerate(rows) if i not in skip]
        self.types.add_batch(rows)
        self.good_rows += len(rows)


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
