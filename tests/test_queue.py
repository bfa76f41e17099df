"""The tracking table as a queue, on SQLite and on MariaDB (where two daemons may share it)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from core import states
from core.queue import LeaseLost, TrackingQueue


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2015, 6, 7, 12, 0, 0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def queue(sql_store, unique_name):
    # Each test gets its own tracking database on the shared server.
    clock = Clock()
    q = TrackingQueue(sql_store, clock, database=f"api_{unique_name}")
    q.ensure_schema()
    q.clock_ = clock  # type: ignore[attr-defined]
    return q


def test_offer_tracks_a_file_once_and_requeues_a_changed_version(queue):
    assert queue.offer("DatabaseState", "/d/a.sql", "10:1") == "new"
    assert queue.offer("DatabaseState", "/d/a.sql", "10:1") == "same"
    job = queue.claim("w1", ["DatabaseState"])
    queue.complete(job, 5, 1)
    assert queue.offer("DatabaseState", "/d/a.sql", "10:1") == "same"
    assert queue.offer("DatabaseState", "/d/a.sql", "12:2") == "changed"
    rows = queue.rows()
    assert len(rows) == 1, "one row per (service, file), as the dashboards count them"
    assert (rows[0].state, rows[0].rows_loaded, rows[0].fingerprint) == (states.QUEUED, 0, "12:2")


def test_contract_columns_are_set_as_the_dashboards_read_them(queue):
    queue.offer("DatabaseState", "/d/a.sql", "1:1")
    job = queue.claim("w1", ["DatabaseState"])
    queue.complete(job, 3, 0)
    (row,) = queue.store.query(
        queue.database,
        "SELECT service_name, type, meta, started, completed, created, started_date, completed_date "
        "FROM ingestor",
    )
    assert row[:5] == ("DatabaseState", "file", "/d/a.sql", 1, 1)
    assert all(value is not None for value in row[5:])


def test_claim_takes_each_file_once_and_in_order(queue):
    for name in ("a", "b", "c"):
        queue.offer("S", f"/d/{name}", "1")
    claimed = [queue.claim("w", ["S"]) for _ in range(4)]
    assert [j.path if j else None for j in claimed] == ["/d/a", "/d/b", "/d/c", None]


def test_transitions_check_the_lease_holder(queue):
    queue.offer("S", "/d/a", "1")
    job = queue.claim("w1", ["S"])
    queue.clock_.advance(60)
    assert queue.sweep(lease_seconds=30, max_attempts=3) == 1
    with pytest.raises(LeaseLost):
        queue.complete(job, 1, 0)
    (row,) = queue.rows()
    assert row.state == states.QUEUED and "lease expired" in row.error


def test_requeues_file_abandoned_by_dead_worker_and_fails_it_after_max_attempts(queue):
    queue.offer("S", "/d/a", "1")
    for attempt in range(1, 4):
        job = queue.claim(f"w{attempt}", ["S"])
        assert job is not None and job.attempts == attempt
        queue.sweep(lease_seconds=30, max_attempts=3, dead_workers=[job.worker])
    (row,) = queue.rows()
    assert row.state == states.FAILED
    assert "died while ingesting" in row.error and "gave up after 3 attempts" in row.error


def test_heartbeat_keeps_the_lease(queue):
    queue.offer("S", "/d/a", "1")
    job = queue.claim("w1", ["S"])
    for _ in range(5):
        queue.clock_.advance(20)
        queue.heartbeat(job, 0.5)
    assert queue.sweep(lease_seconds=30, max_attempts=3) == 0
    assert queue.rows()[0].progress == 0.5


def test_release_with_backoff_delays_the_next_claim(queue):
    queue.offer("S", "/d/a", "1")
    job = queue.claim("w1", ["S"])
    queue.release(job, "database restarting", delay=30)
    assert queue.claim("w1", ["S"]) is None
    assert queue.seconds_until_due(["S"]) == pytest.approx(30)
    queue.clock_.advance(31)
    again = queue.claim("w1", ["S"])
    assert again is not None and again.attempts == 2


def test_retry_requeues_failed_files_with_fresh_attempts(queue):
    queue.offer("S", "/d/a", "1")
    queue.fail(queue.claim("w1", ["S"]), "bad")
    assert queue.retry_failed() == 1
    row = queue.rows()[0]
    assert (row.state, row.attempts) == (states.QUEUED, 0)


def test_save_run_rows_record_derived_runs(queue):
    started = queue.clock_()
    queue.record_run("PersonCourse", started)
    (row,) = queue.rows()
    assert (row.type, row.meta, row.state) == ("save_run", "", states.DONE)
    assert queue.last_run_started("PersonCourse") == started


@pytest.mark.mysql
def test_two_competing_workers_never_claim_the_same_file(mysql_url, tmp_path, unique_name):
    from stores.sql import open_sql_store

    store = open_sql_store(mysql_url, tmp_path)
    try:
        setup = TrackingQueue(store, database=f"api_{unique_name}")
        setup.ensure_schema()
        for i in range(120):
            setup.offer("S", f"/d/{i:03d}", "1")
        claimed: dict[str, list[str]] = {"w1": [], "w2": []}
        # Each worker holds its first file until the other has claimed one too: on a loaded machine
        # one thread could otherwise drain the queue before the other starts.
        both_started = threading.Barrier(2, timeout=60)

        def work(worker: str) -> None:
            queue = TrackingQueue(open_sql_store(mysql_url, tmp_path), database=f"api_{unique_name}")
            while (job := queue.claim(worker, ["S"])) is not None:
                claimed[worker].append(job.path)
                if len(claimed[worker]) == 1:
                    both_started.wait()
                queue.complete(job, 1, 0)

        threads = [threading.Thread(target=work, args=(w,)) for w in claimed]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        everything = claimed["w1"] + claimed["w2"]
        assert sorted(everything) == [f"/d/{i:03d}" for i in range(120)]
        assert len(set(everything)) == 120
        assert claimed["w1"] and claimed["w2"], "both workers got work"
        assert all(r.state == states.DONE for r in setup.rows())
    finally:
        store.drop_database(f"api_{unique_name}")


def test_completion_commits_the_files_derived_rows_in_the_same_transaction(queue, sql_store, unique_name):
    other = f"agg_{unique_name}"
    with sql_store.transaction(other) as cur:
        cur.execute("CREATE TABLE per_day (source TEXT, n INTEGER)")
    queue.offer("S", "/d/a", "1")
    job = queue.claim("w1", ["S"])

    def writes(cur, qualify):
        cur.execute(f"INSERT INTO {qualify(other, 'per_day')} VALUES (?, ?)", ("/d/a", 3))

    assert queue.complete(job, 3, 0, writes=writes, attach=(other,))
    assert sql_store.query(other, "SELECT source, n FROM per_day") == [("/d/a", 3)]

    queue.offer("S", "/d/b", "1")
    job = queue.claim("w1", ["S"])

    def failing(cur, qualify):
        cur.execute(f"INSERT INTO {qualify(other, 'per_day')} VALUES (?, ?)", ("/d/b", 1))
        raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        queue.complete(job, 1, 0, writes=failing, attach=(other,))
    assert sql_store.query(other, "SELECT COUNT(*) FROM per_day") == [(1,)], "nothing half-written"
    assert {r.meta: r.state for r in queue.rows()}["/d/b"] == states.RUNNING


def test_same_content_under_another_name_is_recorded_as_a_duplicate(queue):
    queue.offer("S", "/d/a.log", "1")
    queue.offer("S", "/d/copy-of-a.log", "1")
    first = queue.claim("w1", ["S"])
    assert queue.complete(first, 10, 0, content_hash="abc", dedupe=True)
    second = queue.claim("w1", ["S"])
    ran = []
    assert not queue.complete(
        second, 10, 0, content_hash="abc", dedupe=True, writes=lambda c, q: ran.append(1)
    )
    rows = {r.meta: r for r in queue.rows()}
    assert (rows["/d/copy-of-a.log"].state, rows["/d/copy-of-a.log"].duplicate_of) == (
        states.DUPLICATE,
        first.id,
    )
    assert rows["/d/copy-of-a.log"].rows_loaded == 0 and not ran


def test_a_failed_file_does_not_look_like_the_current_file_on_the_dashboards(queue):
    queue.offer("DatabaseState", "/d/a.sql", "1:1")
    queue.offer("DatabaseState", "/d/b.sql", "1:1")
    queue.fail(queue.claim("w1", ["DatabaseState"]), "bad file")
    queue.sweep(lease_seconds=60, max_attempts=1, dead_workers=[queue.claim("w2", ["DatabaseState"]).worker])
    rows = queue.store.query(
        queue.database, "SELECT meta, state, started, completed FROM ingestor ORDER BY id"
    )
    assert [tuple(r) for r in rows] == [
        ("/d/a.sql", states.FAILED, 0, 0),
        ("/d/b.sql", states.FAILED, 0, 0),
    ], "failed is started=0, completed=0 (remaining), as the contract says"


def test_a_gzipped_log_keeps_meta_ending_in_its_date_and_its_real_path_beside(queue):
    path = "/d/clickstream_logs/2015-06-01/uqx-edx-events-2015-05-30.log.gz"
    queue.offer("Clickstream", path, "1:1")
    job = queue.claim("w1", ["Clickstream"])
    assert job.path == path, "the worker reads the real file"
    queue.complete(job, 1, 0)
    (meta,) = queue.store.query(queue.database, "SELECT meta FROM ingestor")[0]
    assert datetime.strptime(meta.replace(".log", "")[-10:], "%Y-%m-%d") == datetime(2015, 5, 30)
    assert queue.rows()[0].path == path
    assert queue.offer("Clickstream", path, "1:1") == "same", "found again by its real path"


def test_an_existing_tracking_table_gets_the_new_columns(queue):
    with queue.store.transaction(queue.database) as cur:
        cur.execute("DROP TABLE ingestor")
        cur.execute(
            "CREATE TABLE ingestor (id INTEGER PRIMARY KEY AUTO_INCREMENT, service_name VARCHAR(64) NOT NULL, "
            "type VARCHAR(16) NOT NULL DEFAULT 'file', meta TEXT NOT NULL, path_key CHAR(64) NOT NULL, "
            "started INTEGER NOT NULL DEFAULT 0, completed INTEGER NOT NULL DEFAULT 0, created DATETIME NULL, "
            "started_date DATETIME NULL, completed_date DATETIME NULL, state VARCHAR(16) NOT NULL, "
            "attempts INTEGER NOT NULL DEFAULT 0, error TEXT NULL, worker VARCHAR(255) NULL, "
            "heartbeat DATETIME NULL, not_before DATETIME NULL, fingerprint VARCHAR(128) NULL, "
            "content_hash VARCHAR(64) NULL, version INTEGER NOT NULL DEFAULT 1, "
            "rows_loaded BIGINT NOT NULL DEFAULT 0, rows_rejected BIGINT NOT NULL DEFAULT 0, "
            "progress DOUBLE NOT NULL DEFAULT 0, duplicate_of BIGINT NULL)".replace(
                "AUTO_INCREMENT", "AUTO_INCREMENT" if queue.store.dialect == "mysql" else "AUTOINCREMENT"
            )
        )
        cur.execute(
            "INSERT INTO ingestor (service_name, meta, path_key, state) VALUES ('DatabaseState', '/d/a.sql', 'k', 'done')"
        )
    queue.ensure_schema()
    queue.ensure_schema()
    assert queue.rows()[0].path == "/d/a.sql"


@pytest.mark.parametrize("ending", ["failed by its worker", "failed by the lease sweep"])
def test_a_new_version_that_fails_queues_again_the_files_sharing_or_duplicating_its_events(queue, ending):
    # a.log first stored events that b.log also holds (b.log shares them) and c.log is a copy of a.log.
    for name in ("a", "b", "c"):
        queue.offer("Clickstream", f"/d/{name}.log", "1")
    a = queue.claim("w1", ["Clickstream"])
    assert queue.complete(a, 6, 0, content_hash="A", dedupe=True, shares=frozenset())
    b = queue.claim("w1", ["Clickstream"])
    assert queue.complete(b, 1, 0, content_hash="B", dedupe=True, shares=frozenset({"/d/a.log"}))
    c = queue.claim("w1", ["Clickstream"])
    assert not queue.complete(c, 0, 0, content_hash="A", dedupe=True, shares=frozenset())
    # A new version of a.log gives up (deletes) the events it owned, then fails.
    assert queue.offer("Clickstream", "/d/a.log", "2") == "changed"
    a2 = queue.claim("w2", ["Clickstream"])
    assert a2 is not None and a2.version == 2
    if ending == "failed by its worker":
        queue.fail(a2, "bad file")
    else:
        queue.clock_.advance(120)
        assert queue.sweep(lease_seconds=30, max_attempts=1) == 1
    rows = {r.meta: r for r in queue.rows()}
    assert rows["/d/a.log"].state == states.FAILED
    assert (rows["/d/b.log"].state, rows["/d/c.log"].state) == (states.QUEUED, states.QUEUED), (
        "the files holding a.log's events take them back"
    )
    again = [queue.claim("w3", ["Clickstream"]) for _ in range(2)]
    assert sorted(j.path for j in again if j) == ["/d/b.log", "/d/c.log"]
    assert all(j.retake for j in again if j), "queued to re-take, not as a new version"


def test_a_heartbeat_that_changes_no_value_keeps_the_lease(queue):
    # MySQL reports the rows an UPDATE changed, not those it matched: two heartbeats at the same
    # clock reading with the same progress changed nothing, and the live worker was told it had
    # lost its file (it then left it running until its own daemon's sweep returned it).
    queue.offer("S", "/d/a", "1")
    job = queue.claim("w1", ["S"])
    queue.heartbeat(job, 0.5)
    queue.heartbeat(job, 0.5)
    queue.heartbeat(job)
    (row,) = queue.rows()
    assert (row.state, row.worker) == (states.RUNNING, "w1")
    assert queue.complete(job, 1, 0)


def test_a_stale_worker_cannot_complete_a_file_another_daemon_took_and_nothing_counts_twice(
    queue, sql_store, unique_name
):
    other = f"agg_{unique_name}"
    with sql_store.transaction(other) as cur:
        cur.execute("CREATE TABLE per_day (source TEXT, n INTEGER)")

    def writes_of(n):
        def writes(cur, qualify):  # as the services do: replace the file's contribution
            cur.execute(f"DELETE FROM {qualify(other, 'per_day')} WHERE source=?", ("/d/a",))
            cur.execute(f"INSERT INTO {qualify(other, 'per_day')} VALUES (?, ?)", ("/d/a", n))

        return writes

    queue.offer("S", "/d/a", "1")
    stale = queue.claim("w1", ["S"])
    queue.clock_.advance(121)  # w1 sent no heartbeat for longer than the lease
    assert queue.sweep(lease_seconds=120, max_attempts=3, own_worker="w2") == 1
    fresh = queue.claim("w2", ["S"])
    assert fresh is not None and fresh.id == stale.id and fresh.attempts == 2

    with pytest.raises(LeaseLost):
        queue.heartbeat(stale, 0.9)  # the stale worker notices at its next heartbeat
    with pytest.raises(LeaseLost):
        queue.complete(stale, 7, 0, writes=writes_of(7), attach=(other,))
    assert sql_store.query(other, "SELECT COUNT(*) FROM per_day") == [(0,)], "the stale writes rolled back"

    assert queue.complete(fresh, 5, 0, writes=writes_of(5), attach=(other,))
    with pytest.raises(LeaseLost):
        queue.complete(stale, 7, 0, writes=writes_of(7), attach=(other,))
    with pytest.raises(LeaseLost):
        queue.fail(stale, "late")
    assert sql_store.query(other, "SELECT source, n FROM per_day") == [("/d/a", 5)]
    (row,) = queue.rows()
    assert (row.state, row.rows_loaded, row.worker) == (states.DONE, 5, "w2")


def test_a_daemons_sweep_never_returns_the_file_it_is_ingesting(queue, caplog):
    for name in ("a", "b"):
        queue.offer("S", f"/d/{name}", "1")
    ingesting = queue.claim("w1", ["S"])
    abandoned = queue.claim("w1", ["S"])  # held by w1, which no longer ingests it
    # Its own sweep: the file it is ingesting stays its own even with a heartbeat far too old;
    # the one it holds but does not ingest goes back at once, without waiting for the lease.
    with caplog.at_level("WARNING"):
        assert queue.sweep(120, 3, own_worker="w1", keep={ingesting.id}) == 1
    assert [r.getMessage() for r in caplog.records if "/d/" in r.getMessage()] == [
        "/d/b: abandoned by its worker w1 (this daemon), which no longer ingests it; back to the queue"
    ], "each file the sweep returns is named in the log with its reason"
    by_path = {r.meta: r for r in queue.rows()}
    assert (by_path["/d/a"].state, by_path["/d/a"].worker) == (states.RUNNING, "w1")
    assert by_path["/d/b"].state == states.QUEUED and "this daemon" in by_path["/d/b"].error
    queue.clock_.advance(1000)
    assert queue.sweep(120, 3, own_worker="w1", keep={ingesting.id}) == 0
    queue.heartbeat(ingesting)
    assert abandoned.id != ingesting.id
    # Another daemon judges by the lease alone.
    queue.clock_.advance(121)
    assert queue.sweep(120, 3, own_worker="w2") == 1
    assert {r.meta: r.state for r in queue.rows()}["/d/a"] == states.QUEUED


def test_a_lease_lost_after_the_transaction_first_read_is_still_seen(queue):
    # `complete` may read before it updates the row (the duplicate check). The check made when an
    # UPDATE changed no row must see the row as it is now, not as that earlier read saw it (which
    # a snapshot isolation level would give: the store sets READ COMMITTED, the check locks).
    if queue.store.dialect != "mysql":
        pytest.skip("SQLite's BEGIN IMMEDIATE keeps every other writer out of the transaction")
    queue.offer("S", "/d/a", "1")
    stale = queue.claim("w1", ["S"])
    with pytest.raises(LeaseLost), queue.store.transaction(queue.database, immediate=True) as cur:
        cur.execute("SELECT state, worker FROM ingestor").fetchall()  # an earlier read: w1 running
        queue.clock_.advance(121)
        assert queue.sweep(120, 3) == 1  # another daemon, on its own connection
        assert queue.claim("w2", ["S"]) is not None
        queue._running_update(cur, stale, "state=?", (states.DONE,))
    (row,) = queue.rows()
    assert (row.state, row.worker) == (states.RUNNING, "w2")
