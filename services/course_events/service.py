"""EventCount: `Course_Event.courseevent_<course key>`, the events of each day per course component.

One row per day with events of the course (`event_date`), one `u_<url_name>` integer column per
child of a vertical in the course structure (`.` in the url_name written `$`), default 0, never
NULL. A value is the number of that day's events of the course whose `event_type` contains the
component's url_name, as the original counted with one regex query per component over the whole
event store. Here the clickstream counted events per (course, day, event_type) while it read the
files (services/clickstream/course_events.py); a run matches the course's distinct event types
against its components once (a small join on `instr`), then sums per day and component in one
INSERT ... SELECT, into a staging table swapped in (services/person_course/tables.py).

Incremental as PersonCourse: only courses whose logs or structure changed are rebuilt. A course
without a course structure gets no table (the reason is shown in the status). Components whose
url_name cannot be a column (other characters than letters, digits, `_` and `.`, longer than 62, a
case-insensitive repeat) are left out and named in the status; past 1000 components (the column
limit of MySQL tables) the course is skipped.
"""

from __future__ import annotations

from datetime import UTC, datetime

from base_service import Context, Service
from core.courses import Course
from core.errors import IngestorError, TransientError
from services.clickstream import course_events, derived_counts
from services.person_course import inputs, tables
from services.person_course.service import DONE, FAILED, SKIPPED, course_status
from stores.sql.identifiers import component_column

DATABASE = "Course_Event"
MAX_COMPONENTS = 1000


def event_table(course: Course) -> str:
    return f"courseevent_{course.key}"


