"""The status API: a thin facade over the tracking table and the scheduler's state.

The original's endpoints keep their shape: `GET /` and `GET /status` answer
`{"response": {<ServiceName>: {"name", "status", "task", "file", "startdate", "lastcompletedate",
"tasksleft", ...}}}`, and `GET /newdata` queues a scan (with the token). Beside them: `/api/v1/...`
(services, files, summary, scan, retry), `/healthz`, `/readyz`, `/metrics`, `/openapi.json` and the
status page `/ui`. Reads answer from a snapshot refreshed at most once a second (api/snapshot.py);
while the tracking database is away they answer 503 with the reason, and recover by themselves.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, jsonify, request

from api import guard
from api.guard import error, write
from api.metrics import CONTENT_TYPE, Metrics
from api.openapi import document
from api.snapshot import Monitor, Snapshot, Unavailable, iso
from api.ui import render_page
from core import states
from core.errors import IngestorError
from utils.paths import display

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

    from core.scheduler import Scheduler

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
_MAX_ID = 2**63 - 1
CURSOR_PATTERN = re.compile(r"c[0-9a-z]{1,13}")
SWITCH_INTERVAL = 0.0005  # seconds; see ApiThread.start


def _legacy_date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def service_status(monitor: Monitor, snap: Snapshot) -> dict[str, dict[str, Any]]:
    """The original's `response` object: one entry per configured service."""
    scheduler = monitor.scheduler
    running = {row.service_name: row for row in snap.running}
    result: dict[str, dict[str, Any]] = {}
    for service in scheduler.services:
        state = scheduler.states[service.name]
        by_state = snap.summary.get(service.name, {})
        files = {s: by_state.get(s, (0, 0, 0))[0] for s in states.ALL}
        kind = "save_run" if service.derived else "file"
        last = max(
            (
                snap.completions.get((service.name, kind, s))
                for s in (states.DONE, states.DUPLICATE, states.FAILED)
            ),
            key=lambda d: d or datetime.min,
        )
        current = running.get(service.name)
        result[service.name] = {
            "name": service.name,
            # A file whose store went away stays running in the tracking table while it waits.
            "status": state.status if current is None or state.status == "waiting" else "running",
            "task": state.task,
            "file": display(state.file) or (current.meta if current else ""),
            "startdate": _legacy_date(state.startdate),
            "lastcompletedate": _legacy_date(last),
            "tasksleft": files[states.QUEUED] + files[states.RUNNING],
            "progress": round(current.progress, 3) if current else None,
            "files": files,
            # Events/rows kept: done files, and failed files that keep what was read (truncated gzip).
            "rows_loaded": sum(by_state.get(s, (0, 0, 0))[1] for s in (states.DONE, states.FAILED)),
            "rows_rejected": sum(by_state.get(s, (0, 0, 0))[2] for s in (states.DONE, states.FAILED)),
            "last_error": state.last_error,
            **state.extra,
        }
    return result


