"""Per (course, user, UTC day) counts of a tracking-log file, for the person-course tables.

They are written to `Person_Course.person_course_day` in the transaction that marks the file done,
after deleting that file's previous rows, so they are exact under crashes and re-deliveries and the
person-course service never needs to scan the event store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from services.clickstream import events
from stores.sql.base import Cursor

DATABASE = "Person_Course"
TABLE = "person_course_day"
MAX_IPS = 20

# What the per-file accumulators see of one event: (course, user_id, username, UTC time, event
# name, country, ip). Only the events the file owns (see `service._Loader.count_owned`) reach them.
Counted = tuple[str, int | None, str, Any, str, str | None, Any]


class CountedRows(Protocol):
    """native/eventscan's `CountedRows`: a batch's counted events kept by the module, not as a
    tuple of Python objects each (about 1 us an event to make and read back). The block passes
    append the events they take, the loader the tuples of the others; the native counters read
    it as they read a list of tuples."""

    def append(self, row: Counted) -> None: ...
    def __len__(self) -> int: ...
    def drop_positions(self, positions: set[int]) -> None: ...
    def tuples(self, prefix: str = "") -> list[Counted]: ...


# A batch's counted events: tuples, or (where the native counters count) a `CountedRows`.
CountedBatch = list[Counted] | CountedRows

COLUMNS = (
    ("course_id", "VARCHAR(255) NOT NULL"),
    ("user_id", "BIGINT NULL"),
    ("username", "VARCHAR(255) NOT NULL"),
    ("day", "DATE NOT NULL"),
    ("nevents", "INTEGER NOT NULL"),
    ("nplay_video", "INTEGER NOT NULL"),
    ("nproblem_check", "INTEGER NOT NULL"),
    ("nshowanswer", "INTEGER NOT NULL"),
    ("nseq_goto", "INTEGER NOT NULL"),
    ("nforum", "INTEGER NOT NULL"),
    ("first_event", "DATETIME NULL"),
    ("last_event", "DATETIME NULL"),
    ("countries", "TEXT NULL"),
    ("ips", "TEXT NULL"),
    ("source_file", "VARCHAR(700) NOT NULL"),
)


def create_statements(dialect: str) -> list[str]:
    """The table (and its indexes: by file, to replace a file's rows; by course, for readers)."""
    columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS)
    if dialect == "mysql":
        return [
            f"CREATE TABLE IF NOT EXISTS {TABLE} ({columns}, INDEX {TABLE}_source (source_file), "
            f"INDEX {TABLE}_course (course_id, user_id)) DEFAULT CHARSET=utf8mb4"
        ]
    return [
        f"CREATE TABLE IF NOT EXISTS {TABLE} ({columns})",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_source ON {TABLE} (source_file)",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_course ON {TABLE} (course_id, user_id)",
    ]


_COUNTERS = {
    "play_video": "nplay_video",
    "problem_check": "nproblem_check",
    "showanswer": "nshowanswer",
    "seq_goto": "nseq_goto",
}


@dataclass
class _Day:
    username: str = ""
    nevents: int = 0
    nplay_video: int = 0
    nproblem_check: int = 0
    nshowanswer: int = 0
    nseq_goto: int = 0
    nforum: int = 0
    first: datetime | None = None
    last: datetime | None = None
    countries: set[str] = field(default_factory=set)
    ips: set[str] = field(default_factory=set)


def native_counter(name: str) -> Any:
    """A new counter of native/eventscan (`DayCounter`, `EventTypeCounter`), or None where it is not
    built or turned off (`OPTIMUS_NATIVE_SCAN=0`): it counts as the Python code here does."""
    counter = events.native(name)
    return counter() if counter is not None else None


class DayCounts:
    """Accumulates the counts of one file (in native/eventscan's `DayCounter` where it is built)."""

    def __init__(self, native: bool = True) -> None:
        self.days: dict[tuple[str, int | None, str, date], _Day] = {}
        self.native = native_counter("DayCounter") if native else None

    def add_all(self, counted: CountedBatch) -> None:
        """Count events (one loop for a whole batch: a call per event cost as much as the counting)."""
        if self.native is not None:
            self.native.add_all(counted)
            return
        assert isinstance(counted, list), "a CountedRows is counted by the native counter"
        days, counters = self.days, _COUNTERS
        for course, user_id, username, when, name, country, ip in counted:
            if not course or when is None or (user_id is None and not username):
                continue
            key = (course, user_id, username if user_id is None else "", when.date())
            day = days.get(key)
            if day is None:
                day = days[key] = _Day(username)
                day.first = day.last = when
            else:
                if not day.username:
                    day.username = username
                if when < day.first:
                    day.first = when
                elif when > day.last:
                    day.last = when
            day.nevents += 1
            counter = counters.get(name)
            if counter is not None:
                setattr(day, counter, getattr(day, counter) + 1)
            elif name.startswith("edx.forum."):
                day.nforum += 1
            if country:
                day.countries.add(country)
            if ip and type(ip) is str and len(day.ips) < MAX_IPS:
                day.ips.add(ip)

    def rows(self, source: str) -> list[tuple[Any, ...]]:
        if self.native is not None:
            rows: list[tuple[Any, ...]] = self.native.rows(source)
            return rows
        result = []
        for (course, user_id, _, day), d in self.days.items():
            result.append(
                (
                    course,
                    user_id,
                    d.username,
                    day,
                    d.nevents,
                    d.nplay_video,
                    d.nproblem_check,
                    d.nshowanswer,
                    d.nseq_goto,
                    d.nforum,
                    _ts(d.first),
                    _ts(d.last),
                    ",".join(sorted(d.countries)),
                    ",".join(sorted(d.ips)),
                    source,
                )
            )
        return result

    def writer(self, source: str) -> Callable[[Cursor, Callable[[str, str], str]], None]:
        """The completion transaction's SQL: replace this file's rows."""
        rows = self.rows(source)

        def write(cur: Cursor, qualify: Callable[[str, str], str]) -> None:
            table = qualify(DATABASE, TABLE)
            cur.execute(f"DELETE FROM {table} WHERE source_file=?", (source,))
            marks = ", ".join("?" for _ in COLUMNS)
            names = ", ".join(name for name, _ in COLUMNS)
            for start in range(0, len(rows), 5000):
                cur.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows[start : start + 5000])

        return write


def _ts(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else None
