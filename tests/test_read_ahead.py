"""utils.read_ahead: the same items in the same order, the producer's error where it happened,
a bounded lead, and a producer that stops when the consumer does."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from utils.read_ahead import read_ahead


def test_items_arrive_in_order_and_complete() -> None:
    assert list(read_ahead(iter(range(1000)), depth=3)) == list(range(1000))
    assert list(read_ahead(iter([]))) == []


def test_an_error_of_the_producer_is_raised_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("cut at 3")

    got = []
    with pytest.raises(ValueError, match="cut at 3"):
        for item in read_ahead(items()):
            got.append(item)
    assert got == [1, 2]


def test_the_producer_runs_at_most_depth_items_ahead() -> None:
    made: list[int] = []

    def items() -> Iterator[int]:
        for number in range(100):
            made.append(number)
            yield number

    reader = read_ahead(items(), depth=2)
    assert next(reader) == 0
    deadline = time.monotonic() + 30
    while len(made) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # time enough to run further ahead, if it could
    # item 0 handed over, 1 and 2 waiting in the queue, 3 made and waiting for room
    assert len(made) == 4
    reader.close()


def test_closing_early_stops_the_producer_and_closes_its_source() -> None:
    closed = threading.Event()

    def items() -> Iterator[int]:
        try:
            number = 0
            while True:
                yield number
                number += 1
        finally:
            closed.set()

    before = {t.name for t in threading.enumerate()}
    reader = read_ahead(items(), name="test-read-ahead")
    assert [next(reader) for _ in range(5)] == [0, 1, 2, 3, 4]
    reader.close()
    assert closed.is_set()
    assert "test-read-ahead" not in {t.name for t in threading.enumerate()} - before
