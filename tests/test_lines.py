"""Reading lines in bounded memory: a line past the limit is reported, never held, and the line
numbers of the others do not move."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from utils.lines import iter_line_blocks


def read(path: Path, max_line: int) -> tuple[list[tuple[int, bytes]], list[tuple[int, int, bytes]]]:
    long: list[tuple[int, int, bytes]] = []
    lines = [
        (first + i, line)
        for first, block in iter_line_blocks(
            path, None, max_line, lambda n, size, head: long.append((n, size, head[:3]))
        )
        for i, line in enumerate(block)
    ]
    return lines, long


@pytest.mark.parametrize("compressed", [False, True])
def test_long_lines_anywhere_are_reported_with_their_numbers_and_lengths(tmp_path, compressed):
    content = [b"a", b"x" * 3_000_000, b"b", b"y" * 1500, b"c", b"z" * 2_500_000]
    data = b"\n".join(content)  # the last line has no LF
    path = tmp_path / ("f.log.gz" if compressed else "f.log")
    path.write_bytes(gzip.compress(data) if compressed else data)
    lines, long = read(path, 1000)
    assert lines == [(1, b"a"), (3, b"b"), (5, b"c")]
    assert long == [(2, 3_000_000, b"xxx"), (4, 1500, b"yyy"), (6, 2_500_000, b"zzz")]


def test_lines_at_the_limit_are_kept(tmp_path):
    path = tmp_path / "f.log"
    path.write_bytes(b"x" * 1000 + b"\n" + b"y" * 1001 + b"\n")
    lines, long = read(path, 1000)
    assert lines == [(1, b"x" * 1000)] and long == [(2, 1001, b"yyy")]
