"""PersonCourse: the person-course tables, the course profiles and the dashboards' daily tables.

A derived service: the scheduler runs it after an input (clickstream, dumps, forums, course
structure) completed something new and none of them has anything queued or running. A run
recomputes only the courses whose inputs changed (inputs.py), each in a few set-based statements
(build.py) that read the course's own SQL tables, its `course_axis`, and the per-day clickstream
and per-author forum aggregates, never the event store. Each course's table is built aside and
swapped in (tables.py). A course whose inputs are incomplete gets no table and no profile row; the
reason is logged, kept in `derived_course_state` and shown by the status (`status_extra`). After
the run, CSV exports (export.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from base_service import Context, Service
from core.courses import Course
from core.errors import IngestorError, TransientError
from services.clickstream import aggregates, derived_counts
from services.discussion_forums.service import counts_table_ddl
from services.person_course import build, daily, export, inputs, tables

NAME = "PersonCourse"
DONE, SKIPPED, FAILED = "done", "skipped", "failed"
RETRY_AFTER = timedelta(minutes=1)


class PersonCourseService(Service):
    name = NAME
    derived = True
    depends_on = ("Clickstream", "DatabaseState", "DiscussionForums", "CourseStructure")

    def __init__(self) -> None:
        self.last_run: dict[str, object] = {}

    def start(self, ctx: Context) -> None:
        """Create the tables the run reads and writes, so that a course without logs or forum
        still computes."""
        dialect = ctx.sql.dialect
        with ctx.sql.transaction(build.DATABASE) as cur:
            for statement in aggregates.create_statements(dialect) + derived_counts.create_statements(
                dialect
            ):
                cur.execute(statement)
            cur.execute(counts_table_ddl(dialect))
            build.create_profile_table(cur, dialect)
        inputs.create_state_table(ctx)
        daily.create_tables(ctx)

    def due(self, ctx: Context) -> bool:
        """Courses that failed transiently are retried (at most once a minute)."""
        now = datetime.now(UTC).replace(tzinfo=None)
        for state in inputs.read_states(ctx, self.name).values():
            if state.state == FAILED and state.reason.startswith("transient:"):
                updated = state.updated
                if isinstance(updated, str):
                    updated = datetime.fromisoformat(updated)
                if updated is None or now - updated >= RETRY_AFTER:
                    return True
        return False

    def run(self, ctx: Context) -> None:
        self.start(ctx)
        started = datetime.now(UTC).replace(tzinfo=None)
        registry = ctx.courses()
        for warning in registry.warnings:
            ctx.log.warning("%s", warning)
        courses = sorted(registry.courses.values(), key=lambda c: c.key)
        current = inputs.signatures(ctx, courses, self.depends_on)
        known = inputs.read_states(ctx, self.name)
        rebuilt: list[str] = []
        for course in courses:
            before = known.get(course.key)
            if before and before.state != FAILED and before.signature == current[course.key]:
                continue
            state, reason = self._course(ctx, course)
            signature = current[course.key] if state != FAILED else ""
            inputs.write_state(ctx, self.name, course.key, signature, state, reason, datetime.now(UTC))
            if state == DONE:
                rebuilt.append(course.key)
        inputs.forget(ctx, self.name, [c.key for c in courses])
        exported = self._export(ctx, rebuilt, started)
        self.last_run = {
            "started": started.strftime("%Y-%m-%d %H:%M:%S"),
            "rebuilt": rebuilt,
            "exported": exported,
        }
        ctx.log.info("rebuilt %d course(s): %s", len(rebuilt), ", ".join(rebuilt) or "none changed")

    def _course(self, ctx: Context, course: Course) -> tuple[str, str]:
        """Build one course; (state, reason)."""
        try:
            days = daily.rebuild(ctx, course)
            reason = build.missing_inputs(ctx.sql, course)
            if reason:
                self._remove(ctx, course)
                ctx.log.warning("%s: skipped: %s", course.key, reason)
                return SKIPPED, reason
            rows, reason = self._build(ctx, course)
        except TransientError as exc:
            ctx.log.warning("%s: %s; retried later", course.key, exc)
            return FAILED, f"transient: {exc}"
        except IngestorError as exc:
            ctx.log.error("%s: %s", course.key, exc)
            return FAILED, str(exc)
        if reason:
            ctx.log.warning("%s: skipped: %s", course.key, reason)
            return SKIPPED, reason
        ctx.log.info("%s: %d learners, %d days of activity", course.key, rows, days)
        return DONE, f"{rows} learners"

    def _build(self, ctx: Context, course: Course) -> tuple[int, str]:
        sql = ctx.sql
        with sql.transaction(build.DATABASE, immediate=True, attach=(course.dbname,)) as cur:
            structure = build.structure_counts(ctx, cur, course)
            if structure["nchapters"] == 0:
                reason = f"database {course.dbname}: the course structure (course_axis) has no chapter"
            else:
                built = build.build(ctx, cur, course, structure["nchapters"])
                values = build.profile_values(ctx, cur, course, built.profile, structure)
                tables.swap_in(cur, sql, build.DATABASE, build.person_table(course))
                build.write_profile(cur, sql, values)
                return built.rows, ""
        self._remove(ctx, course)
        return 0, reason

    def _remove(self, ctx: Context, course: Course) -> None:
        """No table and no profile row for a course that cannot be computed."""
        with ctx.sql.transaction(build.DATABASE) as cur:
            tables.drop(cur, ctx.sql, build.person_table(course))
            cur.execute(f"DELETE FROM {build.PROFILE_TABLE} WHERE course = ?", (course.key,))

    def _export(self, ctx: Context, rebuilt: list[str], when: datetime) -> list[str]:
        written = []
        try:
            names = [c[0] for c in build.PROFILE_COLUMNS]
            written.append(export.export_table(ctx, build.PROFILE_TABLE, names, when).name)
            names = [c[0] for c in build.PERSON_COLUMNS]
            for key in rebuilt:
                written.append(export.export_table(ctx, f"personcourse_{key}", names, when).name)
        except OSError as exc:
            ctx.log.error("CSV export to %s failed: %s", ctx.settings.export_dir, exc)
        return written

    def status_extra(self, ctx: Context) -> dict[str, object]:
        return course_status(ctx, self.name, self.last_run)


def course_status(ctx: Context, service: str, last_run: dict[str, object]) -> dict[str, object]:
    """Last run and, per course, its outcome; for each course skipped or failed, why."""
    try:
        states = inputs.read_states(ctx, service)
        last = inputs.tracking(ctx).last_run_started(service)
    except IngestorError as exc:
        return {"courses": f"unknown ({exc})"}
    return {
        "last_run": last.strftime("%Y-%m-%d %H:%M:%S") if last else "",
        "last_run_rebuilt": last_run.get("rebuilt", []),
        "courses": {k: s.state for k, s in states.items()},
        "skipped": {k: s.reason for k, s in states.items() if s.state == SKIPPED},
        "failed": {k: s.reason for k, s in states.items() if s.state == FAILED},
    }
