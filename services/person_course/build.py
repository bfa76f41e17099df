"""Builds one course's `personcourse_<key>` table and its `courseprofile` row, set-based.

Every input is first reduced to one row per learner in a temporary table keyed by user id (the
studentmodule activity, the clickstream's per-day counts summed over days and files, the forum
counts, the profile, the enrolment, the certificate); one INSERT ... SELECT then joins them to
`auth_user` into the staging table, which is swapped in (tables.py). The countries of a learner's
events are merged in Python from one row per (learner, combination of countries): that is bounded
by the learners, not by their events. Definitions: docs/person-course.md and the README.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from base_service import Context
from core.courses import Course
from services.clickstream import aggregates
from services.discussion_forums.service import COUNTS_TABLE
from services.person_course import tables
from services.person_course.tables import as_float, as_int, null_text
from stores.sql.base import Cursor, SqlStore

DATABASE = "Person_Course"
PROFILE_TABLE = "courseprofile"
REQUIRED = (
    "auth_user",
    "auth_userprofile",
    "student_courseenrollment",
    "certificates_generatedcertificate",
    "courseware_studentmodule",
    "course_axis",
)

# (name, type on SQLite, type on MySQL), after `id`.
PERSON_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("course_id", "TEXT", "VARCHAR(255)"),
    ("user_id", "INTEGER", "BIGINT"),
    ("username", "TEXT", "VARCHAR(255)"),
    ("registered", "INTEGER", "TINYINT"),
    ("viewed", "INTEGER", "TINYINT"),
    ("explored", "INTEGER", "TINYINT"),
    ("certified", "INTEGER", "TINYINT"),
    ("final_cc_cname", "TEXT", "TEXT"),
    ("LoE", "TEXT", "VARCHAR(255)"),
    ("YoB", "INTEGER", "INT"),
    ("gender", "TEXT", "VARCHAR(255)"),
    ("mode", "TEXT", "VARCHAR(255)"),
    ("grade", "REAL", "DOUBLE"),
    ("start_time", "DATE", "DATE"),
    ("last_event", "DATE", "DATE"),
    ("nevents", "INTEGER", "INT"),
    ("ndays_act", "INTEGER", "INT"),
    ("nplay_video", "INTEGER", "INT"),
    ("nchapters", "INTEGER", "INT"),
    ("nforum_posts", "INTEGER", "INT"),
    ("roles", "INTEGER", "INT"),
    ("attempted_problems", "INTEGER", "INT"),
    ("inconsistent_flag", "INTEGER", "TINYINT"),
    # edx2bigquery's extras
    ("cc_by_ip", "TEXT", "VARCHAR(16)"),
    ("first_event", "DATETIME", "DATETIME"),
    ("nvideo_events", "INTEGER", "INT"),
    ("nproblem_check", "INTEGER", "INT"),
    ("nshow_answer", "INTEGER", "INT"),
    ("nseq_goto", "INTEGER", "INT"),
    ("nforum_events", "INTEGER", "INT"),
    ("nforum_threads", "INTEGER", "INT"),
    ("nforum_comments", "INTEGER", "INT"),
    ("ndays_act_logs", "INTEGER", "INT"),
)
PROFILE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("course", "TEXT", "VARCHAR(64)"),
    ("dbname", "TEXT", "VARCHAR(64)"),
    ("mongoname", "TEXT", "VARCHAR(255)"),
    ("discussiontable", "TEXT", "VARCHAR(255)"),
    ("registration_open_date", "DATE", "DATE"),
    ("course_launch_date", "DATE", "DATE"),
    ("course_close_date", "DATE", "DATE"),
    ("nregistered_students", "INTEGER", "INT"),
    ("nviewed_students", "INTEGER", "INT"),
    ("nexplored_students", "INTEGER", "INT"),
    ("ncertified_students", "INTEGER", "INT"),
    ("nhonor_students", "INTEGER", "INT"),
    ("naudit_students", "INTEGER", "INT"),
    ("nvertified_students", "INTEGER", "INT"),
    ("course_effort", "INTEGER", "INT"),
    ("course_length", "INTEGER", "INT"),
    ("nchapters", "INTEGER", "INT"),
    ("nvideos", "INTEGER", "INT"),
    ("nhtmls", "INTEGER", "INT"),
    ("nassessments", "INTEGER", "INT"),
    ("nsummative_assessments", "INTEGER", "INT"),
    ("nformative_assessments", "INTEGER", "INT"),
    ("nincontent_discussions", "INTEGER", "INT"),
    ("nactivities", "INTEGER", "INT"),
    ("best_assessment", "TEXT", "VARCHAR(255)"),
    ("worst_assessment", "TEXT", "VARCHAR(255)"),
)


def person_table(course: Course) -> str:
    return f"personcourse_{course.key}"


def columns_sql(columns: tuple[tuple[str, str, str], ...], dialect: str) -> str:
    index = 2 if dialect == "mysql" else 1
    return ", ".join(f"{c[0]} {c[index]} NULL" for c in columns)


def create_profile_table(cur: Cursor, dialect: str) -> None:
    cur.execute(
        f"CREATE TABLE IF NOT EXISTS {PROFILE_TABLE} ({tables.auto_id(dialect)}, "
        f"{columns_sql(PROFILE_COLUMNS, dialect)}){tables.table_tail(dialect)}"
    )


def missing_inputs(store: SqlStore, course: Course) -> str:
    """Why the course cannot be computed, or "" if its inputs are all there."""
    present = set(store.list_tables(course.dbname))
    missing = [t for t in REQUIRED if t not in present]
    if not missing:
        return ""
    if "auth_user" not in present and "course_axis" not in present:
        return f"no dump and no course structure loaded into database {course.dbname}"
    what = [f"no {t} (course structure not loaded)" if t == "course_axis" else f"no {t}" for t in missing]
    return f"database {course.dbname}: " + ", ".join(what)


@dataclass
class Built:
    rows: int
    profile: dict[str, Any]


class _Sql:
    """Names and dialect helpers for one course's build."""

    def __init__(self, store: SqlStore, cur: Cursor, course: Course) -> None:
        self.store, self.cur, self.course = store, cur, course
        self.dialect = store.dialect
        self.temp = "TEMPORARY" if self.dialect == "mysql" else "TEMP"
        self.types: dict[tuple[str, str], str] = {}

    def src(self, table: str) -> str:
        return self.store.qualified(DATABASE, self.course.dbname, table)

    def own(self, table: str) -> str:
        return self.store.qualified(DATABASE, DATABASE, table)

    def int_of(self, table: str, column: str, alias: str) -> str:
        expr = f"{alias}.{self.store.quote(column)}"
        if "int" in self.column_type(table, column):
            return expr
        return as_int(expr, self.dialect)

    def column_type(self, table: str, column: str) -> str:
        if not self.types:
            self._read_types()
        return self.types.get((table, column), "")

    def _read_types(self) -> None:
        if self.dialect == "mysql":
            rows = self.cur.execute(
                "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema=?",
                (self.course.dbname,),
            ).fetchall()
        else:
            rows = []
            schema = self.store.quote(self.course.dbname)
            for table in REQUIRED:
                info = self.cur.execute(f"PRAGMA {schema}.table_info({self.store.quote(table)})").fetchall()
                rows += [(table, r[1], r[2]) for r in info]
        self.types = {(str(t), str(c)): str(k).lower() for t, c, k in rows}
        self.types[("", "")] = ""

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> Cursor:
        return self.cur.execute(sql, params)

    def temp_table(self, name: str, columns: str) -> None:
        self.run(f"DROP {self.temp if self.dialect == 'mysql' else ''} TABLE IF EXISTS {name}")
        self.run(f"CREATE {self.temp} TABLE {name} ({columns})")


