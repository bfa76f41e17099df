"""Which courses a derived run must recompute: per-course input signatures and the state table.

A course's signature is a digest of everything its tables are computed from: its courses.py entry,
the completed tracking rows of its dumps, course structure and forum (mapped to the course by their
file names; a structure export whose name gives no course counts for every course), and the token
that the clickstream writes per (file, course) with each completion (clickstream_file_courses). A
run recomputes a course when its signature differs from the one stored after its last build, so a
new day of logs changes only the courses that file has events of. The signature is stored only
after the course's tables are swapped in: a crash in the middle makes the next run redo the course.

`Person_Course.derived_course_state` holds, per (service, course), that signature, the outcome
(`done`, `skipped`, `failed`), its reason and when; the services' status comes from it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from base_service import Context
from core import states
from core.courses import Course
from core.errors import UnsafeNameError
from core.queue import TrackingQueue
from services.clickstream import course_events
from services.course_structure.service import TARBALL_SUFFIXES
from services.database_state.filenames import database_name, parse_dump_name

DATABASE = "Person_Course"
STATE_TABLE = "derived_course_state"


@dataclass(frozen=True)
class CourseState:
    course: str
    signature: str
    state: str
    reason: str
    updated: datetime | str | None


def tracking(ctx: Context) -> TrackingQueue:
    """The tracking table, read for the inputs' completed rows and the runs."""
    return TrackingQueue(ctx.sql, database=ctx.settings.TRACKING_DATABASE)


def create_state_table(ctx: Context) -> None:
    tail = " DEFAULT CHARSET=utf8mb4" if ctx.sql.dialect == "mysql" else ""
    with ctx.sql.transaction(DATABASE) as cur:
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (service VARCHAR(64) NOT NULL, "
            "course VARCHAR(64) NOT NULL, signature VARCHAR(64) NOT NULL, state VARCHAR(16) NOT NULL, "
            f"reason TEXT NULL, updated DATETIME NULL, PRIMARY KEY (service, course)){tail}"
        )


def read_states(ctx: Context, service: str) -> dict[str, CourseState]:
    rows = ctx.sql.query(
        DATABASE,
        f"SELECT course, signature, state, reason, updated FROM {STATE_TABLE} WHERE service=? ORDER BY course",
        (service,),
    )
    return {r[0]: CourseState(r[0], r[1], r[2], r[3] or "", r[4]) for r in rows}


def write_state(
    ctx: Context, service: str, course: str, signature: str, state: str, reason: str, when: datetime
) -> None:
    with ctx.sql.transaction(DATABASE) as cur:
        cur.execute(f"DELETE FROM {STATE_TABLE} WHERE service=? AND course=?", (service, course))
        cur.execute(
            f"INSERT INTO {STATE_TABLE} (service, course, signature, state, reason, updated) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (service, course, signature, state, reason, when.strftime("%Y-%m-%d %H:%M:%S")),
        )


def forget(ctx: Context, service: str, keep: Sequence[str]) -> None:
    """Drop the state of courses no longer in the registry."""
    for course in set(read_states(ctx, service)) - set(keep):
        with ctx.sql.transaction(DATABASE) as cur:
            cur.execute(f"DELETE FROM {STATE_TABLE} WHERE service=? AND course=?", (service, course))


def signatures(ctx: Context, courses: Sequence[Course], inputs: Sequence[str]) -> dict[str, str]:
    """The input signature of each course, from the services named in `inputs`."""
    parts: dict[str, list[str]] = {
        c.key: [f"entry {c.dbname} {c.mongoname} {c.discussiontable}"] for c in courses
    }
    everyone: list[str] = []
    by_db = {c.dbname: c.key for c in courses}
    for service in ("DatabaseState", "CourseStructure", "DiscussionForums"):
        if service not in inputs:
            continue
        for row in tracking(ctx).rows(service=service, state=states.DONE):
            item = f"{service} {row.meta} {row.completed_date} {row.fingerprint}"
            name = Path(row.meta).name
            if service == "DatabaseState":
                try:
                    key = by_db.get(parse_dump_name(name).database)
                except UnsafeNameError:
                    key = None
                if key:
                    parts[key].append(item)
            elif service == "DiscussionForums":
                for c in courses:
                    if name.endswith(".mongo") and c.discussiontable == name[: -len(".mongo")]:
                        parts[c.key].append(item)
            else:
                key = by_db.get(_structure_db(name) or "")
                if key:
                    parts[key].append(item)
                else:
                    everyone.append(item)
    if "Clickstream" in inputs and course_events.FILES_TABLE in ctx.sql.list_tables(DATABASE):
        by_id: dict[str, list[str]] = {}
        for c in courses:
            by_id.setdefault(c.mongoname, []).append(c.key)
        rows = ctx.sql.query(
            DATABASE, f"SELECT course_id, source_file, token FROM {course_events.FILES_TABLE}"
        )
        for course_id, source, token in rows:
            for key in by_id.get(course_id, ()):
                parts[key].append(f"Clickstream {source} {token}")
    result = {}
    for key, items in parts.items():
        digest = hashlib.sha256()
        for item in sorted(items + everyone):
            digest.update(item.encode("utf-8", "surrogateescape") + b"\n")
        result[key] = digest.hexdigest()
    return result


def _structure_db(name: str) -> str | None:
    """The database a course export's file or folder name gives, if it gives one."""
    for suffix in TARBALL_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    try:
        return database_name(name)
    except UnsafeNameError:
        return None
