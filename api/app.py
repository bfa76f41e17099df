"""The status API: a thin read-only facade over the tracking table and the scheduler's state.

`GET /` and `GET /status` answer in the original's shape,
`{"response": {<ServiceName>: {"name", "status", "task", "file", "startdate", "lastcompletedate",
"tasksleft"}}}`, with the counts of the tracking table beside those keys; `GET /healthz` says
whether the daemon and its tracking database answer.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flask import Flask, jsonify
from werkzeug.serving import BaseWSGIServer, make_server

from core import states
from core.errors import IngestorError

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

    from core.scheduler import Scheduler


def _iso(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def service_status(scheduler: Scheduler) -> dict[str, dict[str, Any]]:
    """The `response` object: one entry per configured service."""
    summary = scheduler.queue.summary()
    running = {row.service_name: row for row in scheduler.queue.running()}
    result: dict[str, dict[str, Any]] = {}
    for service in scheduler.services:
        state = scheduler.states[service.name]
        by_state = summary.get(service.name, {})
        files = {s: by_state.get(s, (0, 0, 0))[0] for s in states.ALL}
        last = scheduler.queue.last_completed([service.name], "save_run" if service.derived else "file")
        current = running.get(service.name)
        result[service.name] = {
            "name": service.name,
            "status": state.status if current is None else "running",
            "task": state.task,
            "file": state.file or (current.meta if current else ""),
            "startdate": _iso(state.startdate),
            "lastcompletedate": _iso(last),
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


def create_app(scheduler: Scheduler) -> Flask:
    app = Flask("optimus_ingestor")

    @app.get("/")
    @app.get("/status")
    def status() -> ResponseReturnValue:
        try:
            return jsonify({"response": service_status(scheduler)})
        except IngestorError as exc:
            return jsonify({"error": {"code": "tracking_db_unavailable", "message": str(exc)}}), 503

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        try:
            scheduler.queue.counts()
        except IngestorError as exc:
            return jsonify({"ok": False, "error": str(exc)}), 503
        return jsonify(
            {
                "ok": True,
                "worker": scheduler.worker,
                "last_scan": _iso(scheduler.last_scan_at),
                "scan_problems": scheduler.last_scan.problems if scheduler.last_scan else [],
                "files_taken_by_no_service": scheduler.unclaimed,
            }
        )

    return app


class ApiThread:
    """Serves the app from a daemon thread; `stop()` shuts it down."""

    def __init__(self, scheduler: Scheduler, host: str, port: int) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.server: BaseWSGIServer = make_server(host, port, create_app(scheduler), threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name="status-api", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)
