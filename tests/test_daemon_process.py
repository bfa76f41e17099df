"""The real daemon as a process: the status API end to end, SIGTERM, and a SIGKILL crash + restart."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from core import states
from core.queue import TrackingQueue
from stores.sql import open_sql_store
from tests.conftest import REPO
from tests.packages import AUTH_USER_HEADER, dump_dir, make_package, write_dump, write_large_studentmodule

BIG = "UQx-X-1T-courseware_studentmodule-prod-analytics.sql"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environ(data, state, sql_url="sqlite", tracking="api", **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGESTOR_")}
    settings = {
        "DATA_PATHS": str(data),
        "STATE_DIR": str(state),
        "SQL_URL": sql_url,
        "TRACKING_DATABASE": tracking,
        "HEARTBEAT_SECONDS": "1",
        "LEASE_SECONDS": "30",
        "API_ENABLED": "0",
        **extra,
    }
    env.update({f"INGESTOR_{k}": v for k, v in settings.items()})
    return env


def start(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(REPO / "ingestor.py"), "run", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def wait_for(predicate, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_daemon_serves_status_until_every_file_is_done_then_stops_on_sigterm(tmp_path):
    data = make_package(tmp_path / "data")
    write_dump(
        data,
        "UQx-PSYC1030.1x-4T2016-auth_user-prod-analytics.sql",
        AUTH_USER_HEADER + b"1\tada\tada@example.org\t0\t1\tNULL\t2014-12-01 09:00:00\n3\tbad\n",
    )
    write_dump(
        data,
        "UQx-PSYC1030.1x-4T2016-student_courseenrollment-prod-analytics.sql",
        b"id\tuser_id\tcourse_id\tcreated\tis_active\tmode\n1\t1\tc\t2015-01-01 00:00:00\t1\thonor\n",
    )
    port = free_port()
    proc = start(environ(data, tmp_path / "var", API_ENABLED="1", API_PORT=str(port), SCAN_INTERVAL="3600"))
    try:
        base = f"http://127.0.0.1:{port}"

        def settled():
            try:
                status = get_json(base + "/status")["response"]["DatabaseState"]
            except OSError:
                return None
            return status if status["files"]["done"] == 2 and status["tasksleft"] == 0 else None

        status = wait_for(settled, what="both files done in /status")
        assert set(status) >= {"name", "status", "task", "file", "startdate", "lastcompletedate", "tasksleft"}
        assert (status["name"], status["rows_loaded"], status["rows_rejected"]) == ("DatabaseState", 2, 1)
        assert status["lastcompletedate"]
        assert get_json(base + "/")["response"]["DatabaseState"]["tasksleft"] == 0
        assert get_json(base + "/healthz")["ok"] is True
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log_dir = tmp_path / "var" / "logs"
    assert (log_dir / "ingestor.log").exists() and (log_dir / "DatabaseState.log").exists()


def test_second_daemon_on_the_same_state_directory_is_refused(tmp_path):
    data = make_package(tmp_path / "data")
    env = environ(data, tmp_path / "var", SCAN_INTERVAL="3600")
    first = start(env)
    try:
        wait_for(lambda: (tmp_path / "var" / "ingestor.pid").exists(), what="pid file")
        time.sleep(0.5)
        second = start(env, "--once")
        _, err = second.communicate(timeout=30)
        assert second.returncode == 1 and b"another ingestor" in err
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)


def table_digest(store, database: str, table: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    rows = store.query(database, f"SELECT * FROM {store.quote(table)} ORDER BY id")
    for row in rows:
        digest.update(repr(tuple(str(v) for v in row)).encode())
    return len(rows), digest.hexdigest()


@pytest.mark.slow
def test_sigkill_in_the_middle_of_a_large_file_then_restart_gives_the_tables_of_an_uninterrupted_run(
    tmp_path, sql_backend, unique_name
):
    data = make_package(tmp_path / "data")
    write_large_studentmodule(dump_dir(data) / BIG, 300_000)
    write_dump(
        data,
        "UQx-X-1T-auth_user-prod-analytics.sql",
        AUTH_USER_HEADER + b"1\tada\tada@example.org\t0\t1\tNULL\t2014-12-01 09:00:00\n",
    )
    store = open_sql_store(sql_backend, tmp_path / "var")
    tracking = f"api_{unique_name}"
    try:
        # The reference: an uninterrupted run.
        reference_env = environ(data, tmp_path / "ref", sql_backend, f"{tracking}_ref")
        assert (
            subprocess.run(
                [sys.executable, "ingestor.py", "run", "--once"],
                env=reference_env,
                cwd=REPO,
                capture_output=True,
                timeout=300,
            ).returncode
            == 0
        )
        ref_store = open_sql_store(sql_backend, tmp_path / "ref")
        expected = {
            t: table_digest(ref_store, "UQx_X_1T", t) for t in ("courseware_studentmodule", "auth_user")
        }
        assert expected["courseware_studentmodule"][0] == 300_000
        if sql_backend != "sqlite":
            store.drop_database("UQx_X_1T")

        env = environ(data, tmp_path / "var", sql_backend, tracking)
        queue = TrackingQueue(store, database=tracking)
        proc = start(env, "--once")

        def big_is_loading():
            try:
                rows = [r for r in queue.rows() if r.meta.endswith(BIG)]
            except Exception:  # noqa: BLE001 - the daemon may not have created the table yet
                return None
            return rows and rows[0].state == states.RUNNING and rows[0].progress > 0

        wait_for(big_is_loading, timeout=120, what="the large file to be half-way")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        (killed,) = [r for r in queue.rows() if r.meta.endswith(BIG)]
        assert killed.state == states.RUNNING, "the kill happened while the file was loading"

        restarted = subprocess.run(
            [sys.executable, "ingestor.py", "run", "--once"],
            env=env,
            cwd=REPO,
            capture_output=True,
            timeout=300,
        )
        assert restarted.returncode == 0, restarted.stderr.decode()[-2000:]
        got = {t: table_digest(store, "UQx_X_1T", t) for t in expected}
        assert got == expected
        (row,) = [r for r in queue.rows() if r.meta.endswith(BIG)]
        assert (row.state, row.rows_loaded, row.attempts) == (states.DONE, 300_000, 2)
        assert (
            not [t for t in store.list_tables("UQx_X_1T") if t.endswith("__load")] or sql_backend == "sqlite"
        )
    finally:
        if sql_backend != "sqlite":
            for name in ("UQx_X_1T", tracking, f"{tracking}_ref"):
                store.drop_database(name)


def test_start_status_stop_run_it_as_a_background_daemon(tmp_path):
    data = make_package(tmp_path / "data")
    env = environ(data, tmp_path / "var", SCAN_INTERVAL="3600")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(REPO / "ingestor.py"), *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert cli("start").returncode == 0
    try:
        wait_for(lambda: cli("status").returncode == 0, what="the daemon to report running")
        assert json.loads(cli("status", "--json").stdout)["running"] is True
        assert "already running" in cli("start").stdout
    finally:
        stopped = cli("stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert cli("status").returncode == 1


def write_large_log(path, events: int) -> None:
    """A gzipped tracking log of `events` events of 300 users in two courses."""
    import gzip

    with gzip.open(path, "wb", compresslevel=1) as out:
        for n in range(events):
            course = "course-v1:UQx+BIG+1T" if n % 2 else "UQx/BIG/2T"
            out.write(
                json.dumps(
                    {
                        "username": f"u{n % 300}",
                        "event_type": ("play_video", "seq_goto", "problem_check")[n % 3],
                        "event_source": "browser",
                        "event": json.dumps({"n": n}),
                        "ip": f"1.2.{n % 250}.{n % 200}",
                        "context": {"course_id": course, "user_id": n % 300, "path": "/event"},
                        "time": f"2015-05-{10 + n % 20:02d}T{n % 24:02d}:{n % 60:02d}:{n % 59:02d}.{n % 999999:06d}+00:00",
                        "page": "https://courses.edx.org/courses/x/courseware",
                        "agent": "Mozilla/5.0 (X11)" * 5,
                    }
                ).encode()
                + b"\n"
            )


def clickstream_state(docs, db, store) -> tuple:
    ids = sorted(str(d["_id"]) for d in docs.find(db, "clickstream", {}, projection={"_id": 1}))
    days = sorted(
        tuple(str(v) for v in r)
        for r in store.query(
            "Person_Course",
            "SELECT course_id, user_id, day, nevents, nplay_video, nproblem_check, first_event, "
            "last_event FROM person_course_day",
        )
    )
    return len(ids), hashlib.sha256("".join(ids).encode()).hexdigest(), days


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)])
def test_sigkill_half_way_through_a_large_tracking_log_then_restart_gives_the_same_collection(
    tmp_path, backend, unique_name, request
):
    from stores.documents import open_document_store
    from tests.documents import drop_database

    mongo = "sqlite" if backend == "sqlite" else request.getfixturevalue("mongo_url")
    # enough that the kill lands half way: the embedded store loads 120,000 such events in a few
    # seconds since the compiled first pass
    events = 200_000 if backend == "sqlite" else 40_000
    data = make_package(tmp_path / "data")
    logs = (data / "clickstream_logs" / "latest").resolve()
    write_large_log(logs / "uqx-edx-events-2015-05-30.log.gz", events)
    common = {
        "MONGO_URL": mongo,
        "CLICKSTREAM_HOLD_NEWEST": "0",
        "SERVICES": "Clickstream",
        "CLICKSTREAM_BATCH": "2000",
    }
    results = {}
    for run, killed in (("ref", False), ("crash", True)):
        prefix = f"{unique_name}{run}"
        env = environ(data, tmp_path / run, "sqlite", "api", DOCUMENT_DB_PREFIX=prefix, **common)
        docs = open_document_store(mongo, tmp_path / run)
        store = open_sql_store("sqlite", tmp_path / run)
        try:
            if killed:
                proc = start(env, "--once")
                queue = TrackingQueue(store)

                def half_way(queue=queue):
                    try:
                        rows = queue.rows()
                    except Exception:  # noqa: BLE001 - the daemon may not have created the table yet
                        return None
                    return rows and rows[0].state == states.RUNNING and rows[0].progress > 0.3

                wait_for(half_way, timeout=240, what="the log to be a third loaded")
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                partial = docs.count(f"{prefix}logs", "clickstream")
                assert 0 < partial < events, "killed in the middle of the file"
            done = subprocess.run(
                [sys.executable, "ingestor.py", "run", "--once"],
                env=env,
                cwd=REPO,
                capture_output=True,
                timeout=600,
            )
            assert done.returncode == 0, done.stderr.decode()[-2000:]
            results[run] = clickstream_state(docs, f"{prefix}logs", store)
        finally:
            drop_database(docs, f"{prefix}logs")
            docs.close()
    assert results["ref"][0] == events
    assert results["crash"] == results["ref"]


def test_status_api_shows_a_tracking_logs_progress_then_its_counts(tmp_path):
    data = make_package(tmp_path / "data")
    logs = (data / "clickstream_logs" / "latest").resolve()
    # Large enough that the load lasts a few seconds of polling even on a fast path (60,000 events,
    # enough before the compiled first pass, once loaded between two polls on a busy machine).
    write_large_log(logs / "uqx-edx-events-2015-05-30.log.gz", 200_000)
    (logs / "uqx-edx-events-2015-05-31.log").write_bytes(
        b'{"username": "x", "time": "2015-05-31T00:00:00+00:00"}\nnot json\n'
    )
    port = free_port()
    env = environ(
        data,
        tmp_path / "var",
        API_ENABLED="1",
        API_PORT=str(port),
        SCAN_INTERVAL="3600",
        SERVICES="Clickstream",
        CLICKSTREAM_HOLD_NEWEST="0",
        CLICKSTREAM_BATCH="1000",
    )
    proc = start(env)
    try:
        url = f"http://127.0.0.1:{port}/status"

        def clickstream():
            try:
                return get_json(url)["response"]["Clickstream"]
            except OSError:
                return None

        seen = wait_for(
            lambda: (s := clickstream()) and s["progress"] and 0 < s["progress"] < 1 and s,
            timeout=120,
            what="a progress figure while the log loads",
        )
        assert seen["status"] == "running" and seen["file"].endswith(".log.gz")
        final = wait_for(
            lambda: (s := clickstream()) and s["files"]["done"] == 2 and s, timeout=300, what="both logs done"
        )
        assert (final["rows_loaded"], final["rows_rejected"], final["progress"]) == (200_001, 1, None)
        assert final["country"].startswith("off")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def test_sighup_rereads_the_configuration_and_applies_it_to_the_next_scan(tmp_path):
    data = make_package(tmp_path / "data")
    logs = (data / "clickstream_logs" / "latest").resolve()
    for day in ("2015-05-29", "2015-05-30"):
        (logs / f"uqx-edx-events-{day}.log").write_bytes(
            json.dumps({"username": "u", "time": f"{day}T01:00:00+00:00"}).encode() + b"\n"
        )
    config = tmp_path / "config.py"
    config.write_text("CLICKSTREAM_HOLD_NEWEST = True\n")
    env = environ(data, tmp_path / "var", SCAN_INTERVAL="3600", SERVICES="Clickstream")
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "ingestor.py"), "-c", str(config), "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    queue = TrackingQueue(open_sql_store("sqlite", tmp_path / "var"))

    def done() -> int:
        try:
            return len([r for r in queue.rows() if r.state == states.DONE])
        except Exception:  # noqa: BLE001 - the daemon may not have created the table yet
            return 0

    try:
        wait_for(lambda: done() == 1, what="the first scan's file")
        time.sleep(1)
        assert done() == 1, "the newest log is held back"
        config.write_text("CLICKSTREAM_HOLD_NEWEST = False\n")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: done() == 2, timeout=60, what="the held-back log after SIGHUP")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
