"""File names of the dumps: course parts with '-' and '.', prod and edge suffixes, hostile names;
paths whose bytes are not UTF-8."""

from __future__ import annotations

import os

import pytest

from core import states
from core.daemon import Daemon
from core.errors import UnsafeNameError
from services.database_state.filenames import parse_dump_name
from tests.documents import drop_database
from tests.packages import AUTH_USER_HEADER, make_package, settings_for, write_dump

AUTH_ROWS = b"1\tada\tada@example.org\t0\t1\tNULL\t2014-12-01 09:00:00\n3\tbad\n2\tbob\tb@example.org\t0\t1\tNULL\t2014-12-02 09:00:00\n"
EVENT = (
    b'{"username": "u1", "event_type": "play_video", "time": "2015-05-30T01:00:00+00:00", "ip": "", '
    b'"context": {"course_id": "course-v1:UQx+X+1T", "user_id": 1}, "event": "{}"}\n'
)


@pytest.mark.parametrize(
    ("name", "database", "table"),
    [
        ("UQx-BIOIMG101x-1T2014-auth_user-prod-analytics.sql", "UQx_BIOIMG101x_1T2014", "auth_user"),
        (
            "UQx-PSYC1030.1x-4T2016-auth_userprofile-prod-analytics.sql",
            "UQx_PSYC10301x_4T2016",
            "auth_userprofile",
        ),
        (
            "UQx-DEMO101x-2T2015-student_courseenrollment-prod-edge-analytics.sql",
            "UQx_DEMO101x_2T2015",
            "student_courseenrollment",
        ),
        (
            "MITx-6.00.1-x-1T2014-courseware_studentmodule-prod-analytics.sql",
            "MITx_6001_x_1T2014",
            "courseware_studentmodule",
        ),
        (
            "UQx-X101-1T2016-assessment_assessmentfeedback_options-prod-analytics.sql",
            "UQx_X101_1T2016",
            "assessment_assessmentfeedback_options",
        ),
        ("UQx-X101-1T2016-teams_membership-prod-analytics.sql", "UQx_X101_1T2016", "teams_membership"),
    ],
)
def test_course_and_table_come_from_known_table_names(name, database, table):
    dump = parse_dump_name(name)
    assert (dump.database, dump.table, dump.known_table) == (database, table, True)


def test_failed_export_placeholder_is_recognised():
    dump = parse_dump_name("UQx-X101-1T2016-auth_user-prod-analytics.sql.failed")
    assert dump.failed_export and dump.table == "auth_user"


def test_a_table_added_by_edx_later_is_still_loaded_by_its_last_part():
    dump = parse_dump_name("UQx-X101-1T2016-brand_newtable-prod-analytics.sql")
    assert (dump.table, dump.known_table) == ("brand_newtable", False)


@pytest.mark.parametrize(
    "name",
    [
        "UQx-X-1T-auth_user`;drop-prod-analytics.sql",
        "UQx-X'; DROP DATABASE api; --1T-auth_user-prod-analytics.sql",
        'UQx-X"1-1T-auth_user-prod-analytics.sql',
        "UQx-..-1T2016-auth_user-prod-analytics.sql",
        "..-x-y-auth_user-prod-analytics.sql",
        "UQx-X101-1T2016-auth_user-prod-analytics.csv",
        "UQx-" + "A" * 300 + "-1T-auth_user-prod-analytics.sql",
        "UQx-" + "A" * 70 + "-1T-auth_user-prod-analytics.sql",
        "UQx-X 1-1T-auth_user-prod-analytics.sql",
        "UQx-X101-1T2016-auth_user-analytics.sql",
        "auth_user-prod-analytics.sql",
    ],
)
def test_hostile_or_malformed_names_are_refused(name):
    with pytest.raises(UnsafeNameError):
        parse_dump_name(name)


STORES = [
    pytest.param("sqlite", "sqlite", id="sqlite"),
    pytest.param("mysql", "mongo", id="mariadb-ferretdb", marks=[pytest.mark.mysql, pytest.mark.mongo]),
]


