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

import io
import re
from collections.abc import Iterator
from typing import BinaryIO

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
    """Yield (line number of the record's first line, record bytes without the final LF)."""
    line_no = 0
    pending: bytes | None = None
    start = 0
    for raw in stream:
        line_no += 1
        body = raw[:-1] if raw.endswith(b"\n") else raw
        if pending is not None:
            body = pending + b"\n" + body
        else:
            start = line_no
        if raw.endswith(b"\\\n") and _needs_join(body):
            pending = body
            continue
        pending = None
        yield start, body
    if pending is not None:
        # A file cut after an escaping backslash: the record is what there is.
        yield start, pending


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


def iter_record_blocks(
    stream: BinaryIO, block_size: int = 4 << 20
) -> Iterator[tuple[int, list[bytes], list[int] | None]]:
    """Records in blocks: (first line number, records, line numbers or None).

    The fast path of a big dump: each block of about `block_size` bytes is split on LF at C speed;
    only a block holding a backslash before a LF (a continuation, or an escaped backslash at the
    end of a value) goes through the careful record-joining path. `None` as line numbers means that
    record i is on line `first + i`.
    """
    line_no = 1
    tail = b""
    while True:
        data = stream.read(block_size)
        if not data:
            break
        data = tail + data
        cut = data.rfind(b"\n")
        if cut < 0:
            tail = data
            continue
        block, tail = data[: cut + 1], data[cut + 1 :]
        if b"\\\n" in block:
            # Keep a record that may continue past this block together with the rest of it.
            records, numbers, rest = _join_block(block, line_no)
            if rest:
                tail = rest + tail
            if records:
                yield numbers[0], records, numbers
            line_no += block.count(b"\n") - rest.count(b"\n")
            continue
        lines = block.split(b"\n")
        lines.pop()  # the empty string after the last LF
        yield line_no, lines, None
        line_no += len(lines)
    if tail:
        for number, record in iter_records(io.BytesIO(tail)):
            yield line_no + number - 1, [record], None


_CONTINUATION = re.compile(rb"\\\n")


def _join_block(block: bytes, first: int) -> tuple[list[bytes], list[int], bytes]:
    """Join continuation lines of a block; a record still open at the end is returned as `rest`.

    Only the few places where a backslash precedes a LF are looked at; the rest of the block is
    split at C speed.
    """
    lines = block.split(b"\n")
    lines.pop()
    joins = []
    counted, newlines = 0, 0
    for match in _CONTINUATION.finditer(block):
        end = match.start() + 1
        start = end - 1
        while start > 0 and block[start - 1] == 0x5C:
            start -= 1
        if (end - start) % 2 == 1:  # an odd run of backslashes escapes the LF
            newlines += block.count(b"\n", counted, match.start())
            counted = match.start()
            joins.append(newlines)
    numbers = list(range(first, first + len(lines)))
    rest = b""
    if joins and joins[-1] == len(lines) - 1:
        # The block ends inside a record: hand its open part back to the caller.
        open_from = joins[-1]
        while len(joins) > 1 and joins[-2] == open_from - 1:
            joins.pop()
            open_from -= 1
        joins.pop()
        rest = b"\n".join(lines[open_from:]) + b"\n"
        del lines[open_from:]
        del numbers[open_from:]
    for index in reversed(joins):
        lines[index : index + 2] = [lines[index] + b"\n" + lines[index + 1]]
        del numbers[index + 1]
    return lines, numbers, rest
