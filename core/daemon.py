"""The main loop: scan every SCAN_INTERVAL, drain the queue, sweep expired leases, serve status.

Signal handlers only set flags; the loop acts on them. First SIGTERM (or SIGINT): finish the
current batch, put the file back in the queue, exit. Second: exit at once (the next start
recovers the file). SIGHUP: re-read the configuration at the next scan.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from types import FrameType
from typing import TYPE_CHECKING

from core import registry
from core.errors import ConfigError, TransientError
from core.queue import utcnow
from core.scheduler import Scheduler
from core.settings import Settings, prepare_state_dir
from stores.sql import SqlStore, open_sql_store
from utils.collector import pace_for_bulk_loads
from utils.logs import setup_logging

if TYPE_CHECKING:
    from api.app import ApiThread
    from stores.documents.base import DocumentStore

log = logging.getLogger("ingestor")
# How often `run --once` looks again while its remaining files run under other daemons.
ONCE_POLL_SECONDS = 0.25


class Daemon:
    def __init__(
        self,
        settings: Settings,
        *,
        foreground: bool = True,
        clock: Callable[[], datetime] = utcnow,
        reload: Callable[[], Settings] | None = None,
    ) -> None:
        self.settings = settings
        self.stop = threading.Event()
        self.reload_requested = False
        self.scan_requested = False  # set by the status API (POST /api/v1/scan, GET /newdata)
        self._wake = threading.Event()  # set by signals, so that an idle wait ends at once
        self._signals = 0
        self._reload = reload
        pace_for_bulk_loads()
        services = registry.select(registry.discover(), settings.SERVICES, settings.IGNORE_SERVICES)
        prepare_state_dir(settings)
        setup_logging(settings.log_dir, [s.name for s in services], to_stderr=foreground)
        self.sql: SqlStore = open_sql_store(settings.SQL_URL, settings.STATE_DIR)
        self._documents: DocumentStore | None = None
        self.scheduler = Scheduler(settings, services, self.sql, self.documents, clock=clock, stop=self.stop)
        self.api: ApiThread | None = None

    def documents(self) -> DocumentStore:
        if self._documents is None:
            from stores.documents import open_document_store

            self._documents = open_document_store(self.settings.MONGO_URL, self.settings.STATE_DIR)
        return self._documents

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            os._exit(128 + signum)
        self.stop.set()
        self._wake.set()

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self.reload_requested = True
        self._wake.set()

    def request_scan(self) -> None:
        """Scan (and drain) now instead of at the next SCAN_INTERVAL; safe from any thread."""
        self.scan_requested = True
        self._wake.set()

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        signal.signal(signal.SIGHUP, self._on_hup)

    def run(self, once: bool = False) -> int:
        """The loop; with `once`, one scan and a full drain. Returns the exit status: with `once`,
        0 only if every file of the configured services is done (1 if some failed or, after a
        stop, some are still queued), as the tracking table says."""
        prepare_state_dir(self.settings)
        self._start_with_retry()
        if self.settings.API_ENABLED:
            from api.app import ApiThread  # Flask and the server: imported only when serving

            try:
                self.api = ApiThread(
                    self.scheduler, self.settings.API_HOST, self.settings.API_PORT, self.request_scan
                )
            except (OSError, SystemExit) as exc:  # werkzeug exits when the port is taken
                where = f"{self.settings.API_HOST}:{self.settings.API_PORT}"
                why = getattr(exc, "strerror", None) or "address already in use"
                raise ConfigError(
                    [f"API_HOST, API_PORT: the status API cannot listen on {where} ({why})"]
                ) from exc
            self.api.start()
            log.info("status API on http://%s:%d/status", self.settings.API_HOST, self.api.port)
        status = 0
        try:
            delay = 1.0
            while not self.stop.is_set():
                try:
                    self._cycle(once)
                except TransientError as exc:
                    self.scheduler.tracking_problem = f"tracking database unavailable: {exc}"
                    log.error("tracking database unavailable: %s; trying again in %.0fs", exc, delay)
                    self.stop.wait(delay)
                    delay = min(delay * 2, 30.0)
                    continue
                delay = 1.0
                self.scheduler.tracking_back()
                if once:
                    break
                self._idle()
            if once:
                status = self._once_status()
        finally:
            if self.api is not None:
                self.api.stop()
            if self._documents is not None:
                self._documents.close()
            self.sql.close()  # idle pooled connections (the store can still be used afterwards)
        if self.stop.is_set():
            log.info("stopped on request")
        return status

    def _once_status(self) -> int:
        """The exit status of `run --once`, from the tracking table (retried while it is away)."""
        delay = 1.0
        while True:
            try:
                failed, pending = self.scheduler.outcome()
                break
            except TransientError as exc:
                if self.stop.is_set():
                    log.error("tracking database unavailable: %s; the run's outcome is unknown", exc)
                    return 1
                log.error("tracking database unavailable: %s; trying again in %.0fs", exc, delay)
                self.stop.wait(delay)
                delay = min(delay * 2, 30.0)
        if failed:
            log.error("%d file(s) or run(s) failed: %s", len(failed), "; ".join(failed)[:2000])
        if pending:
            log.error("%d file(s) still queued or running", pending)
        return 1 if failed or pending else 0

    def _start_with_retry(self) -> None:
        delay = 1.0
        while True:
            try:
                self.scheduler.prepare()
                return
            except TransientError as exc:
                if self.stop.is_set():
                    raise
                log.error("cannot reach the stores yet: %s; retrying in %.0fs", exc, delay)
                self.stop.wait(delay)
                delay = min(delay * 2, 60)

    def _cycle(self, once: bool) -> None:
        if self.reload_requested and self._reload is not None:
            self.reload_requested = False
            try:
                fresh = self._reload()
            except ConfigError as exc:
                log.error("SIGHUP: configuration not reloaded: %s", exc)
            else:
                kept = [
                    k
                    for k in ("SQL_URL", "MONGO_URL", "STATE_DIR", "SERVICES", "IGNORE_SERVICES", "API_PORT")
                    if getattr(fresh, k) != getattr(self.settings, k)
                ]
                if kept:
                    log.warning(
                        "SIGHUP: %s change only with a restart; keeping the old values", ", ".join(kept)
                    )
                    fresh = replace(fresh, **{k: getattr(self.settings, k) for k in kept})
                self.settings = self.scheduler.settings = fresh
                self.scheduler.prepare()  # services re-read their settings (GeoIP database, batch sizes)
                log.info("configuration re-read (SIGHUP); new values apply to the next files")
        self.scan_requested = False
        self.scheduler.recover()
        self.scheduler.scan()
        self.scheduler.drain()
        # In --once mode, files waiting for a retry (backoff) are waited for, and files running
        # under another worker (or whose lease has to expire), so that the run is complete.
        names = [s.name for s in self.scheduler.services]
        while once and not self.stop.is_set():
            wait = self.scheduler.queue.seconds_until_due(names)
            if wait is None:
                if not self.scheduler.queue.pending_count(names):
                    break
                # Files running under other daemons: their end (and then the derived services,
                # and this daemon's exit) is seen by asking again soon; each look is a few
                # indexed queries.
                wait = ONCE_POLL_SECONDS
            self.stop.wait(min(max(wait, 0.05), 5))
            self.scheduler.recover()
            self.scheduler.drain()
        if [s for s in self.scheduler.services if s.rescan_wanted()] and not self.stop.is_set():
            self._cycle(once)  # a delivery laid out new files: take them in this same cycle

    def _idle(self) -> None:
        """Sleep until the next scan, sweeping expired leases meanwhile."""
        deadline = time.monotonic() + self.settings.SCAN_INTERVAL
        while not self.stop.is_set() and not self.reload_requested and not self.scan_requested:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wake.wait(min(remaining, self.settings.LEASE_SECONDS / 2))
            self._wake.clear()
            if self.stop.is_set() or self.reload_requested or self.scan_requested:
                return
            try:
                self.scheduler.recover()
                self.scheduler.drain()
            except TransientError as exc:
                log.error("tracking database unavailable: %s", exc)
