"""Per (course, UTC day, event_type) counts of a tracking-log file, for the course-event tables.

The dashboards' course-events view counts, per day, the events of a course whose `event_type`
contains a component's url_name (the original ran one regex query over the whole event store per
component). The url_names are only known once the course structure is loaded, so the clickstream
counts events per (course, day, event_type) while it reads the file, and the EventCount service
matches those event types against the components. Distinct event types are bounded by the pages
and blocks of a course, not by the number of events.

Also kept: one row per (file, course) with the file's events of that course and a token (a digest
of the file's counts of that course: the same content gives the same token), so that the derived services can tell which courses a
new or re-ingested file touched without reading the per-day rows.

Both are written to `Person_Course` in the transaction that marks the file done, after deleting the
file's previous rows, as the per-day person counts are (aggregates.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date
from typing import Any

from services.clickstream.aggregates import CountedBatch, native_counter
from stores.sql.base import Cursor

DATABASE = "Person_Course"
TABLE = "course_event_type_day"
FILES_TABLE = "clickstream_file_courses"
MAX_EVENT_TYPE = 2000  # longer event types (URLs with long queries) are cut: only substrings matter

COLUMNS = ("course_id", "day", "event_type", "nevents", "source_file")
FILE_COLUMNS = ("source_file", "course_id", "nevents", "token")


def create_statements(dialect: str) -> list[str]:
    """Both tables and their indexes. Event types compare case-sensitively (binary collation)."""
    exact = " COLLATE utf8mb4_bin" if dialect == "mysql" else ""
    tail = " DEFAULT CHARSET=utf8mb4" if dialect == "mysql" else ""
    statements = [
        f"CREATE TABLE IF NOT EXISTS {TABLE} (course_id VARCHAR(255){exact} NOT NULL, day DATE NOT NULL, "
        f"event_type TEXT{exact} NOT NULL, nevents INTEGER NOT NULL, source_file VARCHAR(700) NOT NULL){tail}",
        f"CREATE TABLE IF NOT EXISTS {FILES_TABLE} (source_file VARCHAR(700) NOT NULL, "
        f"course_id VARCHAR(255){exact} NOT NULL, nevents INTEGER NOT NULL, token VARCHAR(40) NOT NULL){tail}",
    ]
    indexes = (
        (f"{TABLE}_source", TABLE, "source_file"),
        (f"{TABLE}_course", TABLE, "course_id, day"),
        (f"{FILES_TABLE}_source", FILES_TABLE, "source_file"),
    )
    # SQLite and MariaDB both take CREATE INDEX IF NOT EXISTS.
    statements += [f"CREATE INDEX IF NOT EXISTS {n} ON {t} ({c})" for n, t, c in indexes]
    return statements


class EventTypeCounts:
    """Accumulates the counts of one file (in native/eventscan's `EventTypeCounter` where it is
    built)."""

    def __init__(self, native: bool = True) -> None:
        self.counts: dict[tuple[str, date, str], int] = {}
        self.per_course: dict[str, int] = {}
        self.native = native_counter("EventTypeCounter") if native else None

    def add_all(self, counted: CountedBatch) -> None:
        """Count events, a batch at a time (see `DayCounts.add_all`)."""
        if self.native is not None:
            self.native.add_all(counted)
            return
        assert isinstance(counted, list), "a CountedRows is counted by the native counter"
        counts, per_course = self.counts, self.per_course
        for course, _, _, when, event_type, _, _ in counted:
            if not course or when is None:
                continue
            key = (course, when.date(), event_type[:MAX_EVENT_TYPE])
            counts[key] = counts.get(key, 0) + 1
            per_course[course] = per_course.get(course, 0) + 1

    def totals(self) -> tuple[dict[tuple[str, date, str], int], dict[str, int]]:
        """(counts per (course, day, event type), counts per course)."""
        if self.native is not None:
            return self.native.counts(), self.native.per_course()
        return self.counts, self.per_course

    def writer(self, source: str) -> Callable[[Cursor, Callable[[str, str], str]], None]:
        """The completion transaction's SQL: replace this file's rows."""
        counts, per_course = self.totals()
        rows = [(course, day, kind, n, source) for (course, day, kind), n in counts.items()]
        digests: dict[str, Any] = {course: hashlib.sha1(course.encode()) for course in per_course}
        for (course, day, kind), n in sorted(counts.items()):
            digests[course].update(f"{day}\t{kind}\t{n}\n".encode("utf-8", "surrogateescape"))
        files = [(source, c, n, digests[c].hexdigest()) for c, n in sorted(per_course.items())]

        def write(cur: Cursor, qualify: Callable[[str, str], str]) -> None:
            _replace(cur, qualify(DATABASE, TABLE), COLUMNS, source, rows)
            _replace(cur, qualify(DATABASE, FILES_TABLE), FILE_COLUMNS, source, files)

        return write


def _replace(cur: Cursor, table: str, columns: tuple[str, ...], source: str, rows: list[Any]) -> None:
    cur.execute(f"DELETE FROM {table} WHERE source_file=?", (source,))
    marks = ", ".join("?" for _ in columns)
    for start in range(0, len(rows), 5000):
        cur.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows[start : start + 5000]
        )
