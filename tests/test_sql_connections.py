"""The MySQL store's connections, on the real MariaDB: reused across transactions (heartbeats and
`/status` run one every few seconds), never shared by two threads at once, replaced transparently
when the server drops them, and a loss inside a transaction reported as a transient error."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from core.errors import TransientError
from stores.sql import open_sql_store

pytestmark = pytest.mark.mysql


@pytest.fixture
def store(mysql_url, tmp_path, unique_name):
    store = open_sql_store(mysql_url, tmp_path)
    yield store
    for suffix in ("", "_b"):
        store.drop_database(unique_name + suffix)
    store.close()


def session(store, database: str) -> tuple[int, dict[str, int]]:
    """The connection id of a transaction on `database`, and its session's database commands."""
    with store.transaction(database) as cur:
        connection = cur.execute("SELECT CONNECTION_ID()").fetchall()[0][0]
        counters = cur.execute(
            "SHOW SESSION STATUS WHERE Variable_name IN ('Com_change_db', 'Com_create_db')"
        ).fetchall()
    return int(connection), {name: int(value) for name, value in counters}


def test_heartbeat_like_transactions_reuse_one_connection_and_select_the_database_once(store, unique_name):
    first, counters = session(store, unique_name)
    assert counters == {"Com_change_db": 1, "Com_create_db": 1}
    for _ in range(20):
        assert session(store, unique_name) == (first, counters), "no new connection, no CREATE/USE"
    other, counters = session(store, unique_name + "_b")
    assert other == first and counters == {"Com_change_db": 2, "Com_create_db": 2}
    assert session(store, unique_name + "_b")[1] == counters


def test_threads_never_share_a_connection_at_once(store, unique_name):
    in_use: set[int] = set()
    seen: set[int] = set()
    lock = threading.Lock()
    problems: list[str] = []

    def work() -> None:
        for _ in range(40):
            with store.transaction(unique_name) as cur:
                connection = cur.execute("SELECT CONNECTION_ID()").fetchall()[0][0]
                with lock:
                    if connection in in_use:
                        problems.append(f"connection {connection} used by two threads")
                    in_use.add(connection)
                    seen.add(connection)
                cur.execute("SELECT SLEEP(0.001)")
                with lock:
                    in_use.discard(connection)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []
    assert 1 <= len(seen) <= 4, "at most one connection per thread working at once"


def test_connection_dropped_while_idle_is_replaced_transparently(store, mysql_url, unique_name, tmp_path):
    with store.transaction(unique_name) as cur:
        cur.execute("CREATE TABLE t (id INT)")
        cur.execute("INSERT INTO t VALUES (1)")
    idle, _ = session(store, unique_name)
    admin = open_sql_store(mysql_url, Path(tmp_path))
    admin.query(unique_name, f"KILL {idle}")  # a restart or wait_timeout does the same
    assert store.query(unique_name, "SELECT id FROM t") == [(1,)]
    assert session(store, unique_name)[0] != idle
    admin.close()


def test_database_dropped_behind_the_stores_back_is_created_again_by_the_retry(store, mysql_url, unique_name):
    with store.transaction(unique_name) as cur:
        cur.execute("CREATE TABLE t (id INT)")
    admin = open_sql_store(mysql_url, Path("."))
    admin.drop_database(unique_name)
    admin.close()
    with pytest.raises(TransientError, match="Unknown database"), store.transaction(unique_name) as cur:
        cur.execute("CREATE TABLE t2 (id INT)")
    with store.transaction(unique_name) as cur:
        cur.execute("CREATE TABLE t2 (id INT)")
    assert store.list_tables(unique_name) == ["t2"]


def test_connection_lost_inside_a_transaction_is_transient_and_the_next_one_works(
    store, mysql_url, unique_name, tmp_path
):
    admin = open_sql_store(mysql_url, Path(tmp_path))
    with pytest.raises(TransientError, match="Lost connection"), store.transaction(unique_name) as cur:
        connection = cur.execute("SELECT CONNECTION_ID()").fetchall()[0][0]
        admin.query(unique_name, f"KILL {connection}")
        cur.execute("SELECT 1")
    assert store.query(unique_name, "SELECT 2") == [(2,)]
    admin.close()
