"""A real daemon serving the status API on a copy of the sample package, for the API tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import REPO, SAMPLE_DATA

TOKEN = "test-token-5f0c8e1d"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def copy_sample(target: Path) -> Path:
    shutil.copytree(SAMPLE_DATA, target, symlinks=True)
    return target


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def wait_for(predicate: Callable[[], Any], timeout: float = 120, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (OSError, ValueError, KeyError):
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Daemon:
    """`ingestor.py run` as a process, with the API on a free port of 127.0.0.1."""

    data: Path
    state: Path
    settings: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INGESTOR_")}
        values = {
            "DATA_PATHS": str(self.data),
            "STATE_DIR": str(self.state),
            "SQL_URL": "sqlite",
            "MONGO_URL": "sqlite",
            "HEARTBEAT_SECONDS": "1",
            "LEASE_SECONDS": "30",
            "SCAN_INTERVAL": "3600",
            "API_ENABLED": "1",
            "API_PORT": str(self.port),
            "API_TOKEN": TOKEN,
            **self.settings,
        }
        env.update({f"INGESTOR_{k}": v for k, v in values.items()})
        return env

    def start(self) -> Daemon:
        self.state.mkdir(parents=True, exist_ok=True)
        with (self.state.parent / "daemon.stderr").open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(REPO / "ingestor.py"), "run"],
                env=self.env(),
                stdout=subprocess.DEVNULL,
                stderr=err,
                cwd=REPO,
            )
        wait_for(lambda: self.get("/healthz").status == 200, timeout=60, what="the API to answer")
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def request(
        self, path: str, method: str = "GET", token: str | None = None, headers: dict[str, str] | None = None
    ) -> Answer:
        req = urllib.request.Request(self.base + path, method=method, headers=dict(headers or {}))
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        if method == "POST":
            req.data = b""
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                return Answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, dict(exc.headers), exc.read())

    def get(self, path: str, **kwargs: Any) -> Answer:
        return self.request(path, **kwargs)

    def services(self) -> dict[str, dict[str, Any]]:
        return {s["name"]: s for s in self.get("/api/v1/services").json()["services"]}

    def settled(self) -> bool:
        """Every tracked file finished (nothing queued or running) after at least one scan."""
        answer = self.get("/api/v1/summary")
        if answer.status != 200:
            return False
        totals = answer.json()["totals"]
        return totals["files"] > 0 and totals["queued"] == 0 and totals["running"] == 0
