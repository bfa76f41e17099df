"""The DatabaseState service through the real daemon loop (`run --once`), on SQLite and MariaDB."""

from __future__ import annotations

import os

import pytest

from core import states
from core.daemon import Daemon
from stores.sql import open_sql_store
from tests.packages import AUTH_USER_HEADER, make_package, settings_for, write_dump

DB = "UQx_PSYC10301x_4T2016"
USER = "UQx-PSYC1030.1x-4T2016-auth_user-prod-analytics.sql"
MODULE = "UQx-PSYC1030.1x-4T2016-courseware_studentmodule-prod-analytics.sql"
ENROLL = "UQx-PSYC1030.1x-4T2016-student_courseenrollment-prod-analytics.sql"


@pytest.fixture
def env(tmp_path, sql_backend, unique_name):
    """A data package, a state dir and a daemon factory; databases have a per-test prefix on MariaDB."""
    data = make_package(tmp_path / "data")
    state = tmp_path / "var"
    created: list[str] = []

    class Env:
        def __init__(self):
            self.data, self.state = data, state
            self.store = open_sql_store(sql_backend, state)

        def run(self, **extra):
            settings = settings_for(data, state, sql_backend, TRACKING_DATABASE=f"api_{unique_name}", **extra)
            daemon = Daemon(settings, foreground=False)
            status = daemon.run(once=True)
            self.scheduler = daemon.scheduler
            return status

        def rows(self):
            return {os.path.basename(r.meta): r for r in self.scheduler.queue.rows()}

        def query(self, sql, db=DB):
            created.append(db)
            return [tuple(r) for r in self.store.query(db, sql)]

    environment = Env()
    yield environment
    if sql_backend != "sqlite":
        for name in {*created, DB, f"api_{unique_name}"}:
            environment.store.drop_database(name)


USERS = AUTH_USER_HEADER + (
    b"1\tada\tada@example.org\t0\t1\t2015-01-01 10:00:00\t2014-12-01 09:00:00\n"
    b"2\tbob\tNULL\t1\t0\tNULL\t2014-12-02 09:00:00.250000\n"
    b"3\ttoo\tfew\n"
    b"4\tzo\xc3\xab\tz@example.org\t0\t1\t2015-01-03 10:00:00\t2014-12-03 09:00:00\textra\n"
    b"5\tbad\xff\tz@example.org\t0\t1\t2015-01-03 10:00:00\t2014-12-03 09:00:00\n"
    b"6\tcy\tc@example.org\t0\t1\t2015-01-03 10:00:00\t2014-12-03 09:00:00\n"
)


def test_dump_becomes_a_typed_table_with_rejects_kept(env):
    write_dump(env.data, USER, USERS)
    assert env.run() == 0
    assert env.query("SELECT id, username, email, is_active FROM auth_user ORDER BY id") == [
        (1, "ada", "ada@example.org", 1),
        (2, "bob", None, 0),
        (6, "cy", "c@example.org", 1),
    ]
    row = env.rows()[USER]
    assert (row.state, row.rows_loaded, row.rows_rejected) == (states.DONE, 3, 3)
    rejects = (env.state / "rejects" / "DatabaseState").glob("*.rejects.tsv")
    text = next(iter(rejects)).read_text()
    assert "4\t3 fields, expected 7" in text
    assert "5\t8 fields, expected 7" in text
    assert "6\tinvalid UTF-8" in text


def test_legacy_schema_stores_text_and_keeps_null_as_text(env):
    write_dump(env.data, USER, USERS)
    assert env.run(LEGACY_SCHEMA="1") == 0
    rows = env.query("SELECT id, email, is_active, last_login FROM auth_user ORDER BY id")
    assert rows[1][:3] == (2, "NULL", "0"), "is_active compares as the string '1'/'0', NULL stays text"
    assert rows[1][3] is None, "a DATETIME column cannot hold the text NULL"


