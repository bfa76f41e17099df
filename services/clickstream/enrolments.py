"""The enrolment events of a tracking-log file, for the dashboards' enrolment tables.

One row per `edx.course.enrollment.activated` / `deactivated` event: the course from the event's
own `event.course_id` (falling back to `context.course_id`), the user (`event.user_id`, else
`context.user_id`, else the username), the time, the mode and the country of the event's address.
There are few of them (one per enrolment), so keeping each one costs little and lets PersonCourse
count enrolments per day and enrolled users per country without reading the event store.

Written to `Person_Course.enrolment_events` in the transaction that marks the file done, after
deleting the file's previous rows, as the per-day person counts are (aggregates.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from stores.sql.base import Cursor

DATABASE = "Person_Course"
TABLE = "enrolment_events"
ACTIVATED = "edx.course.enrollment.activated"
DEACTIVATED = "edx.course.enrollment.deactivated"
COLUMNS = (
    "course_id",
    "user_key",
    "user_id",
    "username",
    "event_time",
    "day",
    "activated",
    "mode",
    "country",
    "source_file",
)


def create_statements(dialect: str) -> list[str]:
    exact = " COLLATE utf8mb4_bin" if dialect == "mysql" else ""
    tail = " DEFAULT CHARSET=utf8mb4" if dialect == "mysql" else ""
    return [
        f"CREATE TABLE IF NOT EXISTS {TABLE} (course_id VARCHAR(255){exact} NOT NULL, "
        f"user_key VARCHAR(255){exact} NOT NULL, user_id BIGINT NULL, username VARCHAR(255) NOT NULL, "
        "event_time DATETIME NOT NULL, day DATE NOT NULL, activated INTEGER NOT NULL, "
        "mode VARCHAR(64) NOT NULL, country VARCHAR(16) NOT NULL, source_file VARCHAR(700) NOT NULL)"
        f"{tail}",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_source ON {TABLE} (source_file)",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_course ON {TABLE} (course_id, user_key)",
    ]


class Enrolments:
    """Collects the enrolment events of one file. `note` reads the event's own fields when the line
    is parsed; `add` keeps the event once the file is known to own it."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.noted: dict[tuple[str, int | None, str, datetime, str], tuple[str, int | None, str]] = {}

    def note(
        self,
        event: dict[str, Any],
        name: str,
        course: str,
        user_id: int | None,
        username: str,
        when: datetime | None,
    ) -> None:
        if when is None or (name != ACTIVATED and name != DEACTIVATED):
            return
        body = event.get("event")
        if isinstance(body, str) and body.startswith("{"):
            try:
                body = json.loads(body)
            except ValueError:
                body = None
        own_course, own_user, mode = course, user_id, ""
        if isinstance(body, dict):
            value = body.get("course_id")
            if isinstance(value, str) and value:
                own_course = value
            uid = body.get("user_id")
            if type(uid) is int or (type(uid) is str and uid.isdigit()):
                own_user = int(uid)
            if isinstance(body.get("mode"), str):
                mode = body["mode"]
        self.noted[(course, user_id, username, when, name)] = (own_course, own_user, mode)

    def add(
        self,
        name: str,
        course: str,
        user_id: int | None,
        username: str,
        when: datetime | None,
        country: str | None,
    ) -> None:
        if when is None:
            return
        found = self.noted.get((course, user_id, username, when, name))
        if found is None:
            return
        course, user_id, mode = found
        if not course or (user_id is None and not username):
            return
        self.rows.append(
            (
                course[:255],
                str(user_id) if user_id is not None else "u:" + username[:250],
                user_id,
                username[:255],
                when.strftime("%Y-%m-%d %H:%M:%S"),
                when.date(),
                int(name == ACTIVATED),
                mode[:64],
                (country or "")[:16],
            )
        )

    def writer(self, source: str) -> Callable[[Cursor, Callable[[str, str], str]], None]:
        """The completion transaction's SQL: replace this file's rows."""
        rows = [(*row, source) for row in self.rows]

        def write(cur: Cursor, qualify: Callable[[str, str], str]) -> None:
            table = qualify(DATABASE, TABLE)
            cur.execute(f"DELETE FROM {table} WHERE source_file=?", (source,))
            if rows:
                marks = ", ".join("?" for _ in COLUMNS)
                cur.executemany(f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES ({marks})", rows)

        return write
