"""The OpenAPI document matches the server: every route is in it, and schemathesis (every check,
property-based and stateful) finds nothing against a running daemon."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api_daemon import TOKEN, Daemon, copy_sample, wait_for


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    tmp = tmp_path_factory.mktemp("openapi")
    proc = Daemon(copy_sample(tmp / "data"), tmp / "var").start()
    try:
        wait_for(proc.settled, timeout=180, what="the sample package to be ingested")
        yield proc
    finally:
        proc.stop()


def test_every_route_of_the_server_is_in_the_document(daemon: Daemon, tmp_path: Path) -> None:
    from api.app import create_app
    from core.scheduler import Scheduler
    from stores.sql import open_sql_store
    from tests.packages import settings_for

    document = daemon.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}

    settings = settings_for(tmp_path / "data", tmp_path / "var")
    scheduler = Scheduler(settings, [], open_sql_store("sqlite", tmp_path / "var"), lambda: None)  # type: ignore[arg-type, return-value]
    app = create_app(scheduler)
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = str(rule).replace("<int:file_id>", "{file_id}")
        served |= {(path, m) for m in rule.methods or () if m not in ("HEAD", "OPTIONS")}
    assert served == documented


@pytest.mark.slow
def test_schemathesis_finds_no_difference_between_the_document_and_the_server(
    daemon: Daemon, tmp_path: Path
) -> None:
    st = Path(sys.executable).parent / "st"
    result = subprocess.run(
        [
            str(st),
            "--no-color",
            "run",
            f"{daemon.base}/openapi.json",
            "--checks",
            "all",
            "-H",
            f"Authorization: Bearer {TOKEN}",
            "--max-examples",
            "30",
            "--workers",
            "1",
            "--seed",
            "20261201",
            "--request-timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout
