"""Reading lines in bounded memory: a line past the limit is reported, never held, and the line
numbers of the others do not move."""

from __future__ import annotations

import gzip
import hashlib
import random
import struct
import zlib
from pathlib import Path

import pytest

from tests.native import eventscan_module
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


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("last_lf", [False, True])
@pytest.mark.parametrize("limit", [1_000_000, 3_000_000])  # below and past a block (1 MiB)
def test_the_digest_is_fed_each_yielded_line_and_an_lf_after_it(tmp_path, compressed, last_lf, limit):
    """Whatever the blocks: lines across block boundaries, too-long lines (not fed) among short
    ones and across boundaries, an empty line, a last line without its LF."""
    rng = random.Random(7)
    sizes = [rng.choice((0, 1, 80, 900, 1100, 5000, 300_000, 1_500_000, 3_500_000)) for _ in range(60)]
    content = [bytes([97 + n % 26]) * size for n, size in enumerate(sizes)]
    data = b"\n".join(content) + (b"\n" if last_lf else b"")
    path = tmp_path / ("f.log.gz" if compressed else "f.log")
    path.write_bytes(gzip.compress(data, compresslevel=1) if compressed else data)
    fed = hashlib.blake2b(digest_size=32)
    yielded = []
    for _, block in iter_line_blocks(path, None, limit, lambda *_: None, fed):
        yielded.extend(block)
    want = [line for line in content if len(line) <= limit]
    if not last_lf and content[-1] == b"":
        want.pop()  # the file ends with an LF after all: no line after it
    assert yielded == want
    assert (
        fed.hexdigest()
        == hashlib.blake2b(b"".join(line + b"\n" for line in want), digest_size=32).hexdigest()
    )


def test_lines_at_the_limit_are_kept(tmp_path):
    path = tmp_path / "f.log"
    path.write_bytes(b"x" * 1000 + b"\n" + b"y" * 1001 + b"\n")
    lines, long = read(path, 1000)
    assert lines == [(1, b"x" * 1000)] and long == [(2, 1001, b"yyy")]


def test_gzip_members_one_after_another_read_as_one_stream(tmp_path):
    """As `gzip` writes them when appending; a member boundary may fall inside a line."""
    path = tmp_path / "f.log.gz"
    path.write_bytes(gzip.compress(b"a\nb") + gzip.compress(b"c\n" + b"d" * 5_000_000 + b"\ne\n"))
    lines, long = read(path, 10_000_000)
    assert [line[:2] for _, line in lines] == [b"a", b"bc", b"dd", b"e"]
    assert [n for n, _ in lines] == [1, 2, 3, 4] and long == []


@pytest.mark.parametrize("count", [3_000, 200_000])  # within the first read, and over many
def test_a_cut_gzip_yields_the_complete_lines_then_says_where_it_broke(tmp_path, count):
    from utils.lines import TruncatedInput

    whole = gzip.compress(b"".join(b"line %d\n" % n for n in range(count)))
    path = tmp_path / "cut.log.gz"
    path.write_bytes(whole[: len(whole) // 2])
    got: list[bytes] = []
    with pytest.raises(TruncatedInput, match="truncated") as cut:
        for _, block in iter_line_blocks(path):
            got.extend(block)
    assert count // 3 < len(got) == cut.value.lines < count
    assert got == [b"line %d" % n for n in range(len(got))], "every line before the cut, whole"


def test_corrupt_gzip_data_is_reported_after_the_lines_before_it(tmp_path):
    from utils.lines import TruncatedInput

    whole = bytearray(gzip.compress(b"".join(b"line %d\n" % n for n in range(200_000)), mtime=0))
    middle = len(whole) // 2
    whole[middle : middle + 64] = b"\xff" * 64
    path = tmp_path / "bad.log.gz"
    path.write_bytes(bytes(whole))
    with pytest.raises(TruncatedInput, match="corrupt gzip data") as broken:
        for _ in iter_line_blocks(path):
            pass
    assert str(path) in str(broken.value)
    checksum = bytearray(gzip.compress(b"a\nb\n", mtime=0))
    checksum[-6] ^= 0xFF  # the member's CRC-32 no longer matches its data
    path.write_bytes(bytes(checksum))
    with pytest.raises(TruncatedInput, match="corrupt gzip data"):
        list(iter_line_blocks(path))


def _member(payload: bytes, flags: int) -> bytes:
    """One gzip member with the optional header fields `flags` asks for (2: a header CRC, 4: extra
    field, 8: file name, 16: comment), its data stored uncompressed so that its size is exact."""
    header = b"\x1f\x8b\x08" + bytes([flags]) + b"\0\0\0\0\0\xff"
    if flags & 4:
        header += struct.pack("<H", 5) + b"extra"
    if flags & 8:
        header += b"tracking.log\0"
    if flags & 16:
        header += b"a comment\0"
    if flags & 2:
        header += struct.pack("<H", zlib.crc32(header) & 0xFFFF)
    deflate = zlib.compressobj(0, zlib.DEFLATED, -15)
    body = deflate.compress(payload) + deflate.flush()
    return header + body + struct.pack("<II", zlib.crc32(payload), len(payload))


@pytest.mark.parametrize("flags", [2, 8 | 16, 4 | 8 | 16 | 2])
@pytest.mark.parametrize("boundary", [1 << 18, 1 << 19, 1 << 20])
def test_a_later_members_header_across_a_read_boundary_is_read(tmp_path, flags, boundary):
    """Wherever the reads fall, a later member's header may be cut between two of them (ISA-L's
    own inflate cannot take that: the reader must)."""
    second = _member(b"second member line\n" * 3, flags)
    for before in (3, 9, 14):  # where the boundary cuts the second member's header
        size = boundary
        for _ in range(5):  # the stored blocks' headers: a few steps to the exact length
            first = _member(b"x" * (size - 1) + b"\n", 8)
            size += boundary - before - len(first)
        first = _member(b"x" * (size - 1) + b"\n", 8)
        assert len(first) == boundary - before, "the second member starts `before` bytes short of it"
        path = tmp_path / f"two-{flags}-{boundary}-{before}.log.gz"
        path.write_bytes(first + second)
        lines = [line for _, block in iter_line_blocks(path) for line in block]
        assert lines[1:] == [b"second member line"] * 3 and len(lines[0]) == size - 1


def test_a_member_header_that_never_ends_is_corrupt_in_bounded_memory(tmp_path):
    """A file name field with no end (a hostile or broken file): held up to 1 MiB, then refused."""
    from utils.lines import TruncatedInput

    path = tmp_path / "name.log.gz"
    path.write_bytes(gzip.compress(b"a\n") + b"\x1f\x8b\x08\x08\0\0\0\0\0\xff" + b"n" * (3 << 20))
    got: list[bytes] = []
    with pytest.raises(TruncatedInput, match=r"corrupt gzip data \(a member header longer than 1 MiB\)"):
        for _, block in iter_line_blocks(path):
            got.extend(block)
    assert got == [b"a"]


def test_the_compiled_split_is_bytes_split():
    split = eventscan_module().split_lines
    rng = random.Random(2)
    for data in (b"", b"\n", b"a", b"a\n", b"\n\n", b"ab\ncd", b"\r\n\x00\n\xff"):
        assert split(data) == data.split(b"\n")
    for _ in range(300):
        data = bytes(rng.choice(b"\nab\r\x00") for _ in range(rng.randrange(0, 3000)))
        assert split(data) == data.split(b"\n")
    with pytest.raises(TypeError):
        split("text")
