"""Runs the services: scan, claim in dependency order, ingest with a lease, retry, record.

The scheduler owns ordering and failure handling so that services stay simple: a file whose
service's dependencies still have files queued or running waits; a transient error puts the file
back with exponential backoff; a terminal error fails it with a message naming the file and the
cause; an interrupted ingest goes back to the queue without using an attempt. Nothing one file
does stops the others.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from base_service import Context, Service
from core.courses import Courses, load_courses
from core.errors import IngestorError, Interrupted, TransientError
from core.queue import Job, LeaseLost, TrackingQueue, utcnow
from core.rejects import Rejects
from core.scanner import ScanResult, scan
from core.settings import Settings
from stores.sql.base import SqlStore

if TYPE_CHECKING:
    from stores.documents.base import DocumentStore

log = logging.getLogger("ingestor")


def new_worker_id(name: str = "") -> str:
    """`host:pid:token`; the host and pid let a restarted daemon recognise its dead predecessor."""
    return f"{name or socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _local_dead(worker: str, host: str) -> bool:
    parts = worker.split(":")
    if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class ServiceState:
    """What the status API shows of a service besides the queue's counts."""

    status: str = "idle"
    task: str = ""
    file: str = ""
    startdate: datetime | None = None
    last_error: str = ""
    extra: dict[str, object] = field(default_factory=dict)