def test_studentmodule_quirks_load_exactly(env):
    header = b"id\tmodule_type\tmodule_id\tstudent_id\tstate\tgrade\tcreated\tmodified\tmax_grade\tdone\tcourse_id\n"
    body = (
        b'1\tproblem\tblock-v1:UQx+PSYC1030.1x+4T2016+type@problem+block@p1\t1\t{"student_answers": '
        b'{"p_2_1": "{\\\\"answer\\\\":\\\\"x\\\\"}"}, "correct_map": {}}\t1\t2016-01-01 10:00:00\t'
        b"2016-01-02 10:00:00.123456\t1\tna\tcourse-v1:UQx+PSYC1030.1x+4T2016\n"
        b'2\tproblem\tp2\t1\t{"a": "tab\\\there", "b": "line\\\nnext"}\tNULL\t2016-01-01 10:00:00\t'
        b"2016-01-01 10:00:00\tNULL\tna\tcourse-v1:UQx+PSYC1030.1x+4T2016\n"
    )
    write_dump(env.data, MODULE, header + body)
    assert env.run() == 0
    rows = env.query("SELECT id, state, grade, max_grade FROM courseware_studentmodule ORDER BY id")
    import json

    assert json.loads(json.loads(rows[0][1])["student_answers"]["p_2_1"]) == {"answer": "x"}
    assert rows[1][1] == '{"a": "tab\there", "b": "line\nnext"}'
    assert (rows[0][2], rows[1][2], rows[1][3]) == (1, None, None)


def test_file_delivered_again_is_not_loaded_twice_and_a_new_version_replaces_the_table(env):
    path = write_dump(
        env.data,
        ENROLL,
        b"id\tuser_id\tcourse_id\tcreated\tis_active\tmode\n1\t1\tc\t2015-01-01 00:00:00\t1\thonor\n",
    )
    assert env.run() == 0
    first = env.rows()[ENROLL]
    assert env.run() == 0
    assert env.rows()[ENROLL].completed_date == first.completed_date, "unchanged file is not ingested again"
    path.write_bytes(
        b"id\tuser_id\tcourse_id\tcreated\tis_active\tmode\n7\t7\tc\t2015-02-01 00:00:00\t1\taudit\n"
        b"8\t8\tc\t2015-02-01 00:00:00\t0\thonor\n"
    )
    assert env.run() == 0
    assert env.query("SELECT id, mode FROM student_courseenrollment ORDER BY id") == [
        (7, "audit"),
        (8, "honor"),
    ]
    assert len([r for r in env.scheduler.queue.rows() if r.type == "file"]) == 1


def test_latest_link_moved_to_a_new_week_is_followed(env):
    write_dump(env.data, ENROLL, b"id\tuser_id\n1\t1\n")
    assert env.run() == 0
    make_package(env.data, db_date="2015-06-14")
    write_dump(env.data, ENROLL, b"id\tuser_id\n1\t1\n2\t2\n")
    assert env.run() == 0
    assert env.query("SELECT COUNT(*) FROM student_courseenrollment") == [(2,)]
    metas = sorted(r.meta for r in env.scheduler.queue.rows() if r.type == "file")
    assert [m.split(os.sep)[-2] for m in metas] == ["2015-06-07", "2015-06-14"]


def test_bad_files_fail_with_clear_errors_and_never_stop_the_others(env):
    write_dump(env.data, USER, USERS)
    write_dump(env.data, "UQx-X-1T-auth_user`;drop-prod-analytics.sql", b"id\n1\n")
    write_dump(
        env.data,
        "UQx-PSYC1030.1x-4T2016-teams-prod-analytics.sql.failed",
        b"Traceback (most recent call last):\nOperationalError: lost connection\n",
    )
    write_dump(env.data, "UQx-PSYC1030.1x-4T2016-wiki_article-prod-analytics.sql", b"")
    write_dump(
        env.data, "UQx-PSYC1030.1x-4T2016-wiki_articlerevision-prod-analytics.sql", b"id\tbad`col\n1\t2\n"
    )
    os.symlink(
        "/nonexistent/target.sql",
        env.data / "database_state" / "latest" / "UQx-PSYC1030.1x-4T2016-user_id_map-prod-analytics.sql",
    )
    assert env.run() == 1
    rows = env.rows()
    assert rows[USER].state == states.DONE
    errors = {name: r.error for name, r in rows.items() if r.state == states.FAILED}
    assert len(errors) == 5
    assert (
        "unsafe" in errors["UQx-X-1T-auth_user`;drop-prod-analytics.sql"]
        or "cannot find" in errors["UQx-X-1T-auth_user`;drop-prod-analytics.sql"]
    )
    assert (
        "OperationalError: lost connection"
        in errors["UQx-PSYC1030.1x-4T2016-teams-prod-analytics.sql.failed"]
    )
    assert "empty file" in errors["UQx-PSYC1030.1x-4T2016-wiki_article-prod-analytics.sql"]
    assert "header row" in errors["UQx-PSYC1030.1x-4T2016-wiki_articlerevision-prod-analytics.sql"]
    assert "broken symbolic link" in errors["UQx-PSYC1030.1x-4T2016-user_id_map-prod-analytics.sql"]
    for name, error in errors.items():
        assert name in error, "every error names its file"


