"""MariaDB stopped while the daemon ingests: every endpoint keeps answering, and all recovers by
itself when the server is back (the test's own MariaDB server is stopped and restarted)."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

from stores.sql import open_sql_store
from tests.api_daemon import Daemon, copy_sample, wait_for
from tests.conftest import REPO
from tests.packages import dump_dir, write_large_studentmodule
from tests.processes import pause_while_reading

BIG = "UQx-X-1T-courseware_studentmodule-prod-analytics.sql"
ROWS = 600_000


def stop_mariadb(url: str) -> None:
    parsed = urlparse(url)
    subprocess.run(
        [
            "mariadb-admin",
            "--protocol=TCP",
            f"-h{parsed.hostname}",
            f"-P{parsed.port or 3306}",
            f"-u{parsed.username}",
            f"-p{parsed.password}",
            "shutdown",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def start_mariadb(url: str) -> None:
    env = dict(os.environ, MARIADB_PORT=str(urlparse(url).port or 3306))
    subprocess.run(["bash", str(REPO / "scripts" / "start_mariadb.sh")], check=True, env=env, timeout=300)


@pytest.mark.slow
@pytest.mark.serial
@pytest.mark.mysql
def test_endpoints_answer_503_while_mariadb_is_stopped_mid_run_then_recover_by_themselves(
    tmp_path: Path, mysql_url: str
) -> None:
    data = copy_sample(tmp_path / "data")
    big_path = dump_dir(data) / BIG
    write_large_studentmodule(big_path, ROWS)
    tracking = f"api_{uuid.uuid4().hex[:8]}"
    admin = open_sql_store(mysql_url, tmp_path / "admin")
    before = set(admin.list_databases())
    settings = {
        "SQL_URL": mysql_url,
        "TRACKING_DATABASE": tracking,
        "LEASE_SECONDS": "6",
        "RETRY_BACKOFF_SECONDS": "1",
        "MAX_ATTEMPTS": "10",
    }
    daemon = Daemon(data, tmp_path / "var", settings).start()
    assert daemon.proc is not None
    pid = daemon.proc.pid
    stopped = False
    try:
        # Held (SIGSTOP, not timing) inside the large dump's first read, under half of it: the
        # files before it come first (minutes on a loaded machine; seconds for the dump itself on
        # a quiet one). MariaDB is stopped while the daemon is held, so the outage falls mid-file.
        position = pause_while_reading(pid, big_path)
        assert position < big_path.stat().st_size // 2, "held in the first half of the dump"
        try:
            stop_mariadb(mysql_url)
            stopped = True
        finally:
            os.kill(pid, signal.SIGCONT)

        def unavailable() -> bool:
            return daemon.get("/api/v1/services").status == 503

        wait_for(unavailable, timeout=60, what="reads to say the tracking database is away")
        for path in (
            "/",
            "/status",
            "/api/v1/services",
            "/api/v1/summary",
            "/api/v1/files",
            "/api/v1/files/1",
        ):
            answer = daemon.get(path)
            assert answer.status == 503, path
            error = answer.json()["error"]
            assert (
                error["code"] == "tracking_db_unavailable"
                and "tracking database unavailable" in error["message"]
            )
            assert ":ingestor@" not in answer.body.decode()
        health = daemon.get("/healthz")
        assert health.status == 200
        assert health.json()["degraded"] is True and "tracking database" in health.json()["problems"][0]
        ready = daemon.get("/readyz")
        assert ready.status == 503 and ready.json()["checks"]["tracking_database"] != "ok"
        assert "tracking_database" in ready.json()["error"]["message"]
        assert ready.json()["checks"]["document_store"] == "ok"
        metrics = daemon.get("/metrics")
        assert metrics.status == 200 and "ingestor_tracking_database_up 0.0" in metrics.body.decode()
        page = daemon.get("/ui")
        assert page.status == 503 and "tracking database unavailable" in page.body.decode()
        assert daemon.request("/api/v1/scan", method="POST").status == 401  # writes still checked

        start_mariadb(mysql_url)
        stopped = False
        wait_for(lambda: daemon.get("/api/v1/services").status == 200, timeout=60, what="reads to recover")
        wait_for(lambda: daemon.get("/readyz").status == 200, timeout=30, what="readiness to recover")

        listed = daemon.get("/api/v1/files?service=DatabaseState&limit=1000").json()["files"]
        (big_id,) = [f["id"] for f in listed if f["path"].endswith(BIG)]

        def big_finished() -> dict | bool:
            answer = daemon.get(f"/api/v1/files/{big_id}").json()
            return answer["state"] in ("done", "failed") and answer

        big = wait_for(big_finished, timeout=900, what="the large dump to be loaded after the outage")
        # Loaded once, whole, by a later attempt: the outage interrupted the first one mid-file.
        assert big["state"] == "done" and big["rows_loaded"] == ROWS and big["rows_rejected"] == 0
        assert big["attempts"] >= 2
        after = open_sql_store(mysql_url, tmp_path / "after")  # a new connection to the restarted server
        table = after.query("UQx_X_1T", "SELECT COUNT(*), COUNT(DISTINCT id) FROM courseware_studentmodule")
        assert tuple(table[0]) == (ROWS, ROWS)
        assert wait_for(daemon.settled, timeout=300, what="everything to settle")
        assert daemon.get("/healthz").json()["degraded"] is False
    finally:
        if stopped:
            start_mariadb(mysql_url)
        daemon.stop()
        admin = open_sql_store(mysql_url, tmp_path / "admin")
        for name in set(admin.list_databases()) - before:
            admin.drop_database(name)
