"""One suite for the SQL store, run against SQLite and a real MariaDB."""

from __future__ import annotations

import os
import threading

import pytest

from core.errors import TerminalError, UnsafeNameError
from stores.sql.base import Column, LoadSpec


def spool(tmp_path, text: bytes):
    path = tmp_path / "rows.tsv"
    path.write_bytes(text)
    return path


COLUMNS = [
    Column("id", "int"),
    Column("name", "text", 40),
    Column("state", "longtext", 100),
    Column("created", "datetime", 26, fractional=True),
    Column("grade", "float"),
]


def test_load_table_round_trips_escapes_nulls_and_types(sql_store, tmp_path, unique_name):
    path = spool(
        tmp_path,
        b'1\tZo\xc3\xab\t{"a": "x\\\\"y"}\t2015-01-01 10:00:00.5\t0.25\n'
        b"2\tNULL\tline\\\nnext\\\ttab\tNULL\tNULL\n",
    )
    loaded = sql_store.load_table(
        unique_name, "t1", LoadSpec(path, COLUMNS, frozenset({c.name for c in COLUMNS}))
    )
    assert loaded == 2
    rows = sql_store.query(unique_name, "SELECT id, name, state, grade FROM t1 ORDER BY id")
    assert [tuple(r) for r in rows] == [
        (1, "Zoë", '{"a": "x\\"y"}', 0.25),
        (2, None, "line\nnext\ttab", None),
    ]


def test_legacy_null_policy_keeps_the_text_null_in_text_columns(sql_store, tmp_path, unique_name):
    path = spool(tmp_path, b"1\tNULL\tNULL\tNULL\tNULL\n")
    spec = LoadSpec(path, COLUMNS, frozenset({"id", "created", "grade"}))
    sql_store.load_table(unique_name, "t2", spec)
    assert sql_store.query(unique_name, "SELECT name, state, created, grade FROM t2") == [
        ("NULL", "NULL", None, None)
    ]


def test_reload_replaces_the_table_whole(sql_store, tmp_path, unique_name):
    cols = [Column("id", "int"), Column("v", "text", 10)]
    names = frozenset({"id", "v"})
    sql_store.load_table(unique_name, "snap", LoadSpec(spool(tmp_path, b"1\ta\n2\tb\n3\tc\n"), cols, names))
    sql_store.load_table(unique_name, "snap", LoadSpec(spool(tmp_path, b"4\td\n"), cols, names))
    assert sql_store.query(unique_name, "SELECT id, v FROM snap") == [(4, "d")]
    assert [t for t in sql_store.list_tables(unique_name) if t.startswith("snap")] == ["snap"]


def test_readers_see_old_or_new_table_never_a_partial_one(sql_store, tmp_path, unique_name):
    cols = [Column("id", "int")]
    first = b"".join(b"%d\n" % i for i in range(5000))
    second = b"".join(b"%d\n" % i for i in range(20000))
    sql_store.load_table(unique_name, "big", LoadSpec(spool(tmp_path, first), cols, frozenset()))
    seen: set[int] = set()
    stop = threading.Event()

    def read():
        while not stop.is_set():
            rows = sql_store.query(unique_name, "SELECT COUNT(*) FROM big")
            seen.add(int(rows[0][0]))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        path = tmp_path / "second.tsv"
        path.write_bytes(second)
        sql_store.load_table(unique_name, "big", LoadSpec(path, cols, frozenset()))
    finally:
        stop.set()
        reader.join()
    assert seen <= {5000, 20000}
    assert sql_store.query(unique_name, "SELECT COUNT(*) FROM big") == [(20000,)]


def test_text_columns_hold_long_values_without_truncation(sql_store, tmp_path, unique_name):
    long_value = "é" * 70000
    path = spool(tmp_path, b"1\t" + long_value.encode() + b"\n")
    cols = [Column("id", "int"), Column("v", "text", len(long_value.encode()))]
    sql_store.load_table(unique_name, "wide", LoadSpec(path, cols, frozenset()))
    assert sql_store.query(unique_name, "SELECT v FROM wide")[0][0] == long_value


def test_a_value_that_does_not_fit_fails_the_load_and_keeps_the_old_table(sql_store, tmp_path, unique_name):
    cols = [Column("id", "int")]
    sql_store.load_table(unique_name, "keep", LoadSpec(spool(tmp_path, b"1\n"), cols, frozenset()))
    if sql_store.dialect == "sqlite":
        pytest.skip("SQLite stores any value in any column; nothing can fail to fit")
    with pytest.raises(TerminalError):
        sql_store.load_table(
            unique_name, "keep", LoadSpec(spool(tmp_path, b"not a number\n"), cols, frozenset())
        )
    assert sql_store.query(unique_name, "SELECT id FROM keep") == [(1,)]


