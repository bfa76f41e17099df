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
from typing import Protocol, cast

# ISA-L's inflate, with zlib's interface: the same bytes in less than half of zlib's CPU (1.1 GB of
# tracking log: 0.95 s against 2.2 s), on a core the loader shares with its parsing and writes.
# Unlike zlib it cannot parse a member's header split between two calls, so `_chunks` gives it
# each header whole (`_header_end`). (Its gzip reader, `igzip`, has no such limit, but a stream cut
# short gives nothing of the data before the cut that it had not handed out yet.)
from isal import isal_zlib as zlib

from utils.native import native

_InflateError = cast(type[Exception], zlib.error)  # an exception class (the stubs call it an instance)

BLOCK = 1 << 20
DEFAULT_MAX_LINE = 8 << 20  # 8 MiB: edX cuts lines at 50,000 characters; a BSON document holds 16 MB
HEAD = 1024  # bytes of a too-long line kept for the rejects file

TooLong = Callable[[int, int, bytes], None]


def _splitter() -> Callable[[bytes], list[bytes]]:
    """`bytes.split(b"\\n")`: `eventscan.split_lines` where the module is built and not turned
    off (`utils/native.py`; the line ends found by `memchr`, where CPython compares byte by byte:
    0.13 against 0.46 us a tracking-log line)."""
    split_lines = native("split_lines")
    if split_lines is not None:
        return cast(Callable[[bytes], list[bytes]], split_lines)
    return lambda data: data.split(b"\n")


_split = _splitter()


class TruncatedInput(Exception):
    """The compressed stream ends (or breaks) before its end; `lines` complete lines were read."""

    def __init__(self, message: str, lines: int) -> None:
        super().__init__(message)
        self.lines = lines


class _Broken(Exception):
    pass


def _header_end(data: bytes) -> int | None:
    """Where the gzip member header at the start of `data` ends (RFC 1952: 10 bytes, then the
    optional fields its flags announce), or None if `data` does not hold all of it yet."""
    if len(data) < 10:
        return None
    flags, end = data[3], 10
    if flags & 4:  # FEXTRA: its length, then itself
        if len(data) < end + 2:
            return None
        end += 2 + int.from_bytes(data[end : end + 2], "little")
    for flag in (8, 16):  # FNAME, FCOMMENT: zero-terminated
        if flags & flag:
            zero = data.find(b"\0", end)
            if zero < 0:
                return None
            end = zero + 1
    if flags & 2:  # FHCRC
        end += 2
    return end if len(data) >= end else None


def _chunks(path: Path, position: list[int]) -> Iterator[bytes]:
    with path.open("rb") as stream:
        head = stream.read(2)
        stream.seek(0)
        if head != b"\x1f\x8b":
            while chunk := stream.read(BLOCK):
                position[0] = stream.tell()
                yield chunk
            return
        inflater = zlib.decompressobj(wbits=31)
        started = False  # some bytes of the current gzip member were consumed
        raw = b""
        while more := stream.read(BLOCK // 4):
            position[0] = stream.tell()
            raw = raw + more if raw else more
            while raw:
                if not started and _header_end(raw) is None:
                    # ISA-L parses a member's header only whole: wait for the rest of it
                    if len(raw) > BLOCK:
                        raise _Broken("corrupt gzip data (a member header longer than 1 MiB)")
                    break
                try:
                    out = inflater.decompress(raw, BLOCK)
                except _InflateError as exc:
                    raise _Broken(f"corrupt gzip data ({exc})") from exc
                started = True
                if out:
                    yield out
                if inflater.eof:  # a member ended; another may follow
                    raw = inflater.unused_data
                    inflater = zlib.decompressobj(wbits=31)
                    started = False
                else:
                    raw = inflater.unconsumed_tail  # output was capped at BLOCK: go on from there
        if raw or (started and not inflater.eof):
            raise _Broken("the gzip stream is truncated (unexpected end of file)")


def _ignore(line_no: int, length: int, head: bytes) -> None:
    pass


class Digest(Protocol):
    """What `iter_line_blocks` feeds the lines it yields to (a `hashlib` object, or
    `blake3.blake3`)."""

    def update(self, data: bytes | memoryview, /) -> None: ...


def iter_line_blocks(
    path: Path,
    position: list[int] | None = None,
    max_line: int = DEFAULT_MAX_LINE,
    too_long: TooLong = _ignore,
    digest: Digest | None = None,
) -> Iterator[tuple[int, list[bytes]]]:
    """Yield (line number of the first line, lines without their LF) for the whole file.

    `position[0]` follows how many bytes of the file (compressed, if it is) have been read. Lines
    longer than `max_line` bytes (LF excluded) are not yielded but given to `too_long`; the line
    numbers of the others are unchanged. `digest`, if given, is fed each yielded line with an LF
    after it (the last line too), before it is yielded: the bytes of the file as far as it was
    read, but for the too-long lines (and a final LF).

    Each decompressed block is split where it lies: only the line that spans two blocks is put
    together, and the digest is fed the block itself, not the lines joined again (but around
    too-long lines, where the lines kept are joined).
    """
    line_no = 1
    tail = b""  # the start of a line whose end is in a block not yet read
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
            lines = _split(chunk)
            rest = lines.pop()  # after the block's last LF: the start of the next line
            if not lines:  # no LF in this block
                tail = tail + rest if tail else rest
            else:
                whole = len(chunk) - len(rest)  # the block's bytes up to its last LF, included
                if tail:
                    lines[0] = tail + lines[0]
                if len(tail) + whole > max_line and max(map(len, lines)) > max_line:
                    for first, part in _without_long(line_no, lines, max_line, too_long):
                        if digest is not None:
                            digest.update(b"\n".join(part))
                            digest.update(b"\n")
                        yield first, part
                else:
                    if digest is not None:
                        if tail:
                            digest.update(tail)
                        digest.update(memoryview(chunk)[:whole] if rest else chunk)
                    yield line_no, lines
                line_no += len(lines)
                tail = rest
            if len(tail) > max_line:
                skipping, skipped_head, tail = len(tail), tail[:HEAD], b""
    except _Broken as exc:
        # An incomplete last line before the cut is not a line: it is dropped with the rest.
        raise TruncatedInput(f"{path}: {exc} after line {line_no - 1}", line_no - 1) from exc
    if skipping >= 0:
        too_long(line_no, skipping, skipped_head)
    elif tail:
        if digest is not None:
            digest.update(tail)
            digest.update(b"\n")
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
