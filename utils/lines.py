"""Reading a text file of lines, plain or gzip-compressed, in large blocks (constant memory).

A gzip stream is decompressed with zlib directly (several members are allowed, as `gzip` writes
them when appending). A stream cut short is reported by `TruncatedInput` after every complete line
before the cut has been yielded, so what was read is kept.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path

BLOCK = 1 << 20


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
        inflater = zlib.decompressobj(wbits=31)
        started = False  # some bytes of the current gzip member were consumed
        while raw := stream.read(BLOCK // 4):
            position[0] = stream.tell()
            while raw:
                try:
                    out = inflater.decompress(raw)
                except zlib.error as exc:
                    raise _Broken(f"corrupt gzip data ({exc})") from exc
                started = True
                if out:
                    yield out
                if inflater.eof:  # a member ended; another may follow
                    raw = inflater.unused_data
                    inflater = zlib.decompressobj(wbits=31)
                    started = False
                else:
                    raw = b""
        if started and not inflater.eof:
            raise _Broken("the gzip stream is truncated (unexpected end of file)")


def iter_line_blocks(path: Path, position: list[int] | None = None) -> Iterator[tuple[int, list[bytes]]]:
    """Yield (line number of the first line, lines without their LF) for the whole file.

    `position[0]` follows how many bytes of the file (compressed, if it is) have been read.
    """
    line_no = 1
    tail = b""
    position = position if position is not None else [0]
    try:
        for chunk in _chunks(path, position):
            data = tail + chunk if tail else chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                tail = data
                continue
            lines = data[:cut].split(b"\n")
            tail = data[cut + 1 :]
            yield line_no, lines
            line_no += len(lines)
    except _Broken as exc:
        # An incomplete last line before the cut is not a line: it is dropped with the rest.
        raise TruncatedInput(f"{path}: {exc} after line {line_no - 1}", line_no - 1) from exc
    if tail:
        yield line_no, [tail]
