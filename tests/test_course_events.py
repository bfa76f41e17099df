"""EventCount on the sample package: one row per day, one column per component, counts made by hand
from the logs; on SQLite and on MariaDB + the MongoDB-wire server."""

from __future__ import annotations

from collections import Counter

import pytest

from services.clickstream.events import course_of
from stores.sql.identifiers import component_column, quote
from tests.derived_env import COURSES, DerivedEnv
from tests.test_person_course import BIO, _sample_events, rows


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


def _components(env: DerivedEnv, dbname: str) -> list[str]:
    return [
        r[0]
        for r in env.query(
            dbname,
            "SELECT a.url_name FROM course_axis a JOIN course_axis v ON v.url_name = a.parent "
            "AND v.category = 'vertical' ORDER BY a.idx",
        )
    ]


def test_course_event_tables_match_counts_made_from_the_logs(env):
    env.run()
    events = _sample_events(env)
    for key, course in COURSES.items():
        components = _components(env, course.dbname)
        expected: dict[str, Counter] = {}
        for e in events:
            if course_of(e) != course.mongoname:
                continue
            day = expected.setdefault(e["time"][:10], Counter())
            for url_name in components:
                day[url_name] += url_name in e["event_type"]
        table = f"courseevent_{key}"
        names = ", ".join(quote(component_column(u) or "", env.store.dialect) for u in components)
        found = rows(
            env, f"SELECT course_id, event_date, {names} FROM {table} ORDER BY event_date", "Course_Event"
        )
        assert found == [
            (course.mongoname, day, *(expected[day][u] for u in components)) for day in sorted(expected)
        ], key
        assert sum(sum(r[2:]) for r in found) > 0, f"{key}: the sample's handler events touch components"
    bio = rows(
        env,
        f"SELECT event_date, u_welcome_video, u_lenses_video, u_resolution_limit, u_magnification, u_pixel_quiz "
        f"FROM courseevent_{BIO} ORDER BY event_date",
        "Course_Event",
    )
    assert bio == [
        ("2015-05-30", 0, 0, 0, 0, 0),
        ("2015-05-31", 0, 0, 0, 0, 0),
        ("2015-06-01", 1, 1, 2, 2, 0),
    ]
    sums = env.query("Course_Event", f"SELECT SUM(u_welcome_video), MIN(event_date) FROM courseevent_{BIO}")
    assert sums[0][0] == 1, "never NULL: the dashboards sum every column"
    status = env.service("EventCount").status_extra(env.context("EventCount"))
    assert status["courses"] == {k: "done" for k in COURSES}


def test_a_dotted_url_name_becomes_a_dollar_column_and_odd_names_are_left_out(tmp_path, unique_name):
    env = DerivedEnv(tmp_path, "sqlite", "sqlite", unique_name)
    env.run()
    course = COURSES[BIO]
    with env.store.transaction(course.dbname) as cur:
        cur.execute("UPDATE course_axis SET url_name = 'welcome.video' WHERE url_name = 'welcome_video'")
        cur.execute("UPDATE course_axis SET url_name = 'bad-name' WHERE url_name = 'lens_notes'")
    with env.store.transaction("Person_Course") as cur:
        cur.execute("DELETE FROM derived_course_state WHERE service = 'EventCount'")
    service = env.service("EventCount")
    service.run(env.context("EventCount"))
    columns = [r[1] for r in env.query("Course_Event", f"PRAGMA table_info(courseevent_{BIO})")]
    assert "u_welcome$video" in columns and "u_lens_notes" not in columns
    assert not [c for c in columns if "bad" in c]
    state = env.query(
        "Person_Course",
        "SELECT reason FROM derived_course_state WHERE service='EventCount' AND course=?",
        (BIO,),
    )
    assert "bad-name" in state[0][0]
    assert component_column("a.b") == "u_a$b" and component_column("a b") is None
    assert quote("u_a$b", "mysql") == "`u_a$b`"
