"""The status API of a real daemon that ingested the sample package, on SQLite and on MariaDB."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

from stores.sql import open_sql_store
from tests.api_daemon import TOKEN, Daemon, copy_sample, wait_for

FAILED_NAME = "student_languageproficiency-prod-analytics.sql.failed"
READS = (
    "/",
    "/status",
    "/api/v1/services",
    "/api/v1/summary",
    "/api/v1/files",
    "/api/v1/files?limit=1000",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/ui",
    "/ui?part=main",
)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def daemon(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One daemon per backend, settled on the sample package; on MariaDB it connects as a user of
    its own whose password is distinctive, so that the tests can look for it in every answer."""
    tmp = tmp_path_factory.mktemp(f"api-{request.param}")
    settings: dict[str, str] = {}
    admin = None
    before: set[str] = set()
    user = password = ""
    if request.param == "mysql":
        url = request.getfixturevalue("mysql_url")
        admin = open_sql_store(url, tmp / "admin")
        before = set(admin.list_databases())
        user, password = f"api{uuid.uuid4().hex[:8]}", f"Pw-{uuid.uuid4().hex}"
        with admin.transaction("mysql") as cur:
            cur.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'")
            cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{user}'@'127.0.0.1'")
        parsed = urlparse(url)
        settings = {
            "SQL_URL": f"mysql://{user}:{password}@{parsed.hostname}:{parsed.port}",
            "TRACKING_DATABASE": f"api_{uuid.uuid4().hex[:8]}",
        }
    proc = Daemon(copy_sample(tmp / "data"), tmp / "var", settings).start()
    proc.password = password  # type: ignore[attr-defined]
    try:
        wait_for(proc.settled, timeout=180, what="the sample package to be ingested")
        yield proc
    finally:
        proc.stop()
        if admin is not None:
            for name in set(admin.list_databases()) - before:
                admin.drop_database(name)
            with admin.transaction("mysql") as cur:
                cur.execute(f"DROP USER '{user}'@'127.0.0.1'")


def test_original_endpoints_keep_their_shape(daemon: Daemon) -> None:
    for path in ("/", "/status"):
        answer = daemon.get(path)
        assert answer.status == 200
        response = answer.json()["response"]
        state = response["DatabaseState"]
        assert set(state) >= {"name", "status", "task", "file", "startdate", "lastcompletedate", "tasksleft"}
        assert state["name"] == "DatabaseState" and state["tasksleft"] == 0 and state["lastcompletedate"]
        assert answer.headers["Access-Control-Allow-Origin"] == "*"


def test_services_show_counts_rows_state_and_the_last_error(daemon: Daemon) -> None:
    services = daemon.services()
    state = services["DatabaseState"]
    assert state["kind"] == "files" and state["state"] == "idle" and state["running"] is None
    assert state["counts"]["failed"] == 1 and state["counts"]["done"] >= 20 and state["counts"]["queued"] == 0
    assert state["rows_loaded"] > 0 and state["last_completed"]
    assert "exporter failed" in state["last_error"]
    assert services["Clickstream"]["rows_loaded"] > 0 and services["Clickstream"]["rows_rejected"] > 0
    assert services["Clickstream"]["extra"]["country"].startswith("off")
    derived = services["IPToCountry"]
    assert derived["kind"] == "derived" and "last_run" in derived and derived["depends_on"] == ["Clickstream"]


