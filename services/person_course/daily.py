"""The dashboards' small tables in `Person_Course`, rebuilt per course by each PersonCourse run.

* `course_daily`: per course and UTC day, `active_users` (distinct learners with events that day,
  from person_course_day), `events` (every event of the course that day, anonymous ones too, from
  course_event_type_day), `enrolments` and `unenrolments` (`edx.course.enrollment.activated` /
  `deactivated` events, the course taken from the event's own `event.course_id`).
* `course_country_enrolments`: per course and country, `enrolled_users`: the learners whose latest
  enrolment event in the logs is an activation, by the country of that event's address (`""` when
  it has none).

An event delivered in two files is counted once for the enrolments (they are counted distinct by
course, user, time and kind). Each course's rows are replaced in one transaction, so a reader sees
the previous rows or the new ones.
"""

from __future__ import annotations

from base_service import Context
from core.courses import Course
from services.clickstream import aggregates, course_events, enrolments
from stores.sql.base import Cursor

DATABASE = "Person_Course"
DAILY = "course_daily"
COUNTRIES = "course_country_enrolments"


def create_tables(ctx: Context) -> None:
    tail = " DEFAULT CHARSET=utf8mb4" if ctx.sql.dialect == "mysql" else ""
    with ctx.sql.transaction(DATABASE) as cur:
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {DAILY} (course VARCHAR(64) NOT NULL, course_id VARCHAR(255) NOT NULL, "
            "day DATE NOT NULL, active_users INTEGER NOT NULL, events INTEGER NOT NULL, "
            f"enrolments INTEGER NOT NULL, unenrolments INTEGER NOT NULL, PRIMARY KEY (course, day)){tail}"
        )
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {COUNTRIES} (course VARCHAR(64) NOT NULL, "
            "course_id VARCHAR(255) NOT NULL, country VARCHAR(16) NOT NULL, enrolled_users INTEGER NOT NULL, "
            f"PRIMARY KEY (course, country)){tail}"
        )


def rebuild(ctx: Context, course: Course) -> int:
    """Replace the course's rows of both tables; returns the number of days."""
    with ctx.sql.transaction(DATABASE) as cur:
        return write(cur, ctx, course)


def write(cur: Cursor, ctx: Context, course: Course) -> int:
    q = lambda table: ctx.sql.qualified(DATABASE, DATABASE, table)  # noqa: E731
    enrol = (
        f"SELECT DISTINCT course_id, user_key, event_time, activated, day, country FROM {q(enrolments.TABLE)} "
        "WHERE course_id = ?"
    )
    cur.execute(f"DELETE FROM {q(DAILY)} WHERE course = ?", (course.key,))
    cur.execute(
        f"INSERT INTO {q(DAILY)} (course, course_id, day, active_users, events, enrolments, unenrolments) "
        "SELECT ?, ?, t.day, SUM(t.users), SUM(t.events), SUM(t.enrolled), SUM(t.unenrolled) FROM ("
        "SELECT day, COUNT(DISTINCT user_id) + COUNT(DISTINCT CASE WHEN user_id IS NULL THEN username END) "
        f"AS users, 0 AS events, 0 AS enrolled, 0 AS unenrolled FROM {q(aggregates.TABLE)} "
        "WHERE course_id = ? GROUP BY day "
        f"UNION ALL SELECT day, 0, SUM(nevents), 0, 0 FROM {q(course_events.TABLE)} WHERE course_id = ? "
        "GROUP BY day "
        f"UNION ALL SELECT e.day, 0, 0, SUM(e.activated), SUM(1 - e.activated) FROM ({enrol}) e GROUP BY e.day"
        ") t GROUP BY t.day",
        (course.key, course.mongoname, course.mongoname, course.mongoname, course.mongoname),
    )
    days = cur.rowcount
    cur.execute(f"DELETE FROM {q(COUNTRIES)} WHERE course = ?", (course.key,))
    cur.execute(
        f"INSERT INTO {q(COUNTRIES)} (course, course_id, country, enrolled_users) "
        f"SELECT ?, ?, e.country, COUNT(DISTINCT e.user_key) FROM ({enrol}) e "
        f"WHERE e.activated = 1 AND NOT EXISTS (SELECT 1 FROM {q(enrolments.TABLE)} l "
        "WHERE l.course_id = e.course_id AND l.user_key = e.user_key AND l.event_time > e.event_time) "
        "GROUP BY e.country",
        (course.key, course.mongoname, course.mongoname),
    )
    return days