def build(ctx: Context, cur: Cursor, course: Course, nchapters: int) -> Built:
    """Build `personcourse_<key>__new` and return the course-profile values (not yet swapped)."""
    s = _Sql(ctx.sql, cur, course)
    d = s.dialect
    _reduce_inputs(s)
    staging = ctx.sql.quote(tables.staging_name(person_table(course)))
    s.run(f"DROP TABLE IF EXISTS {staging}")
    s.run(
        f"CREATE TABLE {staging} ({tables.auto_id(d)}, {columns_sql(PERSON_COLUMNS, d)}){tables.table_tail(d)}"
    )
    names = ", ".join(c[0] for c in PERSON_COLUMNS)
    n = lambda expr: f"COALESCE({expr}, 0)"  # noqa: E731
    activity = f"{n('sm.ndays_act')} + {n('sm.nplay_video')} + {n('sm.nchapters')} + {n('f.nposts')}"
    s.run(
        f"INSERT INTO {staging} ({names}) SELECT ?, u.id, u.username, 1, "
        "CASE WHEN sm.user_id IS NULL THEN 0 ELSE 1 END, "
        f"CASE WHEN {n('sm.nchapters')} >= ? THEN 1 ELSE 0 END, {n('ct.certified')}, "
        "COALESCE(cc.final_cc, ''), p.loe, p.yob, p.gender, e.mode, "
        f"{n('ct.grade')}, e.start_time, ev.last_day, {n('ev.nevents')}, {n('sm.ndays_act')}, "
        f"{n('sm.nplay_video')}, {n('sm.nchapters')}, {n('f.nposts')}, "
        f"{n(s.int_of('auth_user', 'is_staff', 'u'))}, {n('sm.attempted')}, "
        f"CASE WHEN {n('ev.nevents')} = 0 AND {activity} > 0 THEN 1 ELSE 0 END, "
        f"COALESCE(cc.cc_by_ip, ''), ev.first_event, {n('ev.nvideo')}, {n('ev.nproblem_check')}, "
        f"{n('ev.nshowanswer')}, {n('ev.nseq_goto')}, {n('ev.nforum')}, {n('f.nthreads')}, "
        f"{n('f.ncomments')}, {n('ev.ndays')} "
        f"FROM {s.src('auth_user')} u "
        "LEFT JOIN pc_sm sm ON sm.user_id = u.id LEFT JOIN pc_ev ev ON ev.user_id = u.id "
        "LEFT JOIN pc_cc cc ON cc.user_id = u.id LEFT JOIN pc_forum f ON f.user_id = u.id "
        "LEFT JOIN pc_prof p ON p.user_id = u.id LEFT JOIN pc_enr e ON e.user_id = u.id "
        "LEFT JOIN pc_cert ct ON ct.user_id = u.id ORDER BY u.id",
        (course.mongoname, math.ceil(nchapters / 2)),
    )
    row = s.run(f"SELECT COUNT(*), SUM(viewed), SUM(explored), SUM(certified) FROM {staging}").fetchone()
    assert row is not None
    profile = {
        "nregistered_students": int(row[0]),
        "nviewed_students": int(row[1] or 0),
        "nexplored_students": int(row[2] or 0),
        "ncertified_students": int(row[3] or 0),
    }
    return Built(int(row[0]), profile)


