"""PersonCourse on the sample package: person-course rows, course profiles, skipped courses,
incremental runs, atomic swaps, the dashboards' daily tables and the CSV exports; on SQLite and on
MariaDB + the MongoDB-wire server."""

from __future__ import annotations

import csv
import gzip
import json
import os
import threading
from collections import Counter
from datetime import date, datetime
from typing import Any

import pytest

from core.errors import IngestorError
from services.clickstream.events import course_of
from services.person_course import export
from tests.derived_env import COURSES, DerivedEnv

BIO, PSYC, DEMO = "bioimg_101x_1T2014", "psyc_10301x_4T2016", "demo_101x_2T2015"
COLUMNS = (
    "user_id, username, registered, viewed, explored, certified, final_cc_cname, LoE, YoB, gender, mode, "
    "grade, start_time, last_event, nevents, ndays_act, nplay_video, nchapters, nforum_posts, roles, "
    "attempted_problems, inconsistent_flag, cc_by_ip, first_event, nvideo_events, nproblem_check, "
    "nshow_answer, nseq_goto, nforum_events, nforum_threads, nforum_comments, ndays_act_logs"
)
# Checked by hand against the BIOIMG101x dumps, forum and logs of examples/data.
LEARNERS = {
    # certified (downloadable, 0.74); 9 events on 05-30 and 06-01 from 8.8.8.8; 3 forum posts
    446802: (446802, "ada_sample", 1, 1, 1, 1, "US", "b", 1965, "m", "honor", 0.74, "2013-12-28",
             "2015-06-01", 9, 12, 4, 3, 3, 0, 4, 0, "US", "2015-05-30 06:29:13", 1, 2, 0, 2, 1, 2, 1, 2),
    # explored (3 of 3 chapters), not certified; events from a private address: no country
    1442316: (1442316, "farah_mock", 1, 1, 1, 0, "", "p_se", None, "f", "verified", 0.0, "2014-01-20",
              "2015-05-31", 10, 15, 4, 3, 4, 0, 2, 0, "", "2015-05-30 08:30:40", 2, 2, 0, 2, 0, 1, 3, 2),
    # only enrolled: no studentmodule row, no event, no post; gender '' stays ''
    825951: (825951, "bruno_p", 1, 0, 0, 0, "", "m", 1968, "", "audit", 0.0, "2013-12-24",
             None, 0, 0, 0, 0, 0, 0, 0, 0, "", None, 0, 0, 0, 0, 0, 0, 0, 0),
    # activity and a forum comment but no event in the logs: inconsistent; year_of_birth NULL
    492571: (492571, "zoe_example", 1, 1, 1, 0, "", "p", None, "m", "honor", 0.0, "2013-12-11",
             None, 0, 13, 3, 2, 1, 0, 3, 1, "", None, 0, 0, 0, 0, 0, 0, 1, 0),
}  # fmt: skip


def _value(v: object) -> object:
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float):
        return round(v, 6)
    return v


def rows(env: DerivedEnv, sql: str, database: str = "Person_Course") -> list[tuple[Any, ...]]:
    return [tuple(_value(v) for v in r) for r in env.query(database, sql)]


@pytest.fixture(
    params=["sqlite", pytest.param("mysql", marks=[pytest.mark.mysql, pytest.mark.mongo, pytest.mark.serial])]
)
def env(request, tmp_path, unique_name):
    if request.param == "sqlite":
        sql, mongo = "sqlite", "sqlite"
    else:
        sql, mongo = request.getfixturevalue("mysql_url"), request.getfixturevalue("mongo_url")
    environment = DerivedEnv(tmp_path, sql, mongo, unique_name)
    yield environment
    environment.close()


@pytest.fixture
def sqlite_env(tmp_path, unique_name):
    environment = DerivedEnv(tmp_path, "sqlite", "sqlite", unique_name)
    yield environment
    environment.close()


def test_hand_checked_learners_have_every_column(env):
    assert env.run() == 1, "the sample's .sql.failed export fails, nothing else"
    table = f"personcourse_{BIO}"
    found = {
        r[0]: r
        for r in rows(
            env, f"SELECT {COLUMNS} FROM {table} WHERE user_id IN (446802, 1442316, 825951, 492571)"
        )
    }
    assert found == LEARNERS
    assert rows(env, f"SELECT DISTINCT course_id, registered FROM {table}") == [("UQx/BIOIMG101x/1T2014", 1)]
    assert rows(env, f"SELECT COUNT(*), COUNT(DISTINCT user_id) FROM {table}") == [(30, 30)]