def test_values_are_never_truncated_and_types_follow_the_data(env):
    long_text = "x" * 300
    write_dump(
        env.data,
        ENROLL,
        b"id\tuser_id\tcourse_id\tcreated\tis_active\tmode\tzip\n"
        b"1\t1\t" + long_text.encode() + b"\t2015-01-01 00:00:00\t1\thonor\t007\n"
        b"2\t2\tc\t2015-01-01 00:00:00\t1\t\t4000\n",
    )
    assert env.run() == 0
    rows = env.query("SELECT course_id, mode, zip FROM student_courseenrollment ORDER BY id")
    assert rows == [(long_text, "honor", "007"), ("c", "", "4000")], "leading zeros keep a column text"


def test_type_inference_is_exact_across_batches(tmp_path):
    from services.database_state.columns import ColumnTypes

    types = ColumnTypes(["a", "b", "c", "d"])
    types.add_batch([[b"2014", b"1", b"x", b"2015-01-01"]] * 3)
    types.add_batch([[b"2014-01-01", b"1.5", b"NULL", b"2015-01-01 10:00:00"]])
    columns = {c.name: c.kind for c in types.columns(legacy=False)[0]}
    assert columns == {"a": "text", "b": "float", "c": "text", "d": "text"}


def test_a_batch_of_nulls_leaves_a_columns_type_open(tmp_path):
    """A column NULL in the first rows read (a first record checked alone, as one with an escaped
    line break is) keeps DATETIME or DATE when the values come later: types do not depend on how
    rows are batched."""
    from types import SimpleNamespace

    from core.rejects import Rejects
    from services.database_state import service
    from services.database_state.columns import ColumnTypes

    types = ColumnTypes(["expires", "verified"])
    types.add_batch([[b"NULL", b"NULL"]] * 3)
    types.add_batch([[b"2015-01-02 10:00:00", b"2016-02-03"], [b"NULL", b"NULL"]])
    assert {c.name: c.kind for c in types.columns(legacy=False)[0]} == {
        "expires": "datetime",
        "verified": "date",
    }

    rows = [b"id\tstate\texpires", b"1\ta\\\nb\tNULL"]
    rows += [b"%d\tx\t2015-01-0%d 10:00:00" % (i, i % 9 + 1) for i in range(2, 1000)]
    path = tmp_path / "dump.sql"
    path.write_bytes(b"\n".join(rows) + b"\n")
    settings = SimpleNamespace(DUMP_MAX_RECORD_BYTES=128 << 20, LEGACY_SCHEMA=False)
    ctx = SimpleNamespace(settings=settings, progress=lambda f: None, should_stop=lambda: False)
    with Rejects(tmp_path / "rejects", path, 1) as rejects:
        columns, good, _, _ = service._read(path, ctx, rejects)  # type: ignore[arg-type]
    assert {c.name: c.kind for c in columns}["expires"] == "datetime" and good == 999


