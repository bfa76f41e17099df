"""The LSB init script run for real: installed into a temporary root, started as an unprivileged
user, `status` while it ingests, stopped in the middle of a large file, started again."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from core import registry, states
from core.queue import TrackingQueue
from stores.sql import open_sql_store
from tests.conftest import REPO, SAMPLE_DATA
from tests.deploy_support import copy_code, service_account, world_readable_dir
from tests.packages import dump_dir, make_package, write_large_studentmodule
from tests.processes import pause_while_reading, term_pending
from tests.test_daemon_process import environ, free_port, get_json, start, wait_for

BIG = "UQx-BIG-1T-courseware_studentmodule-prod-analytics.sql"
BIG_ROWS = 400_000

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="LSB init scripts are Linux only")


def daemon_processes(state_dir: Path) -> list[int]:
    """The ingestor processes running on `state_dir` (whatever started them)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "ingestor.py" in cmdline and f"STATE_DIR={state_dir}" in cmdline:
            found.append(int(entry.name))
    return found


def sql_snapshot(state_dir: Path) -> dict[str, list[tuple]]:
    store = open_sql_store("sqlite", state_dir)
    snapshot = {}
    for database in sorted(store.list_databases()):
        if database == "api":
            continue
        for table in store.list_tables(database):
            if (database, table) == ("Person_Course", "derived_course_state"):
                continue  # the derived services' bookkeeping: run times and input signatures
            rows = store.query(database, f"SELECT * FROM {store.quote(table)}")
            snapshot[f"{database}.{table}"] = sorted(tuple(str(v) for v in row) for row in rows)
    return snapshot


def done_files(state_dir: Path) -> list[tuple[str, str, str]]:
    queue = TrackingQueue(open_sql_store("sqlite", state_dir))
    return sorted(
        (r.service_name, r.path.rsplit("/", 1)[-1], r.state) for r in queue.rows() if r.type == "file"
    )