def test_course_profiles_count_learners_modes_and_structure(env):
    env.run()
    profile = {
        r[0]: r[1:]
        for r in rows(
            env,
            "SELECT course, registration_open_date, course_launch_date, course_close_date, course_length, "
            "nregistered_students, nchapters, nvideos, nhtmls, nassessments, nsummative_assessments, "
            "nformative_assessments, nincontent_discussions, nactivities, course_effort, best_assessment "
            "FROM courseprofile",
        )
    }
    assert profile == {
        BIO: ("2013-12-03", "2014-03-03", "2014-05-26", 12, 30, 3, 4, 2, 4, 3, 1, 2, 0, 0, ""),
        PSYC: ("2015-02-06", "2015-04-01", "2015-07-31", 18, 25, 4, 3, 2, 4, 3, 1, 2, 0, 0, ""),
        DEMO: ("2015-04-02", "2015-05-04", "2015-07-27", 12, 16, 3, 3, 3, 2, 1, 1, 2, 0, 0, ""),
    }
    for key, course in COURSES.items():
        sums = rows(
            env,
            f"SELECT COUNT(*), SUM(viewed), SUM(explored), SUM(certified) FROM personcourse_{key}",
        )[0]
        counts = rows(
            env,
            "SELECT nregistered_students, nviewed_students, nexplored_students, ncertified_students, "
            "nhonor_students, naudit_students, nvertified_students FROM courseprofile WHERE course = ?".replace(
                "?", f"'{key}'"
            ),
        )[0]
        assert counts[:4] == sums
        modes = Counter(m for (m,) in env.query(course.dbname, "SELECT mode FROM student_courseenrollment"))
        assert counts[4:] == (modes["honor"], modes["audit"], modes["verified"])
        certified = env.query(
            course.dbname,
            "SELECT COUNT(*) FROM certificates_generatedcertificate WHERE status = 'downloadable'",
        )
        assert counts[3] == certified[0][0]
    assert rows(
        env,
        f"SELECT nviewed_students, nexplored_students, ncertified_students FROM courseprofile WHERE course = '{BIO}'",
    ) == [(25, 14, 8)]


def test_a_course_without_auth_user_gets_no_table_and_says_why(env):
    (env.dumps / "UQx-DEMO101x-2T2015-auth_user-prod-edge-analytics.sql").unlink()
    env.run()
    assert f"personcourse_{DEMO}" not in env.store.list_tables("Person_Course")
    assert {r[0] for r in env.query("Person_Course", "SELECT course FROM courseprofile")} >= {BIO, PSYC}
    assert env.query("Person_Course", "SELECT course FROM courseprofile WHERE course = ?", (DEMO,)) == []
    extra = env.service("PersonCourse").status_extra(env.context("PersonCourse"))
    assert extra["courses"] == {BIO: "done", DEMO: "skipped", PSYC: "done"}
    assert "no auth_user" in extra["skipped"][DEMO] and "UQx_DEMO101x_2T2015" in extra["skipped"][DEMO]
    assert extra["last_run"]
    runs = [r for r in env.daemon.scheduler.queue.rows(service="PersonCourse") if r.type == "save_run"]
    assert len(runs) == 1 and runs[0].state == "done"


def test_a_course_without_structure_is_skipped_by_both_services(sqlite_env):
    env = sqlite_env
    (env.dumps / "UQx-DEMO101x-2T2015-course-prod-edge-analytics.xml.tar.gz").unlink()
    env.run()
    for name in ("PersonCourse", "EventCount"):
        extra = env.service(name).status_extra(env.context(name))
        assert extra["courses"][DEMO] == "skipped", name
        assert "course_axis" in extra["skipped"][DEMO]
    assert f"courseevent_{DEMO}" not in env.store.list_tables("Course_Event")


def _new_day(env: DerivedEnv, user: int, username: str) -> None:
    """One more day of logs with two events of one PSYC1030.1x learner."""
    events = []
    for n, kind in enumerate(("play_video", "seq_goto")):
        events.append(
            {
                "username": username,
                "event_type": kind,
                "event_source": "browser",
                "ip": "8.8.8.8",
                "time": f"2015-06-02T10:0{n}:00.000000+00:00",
                "event": "{}",
                "context": {
                    "course_id": COURSES[PSYC].mongoname,
                    "user_id": user,
                    "org_id": "UQx",
                    "path": "/event",
                },
                "page": None,
            }
        )
    path = env.logs / "uqx-edx-events-2015-06-02.log"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))


def test_a_new_day_of_logs_rebuilds_only_its_course(env):
    env.run()
    before = {key: rows(env, f"SELECT * FROM personcourse_{key} ORDER BY id") for key in COURSES}
    learner = rows(
        env,
        f"SELECT user_id, username, nevents, nvideo_events, ndays_act_logs FROM personcourse_{PSYC} WHERE nevents > 0 ORDER BY user_id",
    )[0]
    _new_day(env, learner[0], learner[1])
    env.run()
    assert env.service("PersonCourse").last_run["rebuilt"] == [PSYC]
    after = {key: rows(env, f"SELECT * FROM personcourse_{key} ORDER BY id") for key in COURSES}
    assert after[BIO] == before[BIO] and after[DEMO] == before[DEMO]
    changed = [(a, b) for a, b in zip(before[PSYC], after[PSYC], strict=True) if a != b]
    assert len(changed) == 1
    now = rows(
        env,
        f"SELECT nevents, nvideo_events, ndays_act_logs, last_event FROM personcourse_{PSYC} WHERE user_id = {learner[0]}",
    )
    assert now == [(learner[2] + 2, learner[3] + 1, learner[4] + 1, "2015-06-02")]
    assert ("2015-06-02", 1, 2) in rows(
        env, f"SELECT day, active_users, events FROM course_daily WHERE course = '{PSYC}'"
    )
    env.run()
    assert "rebuilt" not in env.service("PersonCourse").last_run, "no new input: no run"
    service = env.service("PersonCourse")
    service.run(env.context("PersonCourse"))
    assert service.last_run["rebuilt"] == [], "a run without new inputs rebuilds nothing"