@pytest.mark.mysql
def test_dump_whose_first_rows_mislead_the_types_is_loaded_again_without_hanging(env, sql_backend):
    """On MySQL the load starts with the types of the first 4 MB while the read goes on; here the
    rest of the file says otherwise (an integer column holds a fraction at the end), so the
    speculative load is aborted and the dump loaded again, every time, never waiting on a lock."""
    import threading

    if sql_backend == "sqlite":
        pytest.skip("SQLite loads after the read: nothing is speculative")
    header = b"id\tuser_id\tcourse_id\tcreated\tis_active\tmode\n"
    rows = b"".join(
        b"%d\t%d\tcourse-v1:UQx+PSYC1030.1x+4T2016\t2015-01-01 00:00:00\t1\thonor\n" % (i, i)
        for i in range(1, 80_001)
    )
    for attempt in range(3):
        tail = b"".join(
            b"%d\t%d.5\tc\t2015-01-01 00:00:00\t0\taudit\n" % (90_000 + n, n) for n in range(attempt + 1)
        )
        write_dump(env.data, ENROLL, header + rows + tail)
        status: list[int] = []
        runner = threading.Thread(target=lambda status=status: status.append(env.run()), daemon=True)
        runner.start()
        runner.join(120)
        assert not runner.is_alive(), f"attempt {attempt}: the re-load hangs"
        assert status == [0]
        row = env.rows()[ENROLL]
        assert (row.state, row.rows_loaded) == (states.DONE, 80_001 + attempt)
        assert env.query("SELECT COUNT(*) FROM student_courseenrollment") == [(80_001 + attempt,)]
        assert env.query("SELECT user_id FROM student_courseenrollment WHERE id >= 90000 ORDER BY id") == [
            (n + 0.5,) for n in range(attempt + 1)
        ]
        assert [t for t in env.store.list_tables(DB) if "student" in t] == ["student_courseenrollment"]
    log = (env.state / "logs" / "ingestor.log").read_text()
    assert log.count("the first rows did not predict the table; loading again") == 3


def test_record_longer_than_the_limit_is_rejected_with_its_line_and_the_rest_loads(env):
    long_record = b"2\t" + b"x" * 60 + b"\\\n" + b"y\\\n" * 400 + b"end\n"
    write_dump(env.data, ENROLL, b"id\tv\n1\tone\n" + long_record + b"3\tthree\n")
    assert env.run(DUMP_MAX_RECORD_BYTES="1000") == 0
    assert env.query("SELECT id, v FROM student_courseenrollment ORDER BY id") == [(1, "one"), (3, "three")]
    row = env.rows()[ENROLL]
    assert (row.state, row.rows_loaded, row.rows_rejected) == (states.DONE, 2, 1)
    text = next((env.state / "rejects" / "DatabaseState").glob("*.rejects.tsv")).read_text()
    assert f"3\trecord of {len(long_record) - 1} bytes, longer than DUMP_MAX_RECORD_BYTES (1000)" in text


def test_stop_is_honoured_inside_a_record_that_spans_the_whole_file(env, sql_backend):
    """Every line ends with a backslash, so the file is one record continued to its end: reading it
    takes linear time and a stop (SIGTERM) is checked after every block, not once at the end."""
    from core.errors import Interrupted
    from core.rejects import Rejects
    from services.database_state.service import DatabaseStateService

    if sql_backend != "sqlite":
        pytest.skip("the reader is the same on both backends")
    path = write_dump(env.data, ENROLL, b"id\tv\n1\t" + b"ab\\\n" * (3 << 20) + b"x\n")
    daemon = Daemon(settings_for(env.data, env.state), foreground=False)
    service = DatabaseStateService()
    ctx = daemon.scheduler.context(service)
    seen: list[float] = []
    ctx.progress = seen.append
    ctx.should_stop = lambda: True
    with Rejects(env.state / "rejects-direct", path, 1) as rejects:
        ctx.rejects = rejects
        with pytest.raises(Interrupted, match="stopped before line"):
            service.ingest(path, ctx)
    assert seen and seen[0] < 0.5, "the stop was seen while most of the file was still unread"