@pytest.mark.parametrize(("sql", "documents"), STORES)
def test_a_path_with_a_byte_that_is_not_utf8_ingests_like_any_other(
    request, tmp_path, unique_name, sql, documents
):
    """A dated directory named with the byte 0xff: its dump and its log load (rejects kept), their
    rows name it `\\xff`, and a file name with that byte fails on its name, as any hostile name."""
    sql_url = request.getfixturevalue("mysql_url") if sql == "mysql" else "sqlite"
    mongo_url = request.getfixturevalue("mongo_url") if documents == "mongo" else "sqlite"
    data = make_package(tmp_path / "data", db_date="2015-06-07-\udcff", log_date="2015-06-01-\udcff")
    org = f"R{unique_name}"
    dump = write_dump(data, f"{org}-X-1T-auth_user-prod-analytics.sql", AUTH_USER_HEADER + AUTH_ROWS)
    hostile = write_dump(data, "UQx-A-1T-auth_user-prod-analytics\udcff.sql", AUTH_USER_HEADER + AUTH_ROWS)
    log = (data / "clickstream_logs" / "latest").resolve() / "uqx-edx-events-2015-05-30.log"
    log.write_bytes(EVENT + b"not json\n" + EVENT.replace(b"u1", b"u2"))
    assert os.fsencode(log).count(b"\xff") == 1
    settings = settings_for(
        data,
        tmp_path / "var",
        sql_url,
        SERVICES="DatabaseState:Clickstream",
        MONGO_URL=mongo_url,
        DOCUMENT_DB_PREFIX=unique_name,
        TRACKING_DATABASE=f"api_{unique_name}",
        CLICKSTREAM_HOLD_NEWEST="0",
    )
    daemon = Daemon(settings, foreground=False)
    documents_store = daemon.documents()
    try:
        assert daemon.run(once=True) == 1, "the hostile name fails; the others load"
        rows = {r.path: r for r in daemon.scheduler.queue.rows() if r.type == "file"}
        assert set(rows) == {str(dump), str(log), str(hostile)}, "each row gives back the real path"
        for path in (dump, log):
            row = rows[str(path)]
            assert row.state == states.DONE, row.error
            assert (row.rows_loaded, row.rows_rejected) == (2, 1)
            assert "-\\xff/" in row.meta, "meta writes the byte as \\xff"
            (rejects,) = (settings.rejects_dir / row.service_name).glob(f"*.{row.id}.v1.rejects.tsv")
            assert rejects.read_text(encoding="utf-8").startswith(f"# rejects of {row.meta}")
        failed = rows[str(hostile)]
        assert failed.state == states.FAILED and "missing" not in (failed.error or "")
        assert "analytics\\xff.sql" in (failed.error or "")
        assert daemon.sql.query(f"{org}_X_1T", "SELECT username FROM auth_user ORDER BY id") == [
            ("ada",),
            ("bob",),
        ]
        events = list(documents_store.find(f"{unique_name}logs", "clickstream", {}))
        assert sorted(e["username"] for e in events) == ["u1", "u2"]
        assert {e["source_file"] for e in events} == {repr(os.fsencode(log))}, "the bytes, as a literal"
        days = daemon.sql.query(
            "Person_Course",
            "SELECT SUM(nevents) FROM person_course_day WHERE source_file=?",
            (repr(os.fsencode(log)),),
        )
        assert int(days[0][0]) == 2
        again = Daemon(settings, foreground=False)
        assert again.run(once=True) == 1
        assert {r.path: (r.state, r.attempts) for r in again.scheduler.queue.rows()} == {
            p: (r.state, r.attempts) for p, r in rows.items()
        }, "found again by its path: nothing queued anew"
    finally:
        drop_database(documents_store, f"{unique_name}logs")
        with daemon.sql.transaction("Person_Course") as cur:
            cur.execute("DELETE FROM person_course_day WHERE source_file=?", (repr(os.fsencode(log)),))
        if sql == "mysql":
            for name in (f"{org}_X_1T", f"api_{unique_name}"):
                daemon.sql.drop_database(name)


def test_a_paths_stored_form_gives_back_its_bytes_and_its_displayed_form_escapes_them():
    from utils.paths import display, from_text, to_text

    odd = os.fsdecode(b"/d/2015-\xff/a\\x41'\"b\xfe.log")
    assert to_text("/d/uqx-edx-events-2015-05-30.log") == "/d/uqx-edx-events-2015-05-30.log"
    assert to_text(odd).startswith("b") and to_text(odd).encode("utf-8")
    assert os.fsencode(from_text(to_text(odd))) == os.fsencode(odd)
    assert from_text("/d/b'x'") == "/d/b'x'"
    assert display(odd) == "/d/2015-\\xff/a\\x41'\"b\\xfe.log"
    assert display("lone \ud800") == "lone \\ud800"
