"""`ingestor.py status` and `ingestor.py files`: from the API while the daemon runs, from the
tracking database when it does not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.api_daemon import Daemon, copy_sample, wait_for
from tests.conftest import REPO


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "ingestor.py"), *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_status_and_files_come_from_the_api_while_the_daemon_runs_and_from_the_database_after(
    tmp_path: Path,
) -> None:
    daemon = Daemon(copy_sample(tmp_path / "data"), tmp_path / "var").start()
    env = daemon.env()
    try:
        wait_for(daemon.settled, timeout=180, what="the sample package to be ingested")
        live = cli(env, "status", "--json")
        assert live.returncode == 0, live.stderr
        picture = json.loads(live.stdout)
        assert picture["running"] is True and picture["source"] == "api"
        by_name = {s["name"]: s for s in picture["services"]}
        assert by_name["DatabaseState"]["counts"]["failed"] == 1
        plain = cli(env, "status")
        assert "service=DatabaseState state=idle" in plain.stdout and "\x1b" not in plain.stdout
    finally:
        daemon.stop()
    after = cli(env, "status", "--json")
    assert after.returncode == 1  # not running
    stored = json.loads(after.stdout)
    assert stored["source"] == "database" and stored["running"] is False
    assert {s["name"]: s["counts"] for s in stored["services"]} == {
        s["name"]: s["counts"] for s in picture["services"]
    }
    failed = cli(env, "files", "--state", "failed")
    assert failed.returncode == 0 and len(failed.stdout.splitlines()) == 1
    assert "student_languageproficiency" in failed.stdout and "exporter failed" in failed.stdout
    listed = json.loads(cli(env, "files", "--service", "Clickstream", "--json").stdout)
    assert listed and {f["service"] for f in listed} == {"Clickstream"}
    assert [f["id"] for f in listed] == sorted((f["id"] for f in listed), reverse=True)