def test_a_reader_never_sees_a_missing_table_while_courses_are_rebuilt(env):
    env.run()
    service, ctx = env.service("PersonCourse"), env.context("PersonCourse")
    problems: list[str] = []
    seen: list[int] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                seen.append(env.query("Person_Course", f"SELECT COUNT(*) FROM personcourse_{BIO}")[0][0])
            except IngestorError as exc:
                problems.append(str(exc))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(4):
            with env.store.transaction("Person_Course") as cur:
                cur.execute("DELETE FROM derived_course_state WHERE service = 'PersonCourse'")
            service.run(ctx)
            assert service.last_run["rebuilt"] == sorted(COURSES)
    finally:
        stop.set()
        reader.join()
    assert problems == []
    assert seen and set(seen) == {30}


def _sample_events(env: DerivedEnv) -> list[dict]:
    events = []
    for path in sorted(env.logs.iterdir()):
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        for line in raw.split(b"\n"):
            start = line.find(b"{")
            if start < 0:
                continue
            try:
                event = json.loads(line[start:].decode("utf-8"))
            except ValueError:
                continue
            if isinstance(event, dict) and isinstance(event.get("time"), str):
                events.append(event)
    return events


def test_daily_tables_match_counts_made_from_the_logs(env):
    env.run()
    events = _sample_events(env)
    expected_events: Counter = Counter()
    users: dict[tuple[str, str], set] = {}
    enrolled: Counter = Counter()
    unenrolled: Counter = Counter()
    for e in events:
        course_id, day = course_of(e), e["time"][:10]
        expected_events[(course_id, day)] += 1
        user = (e.get("context") or {}).get("user_id") or e.get("username")
        if user:
            users.setdefault((course_id, day), set()).add(user)
        if e["event_type"].startswith("edx.course.enrollment."):
            own = e["event"]["course_id"]
            (enrolled if e["event_type"] == "edx.course.enrollment.activated" else unenrolled)[
                (own, day)
            ] += 1
    for key, course in COURSES.items():
        table = rows(
            env,
            f"SELECT day, active_users, events, enrolments, unenrolments FROM course_daily WHERE course = '{key}' ORDER BY day",
        )
        days = sorted(d for c, d in expected_events if c == course.mongoname)
        m = course.mongoname
        assert table == [
            (d, len(users.get((m, d), ())), expected_events[(m, d)], enrolled[(m, d)], unenrolled[(m, d)])
            for d in days
        ], key
    assert sum(enrolled.values()) == 4 and sum(unenrolled.values()) == 1
    countries = rows(
        env, "SELECT course, country, enrolled_users FROM course_country_enrolments ORDER BY 1, 2"
    )
    # PSYC: one enrolment from 203.2.218.214 (AU), one from 8.8.8.8 (US) undone by its
    # deactivation, one from 1.1.1.1 (US) on 06-01
    assert countries == [(BIO, "", 1), (DEMO, "", 1), (PSYC, "AU", 1), (PSYC, "US", 1)]


def test_exports_are_csv_named_with_the_run_time_and_pruned(sqlite_env):
    env = sqlite_env
    env.run(PERSON_COURSE_EXPORTS_KEEP="2")
    files = sorted(p.name for p in (env.state / "exports").iterdir())
    assert len(files) == 4 and all(f.endswith("Z.csv") for f in files)
    assert not [f for f in files if f.startswith(".")], "no temporary file left"
    people = next(env.state.glob(f"exports/personcourse_{BIO}-*.csv"))
    with people.open(newline="", encoding="utf-8") as stream:
        table = list(csv.DictReader(stream))
    assert len(table) == 30 and table[1]["username"] == "ada_sample" and table[1]["grade"] == "0.74"
    directory = env.state / "exports"
    for stamp in ("20150101T000000Z", "20150102T000000Z", "20150103T000000Z"):
        (directory / f"courseprofile-{stamp}.csv").write_text("id\n")
    removed = export.prune(directory, "courseprofile", 2)
    assert sorted(p.name for p in removed) == [
        "courseprofile-20150101T000000Z.csv",
        "courseprofile-20150102T000000Z.csv",
    ]
    assert len(list(directory.glob("courseprofile-*.csv"))) == 2
    assert not os.path.exists(directory / "courseprofile-20150101T000000Z.csv")
