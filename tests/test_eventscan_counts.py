"""The per-file counts of native/eventscan (`DayCounter`, `EventTypeCounter`) against the Python
code they stand in for (`aggregates.DayCounts`, `course_events.EventTypeCounts`): the same rows, in
the same order, for the same counted events."""

from __future__ import annotations

import os
import random
from datetime import datetime, timedelta
from typing import Any

import pytest

from services.clickstream.aggregates import MAX_IPS, DayCounts
from services.clickstream.course_events import MAX_EVENT_TYPE, EventTypeCounts

try:
    import eventscan  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # not built: scripts/test.sh builds it and sets OPTIMUS_REQUIRE_NATIVE
    if os.environ.get("OPTIMUS_REQUIRE_NATIVE") == "1":
        raise
    pytest.skip("native/eventscan is not built", allow_module_level=True)

NAMES = [
    "play_video",
    "problem_check",
    "showanswer",
    "seq_goto",
    "edx.forum.thread.created",
    "edx.forum.",
    "edx.forumx",
    "page_close",
    "",
    "/courses/course-v1:UQx+X+1T/" + "x" * (MAX_EVENT_TYPE + 10),
    "\u00e9v\u00e9nement" * 300,
]


def _counted(rng: random.Random) -> tuple[Any, ...]:
    base = datetime(2015, 5, 30, 23, 59, 0)
    when = None if rng.random() < 0.03 else base + timedelta(microseconds=rng.randrange(0, 180_000_000))
    user_id = rng.choice([None, 0, 7, 42, 2**40, -3])
    return (
        rng.choice(["course-v1:UQx+X+1T", "UQx/Y/2014", "", "c\u00e7"]),
        user_id,
        rng.choice(["", "anna", "bob", "\u540d\u524d"]),
        when,
        rng.choice(NAMES),
        rng.choice([None, "", "AU", "NZ", "FR", "\u00c5land"]),
        rng.choice([None, "", "1.2.3.4", "::1", 5, *(f"10.0.0.{n}" for n in range(MAX_IPS + 5))]),
    )


def _rows_of(batch: list[tuple[Any, ...]]) -> Any:
    """The batch as a `CountedRows`, as the loader keeps it where the native counters count."""
    rows = eventscan.CountedRows()
    for counted in batch:
        rows.append(counted)
    assert len(rows) == len(batch)
    return rows


@pytest.mark.parametrize("kept", ["tuples", "rows"])
def test_the_native_counters_give_the_python_counters_rows_in_the_same_order(kept: str) -> None:
    """Fed with the same events, as a list of tuples or as a `CountedRows` (with some of its rows
    dropped, as the loader drops the duplicates another file owns)."""
    rng = random.Random(9)
    python_days, native_days = DayCounts(native=False), DayCounts()
    python_types, native_types = EventTypeCounts(native=False), EventTypeCounts()
    assert native_days.native is not None and native_types.native is not None
    for _ in range(40):
        batch = [_counted(rng) for _ in range(rng.randrange(0, 400))]
        dropped = {p for p in range(len(batch)) if rng.random() < 0.1}
        kept_batch = [c for p, c in enumerate(batch) if p not in dropped]
        python_days.add_all(kept_batch)
        python_types.add_all(kept_batch)
        if kept == "rows":
            rows = _rows_of(batch)
            rows.drop_positions(dropped)
            assert len(rows) == len(kept_batch)
            native_days.add_all(rows)
            native_types.add_all(rows)
        else:
            native_days.add_all(kept_batch)
            native_types.add_all(kept_batch)
    rows = python_days.rows("/data/x.log.gz")
    assert len(rows) > 40
    assert native_days.rows("/data/x.log.gz") == rows
    assert [tuple(map(type, row)) for row in native_days.rows("s")] == [
        tuple(map(type, row)) for row in python_days.rows("s")
    ]
    counts, per_course = python_types.totals()
    assert list(native_types.totals()[0].items()) == list(counts.items())
    assert list(native_types.totals()[1].items()) == list(per_course.items())


def test_counted_rows_give_back_the_tuples_they_were_given() -> None:
    """`tuples(prefix)`: the rows whose name starts with it (the loader reads the enrolment events
    so), as they were appended; an ip that is not a string comes back as None (it counts nowhere)."""
    rng = random.Random(4)
    batch = [_counted(rng) for _ in range(500)]
    rows = _rows_of(batch)
    expected = [(*c[:6], c[6] if isinstance(c[6], str) else None) for c in batch]
    assert rows.tuples() == expected
    assert rows.tuples("edx.forum.") == [c for c in expected if c[4].startswith("edx.forum.")]
    with pytest.raises(TypeError):
        rows.append(("c", None, "u", None, 5, None, None))  # a name that is not a string
    assert len(rows) == len(batch)


def test_an_ip_or_user_of_another_type_counts_as_python_counts_it() -> None:
    when = datetime(2015, 5, 30, 10, 0, 0)
    batch = [
        ("c", None, "anna", when, "play_video", "AU", 17),  # an ip that is not a string: left out
        ("c", None, "anna", when + timedelta(hours=1), "x", None, "1.1.1.1"),
        ("c", 5, "", when - timedelta(hours=1), "x", None, None),
        ("c", 5, "bob", when, "x", "", ""),
    ]
    python, native = DayCounts(native=False), DayCounts()
    python.add_all(batch)
    native.add_all(batch)
    assert native.rows("s") == python.rows("s")
