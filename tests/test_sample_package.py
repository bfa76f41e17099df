"""End to end: `run --once` on the sample data package in the repo, on SQLite and on MariaDB."""

from __future__ import annotations

import json
import os

import pytest

from core import states
from core.courses import load_courses
from core.daemon import Daemon
from services.database_state.filenames import parse_dump_name
from stores.sql import open_sql_store
from tests.conftest import REPO, SAMPLE_DATA
from tests.packages import settings_for

MANIFEST = json.loads((SAMPLE_DATA / "manifest.json").read_text())
SQL_COUNTS = {os.path.basename(k): v["rows"] for k, v in MANIFEST["counts"].items() if k.endswith(".sql")}
BAD_ROWS: dict[str, int] = {}
for bad in MANIFEST["bad_input"]:
    if bad["file"].endswith(".sql"):
        name = os.path.basename(bad["file"])
        BAD_ROWS[name] = BAD_ROWS.get(name, 0) + 1


@pytest.fixture
def sample_run(tmp_path, sql_backend, unique_name):
    settings = settings_for(
        SAMPLE_DATA, tmp_path / "var", sql_backend, TRACKING_DATABASE=f"api_{unique_name}"
    )
    daemon = Daemon(settings, foreground=False)
    status = daemon.run(once=True)
    yield status, daemon.scheduler, open_sql_store(sql_backend, tmp_path / "var")
    if sql_backend != "sqlite":
        store = open_sql_store(sql_backend, tmp_path / "var")
        for database in {parse_dump_name(n).database for n in SQL_COUNTS} | {f"api_{unique_name}"}:
            store.drop_database(database)
        with store.transaction("Person_Course") as cur:
            cur.execute("DELETE FROM person_course_day WHERE source_file LIKE ?", (f"{SAMPLE_DATA}%",))
            cur.execute("DELETE FROM forum_author_counts WHERE source LIKE ?", (f"{SAMPLE_DATA}%",))
            for table in ("course_event_type_day", "clickstream_file_courses", "enrolment_events"):
                cur.execute(f"DELETE FROM {table} WHERE source_file LIKE ?", (f"{SAMPLE_DATA}%",))


def test_every_sample_dump_is_loaded_with_its_row_count(sample_run):
    status, scheduler, store = sample_run
    assert status == 1, "the sample holds one .sql.failed export, so the run reports a failure"
    rows = {os.path.basename(r.meta): r for r in scheduler.queue.rows(service="DatabaseState")}
    failed = [name for name, r in rows.items() if r.state == states.FAILED]
    assert failed == ["UQx-PSYC1030.1x-4T2016-student_languageproficiency-prod-analytics.sql.failed"]
    for name, count in SQL_COUNTS.items():
        row = rows[name]
        assert (row.state, row.rows_loaded, row.rows_rejected) == (
            states.DONE,
            count,
            BAD_ROWS.get(name, 0),
        ), name
        dump = parse_dump_name(name)
        assert store.query(dump.database, f"SELECT COUNT(*) FROM {store.quote(dump.table)}") == [(count,)]


def test_dashboards_reads_of_the_sample_work(sample_run):
    _, _, store = sample_run
    courses = load_courses(REPO / "courses.py")
    assert not courses.warnings
    for course in courses.courses.values():
        users = store.query(course.dbname, "SELECT id, username, email, is_staff FROM auth_user")
        assert users
        enrolled = store.query(
            course.dbname, "SELECT user_id, course_id, created, is_active, mode FROM student_courseenrollment"
        )
        assert {r[1] for r in enrolled} == {course.mongoname}
        profiles = store.query(course.dbname, "SELECT user_id, year_of_birth, gender FROM auth_userprofile")
        assert all(yob is None or isinstance(yob, int) for _, yob, _ in profiles), "real NULLs, typed"
        modules = store.query(course.dbname, "SELECT module_type, state FROM courseware_studentmodule")
        for _module_type, state in modules:
            json.loads(state)
        certificates = store.query(
            course.dbname, "SELECT user_id, status, grade FROM certificates_generatedcertificate"
        )
        assert {s for _, s, _ in certificates} <= {"downloadable", "notpassing", "unavailable", "generating"}


def test_every_service_loads_its_part_of_the_sample(sample_run, tmp_path):
    from stores.documents import open_document_store

    _, scheduler, store = sample_run
    rows = scheduler.queue.rows()
    by_service: dict[str, dict[str, int]] = {}
    for row in rows:
        by_service.setdefault(row.service_name, {}).setdefault(row.state, 0)
        by_service[row.service_name][row.state] += 1
    assert by_service["Clickstream"] == {states.DONE: 3}, "the newest day (2015-06-01) is held back"
    assert by_service["DiscussionForums"] == {states.DONE: 3}
    assert by_service["CourseStructure"] == {states.DONE: 3}
    assert by_service["EdxCourseStructure"] == {states.DONE: 2}
    counts = MANIFEST["counts"]
    held_back = "clickstream_logs/2015-06-01/uqx-edx-events-2015-06-01.log.gz"
    expected_events = sum(
        v["events"] for k, v in counts.items() if k.startswith("clickstream") and k != held_back
    )
    docs = open_document_store("sqlite", tmp_path / "var")
    loaded = docs.count("logs", "clickstream")
    assert loaded in (expected_events, expected_events + 1), "the syslog-prefixed line is recovered"
    assert docs.count("logs", "clickstream", {"time_date": {"$exists": True}}) == loaded
    www = tmp_path / "var" / "www"
    assert sorted(p.name for p in (www / "course_structure").glob("*.json")) == [
        "UQx-BIOIMG101x-1T2014.json",
        "UQx-DEMO101x-2T2015.json",
        "UQx-PSYC10301x-4T2016.json",
    ]
    days = store.query(
        "Person_Course",
        "SELECT SUM(nevents) FROM person_course_day WHERE source_file LIKE ?",
        (f"{SAMPLE_DATA}%",),
    )
    assert 0 < int(days[0][0]) <= loaded
