"""Runs the services: scan, claim in dependency order, ingest with a lease, retry, record.

The scheduler owns ordering and failure handling so that services stay simple: a file whose
service's dependencies still have files queued or running waits; a transient error puts the file
back with exponential backoff; a terminal error fails it with a message naming the file and the
cause; an interrupted ingest goes back to the queue without using an attempt. Nothing one file
does stops the others.

It also makes the checks every service needs, once: before an ingest the file must exist (not a
broken link) and stay inside the allowed data roots; after it (and wherever a service calls
`ctx.check_unchanged()` before committing) its fingerprint must be the one taken before, else
the file changed while it was read and goes back to the queue. An outcome that cannot be recorded
because the tracking database went away is retried with backoff until it is back.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from base_service import Context, Service
from core import states as tracking_states
from core.courses import Courses, load_courses
from core.errors import ConfigError, IngestorError, Interrupted, TerminalError, TransientError
from core.queue import Job, LeaseLost, TrackingQueue, utcnow
from core.rejects import Rejects
from core.scanner import ScanResult, outside_roots, scan, scan_incoming
from core.settings import Settings
from stores.sql.base import SqlStore
from utils.fingerprint import MISSING, path_fingerprint
from utils.paths import display

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
        self.ingesting: set[int] = set()  # the ids of the files this scheduler is ingesting now
        self.states = {s.name: ServiceState() for s in self.services}
        self.last_scan: ScanResult | None = None
        self.unclaimed = 0
        self.unclaimed_warned: set[Path] = set()
        self.last_scan_at: datetime | None = None
        # Set while the tracking database does not answer (what the status can show), else "".
        self.tracking_problem = ""
        self.scanned: set[tuple[str, str]] = set()  # (service, meta) of the last scan's files
        self._courses: Courses | None = None
        self._courses_stamp: tuple[int, int] | None = None
        # Derived services found not due (or in another daemon's hands): service name -> (its
        # inputs' last completion then, when, for how many seconds that answer holds).
        self._derived_seen: dict[str, tuple[datetime | None, float, float]] = {}

    # -- the course registry ------------------------------------------------------------------

    def courses(self) -> Courses:
        """The course registry, read again when COURSES_FILE changed (or after `reload_courses`)."""
        if self._courses is None or _stamp(self.settings.COURSES_FILE) != self._courses_stamp:
            return self.reload_courses()
        return self._courses

    def reload_courses(self) -> Courses:
        """Read COURSES_FILE now. A file that became unusable keeps the registry read before (said
        in the log); with none read before, its ConfigError is raised."""
        path = self.settings.COURSES_FILE
        stamp = _stamp(path)
        try:
            courses = load_courses(path)
        except ConfigError as exc:
            if self._courses is None:
                raise
            self._courses_stamp = stamp  # not read again until it changes again
            log.error("course registry not re-read, keeping the previous one: %s", exc)
            return self._courses
        for warning in courses.warnings:
            log.warning("%s", warning)
        if self._courses is not None and courses.courses.keys() != self._courses.courses.keys():
            log.info("course registry re-read: %d course(s) from %s", len(courses.courses), path)
        self._courses, self._courses_stamp = courses, stamp
        return courses

    def context(self, service: Service) -> Context:
        return Context(
            settings=self.settings,
            sql=self.sql,
            documents=self.documents,
            courses=self.courses,
            log=logging.getLogger(f"ingestor.{service.name}"),
        )

    # -- start-up -----------------------------------------------------------------------------

    def prepare(self) -> None:
        """Read the course registry, create the tracking table, recover files of dead workers, let
        services set up. Called again after SIGHUP, after which every derived service is asked
        again whether it is due (a new GeoIP database makes IPToCountry due)."""
        self._derived_seen.clear()
        self.reload_courses()
        self.queue.ensure_schema()
        self.recover()
        for service in self.services:
            service.start(self.context(service))
            self.states[service.name].extra = service.status_extra(self.context(service))

    def recover(self) -> int:
        """Return to the queue the files of dead workers, of expired leases, and those this
        daemon's own worker holds but no longer ingests; never a file it is ingesting now (its
        heartbeat may be late on a loaded machine, but the worker is alive)."""
        dead = [w for w in self.queue.running_workers() if _local_dead(w, self.host)]
        count = self.queue.sweep(
            self.settings.LEASE_SECONDS,
            self.settings.MAX_ATTEMPTS,
            dead,
            own_worker=self.worker,
            keep=frozenset(self.ingesting),
        )
        if count:
            log.warning("returned %d abandoned file(s) to the queue (dead worker or expired lease)", count)
        return count

    # -- scanning -----------------------------------------------------------------------------

    def scan(self) -> ScanResult:
        """Offer every entry under the `latest` directories to every service."""
        result = scan(self.settings.DATA_PATHS, self.settings.allowed_roots)
        scan_incoming(self.settings.INCOMING_PATHS, result)
        for problem in result.problems:
            log.error("scan: %s", problem)
        offered = {"new": 0, "changed": 0, "same": 0}
        scanned: set[tuple[str, str]] = set()
        unclaimed = []
        for entry in result.entries:
            wanted = [s for s in self.services if not s.derived and s.wants(entry)]
            if not wanted:
                unclaimed.append(entry.path)
            for service in wanted:
                # The path as the file system gives it (a byte that is not UTF-8 kept as a
                # surrogate): the queue stores it in a form UTF-8 holds and gives it back as is.
                real = str(entry.path)
                outcome = self.queue.offer(service.name, real, entry.fingerprint)
                scanned.add((service.name, real))
                offered[outcome] += 1
                if outcome != "same":
                    logging.getLogger(f"ingestor.{service.name}").info("queued (%s): %s", outcome, real)
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
        self.scanned = scanned
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
            last = time.monotonic()
            while not done.wait(self.settings.HEARTBEAT_SECONDS):
                try:
                    self.queue.heartbeat(job, progress["value"])
                    now = time.monotonic()
                    if now - last > self.settings.LEASE_SECONDS / 2:
                        # Said, so that a lease taken over by another daemon can be explained.
                        slog.warning(
                            "heartbeat for %s came %.0fs after the previous one (LEASE_SECONDS %s): "
                            "the process was starved; another daemon may take a file it holds",
                            job.path,
                            now - last,
                            self.settings.LEASE_SECONDS,
                        )
                    last = now
                except LeaseLost:
                    lost.set()
                    return
                except TransientError as exc:
                    slog.warning("heartbeat for %s failed: %s", job.path, exc)
                except Exception as exc:  # noqa: BLE001 - a dead heartbeat thread lets the lease expire
                    slog.error(
                        "heartbeat for %s failed: %s (%s); trying again", job.path, exc, type(exc).__name__
                    )

        ctx = self.context(service)
        ctx.job = job
        ctx.progress = lambda fraction: progress.__setitem__("value", fraction)
        ctx.should_stop = lambda: self.stop.is_set() or lost.is_set()
        rejects = Rejects(self.settings.rejects_dir / service.name, _path(job.path), job.version, job.id)
        ctx.rejects = rejects
        heart = threading.Thread(target=beat, name=f"heartbeat-{job.id}", daemon=True)
        heart.start()
        self.ingesting.add(job.id)
        slog.info("ingesting %s (attempt %d)", job.path, job.attempts)
        try:
            fingerprint = self._check_before(job)
            ctx.check_unchanged = lambda: self._check_unchanged(job, fingerprint, progress["value"], lost)
            with rejects:
                result = service.ingest(_path(job.path), ctx)
            ctx.check_unchanged()  # also: the lease is still this worker's
            done.set()
            if result.failed:
                # The file cannot be read to its end, but what was read is loaded and kept.
                message = self._failure(job, result.failed, slog)
                self._record(
                    job,
                    self.queue.fail,
                    job,
                    message,
                    result.rows_loaded,
                    result.rows_rejected,
                    writes=result.sql_writes,
                    attach=result.attach,
                )
                return
            recorded = self._record(
                job,
                self.queue.complete,
                job,
                result.rows_loaded,
                result.rows_rejected,
                fingerprint=fingerprint,
                content_hash=result.content_hash,
                error="; ".join(result.warnings)[:60000] or None,
                writes=result.sql_writes,
                attach=result.attach,
                dedupe=result.dedupe,
                shares=result.shares,
            )
            if recorded:
                slog.info(
                    "done %s: %d loaded, %d rejected", job.path, result.rows_loaded, result.rows_rejected
                )
            elif recorded is False:
                slog.info("%s: same content as a file already loaded; recorded as its duplicate", job.path)
        except LeaseLost as exc:
            slog.error("%s", exc)
        except Interrupted as exc:
            done.set()
            if lost.is_set():
                slog.error("%s: lease lost while ingesting; another worker may take it", job.path)
            else:
                slog.info("%s; back to the queue", exc)
                self._record(job, self.queue.release, job, str(exc), 0, False)
        except TransientError as exc:
            done.set()
            self._transient(job, exc, slog)
        except Exception as exc:  # noqa: BLE001 - one file's failure must never stop the daemon
            done.set()
            text = str(exc)
            if not isinstance(exc, IngestorError):
                slog.error("unexpected error while ingesting %s", job.path, exc_info=True)
                text = f"{text} ({type(exc).__name__})"
            self._record(job, self.queue.fail, job, self._failure(job, text, slog), 0, rejects.count)
        finally:
            self.ingesting.discard(job.id)
            done.set()
            heart.join(timeout=5)
            state.status, state.task, state.file = "idle", "", ""

    def _check_before(self, job: Job) -> str:
        """The file's fingerprint now, after the checks every service needs; raises TerminalError
        for a missing file (broken link, deleted since the scan) or a link out of the data roots."""
        path = _path(job.path)
        refused = outside_roots(path, self.settings.allowed_roots)
        if refused is not None:
            raise TerminalError(refused)
        fingerprint = path_fingerprint(path)
        if fingerprint == MISSING:
            what = "a broken symbolic link" if path.is_symlink() else "missing (deleted since it was queued?)"
            raise TerminalError(f"{path}: {what}")
        return fingerprint

    def _check_unchanged(
        self, job: Job, before: str, progress: float = 0.0, lost: threading.Event | None = None
    ) -> None:
        """Raise TransientError if the file is not what it was when its ingest began, and LeaseLost
        if the file is no longer this worker's (its lease expired and another daemon took it):
        services call this before they replace what a file loads, so a stale worker stops there."""
        if path_fingerprint(_path(job.path)) != before:
            raise TransientError(f"{job.path}: the file changed while it was being read")
        try:
            self.queue.heartbeat(job, progress)
        except LeaseLost:
            if lost is not None:
                lost.set()
            raise
        except TransientError as exc:  # the heartbeat thread keeps trying; `complete` checks again
            log.warning("%s: lease not confirmed now: %s", job.path, exc)

    def _failure(self, job: Job, text: str, slog: logging.Logger) -> str:
        """Log a failed file; the message always names the file."""
        message = text if job.path in text else f"{job.path}: {text}"
        slog.error("failed: %s", message)
        self.states[job.service_name].last_error = display(message)
        return message

    def _transient(self, job: Job, exc: Exception, slog: logging.Logger) -> None:
        if job.attempts >= self.settings.MAX_ATTEMPTS:
            message = f"{job.path}: gave up after {job.attempts} attempts: {exc}"
            slog.error("%s", message)
            self.states[job.service_name].last_error = display(message)
            self._record(job, self.queue.fail, job, message)
            return
        delay = self.settings.RETRY_BACKOFF_SECONDS * 2 ** (job.attempts - 1)
        slog.warning("%s: %s; retrying in %ss", job.path, exc, delay)
        self._wait_for_stores(job)
        self._record(job, self.queue.release, job, str(exc), delay)

    def _wait_for_stores(self, job: Job) -> None:
        """Before a file that met a transient error is retried, wait (with backoff) until both
        stores answer, so that a server restarting does not use up the file's attempts."""
        delay = 1.0
        while not self.stop.is_set():
            try:
                self.sql.list_databases()
                self.documents().count(self.settings.document_db("logs"), "clickstream", {"_id": 0})
                return
            except TransientError as exc:
                state = self.states[job.service_name]
                state.status, state.task = "waiting", display(f"a store does not answer: {exc}")[:300]
                log.warning(
                    "a store does not answer (%s); %s waits, trying again in %.0fs", exc, job.path, delay
                )
                self.stop.wait(delay)
                delay = min(delay * 2, 30.0)

    def _record(self, job: Job, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Record a file's outcome, retrying with backoff while the tracking database is away.

        Returns what `action` returned, or None if the outcome could not be recorded (the lease
        was lost, or a stop was requested while the database was away: the next start returns
        the file to the queue).
        """
        delay = 1.0
        retried = False
        while True:
            try:
                outcome = action(*args, **kwargs)
            except TransientError as exc:
                self.tracking_problem = f"tracking database unavailable: {exc}"
                if self.stop.is_set():
                    log.error("%s: outcome not recorded (%s); the next start re-queues it", job.path, exc)
                    return None
                state = self.states[job.service_name]
                state.status, state.task = "waiting", "tracking database unavailable"
                log.warning(
                    "tracking database unavailable (%s); recording %s again in %.0fs", exc, job.path, delay
                )
                self.stop.wait(delay)
                delay = min(delay * 2, 30.0)
                retried = True
                continue
            except LeaseLost as exc:
                row = self.queue.get(job.id) if retried else None
                if row is not None and row.state != tracking_states.RUNNING:
                    # The attempt that seemed to fail had committed before the connection dropped.
                    self.tracking_back()
                    return row.state != tracking_states.DUPLICATE
                log.error("%s", exc)
                return None
            if retried:
                self.tracking_back()
            return True if outcome is None else outcome

    def tracking_back(self) -> None:
        """The tracking database answered again."""
        if self.tracking_problem:
            log.info("tracking database reachable again")
        self.tracking_problem = ""

    def run_derived(self) -> bool:
        """Run each derived service that is due; True if any ran.

        Whether a service is due can cost a query over every stored event (TimeFinder's), so a
        service found not due, or being looked at by another daemon (which then decides for the
        same inputs), is not looked at again until its inputs complete anew or LEASE_SECONDS / 2
        (how often an idle daemon looked before) have passed: a drain's second pass, and the other
        daemons of a batch, no longer repeat that query. A service that sets `due_recheck_seconds`
        (a backfill whose need never comes from its inputs) is asked again only after that long,
        whatever its inputs do, or after `prepare()`. A `due()` that could not answer (its store
        away), or that another daemon was asking, is asked again after LEASE_SECONDS / 2."""
        ran = False
        short = self.settings.LEASE_SECONDS / 2
        for service in self.services:
            if not service.derived or self.stop.is_set():
                continue
            if service.depends_on and self.queue.pending_count(service.depends_on):
                continue
            inputs = self.queue.last_completed(service.depends_on) if service.depends_on else None
            seen = self._derived_seen.get(service.name)
            if seen is not None and time.monotonic() - seen[1] < seen[2]:
                backfill = seen[2] > short  # its own period: new inputs do not make it due
                if backfill or seen[0] == inputs:
                    continue
            # Several daemons on one queue: one at a time looks whether it is due (after another
            # daemon's run it is not) and runs it; the others go on.
            period = max(short, service.due_recheck_seconds or short)
            with self.queue.exclusive(service.name) as mine:
                due = self._derived_due(service, inputs) if mine else None  # the other one tells
                if due:
                    failed = self._run_derived(service)
                    ran = True
                    if failed:  # not again at once (it would fail again, and drain() not end)
                        self._derived_seen[service.name] = (inputs, time.monotonic(), short)
                    elif period > short:  # a backfill that ended has nothing left
                        self._derived_seen[service.name] = (inputs, time.monotonic(), period)
                    else:
                        self._derived_seen.pop(service.name, None)
                else:  # not due: its own period; could not tell: half a lease
                    recheck = period if due is False else short
                    self._derived_seen[service.name] = (inputs, time.monotonic(), recheck)
        return ran

    def _derived_due(self, service: Service, inputs: datetime | None) -> bool | None:
        """Whether `service` is due; None if it could not tell (its store away)."""
        last = self.queue.last_run_started(service.name)

        changed = service.runs_on_new_input and inputs is not None and (last is None or inputs > last)
        try:
            return changed or service.due(self.context(service))
        except TransientError as exc:  # its store is away (FerretDB restarting): next time
            logging.getLogger(f"ingestor.{service.name}").warning("not run now: %s", exc)
            return None

    def _run_derived(self, service: Service) -> bool:
        """Run a derived service and record the run; True if it failed."""
        state = self.states[service.name]
        started = self.clock()
        state.status, state.task, state.startdate = "running", "run", started
        error = None
        try:
            service.run(self.context(service))
        except Exception as exc:
            error = f"{service.name}: {exc}"
            state.last_error = error
            logging.getLogger(f"ingestor.{service.name}").error("%s", error, exc_info=True)
        finally:
            state.status, state.task = "idle", ""
        self.queue.record_run(service.name, started, error)
        state.extra = service.status_extra(self.context(service))  # e.g. courses skipped, why
        return error is not None

    def outcome(self) -> tuple[list[str], int]:
        """What the tracking table says of the files of the last scan: the errors of those failed
        (and of derived services whose latest run failed), and how many are queued or running."""
        failed, pending = [], 0
        for row in self.queue.rows():
            if row.type == "save_run" or (row.service_name, row.path) not in self.scanned:
                continue
            if row.state == tracking_states.FAILED:
                failed.append(row.error or row.meta)
            elif row.state in tracking_states.PENDING:
                pending += 1
        for service in self.services:
            if service.derived and (error := self.queue.last_run_error(service.name)):
                failed.append(error)
        return failed, pending

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


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)
