"""The databases going away in the middle of a run and coming back (a real server restart).

MariaDB (the tracking table and the dump tables) is shut down cleanly, stays down for 8 s and is
started again while `run --once` works through a dump and two tracking logs; then the document
store's server (FerretDB) is killed, as in a crash, and started again. The run must end with every
file done, every row and event stored once, and exit 0. The servers are the test's own (INGESTOR_TEST_MYSQL_URL and
INGESTOR_TEST_MONGO_URL, as tests/conftest.py reads them) and are left running afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from core import states
from core.queue import TrackingQueue
from stores.documents import open_document_store
from stores.sql import open_sql_store
from tests.conftest import REPO
from tests.documents import drop_database
from tests.packages import make_package, write_large_studentmodule
from tests.test_daemon_process import environ, free_port, get_json, start, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.serial, pytest.mark.mysql, pytest.mark.mongo]

DOWN_SECONDS = 8
ROWS = 120_000
EVENTS = 15_000


def _port(url: str, default: int) -> int:
    return urlparse(url).port or default


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 1):
            return True
    except OSError:
        return False


def _scripts_env(mysql_url: str, mongo_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["MARIADB_PORT"] = str(_port(mysql_url, 3306))
    env["FERRETDB_PORT"] = str(_port(mongo_url, 27017))
    return env


def _write_log(path: Path, day: str, first: int) -> None:
    with path.open("w") as out:
        for i in range(first, first + EVENTS):
            event = {
                "username": f"u{i % 40}",
                "event_type": "play_video" if i % 3 else "problem_check",
                "time": f"{day}T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}+00:00",
                "ip": "",
                "context": {"course_id": "course-v1:UQx+R+1T", "user_id": i % 40},
                "event": json.dumps({"n": i}),
            }
            out.write(json.dumps(event) + "\n")


class Run:
    """A package of one dump and two logs, and `run --once` on the test servers."""

    def __init__(self, tmp_path: Path, mysql_url: str, mongo_url: str, unique: str) -> None:
        self.data = make_package(tmp_path / "data")
        self.org = f"R{unique}"
        self.database = f"{self.org}_X_1T"
        self.dump = f"{self.org}-X-1T-courseware_studentmodule-prod-analytics.sql"
        write_large_studentmodule((self.data / "database_state" / "latest").resolve() / self.dump, ROWS)
        logs = (self.data / "clickstream_logs" / "latest").resolve()
        self.logs = [logs / "uqx-edx-events-2015-05-29.log", logs / "uqx-edx-events-2015-05-30.log"]
        for n, path in enumerate(self.logs):
            _write_log(path, path.name[-14:-4], n * EVENTS)
        self.tracking = f"api_{unique}"
        self.prefix = f"{unique}_"
        self.env = environ(
            self.data,
            tmp_path / "var",
            mysql_url,
            self.tracking,
            MONGO_URL=mongo_url,
            DOCUMENT_DB_PREFIX=self.prefix,
            SERVICES="DatabaseState:Clickstream",
            CLICKSTREAM_HOLD_NEWEST="0",
            CLICKSTREAM_BATCH="500",
            RETRY_BACKOFF_SECONDS="3",
            MAX_ATTEMPTS="3",
        )
        self.state = tmp_path / "var"
        self.sql = open_sql_store(mysql_url, self.state)
        self.documents = open_document_store(mongo_url, self.state)
        self.queue = TrackingQueue(self.sql, database=self.tracking)

    def rows(self) -> list:
        try:
            return [r for r in self.queue.rows() if r.type == "file"]
        except Exception:  # noqa: BLE001 - the daemon may not have created the table yet, or the server is down
            return []

    def check_complete(self, proc: subprocess.Popen[bytes], timeout: float = 300) -> None:
        _, err = proc.communicate(timeout=timeout)
        log = err.decode(errors="replace")
        assert proc.returncode == 0, log[-4000:]
        rows = self.rows()
        assert sorted(r.state for r in rows) == [states.DONE] * 3, [(r.meta, r.state, r.error) for r in rows]
        (dump,) = [r for r in rows if r.meta.endswith(self.dump)]
        assert dump.rows_loaded == ROWS
        count = self.sql.query(self.database, "SELECT COUNT(*) FROM courseware_studentmodule")
        assert count == [(ROWS,)]
        db = f"{self.prefix}logs"
        assert self.documents.count(db, "clickstream") == 2 * EVENTS
        sources = [str(p) for p in self.logs]
        (total,) = self.sql.query(
            "Person_Course", "SELECT SUM(nevents) FROM person_course_day WHERE source_file IN (?, ?)", sources
        )
        assert int(total[0]) == 2 * EVENTS, "the per-day counts of both logs are written, once"
        return None

    def clean(self) -> None:
        for name in (self.database, self.tracking):
            with contextlib.suppress(Exception):  # clean-up of a test that may have failed early
                self.sql.drop_database(name)
        try:
            with self.sql.transaction("Person_Course") as cur:
                sources = [str(p) for p in self.logs]
                cur.execute("DELETE FROM person_course_day WHERE source_file IN (?, ?)", sources)
        except Exception:  # noqa: BLE001
            pass
        drop_database(self.documents, f"{self.prefix}logs")
        self.documents.close()


@pytest.fixture
def run(tmp_path, mysql_url, mongo_url, unique_name):
    package = Run(tmp_path, mysql_url, mongo_url, unique_name)
    yield package
    # pytest shows this only for a test that failed: what the daemon did, for a failure in CI.
    log = package.state / "logs" / "ingestor.log"
    if log.exists():
        print("".join(log.read_text(errors="replace").splitlines(keepends=True)[-40:]))
    subprocess.run(
        ["bash", str(REPO / "scripts" / "start_mariadb.sh")], env=_scripts_env(mysql_url, mongo_url)
    )
    subprocess.run(
        ["bash", str(REPO / "scripts" / "start_ferretdb.sh")], env=_scripts_env(mysql_url, mongo_url)
    )
    package.clean()


@pytest.mark.parametrize("moment", ["while_a_log_loads", "while_the_dump_loads"])
def test_mariadb_restarted_in_the_middle_of_a_run_then_every_file_is_done_once(
    run, mysql_url, mongo_url, moment
):
    port = _port(mysql_url, 3306)
    proc = start(run.env, "--once")

    def running(name: str) -> bool:
        return any(r.state == states.RUNNING and r.meta.endswith(name) for r in run.rows())

    try:
        name = run.logs[1].name if moment == "while_a_log_loads" else run.dump
        wait_for(lambda: running(name), timeout=120, what=f"{name} loading")
        parsed = urlparse(mysql_url)
        subprocess.run(
            [
                "mariadb-admin",
                "--protocol=TCP",
                "-h127.0.0.1",
                f"-P{port}",
                f"-u{parsed.username}",
                f"-p{parsed.password}",
                "shutdown",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        wait_for(lambda: not _answers(port), timeout=60, what="MariaDB to stop")
        time.sleep(DOWN_SECONDS)
        assert proc.poll() is None, "run --once did not end while the database was away"
        subprocess.run(
            ["bash", str(REPO / "scripts" / "start_mariadb.sh")],
            env=_scripts_env(mysql_url, mongo_url),
            check=True,
            capture_output=True,
            timeout=120,
        )
        run.check_complete(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = (run.state / "logs" / "ingestor.log").read_text(errors="replace")
    assert "tracking database unavailable" in log or "a store does not answer" in log, "said in the log"


def _pid_listening_on(port: int) -> int:
    out = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    (pid,) = {int(p) for p in re.findall(r"pid=(\d+)", out)}
    return pid


def test_ferretdb_restarted_in_the_middle_of_a_run_then_every_file_is_done_once(run, mysql_url, mongo_url):
    port = _port(run.env["INGESTOR_MONGO_URL"], 27017)
    api = free_port()
    # The resumed log looks up the owners of its duplicates once per batch, and FerretDB answers an
    # `_id: {$in: [...]}` find by reading every document of the collection (no index; a real MongoDB
    # uses the `_id` index): with batches of 500 the resumed log took 2 to 4.5 minutes at a load of
    # 10 to 13 on this machine, with 5,000 about 75 s. So fewer batches, and 10 minutes to end.
    run.env.update(INGESTOR_API_ENABLED="1", INGESTOR_API_PORT=str(api), INGESTOR_CLICKSTREAM_BATCH="5000")
    logs = {p.name for p in run.logs}

    def one_log_running_the_other_queued() -> bool:
        states_now = sorted(r.state for r in run.rows() if Path(r.path).name in logs)
        return states_now == [states.QUEUED, states.RUNNING]

    def clickstream() -> dict:
        try:
            return get_json(f"http://127.0.0.1:{api}/status")["response"]["Clickstream"]
        except OSError:
            return {}

    proc = start(run.env, "--once")
    try:
        # The store goes away while a log loads and the other still waits for it: the run cannot
        # end before the store is back (the dump alone needs no document store).
        wait_for(one_log_running_the_other_queued, timeout=120, what="a log loading, the other queued")
        # SIGKILL, a crash: on SIGTERM FerretDB keeps serving the connections it has for 3 s, and
        # a 15,000-event log loads in about that time, so both logs could end before it stopped.
        os.kill(_pid_listening_on(port), signal.SIGKILL)
        wait_for(lambda: not _answers(port), timeout=60, what="FerretDB to stop")
        waiting = wait_for(
            lambda: (s := clickstream()).get("status") == "waiting" and s,
            timeout=60,
            what="/status to say Clickstream waits for its store",
        )
        assert "does not answer" in waiting["task"], waiting
        time.sleep(DOWN_SECONDS)
        assert proc.poll() is None, "run --once did not end while the document store was away"
        subprocess.run(
            ["bash", str(REPO / "scripts" / "start_ferretdb.sh")],
            env=_scripts_env(mysql_url, mongo_url),
            check=True,
            capture_output=True,
            timeout=120,
        )
        run.check_complete(proc, timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = (run.state / "logs" / "ingestor.log").read_text(errors="replace")
    assert "a store does not answer" in log, "said in the log"


def _all_threads_stopped(pid: int) -> bool:
    """Whether every thread of `pid` is stopped (state T): `kill` returns before they all are, and
    a thread still running may answer one more request."""
    states_now = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            states_now.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
    return bool(states_now) and all(state in ("T", "t") for state in states_now)


def test_a_document_store_that_stops_answering_gives_a_transient_error_not_a_hang(mongo_url, unique_name):
    """A server that keeps its connections open but answers nothing (here: FerretDB stopped with
    SIGSTOP) ends the operation with a transient error after the socket timeout; pymongo's own
    default would wait forever. The same store works again once the server answers."""
    from core.errors import TransientError
    from stores.documents import MongoDocumentStore

    pid = _pid_listening_on(_port(mongo_url, 27017))
    store = MongoDocumentStore(mongo_url, socket_timeout_ms=2000)
    db = unique_name + "hang"
    try:
        store.insert_many(db, "c", [{"_id": 1}, {"_id": 2}])
        os.kill(pid, signal.SIGSTOP)
        try:
            wait_for(lambda: _all_threads_stopped(pid), timeout=10, what="FerretDB to stop")
            started = time.monotonic()
            with pytest.raises(TransientError, match="server unavailable"):
                store.count(db, "c")
            assert time.monotonic() - started < 60
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_for(lambda: _answers(_port(mongo_url, 27017)), timeout=60, what="FerretDB to answer again")
        assert store.count(db, "c") == 2
    finally:
        drop_database(store, db)
        store.close()


def test_a_socket_timeout_in_the_url_wins_over_the_default(mongo_url):
    from stores.documents import MongoDocumentStore

    separator = "&" if "?" in mongo_url else "?"
    store = MongoDocumentStore(mongo_url + separator + "socketTimeoutMS=1234")
    try:
        assert store.client.options.pool_options.socket_timeout == 1.234
    finally:
        store.close()
    store = MongoDocumentStore(mongo_url)
    try:
        assert store.client.options.pool_options.socket_timeout == 600
    finally:
        store.close()