@pytest.mark.parametrize("name", ["a`b", 'a"b', "a;b", "../x", "x" * 65, "", "a b"])
def test_hostile_identifiers_never_reach_sql(sql_store, tmp_path, name):
    cols = [Column("id", "int")]
    with pytest.raises(UnsafeNameError):
        sql_store.load_table(name, "t", LoadSpec(spool(tmp_path, b"1\n"), cols, frozenset()))
    with pytest.raises(UnsafeNameError):
        sql_store.load_table("okdb", name, LoadSpec(spool(tmp_path, b"1\n"), cols, frozenset()))
    with pytest.raises(UnsafeNameError):
        sql_store.load_table(
            "okdb", "t", LoadSpec(spool(tmp_path, b"1\n"), [Column(name, "int")], frozenset())
        )


@pytest.mark.mysql
def test_abort_of_a_running_background_load_leaves_no_lock_and_the_table_loads_again(
    mysql_url, tmp_path, unique_name
):
    """The speculative LOAD DATA that DatabaseState aborts ("loading again") is killed mid-load: its
    connection must not keep the staging table's metadata lock, or the drop and the re-load that
    follow wait for lock_wait_timeout (a day by default)."""
    import time

    from stores.sql import open_sql_store
    from stores.sql.mysql_load import MysqlLoad

    store = open_sql_store(mysql_url, tmp_path / "var")
    cols = [Column("id", "int"), Column("v", "text", 200)]
    big = spool(tmp_path, b"".join(b"%d\t%s\n" % (i, b"x" * 150) for i in range(150_000)))
    try:
        killed = 0
        for attempt in range(3):
            load = store.stage_load(unique_name, "t", LoadSpec(big, cols, frozenset()), background=True)
            assert isinstance(load, MysqlLoad) and load.thread is not None
            while load.thread.is_alive():  # until the server is inside the LOAD DATA
                info = store.query(
                    unique_name,
                    "SELECT info FROM information_schema.processlist WHERE id = ?",
                    (load.conn.thread_id(),),
                )
                if info and info[0][0] and info[0][0].startswith("LOAD DATA"):
                    killed += 1
                    break
                time.sleep(0.002)
            aborter = threading.Thread(target=lambda load=load: (load.abort(), load.close()), daemon=True)
            aborter.start()
            aborter.join(60)
            assert not aborter.is_alive(), f"attempt {attempt}: the abort hangs on the staging table's lock"
            small = spool(tmp_path, b"1\tone\n2\ttwo\n")
            assert store.load_table(unique_name, "t", LoadSpec(small, cols, frozenset())) == 2
            assert store.query(unique_name, "SELECT COUNT(*) FROM t") == [(2,)]
            assert store.list_tables(unique_name) == ["t"], "no staging table is left behind"
        assert killed, "the abort came while the server was loading"
    finally:
        store.drop_database(unique_name)
        store.close()


@pytest.mark.mysql
def test_a_load_sends_the_file_being_loaded_and_no_other(mysql_url, tmp_path, unique_name):
    """The file goes to the server in large packets (several here, with a small packet size), every
    byte arrives; a statement asking for another file than the one being loaded gets nothing."""
    import pymysql

    from stores.sql import mysql_load, open_sql_store

    store = open_sql_store(mysql_url, tmp_path / "var")
    cols = [Column("id", "int"), Column("v", "text", 300)]
    rows = [b"%d\t%s" % (i, b"v%d-" % i * (i % 50)) for i in range(5000)]
    path = spool(tmp_path, b"\n".join(rows) + b"\n")
    secret = tmp_path / "secret.tsv"
    secret.write_bytes(b"1\tsecret\n")
    old_packet = mysql_load._PACKET_BYTES
    mysql_load._PACKET_BYTES = 4096
    try:
        assert store.load_table(unique_name, "t", LoadSpec(path, cols, frozenset())) == 5000
        got = store.query(unique_name, "SELECT id, v FROM t ORDER BY id")
        assert [b"%d\t%s" % (i, v.encode()) for i, v in got] == rows
        conn = store.load_connection()  # type: ignore[attr-defined]
        conn.allowed_file = str(path)
        try:
            with conn.cursor() as cur:
                cur.execute(f"USE `{unique_name}`")
                with pytest.raises(pymysql.err.OperationalError, match="not the file being loaded"):
                    cur.execute("LOAD DATA LOCAL INFILE %s INTO TABLE t", (str(secret),))
                conn.rollback()
                cur.execute("SELECT COUNT(*) FROM t WHERE v = 'secret'")
                assert cur.fetchone() == (0,)
        finally:
            conn.close()
        # The other connections may send no file at all.
        with pytest.raises(TerminalError, match="local infile"), store.transaction(unique_name) as cur:
            cur.execute(f"LOAD DATA LOCAL INFILE '{secret}' INTO TABLE t")
        assert store.query(unique_name, "SELECT COUNT(*) FROM t WHERE v = 'secret'") == [(0,)]
        # A path that is not UTF-8 loads (the statement names the file by a token, not its path).
        odd = tmp_path / os.fsdecode(b"week-\xff")
        odd.mkdir()
        odd_path = odd / "dump.tsv"
        odd_path.write_bytes(b"1\tzo\xc3\xab\n2\tx\n")
        assert store.load_table(unique_name, "t2", LoadSpec(odd_path, cols, frozenset())) == 2
    finally:
        mysql_load._PACKET_BYTES = old_packet
        store.drop_database(unique_name)
        store.close()