def test_a_column_is_a_float_only_when_every_value_comes_back_exactly(env):
    """`1e999` would become Inf, `1e-999` 0.0 and a 30-digit decimal lose its tail in a DOUBLE/REAL:
    such a column stays text, with the dump's exact values; a column whose values all fit is one."""
    write_dump(
        env.data,
        ENROLL,
        b"id\thuge\ttiny\tlong_decimal\tbig_int\tfits\n"
        b"1\t1e999\t1e-999\t123456789012345.123456789012345\t12345678901234567\t0.25\n"
        b"2\t1.5\t2.5\t1.5\t1.5\t-1.5e10\n"
        b"3\t2\t3\t4\t5\t123456789012345\n"
        b"4\tNULL\tNULL\tNULL\tNULL\t0.000001234\n",
    )
    assert env.run() == 0
    rows = env.query(
        "SELECT huge, tiny, long_decimal, big_int, fits FROM student_courseenrollment ORDER BY id"
    )
    assert rows == [
        ("1e999", "1e-999", "123456789012345.123456789012345", "12345678901234567", 0.25),
        ("1.5", "2.5", "1.5", "1.5", -1.5e10),
        ("2", "3", "4", "5", 123456789012345.0),
        (None, None, None, None, 0.000001234),
    ]


def test_integers_a_double_cannot_hold_keep_a_column_text_when_fractions_come_later():
    from services.database_state.columns import ColumnTypes

    types = ColumnTypes(["a", "b"])
    types.add_batch([[b"12345678901234567", b"123456789012345"]])
    types.add_batch([[b"1.5", b"1.5"]])
    assert {c.name: c.kind for c in types.columns(legacy=False)[0]} == {"a": "text", "b": "float"}


def _reference_read(data: bytes) -> tuple[list, int, list[tuple[int, str, bytes]]]:
    """What the pass over a dump must find, the slow and obvious way: the line reader, every
    record split into fields, one type batch per record."""
    import io

    from services.database_state.columns import ColumnTypes
    from services.database_state.service import _reason
    from utils.tsv import iter_records, split_fields

    records = list(iter_records(io.BytesIO(data)))
    header = [f.decode() for f in split_fields(records[0][1])]
    types = ColumnTypes(header)
    good, rejected = 0, []
    for line, record in records[1:]:
        fields = split_fields(record)
        try:
            record.decode("utf-8")
            utf8 = True
        except UnicodeDecodeError:
            utf8 = False
        if len(fields) != len(header) or not utf8:
            rejected.append((line, _reason(record, len(fields), len(header)), record))
            continue
        types.add_batch([fields])
        good += 1
    return types.columns(legacy=False)[0], good, rejected


