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