@pytest.mark.slow
def test_init_script_starts_reports_stops_mid_file_and_restarts_losing_and_doubling_nothing():
    user, python = service_account()
    with world_readable_dir("oi-init-") as root:
        home = copy_code(root / "opt" / "optimus-ingestor" / "current")
        data = root / "data"
        subprocess.run(["cp", "-a", str(SAMPLE_DATA), str(data)], check=True)
        big = dump_dir(data) / BIG
        write_large_studentmodule(big, BIG_ROWS)
        size = big.stat().st_size
        state = root / "var" / "lib" / "optimus-ingestor"
        config = root / "etc" / "optimus-ingestor" / "config.py"
        config.parent.mkdir(parents=True)
        port = free_port()
        config.write_text(
            f"DATA_PATHS = [{str(data)!r}]\nSQL_URL = 'sqlite'\nMONGO_URL = 'sqlite'\n"
            f"API_PORT = {port}\nSCAN_INTERVAL = 3600\nHEARTBEAT_SECONDS = 1\nLEASE_SECONDS = 30\n"
        )
        defaults = root / "etc" / "default" / "optimus-ingestor"
        defaults.parent.mkdir(parents=True)
        defaults.write_text(
            f"INGESTOR_HOME={home}\nINGESTOR_USER={user}\nINGESTOR_CONFIG={config}\n"
            f"INGESTOR_STATE_DIR={state}\nPYTHON={python}\nSTOP_TIMEOUT=600\n"
        )
        script = root / "etc" / "init.d" / "optimus-ingestor"
        script.parent.mkdir(parents=True)
        script.write_bytes((REPO / "deploy" / "optimus-ingestor.init").read_bytes())
        script.chmod(0o755)
        env = {k: v for k, v in os.environ.items() if not k.startswith("INGESTOR_")}
        env["OPTIMUS_INGESTOR_DEFAULTS"] = str(defaults)

        def run_init(action: str) -> subprocess.Popen[str]:
            return subprocess.Popen(
                [str(script), action],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                cwd="/",
            )

        def init(action: str) -> subprocess.CompletedProcess[str]:
            proc = run_init(action)
            out, _ = proc.communicate(timeout=900)
            return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")

        def big_state() -> str:
            # Read-only without a trace (no -wal/-shm owned by root): the daemon is stopped then.
            with sqlite3.connect(f"file:{state / 'sql' / 'api.sqlite'}?immutable=1", uri=True) as db:
                (found,) = db.execute("SELECT state FROM ingestor WHERE meta LIKE ?", (f"%{BIG}",)).fetchall()
            return str(found[0])

        def big_on_status() -> dict | None:
            try:
                status = get_json(f"http://127.0.0.1:{port}/status")["response"]["DatabaseState"]
            except OSError:
                return None
            running = status["status"] == "running" and status["file"].endswith(BIG)
            return status if running and status["progress"] is not None else None

        assert init("status").returncode == 3
        assert init("stop").returncode == 0  # stopping a stopped service is a success (LSB)
        pid = 0
        try:
            started = init("start")
            assert started.returncode == 0, started.stdout
            (pid,) = daemon_processes(state)
            assert Path(f"/proc/{pid}").stat().st_uid == int(
                subprocess.run(["id", "-u", user], capture_output=True, text=True, check=True).stdout
            )
            again = init("start")
            assert again.returncode == 0 and "already running" in again.stdout
            assert daemon_processes(state) == [pid]

            # Held inside the large dump's read (SIGSTOP, not timing: see pause_while_reading), then
            # stopped by the init script there: SIGTERM is pending when the daemon goes on, so it
            # acts on it within one 4 MB block of where it was held.
            position = pause_while_reading(pid, big)
            assert position <= size // 2, f"held at byte {position} of {size}: past the middle"
            status = init("status")
            assert status.returncode == 0 and f"running (pid {pid})" in status.stdout
            stopping = run_init("stop")
            wait_for(lambda: term_pending(pid), timeout=600, what="the init script's SIGTERM")
            os.kill(pid, signal.SIGCONT)
            stopped, _ = stopping.communicate(timeout=900)
            assert stopping.returncode == 0 and "stopped" in stopped, stopped
            assert daemon_processes(state) == []
            assert init("status").returncode == 3
            assert big_state() == states.QUEUED
            log = (state / "logs" / "ingestor.log").read_text()
            (line,) = re.findall(rf"{re.escape(BIG)}: stopped before line (\d+); back to the queue", log)
            assert 1 < int(line) < BIG_ROWS // 2 + 50_000, line

            assert init("restart").returncode == 0
            (pid,) = daemon_processes(state)
            # What someone watching with curl sees: the dump being loaded again, from the start.
            seen = wait_for(big_on_status, timeout=600, what="the large dump running on /status")
            assert 0 <= seen["progress"] < 1 and seen["tasksleft"] >= 1

            # Settled: every file done, nothing running, and each derived service that runs on new
            # input has run since its inputs last changed (the files' end alone is too early).
            derived = {
                name: cls.depends_on
                for name, cls in registry.discover().items()
                if cls.derived and cls.runs_on_new_input
            }

            def settled() -> bool:
                try:
                    services = get_json(f"http://127.0.0.1:{port}/status")["response"]
                except OSError:
                    return False
                if any(
                    s["status"] != "idle" or s["files"]["queued"] or s["files"]["running"]
                    for s in services.values()
                ):
                    return False
                for name, inputs in derived.items():
                    changed = max(
                        (services[d]["lastcompletedate"] for d in inputs if d in services), default=""
                    )
                    if name in services and services[name]["lastcompletedate"] < changed:
                        return False
                return True

            wait_for(settled, timeout=900, what="every file settled")
            assert init("force-reload").returncode == 0
        finally:
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            init("stop")
            for left in daemon_processes(state):
                os.kill(left, 9)
        assert init("status").returncode == 3

        # The same stores and outcomes as one uninterrupted run of the same package.
        reference = root / "reference"
        run = subprocess.run(
            [
                sys.executable,
                str(REPO / "ingestor.py"),
                "-c",
                str(config),
                "--set",
                f"STATE_DIR={reference}",
                "--set",
                "API_ENABLED=0",
                "run",
                "--once",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert run.returncode in (0, 1), run.stderr[-2000:]
        assert done_files(state) == done_files(reference)
        got, expected = sql_snapshot(state), sql_snapshot(reference)
        assert len(got["UQx_BIG_1T.courseware_studentmodule"]) == BIG_ROWS
        differ = sorted(t for t in got.keys() | expected.keys() if got.get(t) != expected.get(t))
        assert not differ, f"tables that differ from an uninterrupted run: {differ}"


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed here (Debian's systemd package); the unit is unchecked")
    unit = (REPO / "deploy" / "optimus-ingestor.service").read_text()
    for key in ("ProtectSystem=strict", "NoNewPrivileges=true", "PrivateTmp=true", "Restart=on-failure"):
        assert key in unit
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit
    assert (
        "ReadWritePaths=/var/lib/optimus-ingestor" in unit and "STATE_DIR=/var/lib/optimus-ingestor" in unit
    )
    # verify checks that ExecStart exists: point it at this checkout and a real Python.
    local = unit.replace("/opt/optimus-ingestor/current/venv/bin/python", sys.executable).replace(
        "/opt/optimus-ingestor/current", str(REPO)
    )
    path = tmp_path / "optimus-ingestor.service"
    path.write_text(local)
    checked = subprocess.run(
        [tool, "verify", "--man=no", str(path)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0 and not checked.stderr.strip(), checked.stderr
    broken = tmp_path / "broken" / "optimus-ingestor.service"
    broken.parent.mkdir()
    broken.write_text(local.replace("ExecStart=" + sys.executable, "ExecStart=/nonexistent/python"))
    assert (
        subprocess.run([tool, "verify", "--man=no", str(broken)], capture_output=True, timeout=60).returncode
        != 0
    )


def test_logrotate_moves_the_log_under_a_running_daemon_and_new_lines_go_to_the_new_file(tmp_path):
    tool = shutil.which("logrotate") or "/usr/sbin/logrotate"
    assert Path(tool).exists(), "logrotate missing: run scripts/install_deploy_tools.sh"
    data = make_package(tmp_path / "data")
    state = tmp_path / "var"
    logs = state / "logs"
    proc = start(environ(data, state, SCAN_INTERVAL="1"))
    try:
        log = logs / "ingestor.log"
        wait_for(
            lambda: log.exists() and log.read_text().count("scan:") >= 2, what="the daemon's first scans"
        )
        user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
        group = subprocess.run(["id", "-gn"], capture_output=True, text=True, check=True).stdout.strip()
        config = (REPO / "deploy" / "logrotate").read_text()
        config = config.replace("/var/lib/optimus-ingestor/logs", str(logs)).replace(
            "ingestor ingestor", f"{user} {group}"
        )
        conf = tmp_path / "logrotate.conf"
        conf.write_text(config)
        rotated = subprocess.run(
            [tool, "--force", "--state", str(tmp_path / "logrotate.state"), str(conf)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert rotated.returncode == 0, rotated.stderr
        old = logs / "ingestor.log.1"
        assert old.exists() and "scan:" in old.read_text()
        wait_for(
            lambda: log.exists() and "scan:" in log.read_text(), timeout=30, what="new lines in the new file"
        )
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