def encode_cursor(row_id: int) -> str:
    """An opaque page cursor: `c` and the base-36 id of the last file given (clients keep it as is)."""
    digits = ""
    while True:
        row_id, rest = divmod(row_id, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[rest] + digits
        if not row_id:
            return "c" + digits


def decode_cursor(text: str) -> int | None:
    """The id a cursor stands for; None if it is not of the cursor's form (see CURSOR_PATTERN)."""
    if not CURSOR_PATTERN.fullmatch(text):
        return None
    return min(int(text[1:], 36), _MAX_ID)


def reads(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    """A read: 503 with the reason while the tracking database does not answer."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        try:
            return view(*args, **kwargs)
        except Unavailable as exc:
            return error(503, str(exc), "tracking_db_unavailable")
        except IngestorError as exc:
            return error(503, f"tracking database unavailable: {exc}", "tracking_db_unavailable")

    return wrapper


def create_app(scheduler: Scheduler, request_scan: Callable[[], None] | None = None) -> Flask:
    app = Flask("optimus_ingestor")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    monitor = Monitor(scheduler)
    metrics = Metrics(monitor)
    app.extensions["ingestor_monitor"] = monitor
    guard.install(app, lambda: scheduler.settings)
    ready_cache: dict[str, Any] = {}
    ready_lock = threading.Lock()

    def once_per_snapshot(
        key: str, build: Callable[[Snapshot], Any], content_type: str = "application/json"
    ) -> Response:
        """An answer built (JSON-encoded unless bytes, scrubbed) once per snapshot and then given out
        as the same bytes: a request on a current snapshot costs a look-up and a write."""

        def body(snap: Snapshot) -> bytes:
            value = build(snap)
            data = (
                value
                if isinstance(value, bytes)
                else (app.json.dumps(value, separators=(",", ":")) + "\n").encode()
            )
            return guard.scrub(data, scheduler.settings)

        return guard.scrubbed(monitor.rendered(key, monitor.snapshot(), body), content_type)

    def nudge() -> None:
        monitor.invalidate()
        if request_scan is not None:
            request_scan()

    # -- the original's endpoints ---------------------------------------------------------------

    @app.get("/")
    @app.get("/status")
    @reads
    def status() -> ResponseReturnValue:
        return once_per_snapshot("status", lambda snap: {"response": service_status(monitor, snap)})

    @app.get("/newdata")
    @write
    def newdata() -> ResponseReturnValue:
        nudge()
        return jsonify({"response": {"newdata": "scan queued"}}), 202

    # -- v1 ---------------------------------------------------------------------------------------

    @app.get("/api/v1/services")
    @reads
    def services() -> ResponseReturnValue:
        return once_per_snapshot(
            "services", lambda snap: {"as_of": iso(snap.taken), "services": monitor.services(snap)}
        )

    @app.get("/api/v1/summary")
    @reads
    def summary() -> ResponseReturnValue:
        return once_per_snapshot("summary", summary_of)

    def summary_of(snap: Snapshot) -> dict[str, Any]:
        by_service: dict[str, dict[str, int]] = {}
        totals = {s: 0 for s in states.ALL} | {"files": 0, "rows_loaded": 0, "rows_rejected": 0}
        for name in sorted({s.name for s in scheduler.services} | set(snap.summary)):
            by_state = snap.summary.get(name, {})
            entry = {s: by_state.get(s, (0, 0, 0))[0] for s in states.ALL}
            kept = [by_state.get(s, (0, 0, 0)) for s in (states.DONE, states.FAILED)]
            entry["rows_loaded"] = sum(k[1] for k in kept)
            entry["rows_rejected"] = sum(k[2] for k in kept)
            by_service[name] = entry
            for key in states.ALL:
                totals[key] += entry[key]
                totals["files"] += entry[key]
            totals["rows_loaded"] += entry["rows_loaded"]
            totals["rows_rejected"] += entry["rows_rejected"]
        age = (snap.taken - snap.oldest_queued).total_seconds() if snap.oldest_queued else None
        return {
            "as_of": iso(snap.taken),
            "services": by_service,
            "totals": totals,
            "queue": {
                "length": totals[states.QUEUED],
                "oldest_queued_seconds": round(age, 1) if age is not None else None,
                "next": [monitor.file_view(r) for r in snap.queued],
            },
            "recent_failures": [monitor.file_view(r) for r in snap.failures],
            "history": snap.history,
        }

    @app.get("/api/v1/files")
    @reads
    def files() -> ResponseReturnValue:
        service = request.args.get("service") or None
        state = request.args.get("state")
        if state is not None and state not in states.ALL:
            return error(400, f"state must be one of {', '.join(states.ALL)}", "bad_state")
        if service is not None and len(service) > 64:
            return error(400, "service names are at most 64 characters", "bad_service")
        raw_limit = request.args.get("limit", str(DEFAULT_LIMIT))
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
            return error(400, f"limit must be an integer from 1 to {MAX_LIMIT}", "bad_limit")
        limit = int(raw_limit)
        before = None
        if "cursor" in request.args:
            before = decode_cursor(request.args["cursor"])
            if before is None:
                return error(400, "cursor is not one this server gave out", "bad_cursor")
        rows = scheduler.queue.page(service, state, before, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return jsonify(
            {
                "files": [monitor.file_view(r) for r in rows],
                "next_cursor": encode_cursor(rows[-1].id) if more and rows else None,
            }
        )

    @app.get("/api/v1/files/<int:file_id>")
    @reads
    def file(file_id: int) -> ResponseReturnValue:
        found = scheduler.queue.get_with_version(file_id) if file_id <= _MAX_ID else None
        if found is None:
            return error(404, f"no tracked file with id {file_id}", "file_not_found")
        return jsonify(monitor.file_view(*found))

    @app.post("/api/v1/scan")
    @write
    def scan() -> ResponseReturnValue:
        nudge()
        return jsonify({"scan": "queued"}), 202

    @app.post("/api/v1/files/<int:file_id>/retry")
    @write
    @reads
    def retry(file_id: int) -> ResponseReturnValue:
        found = scheduler.queue.get_with_version(file_id) if file_id <= _MAX_ID else None
        if found is None:
            return error(404, f"no tracked file with id {file_id}", "file_not_found")
        if not scheduler.queue.retry_file(file_id):
            return error(409, f"file {file_id} is {found[0].state}, not failed", "not_failed")
        nudge()
        return jsonify(
            {"retried": True, "file": monitor.file_view(*scheduler.queue.get_with_version(file_id) or found)}
        )

    # -- health, metrics, documents ---------------------------------------------------------------

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        problems = []
        try:
            monitor.snapshot()
        except Unavailable as exc:
            problems.append(str(exc))
        last = scheduler.last_scan
        return jsonify(
            {
                "ok": True,
                "degraded": bool(problems),
                "problems": problems,
                "worker": scheduler.worker,
                "last_scan": _legacy_date(scheduler.last_scan_at),
                "scan_problems": last.problems if last else [],
                "files_taken_by_no_service": scheduler.unclaimed,
            }
        )

    @app.get("/readyz")
    def readyz() -> ResponseReturnValue:
        with ready_lock:
            if ready_cache and time.monotonic() - ready_cache["at"] < 1.0:
                checks = ready_cache["checks"]
            else:
                checks = _readiness(monitor)
                ready_cache.update(at=time.monotonic(), checks=checks)
        failing = [name for name, problem in checks.items() if problem]
        body = {
            "ready": not failing,
            "checks": {name: problem or "ok" for name, problem in checks.items()},
        }
        if failing:
            body["error"] = {
                "code": "not_ready",
                "message": "; ".join(f"{name}: {checks[name]}" for name in failing),
            }
            return jsonify(body), 503
        return jsonify(body)

    @app.get("/metrics")
    def prometheus() -> ResponseReturnValue:
        try:
            # The families come from the snapshot, and the duration histogram takes in the files
            # completed when a new snapshot is read: between two snapshots nothing changes.
            return once_per_snapshot("metrics", lambda snap: metrics.render(), CONTENT_TYPE)
        except Unavailable:
            return Response(metrics.render(), mimetype=None, content_type=CONTENT_TYPE)

    @app.get("/openapi.json")
    def openapi() -> ResponseReturnValue:
        return jsonify(document())

    @app.get("/ui")
    def ui() -> ResponseReturnValue:
        part = request.args.get("part")
        html_type = "text/html; charset=utf-8"
        try:
            return once_per_snapshot(
                f"ui:{part == 'main'}",
                lambda snap: render_page(monitor, snap, None, part).encode(),
                html_type,
            )
        except Unavailable as exc:
            return Response(render_page(monitor, None, str(exc), part), status=503, content_type=html_type)

    return app


def _readiness(monitor: Monitor) -> dict[str, str | None]:
    """Each dependency: None if it answers, else why not."""
    checks: dict[str, str | None] = {}
    try:
        monitor.snapshot()
        checks["tracking_database"] = None
    except Unavailable as exc:
        checks["tracking_database"] = str(exc)
    scheduler = monitor.scheduler
    try:
        scheduler.sql.list_databases()
        checks["sql_store"] = None
    except IngestorError as exc:
        checks["sql_store"] = str(exc)
    try:
        scheduler.documents().ping()
        checks["document_store"] = None
    except Exception as exc:  # noqa: BLE001 - any failure of the store means "not ready", said so
        checks["document_store"] = f"{type(exc).__name__}: {exc}"
    return checks


class ApiThread:
    """Serves the app with cheroot (a production WSGI server) from a daemon thread."""

    def __init__(
        self, scheduler: Scheduler, host: str, port: int, request_scan: Callable[[], None] | None = None
    ) -> None:
        from cheroot.wsgi import Server

        self.app = create_app(scheduler, request_scan)
        self.server = Server((host, port), self.app, numthreads=8, server_name="optimus-ingestor")
        self.server.prepare()  # binds now, so the port is known and a clash fails at start
        self.thread = threading.Thread(target=self.server.serve, name="status-api", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.bind_addr[1])

    def start(self) -> None:
        # A file being ingested keeps a thread of this process busy in Python; a request waiting for
        # the interpreter lock gets it after at most the switch interval (5 ms by default), several
        # times per request (accept, hand-over to a worker, answer). A shorter interval costs the
        # ingest nothing while nobody asks (it only applies when another thread waits for the lock).
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
        self.thread.start()

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(timeout=5)
