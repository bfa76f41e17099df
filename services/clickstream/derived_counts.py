"""The clickstream's counts for the derived services, beside the per-day person counts.

One object per file, fed with each event the file owns (where `DayCounts` is fed: an event held by
two files is counted once) and written in the completion transaction with them: per (course, day, event_type) counts and the per-file
course list (course_events.py), and the enrolment events (enrolments.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from services.clickstream import course_events, enrolments
from services.clickstream.aggregates import CountedBatch
from stores.sql.base import Cursor

ENROLMENT = "edx.course.enrollment."  # the prefix of the enrolment events

SqlWrites = Callable[[Cursor, Callable[[str, str], str]], None]


def create_statements(dialect: str) -> list[str]:
    return course_events.create_statements(dialect) + enrolments.create_statements(dialect)


class DerivedCounts:
    """Fed with `note` for each event read (it keeps what it needs of the rare enrolment events)
    and with `add_all` with the events the file owns (after the batch is stored), where DayCounts is."""

    def __init__(self) -> None:
        self.event_types = course_events.EventTypeCounts()
        self.enrolments = enrolments.Enrolments()

    def note(
        self,
        event: dict[str, Any],
        name: str,
        course: str,
        user_id: int | None,
        username: str,
        when: datetime | None,
    ) -> None:
        if name.startswith(ENROLMENT):
            self.enrolments.note(event, name, course, user_id, username, when)

    def add_all(self, counted: CountedBatch) -> None:
        self.event_types.add_all(counted)
        # the enrolment events: every tuple is looked at, but of `CountedRows` only these are made
        enrolments = counted if isinstance(counted, list) else counted.tuples(ENROLMENT)
        for course, user_id, username, when, name, country, _ in enrolments:
            if name.startswith(ENROLMENT):
                self.enrolments.add(name, course, user_id, username, when, country)

    def writer(self, source: str, first: SqlWrites | None = None) -> SqlWrites:
        """This file's SQL for the completion transaction, after `first` (the per-day counts)."""
        writes = [self.event_types.writer(source), self.enrolments.writer(source)]

        def write(cur: Cursor, qualify: Callable[[str, str], str]) -> None:
            if first is not None:
                first(cur, qualify)
            for each in writes:
                each(cur, qualify)

        return write