class EventCountService(Service):
    name = "EventCount"
    derived = True
    depends_on = ("Clickstream", "CourseStructure")

    def __init__(self) -> None:
        self.last_run: dict[str, object] = {}

    def start(self, ctx: Context) -> None:
        with ctx.sql.transaction(inputs.DATABASE) as cur:
            for statement in derived_counts.create_statements(ctx.sql.dialect):
                cur.execute(statement)
        inputs.create_state_table(ctx)

    def run(self, ctx: Context) -> None:
        self.start(ctx)
        courses = sorted(ctx.courses().courses.values(), key=lambda c: c.key)
        current = inputs.signatures(ctx, courses, self.depends_on)
        known = inputs.read_states(ctx, self.name)
        rebuilt = []
        for course in courses:
            before = known.get(course.key)
            if before and before.state != FAILED and before.signature == current[course.key]:
                continue
            try:
                state, reason = self._course(ctx, course)
            except TransientError as exc:
                state, reason = FAILED, f"transient: {exc}"
            except IngestorError as exc:
                state, reason = FAILED, str(exc)
            if state != DONE:
                ctx.log.warning("%s: %s: %s", course.key, state, reason)
            else:
                rebuilt.append(course.key)
            signature = current[course.key] if state != FAILED else ""
            inputs.write_state(ctx, self.name, course.key, signature, state, reason, datetime.now(UTC))
        inputs.forget(ctx, self.name, [c.key for c in courses])
        self.last_run = {"rebuilt": rebuilt}

    def _course(self, ctx: Context, course: Course) -> tuple[str, str]:
        sql = ctx.sql
        if "course_axis" not in sql.list_tables(course.dbname):
            self._drop(ctx, course)
            return SKIPPED, f"database {course.dbname}: no course_axis (course structure not loaded)"
        axis = sql.qualified(course.dbname, course.dbname, "course_axis")
        rows = sql.query(
            course.dbname,
            f"SELECT a.url_name FROM {axis} a JOIN {axis} v ON v.url_name = a.parent "
            "AND v.category = 'vertical' WHERE a.url_name IS NOT NULL ORDER BY a.idx",
        )
        columns: list[tuple[str, str]] = []  # (url_name, column)
        seen: set[str] = set()
        left_out = []
        for (url_name,) in rows:
            column = component_column(url_name)
            if column is None or column.lower() in seen:
                if column is None:
                    left_out.append(url_name)
                continue
            seen.add(column.lower())
            columns.append((url_name, column))
        if len(columns) > MAX_COMPONENTS:
            self._drop(ctx, course)
            return (
                SKIPPED,
                f"{len(columns)} components: more than the {MAX_COMPONENTS} columns a table may hold",
            )
        days = self._build(ctx, course, columns)
        reason = f"{days} days, {len(columns)} components"
        if left_out:
            reason += f"; left out (url_name not usable as a column): {', '.join(sorted(left_out)[:20])}"
        return DONE, reason

    def _build(self, ctx: Context, course: Course, columns: list[tuple[str, str]]) -> int:
        sql, d = ctx.sql, ctx.sql.dialect
        table = event_table(course)
        staging = sql.quote(tables.staging_name(table))
        counts = sql.qualified(DATABASE, inputs.DATABASE, course_events.TABLE)
        temp = "TEMPORARY" if d == "mysql" else "TEMP"
        exact = " COLLATE utf8mb4_bin" if d == "mysql" else ""
        with sql.transaction(DATABASE, immediate=True, attach=(inputs.DATABASE,)) as cur:
            for name in ("ce_components", "ce_match"):  # a pooled connection may still hold them
                cur.execute(
                    f"DROP TEMPORARY TABLE IF EXISTS {name}"
                    if d == "mysql"
                    else f"DROP TABLE IF EXISTS temp.{name}"
                )
            cur.execute(
                f"CREATE {temp} TABLE ce_components (col INTEGER NOT NULL, url_name TEXT{exact} NOT NULL)"
            )
            cur.executemany(
                "INSERT INTO ce_components (col, url_name) VALUES (?, ?)",
                [(i, url) for i, (url, _) in enumerate(columns)],
            )
            index = ", INDEX (event_type(255))" if d == "mysql" else ""
            cur.execute(
                f"CREATE {temp} TABLE ce_match (event_type TEXT{exact} NOT NULL, col INTEGER NOT NULL{index})"
            )
            cur.execute(
                "INSERT INTO ce_match (event_type, col) SELECT t.event_type, c.col FROM "
                f"(SELECT DISTINCT event_type FROM {counts} WHERE course_id = ?) t "
                "JOIN ce_components c ON INSTR(t.event_type, c.url_name) > 0",
                (course.mongoname,),
            )
            if d != "mysql":
                cur.execute("CREATE INDEX temp.ce_match_type ON ce_match (event_type)")
            cur.execute(f"DROP TABLE IF EXISTS {staging}")
            defs = "".join(f", {sql.quote(c)} INT NOT NULL DEFAULT 0" for _, c in columns)
            cur.execute(
                f"CREATE TABLE {staging} ({tables.auto_id(d)}, course_id VARCHAR(255) NOT NULL, "
                f"event_date DATE NOT NULL{defs}){tables.table_tail(d)}"
            )
            names = "".join(f", {sql.quote(c)}" for _, c in columns)
            sums = "".join(
                f", SUM(CASE WHEN m.col = {i} THEN t.nevents ELSE 0 END)" for i in range(len(columns))
            )
            cur.execute(
                f"INSERT INTO {staging} (course_id, event_date{names}) SELECT ?, t.day{sums} "
                f"FROM {counts} t LEFT JOIN ce_match m ON m.event_type = t.event_type "
                "WHERE t.course_id = ? GROUP BY t.day ORDER BY t.day",
                (course.mongoname, course.mongoname),
            )
            days = cur.rowcount
            tables.swap_in(cur, sql, DATABASE, table)
        return days

    def _drop(self, ctx: Context, course: Course) -> None:
        with ctx.sql.transaction(DATABASE) as cur:
            tables.drop(cur, ctx.sql, event_table(course))

    def status_extra(self, ctx: Context) -> dict[str, object]:
        return course_status(ctx, self.name, self.last_run)