def test_the_pass_over_a_dump_finds_what_checking_every_field_finds(tmp_path, monkeypatch):
    """Most of a big dump is matched whole, run by run, against a pattern of what the types allow
    so far; this checks that it finds the same good rows, rejects (line numbers, reasons) and
    column types as splitting every record, on dumps with every quirk, read in small chunks so
    that records cross chunk and run boundaries everywhere."""
    import random
    from types import SimpleNamespace

    from core.rejects import Rejects
    from services.database_state import service

    rng = random.Random(5)
    header = b"id\tn\tf\twhen\tday\tstate\tlabel\tmaybe"

    def value(column: int, late: bool) -> bytes:
        if column == 0:
            return rng.choice([b"%d" % rng.randint(1, 10**6)] * 20 + [b"007", b"NULL", b"-3", b"x"])
        if column == 1:
            return rng.choice(
                [b"%d" % rng.randint(-99, 99), b"NULL", b"12345678901234567", b"1.5"][: 2 + 2 * late]
            )
        if column == 2:
            return rng.choice(
                [b"0.25", b"1", b"NULL", b"-1.5e10", b"0.1234567890123", b"1e999"][: 4 + 2 * late]
            )
        if column == 3:
            frac = rng.choice([b"", b".5", b".123456"][: 1 + 2 * late])
            return rng.choice([b"2015-01-02 03:04:05" + frac, b"NULL", b"2015-13-01 00:00:00"][: 2 + late])
        if column == 4:
            return rng.choice([b"2015-01-02", b"NULL", b"2015-01-02 00:00:00"][: 2 + late])
        if column == 5:
            return b"".join(
                rng.choice([b"{", b'\\\\"', b"a", b"\\\t", b"\\\n", b"\\\\", b"\xc3\xa9", b"x" * 30])
                for _ in range(rng.randint(0, 12))
            )
        if column == 6:
            return rng.choice([b"honor", b"audit", b"NULL", b"", b"y" * rng.randint(40, 300), b"a\\tb"])
        return rng.choice([b"NULL", b"NULL", b"1"][: 2 + late])

    for attempt in range(60):
        rows = []
        count = rng.randint(0, 400)
        for i in range(count):
            late = i > count * rng.random()
            fields = [value(c, late) for c in range(8)]
            odd = rng.random()
            if odd < 0.01:
                fields = fields[:-1]
            elif odd < 0.02:
                fields.append(b"extra")
            elif odd < 0.025:
                fields[6] = b"bad\xff"
            elif odd < 0.03:
                fields = [b""]
            rows.append(b"\t".join(fields))
        data = header + b"\n" + b"\n".join(rows) + rng.choice([b"\n", b""] if rows else [b"\n"])
        path = tmp_path / f"dump{attempt}.sql"
        path.write_bytes(data)
        expected_columns, expected_good, expected_rejects = _reference_read(data)
        for chunk, piece in ((4 << 20, 512 << 10), (97, 41), (1000, 300), (5000, 2000)):
            monkeypatch.setattr(service, "CHUNK_BYTES", chunk)
            monkeypatch.setattr(service, "_PIECE_BYTES", piece)
            settings = SimpleNamespace(DUMP_MAX_RECORD_BYTES=128 << 20, LEGACY_SCHEMA=False)
            ctx = SimpleNamespace(settings=settings, progress=lambda f: None, should_stop=lambda: False)
            with Rejects(tmp_path / "rejects", path, 1) as rejects:
                columns, good, bad_lines, _ = service._read(path, ctx, rejects)  # type: ignore[arg-type]
            listed = rejects.path.read_text().splitlines()[2:] if rejects.count else []
            got_rejects = sorted((int(r.split("\t")[0]), r.split("\t")[1]) for r in listed)
            assert (columns, good) == (expected_columns, expected_good), (attempt, chunk)
            assert got_rejects == [(line, reason) for line, reason, _ in expected_rejects], (attempt, chunk)
            assert bad_lines == {line for line, _, _ in expected_rejects}


def test_two_short_rows_that_read_as_one_row_of_the_right_width_are_both_rejected(tmp_path, monkeypatch):
    """`1<TAB>abc` then `def<TAB>lbl` match the row pattern as one row whose LONGTEXT-floor
    `state` holds a LF; the count of TABs shows it, and both lines are rejected."""
    from types import SimpleNamespace

    from core.rejects import Rejects
    from services.database_state import service

    monkeypatch.setattr(service, "_PIECE_BYTES", 64)
    rows = [b"%d\tstate %d\tlabel" % (i, i) for i in range(2, 22)]
    data = b"id\tstate\tlabel\n" + b"\n".join([*rows[:10], b"1\tabc", b"def\tlbl", *rows[10:]]) + b"\n"
    assert service._Checker(["id", "state", "label"], None, set()).types.row_pattern() is None  # type: ignore[arg-type]
    path = tmp_path / "dump.sql"
    path.write_bytes(data)
    settings = SimpleNamespace(DUMP_MAX_RECORD_BYTES=128 << 20, LEGACY_SCHEMA=False)
    ctx = SimpleNamespace(settings=settings, progress=lambda f: None, should_stop=lambda: False)
    with Rejects(tmp_path / "rejects", path, 1) as rejects:
        columns, good, bad_lines, _ = service._read(path, ctx, rejects)  # type: ignore[arg-type]
    assert (good, bad_lines) == (20, {12, 13})
    assert [c.kind for c in columns] == ["int", "longtext", "text"]
    listed = rejects.path.read_text().splitlines()[2:]
    assert [r.split("\t")[:2] for r in listed] == [
        ["12", "2 fields, expected 3"],
        ["13", "2 fields, expected 3"],
    ]