def _reduce_inputs(s: _Sql) -> None:
    """The per-learner temporary tables the final join reads."""
    d = s.dialect
    key = "user_id BIGINT NOT NULL PRIMARY KEY"
    # auth_user by username, for clickstream rows without a user id.
    s.temp_table("pc_names", "username VARCHAR(255) NOT NULL PRIMARY KEY, id BIGINT NOT NULL")
    s.run(
        f"INSERT INTO pc_names (username, id) SELECT username, MIN(id) FROM {s.src('auth_user')} "
        "WHERE username IS NOT NULL GROUP BY username"
    )
    student = s.int_of("courseware_studentmodule", "student_id", "m")
    s.temp_table(
        "pc_sm", f"{key}, ndays_act INTEGER, nplay_video INTEGER, nchapters INTEGER, attempted INTEGER"
    )
    s.run(
        "INSERT INTO pc_sm (user_id, ndays_act, nplay_video, nchapters, attempted) "
        f"SELECT {student}, COUNT(DISTINCT DATE(m.created)), "
        "SUM(CASE WHEN m.module_type = 'video' THEN 1 ELSE 0 END), "
        "COUNT(DISTINCT CASE WHEN m.module_type = 'chapter' THEN m.module_id END), "
        "SUM(CASE WHEN m.state LIKE '%correct!_map%' ESCAPE '!' THEN 1 ELSE 0 END) "
        f"FROM {s.src('courseware_studentmodule')} m WHERE {student} IS NOT NULL GROUP BY {student}"
    )
    days = s.own(aggregates.TABLE)
    exact = " COLLATE utf8mb4_bin" if d == "mysql" else ""  # the two tables' collations differ
    learner = (
        f"SELECT COALESCE(x.user_id, nm.id) AS uid, x.* FROM {days} x "
        f"LEFT JOIN pc_names nm ON x.user_id IS NULL AND nm.username = x.username{exact} WHERE x.course_id = ?"
    )
    s.temp_table(
        "pc_ev",
        f"{key}, nevents INTEGER, nvideo INTEGER, nproblem_check INTEGER, nshowanswer INTEGER, "
        "nseq_goto INTEGER, nforum INTEGER, first_event DATETIME, last_day DATE, ndays INTEGER",
    )
    s.run(
        "INSERT INTO pc_ev (user_id, nevents, nvideo, nproblem_check, nshowanswer, nseq_goto, nforum, "
        "first_event, last_day, ndays) SELECT y.uid, SUM(y.nevents), SUM(y.nplay_video), "
        "SUM(y.nproblem_check), SUM(y.nshowanswer), SUM(y.nseq_goto), SUM(y.nforum), MIN(y.first_event), "
        f"DATE(MAX(y.last_event)), COUNT(DISTINCT y.day) FROM ({learner}) y WHERE y.uid IS NOT NULL "
        "GROUP BY y.uid",
        (s.course.mongoname,),
    )
    _countries(s, learner)
    author = as_int("a.author_id", d)
    s.temp_table("pc_forum", f"{key}, nposts INTEGER, nthreads INTEGER, ncomments INTEGER")
    s.run(
        "INSERT INTO pc_forum (user_id, nposts, nthreads, ncomments) "
        f"SELECT {author}, SUM(a.nposts), SUM(a.nthreads), SUM(a.ncomments) FROM {s.own(COUNTS_TABLE)} a "
        f"WHERE a.discussiontable = ? AND {author} IS NOT NULL GROUP BY {author}",
        (s.course.discussiontable,),
    )
    user = s.int_of("auth_userprofile", "user_id", "p")
    yob = as_int(null_text("p.year_of_birth"), d)
    s.temp_table("pc_prof", f"{key}, loe VARCHAR(255), yob INTEGER, gender VARCHAR(255)")
    s.run(
        f"INSERT INTO pc_prof (user_id, loe, yob, gender) SELECT {user}, "
        f"MAX({null_text('p.level_of_education')}), MAX({yob}), MAX({null_text('p.gender')}) "
        f"FROM {s.src('auth_userprofile')} p WHERE {user} IS NOT NULL GROUP BY {user}"
    )
    user = s.int_of("student_courseenrollment", "user_id", "e")
    s.temp_table("pc_enr", f"{key}, mode VARCHAR(255), start_time DATE")
    s.run(
        f"INSERT INTO pc_enr (user_id, mode, start_time) SELECT {user}, MAX({null_text('e.mode')}), "
        f"DATE(MIN(e.created)) FROM {s.src('student_courseenrollment')} e WHERE {user} IS NOT NULL "
        f"GROUP BY {user}"
    )
    user = s.int_of("certificates_generatedcertificate", "user_id", "c")
    s.temp_table("pc_cert", f"{key}, certified INTEGER, grade DOUBLE")
    s.run(
        "INSERT INTO pc_cert (user_id, certified, grade) SELECT "
        f"{user}, MAX(CASE WHEN c.status = 'downloadable' THEN 1 ELSE 0 END), MAX({as_float('c.grade', d)}) "
        f"FROM {s.src('certificates_generatedcertificate')} c WHERE {user} IS NOT NULL GROUP BY {user}"
    )


