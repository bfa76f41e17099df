"""Reading the edX `.sql` dumps: tab-separated text with MySQL-style backslash escapes.

Every era's quirks (../shared docs, edx-data-package.md section 2) reduce to MySQL's own
`LOAD DATA ... FIELDS ESCAPED BY '\\'` rules, which is why a valid record can be handed to MySQL
unchanged:

* two-character escapes `\\ \t \n \r \0` (and MySQL's `\b \\Z`); any other escaped character is itself;
* a backslash before a raw TAB or raw LF escapes it (courseware_studentmodule's writer), so such a
  TAB is not a delimiter and such a LF continues the record on the next physical line;
* raw CR bytes inside values (the mysql client era) are data.

Files are read in binary, never in universal-newline mode, so a raw CR never splits a record.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

_ESCAPES = {
    ord("0"): "\0",
    ord("b"): "\b",
    ord("n"): "\n",
    ord("r"): "\r",
    ord("t"): "\t",
    ord("Z"): "\x1a",
}
_TOKEN = re.compile(rb"\\.|\t", re.S)
_ESCAPE = re.compile(r"\\(.)", re.S)


def _needs_join(line: bytes) -> bool:
    """True if a physical line (without its LF) ends in an odd run of backslashes."""
    stripped = line.rstrip(b"\\")
    return (len(line) - len(stripped)) % 2 == 1


def iter_records(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """Yield (line number of the record's first line, record bytes without the final LF).

    The simple line-by-line reader (the reference the block reader is tested against); a record's
    lines are joined once, at its end, so a record of many lines costs linear time.
    """
    line_no = 0
    pending: list[bytes] = []
    start = 0
    for raw in stream:
        line_no += 1
        body = raw[:-1] if raw.endswith(b"\n") else raw
        if not pending:
            start = line_no
        pending.append(body)
        if raw.endswith(b"\\\n") and _needs_join(body):
            continue
        yield start, b"\n".join(pending)
        pending = []
    if pending:
        # A file cut after an escaping backslash: the record is what there is.
        yield start, b"\n".join(pending)


def split_fields(record: bytes) -> list[bytes]:
    """Split a record on its delimiting TABs (a backslash-escaped TAB is data)."""
    if b"\\\t" not in record:
        return record.split(b"\t")
    fields = []
    start = 0
    for match in _TOKEN.finditer(record):
        if match.end() - match.start() == 1:
            fields.append(record[start : match.start()])
            start = match.end()
    fields.append(record[start:])
    return fields


def _unescape_match(match: re.Match[str]) -> str:
    char = match.group(1)
    return _ESCAPES.get(ord(char), char)


def unescape(field: str) -> str:
    """The value of one escaped field, as MySQL's LOAD DATA reads it."""
    if "\\" not in field:
        return field
    return _ESCAPE.sub(_unescape_match, field)


class Block(NamedTuple):
    """Records read from one block of the file.

    `numbers[i]` is the line number of record i (None: record i is on line `first + i`).
    `too_long` lists the records longer than the reader's limit, which are not in `records`, as
    (first line, bytes). A block may hold no record at all (inside a record that spans blocks):
    callers get control back after every block read, to report progress or to stop.
    """

    first: int
    records: list[bytes]
    numbers: list[int] | None
    too_long: list[tuple[int, int]]


_TOKEN_OR_LF = re.compile(rb"\\.|\n", re.S)


class _Pending:
    """The bytes of a record that is not finished yet, kept as pieces (joined once, at its end)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0
        self.newlines = 0
        self.start = 0
        self.skipping = False  # longer than the limit: counted, not kept
        self.run = 0  # backslashes at its end (an odd run escapes what follows)
        self.ends_lf = False

    @property
    def open(self) -> bool:
        return self.size > 0

    def add(self, piece: bytes, start: int) -> None:
        if not piece:
            return
        if not self.size:
            self.start = start
        self.size += len(piece)
        self.newlines += piece.count(b"\n")
        self.ends_lf = piece.endswith(b"\n")  # not part of the record if the file ends here
        if self.limit is not None and self.size - self.ends_lf > self.limit:
            self.skipping, self.parts = True, []
        elif not self.skipping:
            self.parts.append(piece)
        trailing = len(piece) - len(piece.rstrip(b"\\"))
        self.run = self.run + trailing if trailing == len(piece) else trailing

    def take(self, at_end: bool = False) -> tuple[int, bytes | None, int, int]:
        """(first line, record or None if too long, bytes, newlines inside) and start afresh.
        `at_end`: the file ends here, so a final escaped LF is not part of the record."""
        size = self.size - (at_end and self.ends_lf)
        record = None if self.skipping else b"".join(self.parts)
        if record is not None and at_end and self.ends_lf:
            record = record[:-1]
        if self.limit is not None and size > self.limit:
            record = None
        result = (self.start, record, size, self.newlines)
        self.parts, self.size, self.newlines, self.skipping, self.run = [], 0, 0, False, 0
        return result


def iter_record_blocks(
    stream: BinaryIO, block_size: int = 4 << 20, max_record: int | None = None
) -> Iterator[Block]:
    """Records in blocks of about `block_size` bytes, in linear time whatever the records.

    The fast path of a big dump: a block without a backslash before a LF is split on LF at C
    speed. Elsewhere the LFs that end records are found with one regular-expression scan (a
    backslash escapes the next byte, so an odd run of backslashes before a LF continues the record).
    A record longer than `max_record` bytes is not kept (nor held in memory): it is reported in
    `too_long`.
    """
    pending = _Pending(max_record)
    line_no = 1  # the line on which the next record starts
    while True:
        data = stream.read(block_size)
        if not data:
            break
        escaped_start = pending.run % 2 == 1
        plain = b"\\\n" not in data and not (escaped_start and data[:1] == b"\n")
        lines = data.split(b"\n") if plain else _split_unescaped(data, 1 if escaped_start else 0)
        block, line_no = _records(lines, plain, pending, line_no, max_record)
        yield block
    if pending.open:
        start, record, size, _ = pending.take(at_end=True)
        if record is None:
            yield Block(start, [], [], [(start, size)])
        else:
            yield Block(start, [record], None, [])


def _split_unescaped(data: bytes, offset: int) -> list[bytes]:
    """`data` split at the LFs that end records (a LF after an escaping backslash does not)."""
    pieces = []
    begin = 0
    for match in _TOKEN_OR_LF.finditer(data, offset):
        if match.end() - match.start() == 1:
            pieces.append(data[begin : match.start()])
            begin = match.end()
    pieces.append(data[begin:])
    return pieces


def _records(
    lines: list[bytes], plain: bool, pending: _Pending, line_no: int, limit: int | None
) -> tuple[Block, int]:
    """The records of one block and the line the next record starts on. `lines` are the pieces
    between record-ending LFs (`plain`: none holds a LF); the first continues the pending record,
    the last starts the next one."""
    records: list[bytes] = []
    numbers: list[int] = []
    too_long: list[tuple[int, int]] = []
    if len(lines) == 1:  # no record ends in this block
        pending.add(lines[0], line_no)
        return Block(line_no, records, numbers, too_long), line_no
    head, body, tail = lines[0], lines[1:-1], lines[-1]
    if pending.open:
        pending.add(head, line_no)
        start, record, size, newlines = pending.take()
    else:
        start, record, size, newlines = line_no, head, len(head), head.count(b"\n")
        if limit is not None and size > limit:
            record = None
    if record is None:
        too_long.append((start, size))
    else:
        records.append(record)
    line = start + newlines + 1
    if plain and newlines == 0 and (limit is None or not body or max(map(len, body)) <= limit):
        # The fast path: one record per line, numbered in order.
        records.extend(body)
        pending.add(tail, line + len(body))
        return Block(start if record is not None else line, records, None, too_long), line + len(body)
    if record is not None:
        numbers.append(start)
    for piece in body:
        if limit is not None and len(piece) > limit:
            too_long.append((line, len(piece)))
        else:
            records.append(piece)
            numbers.append(line)
        line += piece.count(b"\n") + 1
    pending.add(tail, line)
    return Block(numbers[0] if numbers else line, records, numbers, too_long), line


class Chunk(NamedTuple):
    """Whole records read from one block of the file, as one piece of bytes.

    `data` holds one or more complete records joined by the LFs that end them (no LF after the
    last one), exactly as in the file, the first of them starting on line `first`; None if no
    record ended in this block. `newlines` counts the LFs in `data` (those inside records too).
    `too_long` is as in `Block`.
    """

    first: int
    data: bytes | None
    newlines: int
    too_long: list[tuple[int, int]]


# One record from its start: escape pairs and other bytes, up to the LF that ends it.
_RECORD = re.compile(rb"(?:[^\\\n]++|\\.)*+\n", re.S)
_TRIES = 8  # LFs examined one by one before a regular-expression scan takes over


def backslashes_before(data: bytes, end: int, floor: int = 0) -> int:
    """How many backslashes end at `data[end - 1]`, not looking below `floor`."""
    count, step = 0, 16
    while end > floor:
        start = max(floor, end - step)
        piece = data[start:end]
        kept = piece.rstrip(b"\\")
        count += len(piece) - len(kept)
        if kept:
            break
        end, step = start, step * 4
    return count


def record_end(data: bytes, start: int) -> int:
    """The index of the LF that ends the record starting at `start` (`len(data)` if none does)."""
    match = _RECORD.match(data, start)
    return match.end() - 1 if match else len(data)


def _first_end(data: bytes, carry: int) -> int:
    """The first record-ending LF of `data`, which continues a record ending in `carry`
    backslashes; -1 if there is none."""
    at = data.find(b"\n")
    for _ in range(_TRIES):
        if at < 0:
            return -1
        run = backslashes_before(data, at)
        if (run + (carry if run == at else 0)) % 2 == 0:
            return at
        at = data.find(b"\n", at + 1)
    if at < 0:
        return -1
    end = record_end(data, carry % 2)  # an odd carry escapes the first byte
    return end if end < len(data) else -1


def _last_end(data: bytes, first: int) -> int:
    """The last record-ending LF of `data`, given that `first` is one."""
    at = data.rfind(b"\n")
    for _ in range(_TRIES):
        if at <= first:
            return first
        if backslashes_before(data, at, first + 1) % 2 == 0:
            return at
        at = data.rfind(b"\n", first + 1, at)
    last, start = first, first + 1
    while (match := _RECORD.match(data, start)) is not None:
        last, start = match.end() - 1, match.end()
    return last


def iter_record_chunks(
    stream: BinaryIO, block_size: int = 4 << 20, max_record: int | None = None
) -> Iterator[Chunk]:
    """Whole records in chunks of about `block_size` bytes, left as they are in the file.

    The fast reader of a big dump: the records of each block are not split apart, so the caller can
    check them with a few scans over the chunk. A record longer than `max_record` bytes is not
    kept (nor held in memory): it is reported in `too_long`. Reads are at most `max_record` bytes,
    so that only a record continued from an earlier block can be too long.
    """
    if max_record is not None:
        block_size = max(1, min(block_size, max_record))
    pending = _Pending(max_record)
    line_no = 1  # the line on which the next record starts
    while True:
        data = stream.read(block_size)
        if not data:
            break
        first_end = _first_end(data, pending.run if pending.open else 0)
        if first_end < 0:  # no record ends in this block
            pending.add(data, line_no)
            yield Chunk(line_no, None, 0, [])
            continue
        last_end = _last_end(data, first_end)
        too_long: list[tuple[int, int]] = []
        head = data[:first_end]
        if pending.open:
            pending.add(head, line_no)
            start, record, size, newlines = pending.take()
        else:
            start, record, size, newlines = line_no, head, len(head), head.count(b"\n")
        line_no = start + newlines + 1
        body = data[first_end + 1 : last_end] if last_end > first_end else None
        body_lines = 0 if body is None else body.count(b"\n") + 1
        if record is None:
            too_long.append((start, size))
            chunk = Chunk(line_no, body, max(body_lines - 1, 0), too_long)
        elif body is None:
            chunk = Chunk(start, record, newlines, too_long)
        else:
            chunk = Chunk(start, record + b"\n" + body, newlines + body_lines, too_long)
        line_no += body_lines
        pending.add(data[last_end + 1 :], line_no)
        yield chunk
    if pending.open:
        start, record, size, _ = pending.take(at_end=True)
        if record is None:
            yield Chunk(start, None, 0, [(start, size)])
        else:
            yield Chunk(start, record, record.count(b"\n"), [])
