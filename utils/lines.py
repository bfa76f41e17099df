"""Reading a text file of lines, plain or gzip-compressed, in large blocks (bounded memory).

A gzip stream is decompressed never more than a block at a time (several members are allowed, as
`gzip` writes them when appending), so a small file that expands to a huge line cannot take the
memory. A line longer than `max_line` bytes is never held whole: it is skipped to its end and
reported to `too_long(line number, length, first bytes)`. A stream cut short is reported by
`TruncatedInput` after every complete line before the cut has been yielded, so what was read is
kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

# ISA-L's inflate: the same bytes in less than half of zlib's CPU (1.1 GB of tracking log: 0.95 s
# against 2.2 s), on a core the loader shares with its parsing and writes. Through its gzip reader,
# which parses each member's header itself: ISA-L's own inflate cannot take a header split between
# two calls (a later member's, with a header CRC or several optional fields, across a read).
from isal import igzip, isal_zlib

_InflateError = cast(type[Exception], isal_zlib.error)  # an exception class (the stubs: an instance)

BLOCK = 1 << 20
DEFAULT_MAX_LINE = 8 << 20  # 8 MiB: edX cuts lines at 50,000 characters; a BSON document holds 16 MB
HEAD = 1024  # bytes of a too-long line kept for the rejects file

TooLong = Callable[[int, int, bytes], None]


class TruncatedInput(Exception):
    """The compressed stream ends (or breaks) before its end; `lines` complete lines were read."""

    def __init__(self, message: str, lines: int) -> None:
        super().__init__(message)
        self.lines = lines


class _Broken(Exception):
    pass


def _chunks(path: Path, position: list[int]) -> Iterator[bytes]:
    with path.open("rb") as stream:
        head = stream.read(2)
        stream.seek(0)
        if head != b"\x1f\x8b":
            while chunk := stream.read(BLOCK):
                position[0] = stream.tell()
                yield chunk
            return
        with igzip.IGzipFile(fileobj=stream, mode="rb") as inflated:
            while True:
                try:
                    chunk = inflated.read(BLOCK)  # at most BLOCK bytes: memory stays bounded
                except EOFError as exc:
                    raise _Broken("the gzip stream is truncated (unexpected end of file)") from exc
                except (igzip.BadGzipFile, _InflateError) as exc:
                    raise _Broken(f"corrupt gzip data ({exc})") from exc
                if not chunk:
                    return
                position[0] = stream.tell()
                yield chunk


def _ignore(line_no: int, length: int, head: bytes) -> None:
    pass


def iter_line_blocks(
    path: Path,
    position: list[int] | None = None,
    max_line: int = DEFAULT_MAX_LINE,
    too_long: TooLong = _ignore,
) -> Iterator[tuple[int, list[bytes]]]:
    """Yield (line number of the first line, lines without their LF) for the whole file.

    `position[0]` follows how many bytes of the file (compressed, if it is) have been read. Lines
    longer than `max_line` bytes (LF excluded) are not yielded but given to `too_long`; the line
    numbers of the others are unchanged.
    """
    line_no = 1
    tail = b""
    skipping = -1  # >= 0: bytes of the too-long line `line_no` skipped so far
    skipped_head = b""
    position = position if position is not None else [0]
    try:
        for chunk in _chunks(path, position):
            if skipping >= 0:
                cut = chunk.find(b"\n")
                if cut < 0:
                    skipping += len(chunk)
                    continue
                too_long(line_no, skipping + cut, skipped_head)
                line_no += 1
                skipping = -1
                chunk = chunk[cut + 1 :]
            data = tail + chunk if tail else chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                tail = data
            else:
                lines = data[:cut].split(b"\n")
                tail = data[cut + 1 :]
                if cut > max_line and max(map(len, lines)) > max_line:
                    yield from _without_long(line_no, lines, max_line, too_long)
                else:
                    yield line_no, lines
                line_no += len(lines)
            if len(tail) > max_line:
                skipping, skipped_head, tail = len(tail), tail[:HEAD], b""
    except _Broken as exc:
        # An incomplete last line before the cut is not a line: it is dropped with the rest.
        raise TruncatedInput(f"{path}: {exc} after line {line_no - 1}", line_no - 1) from exc
    if skipping >= 0:
        too_long(line_no, skipping, skipped_head)
    elif tail:
        yield line_no, [tail]


def _without_long(
    first: int, lines: list[bytes], max_line: int, too_long: TooLong
) -> Iterator[tuple[int, list[bytes]]]:
    """The runs of lines of a block between its too-long lines (which go to `too_long`)."""
    start = 0
    for index, line in enumerate(lines):
        if len(line) > max_line:
            if index > start:
                yield first + start, lines[start:index]
            too_long(first + index, len(line), line[:HEAD])
            start = index + 1
    if start < len(lines):
        yield first + start, lines[start:]