def _countries(s: _Sql, learner: str) -> None:
    """`final_cc_cname` (every country, sorted) and `cc_by_ip` (the country of the most days; the
    aggregates keep no count per address) from one row per (learner, countries of a day)."""
    s.temp_table("pc_cc", "user_id BIGINT NOT NULL PRIMARY KEY, final_cc TEXT, cc_by_ip VARCHAR(16)")
    rows = s.run(
        f"SELECT y.uid, y.countries, COUNT(DISTINCT y.day) FROM ({learner}) y "
        "WHERE y.uid IS NOT NULL AND y.countries IS NOT NULL AND y.countries <> '' "
        "GROUP BY y.uid, y.countries ORDER BY y.uid",
        (s.course.mongoname,),
    ).fetchall()
    out: list[tuple[int, str, str]] = []
    current: int | None = None
    days: dict[str, int] = {}

    def emit() -> None:
        if current is not None and days:
            best = min(days, key=lambda c: (-days[c], c))
            out.append((current, ",".join(sorted(days)), best))

    for uid, countries, ndays in rows:
        if uid != current:
            emit()
            current, days = int(uid), {}
        for country in str(countries).split(","):
            if country:
                days[country] = days.get(country, 0) + int(ndays)
    emit()
    for start in range(0, len(out), 5000):
        s.cur.executemany(
            "INSERT INTO pc_cc (user_id, final_cc, cc_by_ip) VALUES (?, ?, ?)", out[start : start + 5000]
        )


