"""Deployment with Fabric 3: `fab -H ingest.example.org deploy` (then `fab -H ... status`).

The code is copied as a git archive of HEAD, the virtualenv is updated from requirements.txt, the
init.d script is installed, and the daemon is restarted. config.py on the server is never touched.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from fabric import Connection, task

APP_DIR = "/opt/optimus-ingestor"
USER = "ingestor"


@task
def deploy(c: Connection) -> None:
    """Ship HEAD, update the virtualenv, install the init script, restart."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "ingestor.tar.gz"
        subprocess.run(["git", "archive", "--format=tar.gz", "-o", str(archive), "HEAD"], check=True)
        c.put(str(archive), "/tmp/optimus-ingestor.tar.gz")
    c.sudo(f"mkdir -p {APP_DIR}")
    c.sudo(f"tar -xzf /tmp/optimus-ingestor.tar.gz -C {APP_DIR}")
    c.sudo(f"test -x {APP_DIR}/venv/bin/python || python3 -m venv {APP_DIR}/venv")
    c.sudo(f"{APP_DIR}/venv/bin/pip install -q -r {APP_DIR}/requirements.txt")
    c.sudo(f"install -m 755 {APP_DIR}/deploy/optimus-ingestor.init /etc/init.d/optimus-ingestor")
    c.sudo(f"id -u {USER} >/dev/null 2>&1 || useradd --system --home {APP_DIR} {USER}")
    c.sudo(f"chown -R {USER} {APP_DIR}")
    c.sudo("/etc/init.d/optimus-ingestor restart")


@task
def status(c: Connection) -> None:
    """The daemon's status, and the status API's answer on the server."""
    c.sudo("/etc/init.d/optimus-ingestor status", warn=True)
    c.run("curl -fsS http://127.0.0.1:8850/status", warn=True)
