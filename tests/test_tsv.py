"""The .sql dumps' text format, era by era (edx-data-package.md section 2)."""

from __future__ import annotations

import io

from utils.tsv import iter_records, split_fields, unescape


def records(data: bytes) -> list[tuple[int, bytes]]:
    return list(iter_records(io.BytesIO(data)))


def test_python_writer_two_character_escapes_are_unescaped():
    fields = split_fields(rb"a\tb	c\nd	e\\f	g\rh	nul\0")
    assert [unescape(f.decode()) for f in fields] == ["a\tb", "c\nd", "e\\f", "g\rh", "nul\0"]


def test_raw_carriage_return_of_the_mysql_client_era_stays_inside_the_value():
    data = b"id\taddr\n1\tline one\r\\nline two\n2\tx\n"
    got = records(data)
    assert [n for n, _ in got] == [1, 2, 3]
    assert unescape(split_fields(got[1][1])[1].decode()) == "line one\r\nline two"


def test_studentmodule_backslash_raw_tab_is_data_not_a_delimiter():
    record = b'7\tproblem\t{"a": "x\\\ty"}\t1'
    fields = split_fields(record)
    assert len(fields) == 4
    assert unescape(fields[2].decode()) == '{"a": "x\ty"}'


def test_studentmodule_backslash_newline_continues_the_record():
    data = b"id\tstate\tgrade\n1\tfirst\\\nsecond\t0.5\n2\tplain\tNULL\n"
    got = records(data)
    assert [n for n, _ in got] == [1, 2, 4]
    fields = split_fields(got[1][1])
    assert len(fields) == 3
    assert unescape(fields[1].decode()) == "first\nsecond"


def test_escaped_backslash_before_a_newline_does_not_continue_the_record():
    data = b"id\tv\n1\tends with backslash\\\\\n2\tnext\n"
    got = records(data)
    assert len(got) == 3
    assert unescape(split_fields(got[1][1])[1].decode()) == "ends with backslash\\"


def test_doubled_json_escapes_of_studentmodule_state_give_valid_json():
    import json

    field = rb'{"student_answers": {"p_2_1": "{\\"answer\\":\\"correct\\"}"}}'
    value = unescape(field.decode())
    assert json.loads(json.loads(value)["student_answers"]["p_2_1"]) == {"answer": "correct"}


def test_last_line_without_newline_is_a_record():
    assert records(b"id\n1\n2") == [(1, b"id"), (2, b"1"), (3, b"2")]


def test_block_reader_gives_the_same_records_as_the_line_reader_whatever_the_block_size():
    import random

    from utils.tsv import iter_record_blocks

    rng = random.Random(7)
    pieces = [b"a", b"\\", b"\\\\", b"\t", b"\\\t", b"\n", b"\\\n", b"\r", b"xyz", b"NULL"]
    for _ in range(200):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 60)))
        expected = records(data)
        for size in (1, 2, 3, 7, 64, 4096):
            got: list[tuple[int, bytes]] = []
            for first, recs, numbers, too_long in iter_record_blocks(io.BytesIO(data), block_size=size):
                assert too_long == []
                lines = numbers if numbers is not None else range(first, first + len(recs))
                got.extend(zip(lines, recs, strict=True))
            assert got == expected, (data, size)


def test_block_reader_reports_records_past_the_limit_with_their_line_and_length():
    import random

    from utils.tsv import iter_record_blocks

    rng = random.Random(11)
    pieces = [b"a", b"\\", b"\t", b"\\\n", b"\n", b"xyz", b"\\\\"]
    for _ in range(200):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 80)))
        limit = rng.randint(0, 12)
        expected = [(n, r) for n, r in records(data) if len(r) <= limit]
        expected_long = [(n, len(r)) for n, r in records(data) if len(r) > limit]
        for size in (1, 3, 8, 4096):
            got: list[tuple[int, bytes]] = []
            too_long: list[tuple[int, int]] = []
            for first, recs, numbers, long in iter_record_blocks(io.BytesIO(data), size, max_record=limit):
                lines = numbers if numbers is not None else range(first, first + len(recs))
                got.extend(zip(lines, recs, strict=True))
                too_long.extend(long)
            assert (got, too_long) == (expected, expected_long), (data, size, limit)


def _chunk_records(data: bytes, size: int, limit: int | None) -> tuple[list[tuple[int, bytes]], list]:
    """What `iter_record_chunks` reads, cut into records with the line reader."""
    from utils.tsv import iter_record_chunks

    got: list[tuple[int, bytes]] = []
    too_long: list[tuple[int, int]] = []
    for first, chunk, newlines, long in iter_record_chunks(io.BytesIO(data), size, max_record=limit):
        too_long.extend(long)
        assert newlines == (0 if chunk is None else chunk.count(b"\n"))
        if chunk is not None:
            # The chunk is whole records as in the file: reading it alone gives them back.
            got.extend((first + n - 1, r) for n, r in records(chunk + b"\n"))
    return got, too_long


def test_chunk_reader_gives_the_same_records_as_the_line_reader_whatever_the_block_size():
    import random

    rng = random.Random(13)
    pieces = [b"a", b"\\", b"\\\\", b"\t", b"\\\t", b"\n", b"\\\n", b"\r", b"xyz", b"NULL", b"\n\n"]
    for _ in range(300):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 80)))
        expected = records(data)
        for size in (1, 2, 3, 7, 64, 4096):
            assert _chunk_records(data, size, None) == (expected, []), (data, size)


def test_chunk_reader_reports_records_past_the_limit_with_their_line_and_length():
    import random

    rng = random.Random(17)
    pieces = [b"a", b"\\", b"\t", b"\\\n", b"\n", b"xyz", b"\\\\", b"\\\\\\\n"]
    for _ in range(300):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 90)))
        limit = rng.randint(0, 12)
        expected = [(n, r) for n, r in records(data) if len(r) <= limit]
        expected_long = [(n, len(r)) for n, r in records(data) if len(r) > limit]
        for size in (1, 3, 8, 4096):
            assert _chunk_records(data, size, limit) == (expected, expected_long), (data, size, limit)


def test_chunk_reader_finds_record_ends_behind_long_runs_of_escaped_newlines():
    """More escaped LFs in a row than the reader examines one by one (it then scans): the records
    still end where the line reader says."""
    data = b"h\n" + b"x\\\n" * 50 + b"end\n" + b"1\t2\n" * 3 + b"y\\\n" * 40 + b"z"
    expected = records(data)
    for size in (5, 64, 100, 4096):
        assert _chunk_records(data, size, None) == (expected, []), size