def profile_values(
    ctx: Context, cur: Cursor, course: Course, counts: dict[str, Any], structure: dict[str, Any]
) -> dict[str, Any]:
    """The course-profile row: the person-course sums, enrolments by mode and the structure."""
    s = _Sql(ctx.sql, cur, course)
    enrol = s.src("student_courseenrollment")
    modes = dict(s.run(f"SELECT mode, COUNT(*) FROM {enrol} GROUP BY mode").fetchall())
    first = s.run(f"SELECT DATE(MIN(created)) FROM {enrol}").fetchone()
    launch, close = structure.get("start"), structure.get("end")
    length = None
    if launch and close:
        length = math.ceil((close - launch).days / 7)
    values: dict[str, Any] = {
        "course": course.key,
        "dbname": course.dbname,
        "mongoname": course.mongoname,
        "discussiontable": course.discussiontable,
        "registration_open_date": _date(first[0] if first else None),
        "course_launch_date": launch,
        "course_close_date": close,
        **counts,
        "nhonor_students": int(modes.get("honor", 0)),
        "naudit_students": int(modes.get("audit", 0)),
        "nvertified_students": int(modes.get("verified", 0)),
        "course_effort": 0,
        "course_length": length,
        **{k: v for k, v in structure.items() if k not in ("start", "end")},
        "best_assessment": "",
        "worst_assessment": "",
    }
    return values


def structure_counts(ctx: Context, cur: Cursor, course: Course) -> dict[str, Any]:
    """Chapters, leaves by tag under chapter -> sequential -> vertical, and launch / close dates."""
    s = _Sql(ctx.sql, cur, course)
    axis = s.src("course_axis")
    chapters = s.run(f"SELECT COUNT(*) FROM {axis} WHERE category = 'chapter'").fetchone()
    rows = s.run(
        f"SELECT a.category, COUNT(*), SUM(CASE WHEN a.weight > 0 THEN 1 ELSE 0 END) FROM {axis} a "
        f"JOIN {axis} v ON v.url_name = a.parent AND v.category = 'vertical' GROUP BY a.category"
    ).fetchall()
    by_tag = {r[0]: (int(r[1]), int(r[2] or 0)) for r in rows}
    problems, summative = by_tag.get("problem", (0, 0))
    known = ("video", "html", "problem", "discussion")
    start_row = s.run(f"SELECT MIN(start) FROM {axis} WHERE category = 'course'").fetchone()
    start, end = _tree_dates(ctx, course)
    return {
        "nchapters": int(chapters[0]) if chapters else 0,
        "nvideos": by_tag.get("video", (0, 0))[0],
        "nhtmls": by_tag.get("html", (0, 0))[0],
        "nassessments": problems,
        "nsummative_assessments": summative,
        "nformative_assessments": problems - summative,
        "nincontent_discussions": by_tag.get("discussion", (0, 0))[0],
        "nactivities": sum(n for tag, (n, _) in by_tag.items() if tag not in known),
        "start": start or _date(start_row[0] if start_row else None),
        "end": end,
    }


def _tree_dates(ctx: Context, course: Course) -> tuple[date | None, date | None]:
    """`start` and `end` of the course structure JSON the CourseStructure service wrote."""
    path = ctx.settings.output_dir / "course_structure" / f"{course.dbname.replace('_', '-')}.json"
    try:
        tree = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None, None
    return _date(tree.get("start")), _date(tree.get("end"))


def _date(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip().strip('"').strip()
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            return None
    return None


def write_profile(cur: Cursor, store: SqlStore, values: dict[str, Any]) -> None:
    table = store.qualified(DATABASE, DATABASE, PROFILE_TABLE)
    cur.execute(f"DELETE FROM {table} WHERE course = ?", (values["course"],))
    names = [c[0] for c in PROFILE_COLUMNS]
    cur.execute(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
        tuple(values.get(n) for n in names),
    )


Writer = Callable[[Cursor], None]