def test_files_come_newest_first_a_page_at_a_time_with_an_opaque_cursor(daemon: Daemon) -> None:
    everything = daemon.get("/api/v1/files?limit=1000").json()
    assert everything["next_cursor"] is None
    ids = [f["id"] for f in everything["files"]]
    assert ids == sorted(ids, reverse=True) and len(ids) >= 40
    seen: list[int] = []
    cursor = ""
    pages = 0
    while True:
        page = daemon.get(f"/api/v1/files?limit=7{'&cursor=' + cursor if cursor else ''}").json()
        seen.extend(f["id"] for f in page["files"])
        pages += 1
        if not page["next_cursor"]:
            break
        cursor = page["next_cursor"]
        assert not cursor.isdigit(), "the cursor is opaque"
    assert seen == ids and pages == -(-len(ids) // 7)
    failed = daemon.get("/api/v1/files?state=failed").json()["files"]
    assert [f["path"].endswith(FAILED_NAME) for f in failed] == [True]
    only = daemon.get("/api/v1/files?service=Clickstream&limit=1000").json()["files"]
    assert only and {f["service"] for f in only} == {"Clickstream"}


def test_bad_parameters_are_refused_with_stable_codes(daemon: Daemon) -> None:
    cases = {
        "/api/v1/files?limit=1001": (400, "bad_limit"),
        "/api/v1/files?limit=0": (400, "bad_limit"),
        "/api/v1/files?limit=x": (400, "bad_limit"),
        "/api/v1/files?state=sleeping": (400, "bad_state"),
        "/api/v1/files?cursor=not-ours": (400, "bad_cursor"),
        "/api/v1/files/999999999": (404, "file_not_found"),
        "/nothing/here": (404, "not_found"),
    }
    for path, (status, code) in cases.items():
        answer = daemon.get(path)
        assert (answer.status, answer.json()["error"]["code"]) == (status, code), path
        assert answer.json()["error"]["message"]
    answer = daemon.request("/status", method="POST")
    assert (answer.status, answer.json()["error"]["code"]) == (405, "method_not_allowed")
    answer = daemon.get("/api/v1/scan")
    assert (answer.status, answer.json()["error"]["code"]) == (405, "method_not_allowed")


def test_one_files_record_has_a_relative_path_version_attempts_and_its_rejects(daemon: Daemon) -> None:
    files = daemon.get("/api/v1/files?service=Clickstream&limit=1000").json()["files"]
    rejected = next(f for f in files if f["rows_rejected"])
    record = daemon.get(f"/api/v1/files/{rejected['id']}").json()
    assert record["path"].startswith("clickstream_logs/2015-06-01/") and not record["path"].startswith("/")
    assert record["version"] == 1 and record["attempts"] == 1 and record["state"] in ("done", "failed")
    assert record["rejects"].startswith("rejects/Clickstream/") and record["rejects"].endswith(".rejects.tsv")
    assert (daemon.state / record["rejects"]).exists()


def test_summary_counts_by_service_and_state_with_totals(daemon: Daemon) -> None:
    summary = daemon.get("/api/v1/summary").json()
    per_service = summary["services"]
    assert summary["totals"]["failed"] == 1
    assert summary["totals"]["files"] == sum(
        sum(v for k, v in counts.items() if k not in ("rows_loaded", "rows_rejected"))
        for counts in per_service.values()
    )
    assert summary["totals"]["rows_loaded"] == sum(c["rows_loaded"] for c in per_service.values())
    assert summary["queue"]["length"] == 0 and summary["queue"]["oldest_queued_seconds"] is None
    assert [f["service"] for f in summary["recent_failures"]] == ["DatabaseState"]


def test_writes_are_refused_without_the_token_and_accepted_with_it(daemon: Daemon) -> None:
    failed = daemon.get("/api/v1/files?state=failed").json()["files"][0]
    writes = [("/api/v1/scan", "POST"), ("/newdata", "GET"), (f"/api/v1/files/{failed['id']}/retry", "POST")]
    for path, method in writes:
        missing = daemon.request(path, method=method)
        assert (missing.status, missing.json()["error"]["code"]) == (401, "token_missing")
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = daemon.request(path, method=method, token=TOKEN + "x")
        assert (wrong.status, wrong.json()["error"]["code"]) == (401, "token_invalid")
        assert "Access-Control-Allow-Origin" not in wrong.headers
    assert daemon.request("/api/v1/scan", method="POST", token=TOKEN).status == 202
    assert daemon.request("/newdata", token=TOKEN).json() == {"response": {"newdata": "scan queued"}}
    retried = daemon.request(f"/api/v1/files/{failed['id']}/retry", method="POST", token=TOKEN)
    assert retried.status == 200 and retried.json()["retried"] is True
    assert (retried.json()["file"]["state"], retried.json()["file"]["attempts"]) == ("queued", 0)
    # Taken again by the daemon: an exporter-failure marker fails again, with a fresh attempt count.
    again = wait_for(
        lambda: (f := daemon.get(f"/api/v1/files/{failed['id']}").json())["state"] == "failed" and f,
        what="the retried file to be ingested again",
    )
    assert again["attempts"] == 1
    done = daemon.get("/api/v1/files?state=done&limit=1").json()["files"][0]
    refused = daemon.request(f"/api/v1/files/{done['id']}/retry", method="POST", token=TOKEN)
    assert (refused.status, refused.json()["error"]["code"]) == (409, "not_failed")


def test_no_answer_contains_a_password_or_the_token(daemon: Daemon) -> None:
    password = getattr(daemon, "password", "")
    bodies = [daemon.get(path) for path in READS]
    bodies.append(daemon.request("/api/v1/scan", method="POST", token="wrong"))
    for answer in bodies:
        text = answer.body.decode("utf-8", "replace")
        assert TOKEN not in text
        assert not password or password not in text
        assert ":ingestor@" not in text


def test_health_readiness_and_metrics(daemon: Daemon) -> None:
    health = daemon.get("/healthz").json()
    assert health["ok"] is True and health["degraded"] is False and health["problems"] == []
    ready = daemon.get("/readyz")
    assert ready.status == 200 and ready.json()["checks"] == {
        "tracking_database": "ok",
        "sql_store": "ok",
        "document_store": "ok",
    }
    metrics = daemon.get("/metrics")
    assert metrics.headers["Content-Type"].startswith("text/plain")
    text = metrics.body.decode()
    assert 'ingestor_files{service="DatabaseState",state="failed"} 1.0' in text
    assert "ingestor_tracking_database_up 1.0" in text
    assert 'ingestor_rows_loaded{service="Clickstream"}' in text
    assert 'ingestor_ingest_duration_seconds_count{service="DatabaseState"}' in text
    assert "ingestor_oldest_queued_seconds 0.0" in text
    assert 'ingestor_last_success_timestamp_seconds{service="DatabaseState"}' in text


def test_status_page_renders_every_service_and_the_failure_without_javascript(daemon: Daemon) -> None:
    page = daemon.get("/ui")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    html = page.body.decode()
    for name in daemon.services():
        assert f'data-service="{name}"' in html
    assert "exporter failed" in html and 'class="retry"' in html
    assert "<script src" not in html and "<link" not in html and "http://" not in html.split("<body>")[1]