class Scheduler:
    def __init__(
        self,
        settings: Settings,
        services: Sequence[Service],
        sql: SqlStore,
        documents: Callable[[], DocumentStore],
        *,
        clock: Callable[[], datetime] = utcnow,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.services = list(services)
        self.by_name = {s.name: s for s in self.services}
        self.sql = sql
        self.documents = documents
        self.clock = clock
        self.queue = TrackingQueue(sql, clock, settings.TRACKING_DATABASE)
        self.stop = stop or threading.Event()
        self.host = settings.WORKER_NAME or socket.gethostname()
        self.worker = new_worker_id(self.host)
        self.states = {s.name: ServiceState() for s in self.services}
        self.failed: list[str] = []
        self.last_scan: ScanResult | None = None
        self.unclaimed = 0
        self.unclaimed_warned: set[Path] = set()
        self.last_scan_at: datetime | None = None

    @cache  # noqa: B019 - one registry per scheduler, read once
    def courses(self) -> Courses:
        courses = load_courses(self.settings.COURSES_FILE)
        for warning in courses.warnings:
            log.warning("%s", warning)
        return courses

    def context(self, service: Service) -> Context:
        return Context(
            settings=self.settings,
            sql=self.sql,
            documents=self.documents,
            courses=self.courses,
            queue=self.queue,
            log=logging.getLogger(f"ingestor.{service.name}"),
        )

    # -- start-up -----------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the tracking table, recover files of dead workers, let services set up."""
        self.queue.ensure_schema()
        self.recover()
        for service in self.services:
            service.start(self.context(service))
            self.states[service.name].extra = service.status_extra(self.context(service))

    def recover(self) -> int:
        dead = [w for w in self.queue.running_workers() if _local_dead(w, self.host)]
        count = self.queue.sweep(self.settings.LEASE_SECONDS, self.settings.MAX_ATTEMPTS, dead)
        if count:
            log.warning("returned %d abandoned file(s) to the queue (dead worker or expired lease)", count)
        return count

    # -- scanning -----------------------------------------------------------------------------

    def scan(self) -> ScanResult:
        """Offer every entry under the `latest` directories to every service."""
        result = scan(self.settings.DATA_PATHS)
        for problem in result.problems:
            log.error("scan: %s", problem)
        offered = {"new": 0, "changed": 0, "same": 0}
        unclaimed = []
        for entry in result.entries:
            wanted = [s for s in self.services if not s.derived and s.wants(entry)]
            if not wanted:
                unclaimed.append(entry.path)
            for service in wanted:
                meta = os.fsencode(entry.path).decode("utf-8", "backslashreplace")
                outcome = self.queue.offer(service.name, meta, entry.fingerprint)
                offered[outcome] += 1
                if outcome != "same":
                    logging.getLogger(f"ingestor.{service.name}").info("queued (%s): %s", outcome, meta)
        log.info(
            "scan: %d new, %d changed, %d unchanged, %d taken by no service",
            offered["new"],
            offered["changed"],
            offered["same"],
            len(unclaimed),
        )
        for path in unclaimed:
            if path not in self.unclaimed_warned:
                self.unclaimed_warned.add(path)
                log.warning("scan: %s is taken by no service (unknown kind, unsafe name, or held back)", path)
        self.unclaimed = len(unclaimed)
        self.last_scan = result
        self.last_scan_at = self.clock()
        return result

    # -- running ------------------------------------------------------------------------------

    def ready_services(self) -> list[str]:
        """File services whose dependencies have nothing queued or running, in dependency order."""
        ready = []
        for service in self.services:
            if service.derived:
                continue
            if service.depends_on and self.queue.pending_count(service.depends_on):
                continue
            ready.append(service.name)
        return ready

    def run_one(self) -> bool:
        """Claim and ingest one file; False if nothing was ready."""
        job = self.queue.claim(self.worker, self.ready_services())
        if job is None:
            return False
        self._ingest(job)
        return True

    def _ingest(self, job: Job) -> None:
        service = self.by_name[job.service_name]
        slog = logging.getLogger(f"ingestor.{service.name}")
        state = self.states[service.name]
        state.status, state.task, state.file, state.startdate = (
            "running",
            "ingest",
            job.path,
            self.clock(),
        )
        progress = {"value": 0.0}
        lost = threading.Event()
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.settings.HEARTBEAT_SECONDS):
                try:
                    self.queue.heartbeat(job, progress["value"])
                except LeaseLost:
                    lost.set()
                    return
                except TransientError as exc:
                    slog.warning("heartbeat for %s failed: %s", job.path, exc)

        ctx = self.context(service)
        ctx.job = job
        ctx.progress = lambda fraction: progress.__setitem__("value", fraction)
        ctx.should_stop = lambda: self.stop.is_set() or lost.is_set()
        rejects = Rejects(self.settings.rejects_dir / service.name, _path(job.path), job.version, job.id)
        ctx.rejects = rejects
        heart = threading.Thread(target=beat, name=f"heartbeat-{job.id}", daemon=True)
        heart.start()
        slog.info("ingesting %s (attempt %d)", job.path, job.attempts)
        try:
            with rejects:
                result = service.ingest(_path(job.path), ctx)
            done.set()
            if result.failed:
                # The file cannot be read to its end, but what was read is loaded and kept.
                message = self._failure(job, result.failed, slog)
                self.queue.fail(
                    job,
                    message,
                    result.rows_loaded,
                    result.rows_rejected,
                    writes=result.sql_writes,
                    attach=result.attach,
                )
            elif self.queue.complete(
                job,
                result.rows_loaded,
                result.rows_rejected,
                fingerprint=result.fingerprint,
                content_hash=result.content_hash,
                error="; ".join(result.warnings)[:60000] or None,
                writes=result.sql_writes,
                attach=result.attach,
                dedupe=result.dedupe,
                shares=result.shares,
            ):
                slog.info(
                    "done %s: %d loaded, %d rejected", job.path, result.rows_loaded, result.rows_rejected
                )
            else:
                slog.info("%s: same content as a file already loaded; recorded as its duplicate", job.path)
        except LeaseLost as exc:
            slog.error("%s", exc)
        except Interrupted as exc:
            done.set()
            if lost.is_set():
                slog.error("%s: lease lost while ingesting; another worker may take it", job.path)
            else:
                slog.info("%s; back to the queue", exc)
                self._safely(self.queue.release, job, str(exc), 0, False)
        except TransientError as exc:
            done.set()
            self._transient(job, exc, slog)
        except Exception as exc:  # noqa: BLE001 - one file's failure must never stop the daemon
            done.set()
            text = str(exc)
            if not isinstance(exc, IngestorError):
                slog.error("unexpected error: %s", traceback.format_exc())
                text = f"{text} ({type(exc).__name__})"
            self._safely(self.queue.fail, job, self._failure(job, text, slog), 0, rejects.count)
        finally:
            done.set()
            heart.join(timeout=5)
            state.status, state.task, state.file = "idle", "", ""

    def _failure(self, job: Job, text: str, slog: logging.Logger) -> str:
        """Log and remember a failed file; the message always names the file."""
        message = text if job.path in text else f"{job.path}: {text}"
        slog.error("failed: %s", message)
        self.failed.append(message)
        self.states[job.service_name].last_error = message
        return message

    def _transient(self, job: Job, exc: Exception, slog: logging.Logger) -> None:
        if job.attempts >= self.settings.MAX_ATTEMPTS:
            message = f"{job.path}: gave up after {job.attempts} attempts: {exc}"
            slog.error("%s", message)
            self.failed.append(message)
            self._safely(self.queue.fail, job, message)
            return
        delay = self.settings.RETRY_BACKOFF_SECONDS * 2 ** (job.attempts - 1)
        slog.warning("%s: %s; retrying in %ss", job.path, exc, delay)
        self._safely(self.queue.release, job, str(exc), delay)

    def _safely(self, action: Callable[..., None], *args: object) -> None:
        try:
            action(*args)
        except (LeaseLost, TransientError) as exc:
            log.error("could not record the outcome of a file: %s", exc)

    def run_derived(self) -> bool:
        """Run each derived service that is due; True if any ran."""
        ran = False
        for service in self.services:
            if not service.derived or self.stop.is_set():
                continue
            if service.depends_on and self.queue.pending_count(service.depends_on):
                continue
            inputs = self.queue.last_completed(service.depends_on) if service.depends_on else None
            last = self.queue.last_run_started(service.name)
            changed = service.runs_on_new_input and inputs is not None and (last is None or inputs > last)
            if not changed and not service.due(self.context(service)):
                continue
            state = self.states[service.name]
            started = self.clock()
            state.status, state.task, state.startdate = "running", "run", started
            error = None
            try:
                service.run(self.context(service))
            except Exception as exc:  # noqa: BLE001 - a derived run's failure is recorded, not raised
                error = f"{service.name}: {exc}"
                logging.getLogger(f"ingestor.{service.name}").error("%s\n%s", error, traceback.format_exc())
                self.failed.append(error)
            finally:
                state.status, state.task = "idle", ""
            self.queue.record_run(service.name, started, error)
            state.extra = service.status_extra(self.context(service))  # e.g. courses skipped, why
            ran = True
        return ran

    def drain(self) -> None:
        """Ingest until nothing is ready (or a stop is requested), derived services included."""
        while not self.stop.is_set():
            if self.run_one():
                continue
            if self.run_derived():
                continue
            break


def _path(meta: str) -> Path:
    return Path(meta)
