"""The tracking table `api.ingestor`: every SQL statement on it lives here.

One row per (service, file) with the contract's columns (`id, service_name, type, meta, started,
completed, created, started_date, completed_date`) and what a robust queue needs beside them. Each
transition is one method whose WHERE checks the current state (and the worker holding the lease),
so an illegal or stale transition changes nothing and is reported.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from core import states
from core.errors import LockConflict, TerminalError, TransientError
from stores.sql.base import Cursor, SqlStore
from utils.paths import display, from_text, to_text

DATABASE = "api"
TABLE = "ingestor"
Clock = Callable[[], datetime]
Qualify = Callable[[str, str], str]
SqlWrites = Callable[[Cursor, Qualify], None]
T = TypeVar("T")
# A completion that meets a deadlock or lock-wait timeout is run again (that transaction alone).
LOCK_RETRIES = 6
log = logging.getLogger("ingestor")

_COLUMNS_MYSQL = """
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  service_name VARCHAR(64) NOT NULL,
  type VARCHAR(16) NOT NULL DEFAULT 'file',
  meta TEXT NOT NULL,
  path_key CHAR(64) NOT NULL,
  started TINYINT NOT NULL DEFAULT 0,
  completed TINYINT NOT NULL DEFAULT 0,
  created DATETIME(6) NULL,
  started_date DATETIME(6) NULL,
  completed_date DATETIME(6) NULL,
  state VARCHAR(16) NOT NULL,
  attempts INT NOT NULL DEFAULT 0,
  error TEXT NULL,
  worker VARCHAR(255) NULL,
  heartbeat DATETIME(6) NULL,
  not_before DATETIME(6) NULL,
  fingerprint VARCHAR(128) NULL,
  content_hash VARCHAR(64) NULL,
  version INT NOT NULL DEFAULT 1,
  rows_loaded BIGINT NOT NULL DEFAULT 0,
  rows_rejected BIGINT NOT NULL DEFAULT 0,
  progress DOUBLE NOT NULL DEFAULT 0,
  duplicate_of BIGINT NULL,
  path TEXT NULL,
  retake TINYINT NOT NULL DEFAULT 0,
  UNIQUE KEY ingestor_service_path (service_name, path_key),
  KEY ingestor_state (state, service_name)
"""

_COLUMNS_SQLITE = """
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  service_name TEXT NOT NULL,
  type TEXT NOT NULL DEFAULT 'file',
  meta TEXT NOT NULL,
  path_key TEXT NOT NULL,
  started INTEGER NOT NULL DEFAULT 0,
  completed INTEGER NOT NULL DEFAULT 0,
  created DATETIME NULL,
  started_date DATETIME NULL,
  completed_date DATETIME NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  error TEXT NULL,
  worker TEXT NULL,
  heartbeat DATETIME NULL,
  not_before DATETIME NULL,
  fingerprint TEXT NULL,
  content_hash TEXT NULL,
  version INTEGER NOT NULL DEFAULT 1,
  rows_loaded INTEGER NOT NULL DEFAULT 0,
  rows_rejected INTEGER NOT NULL DEFAULT 0,
  progress REAL NOT NULL DEFAULT 0,
  duplicate_of INTEGER NULL,
  path TEXT NULL,
  retake INTEGER NOT NULL DEFAULT 0,
  UNIQUE (service_name, path_key)
"""
# Columns added after the first release: added to an existing table by `ensure_schema`.
_ADDED_COLUMNS = (
    ("path", "TEXT NULL"),
    ("retake", "INTEGER NOT NULL DEFAULT 0"),
)
# Which tracking rows hold events first stored by another file (`owner_key` = its path_key), so
# that a new version of that file, which deletes the events it owns, queues them again to re-take
# what is theirs.
SHARES = "ingestor_shares"
_SHARES_DDL = (
    f"CREATE TABLE IF NOT EXISTS {SHARES} (file_id BIGINT NOT NULL, owner_key CHAR(64) NOT NULL, "
    "PRIMARY KEY (file_id, owner_key))"
)


def contract_meta(path: str) -> str:
    """The `meta` of a file's row: its real path, but a `.log.gz` without `.gz`, because the
    dashboards take a clickstream file's data date as `meta.replace(".log", "")[-10:]`; a byte
    that is not UTF-8 written `\\xff` (utils/paths.display)."""
    path = display(path)
    return path[:-3] if path.endswith(".log.gz") else path


def utcnow() -> datetime:
    """The current UTC time as a naive datetime (how every time is stored)."""
    return datetime.utcnow()


def _ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def path_key(path: str) -> str:
    """The row's key: a digest of the path's bytes (`path` as the file system gives it, or in its
    stored form, utils/paths.to_text)."""
    return hashlib.sha256(from_text(path).encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class Job:
    """A claimed file: what a worker needs to ingest it and to report back."""

    id: int
    service_name: str
    path: str
    fingerprint: str
    attempts: int
    version: int
    worker: str
    retake: bool = False  # queued again only to re-take events another file's new version gave up


@dataclass(frozen=True)
class Row:
    """One row of the tracking table, as the status API shows it."""

    id: int
    service_name: str
    type: str
    meta: str
    state: str
    attempts: int
    error: str | None
    worker: str | None
    created: datetime | None
    started_date: datetime | None
    completed_date: datetime | None
    heartbeat: datetime | None
    rows_loaded: int
    rows_rejected: int
    progress: float
    fingerprint: str | None
    content_hash: str | None
    duplicate_of: int | None
    path: str  # the real path of the file, as `open` takes it (`meta` may differ: see `contract_meta`)


_ROW_COLUMNS = (
    "id, service_name, type, meta, state, attempts, error, worker, created, started_date, "
    "completed_date, heartbeat, rows_loaded, rows_rejected, progress, fingerprint, content_hash, "
    "duplicate_of, COALESCE(path, meta)"
)


def _row(values: Sequence[Any]) -> Row:
    v = list(values)
    for i in (8, 9, 10, 11):
        v[i] = _dt(v[i])
    v[18] = from_text(str(v[18]))
    return Row(*v)


class LeaseLost(TerminalError):
    """The row is no longer running under this worker (swept, or taken by another daemon)."""


class TrackingQueue:
    """The `ingestor` table as a queue with leases."""

    def __init__(self, store: SqlStore, clock: Clock = utcnow, database: str = DATABASE) -> None:
        self.store = store
        self.clock = clock
        self.database = database

    def _tx(self, immediate: bool = True) -> Any:
        return self.store.transaction(self.database, immediate=immediate)

    def ensure_schema(self) -> None:
        """Create or complete the tracking table. On MySQL several daemons may start at the same
        instant on a new database: they take turns (a named lock), so that the second does not
        add an index or column the first has just added."""
        if self.store.dialect != "mysql":
            self._ensure_schema()
            return
        name = f"optimus-ingestor:{self.database}:schema"[:64]
        with self._tx(False) as cur:
            found = cur.execute("SELECT GET_LOCK(?, 120)", (name,)).fetchone()
            if not (found and found[0] == 1):
                raise TransientError(f"{self.database}: another daemon held the schema lock for 120s")
            try:
                self._ensure_schema()
            finally:
                cur.execute("SELECT RELEASE_LOCK(?)", (name,))

    def _ensure_schema(self) -> None:
        columns = _COLUMNS_MYSQL if self.store.dialect == "mysql" else _COLUMNS_SQLITE
        with self._tx() as cur:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} ({columns})")
            if self.store.dialect == "sqlite":
                cur.execute(f"CREATE INDEX IF NOT EXISTS ingestor_state ON {TABLE} (state, service_name)")
                present = {row[1] for row in cur.execute(f"PRAGMA table_info({TABLE})").fetchall()}
            else:
                present = {
                    row[0]
                    for row in cur.execute(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_schema = DATABASE() AND table_name = ?",
                        (TABLE,),
                    ).fetchall()
                }
            for name, kind in _ADDED_COLUMNS:
                if name not in present:
                    cur.execute(f"ALTER TABLE {TABLE} ADD COLUMN {name} {kind}")
            cur.execute(_SHARES_DDL)
            if self.store.dialect == "sqlite":
                cur.execute(f"CREATE INDEX IF NOT EXISTS {SHARES}_owner ON {SHARES} (owner_key)")
            elif not cur.execute(
                f"SHOW INDEX FROM {SHARES} WHERE Key_name = ?", (f"{SHARES}_owner",)
            ).fetchall():
                cur.execute(f"CREATE INDEX {SHARES}_owner ON {SHARES} (owner_key)")

    # -- scanning -----------------------------------------------------------------------------

    def offer(self, service: str, path: str, fingerprint: str) -> str:
        """Track `path` for `service`: 'new', 'changed' (queued again as a new version) or 'same'."""
        now = _ts(self.clock())
        path = from_text(path)
        key = path_key(path)
        with self._tx() as cur:
            found = cur.execute(
                f"SELECT id, state, fingerprint FROM {TABLE} WHERE service_name=? AND path_key=?",
                (service, key),
            ).fetchone()
            if found is None:
                # Another daemon's scan may insert the same file meanwhile: the unique key keeps one.
                ignore = "IGNORE" if self.store.dialect == "mysql" else "OR IGNORE"
                cur.execute(
                    f"INSERT {ignore} INTO {TABLE} (service_name, type, meta, path, path_key, state, created, "
                    "fingerprint) VALUES (?, 'file', ?, ?, ?, ?, ?, ?)",
                    (service, contract_meta(path), to_text(path), key, states.QUEUED, now, fingerprint),
                )
                return "new" if cur.rowcount == 1 else "same"
            row_id, state, old = found
            if old == fingerprint or state in states.PENDING:
                # A file changed while queued or running is re-checked after that run ends.
                return "same"
            cur.execute(
                f"UPDATE {TABLE} SET state=?, fingerprint=?, version=version+1, attempts=0, "
                "started=0, completed=0, started_date=NULL, completed_date=NULL, error=NULL, "
                "rows_loaded=0, rows_rejected=0, progress=0, duplicate_of=NULL, not_before=NULL, retake=0 "
                "WHERE id=? AND state=?",
                (states.QUEUED, fingerprint, row_id, state),
            )
            return "changed" if cur.rowcount == 1 else "same"

    # -- the worker's transitions -------------------------------------------------------------

    def claim(self, worker: str, services: Sequence[str]) -> Job | None:
        """Atomically take the oldest due queued file of `services` (row lock, SKIP LOCKED)."""
        if not services:
            return None
        now = self.clock()
        marks = ", ".join("?" for _ in services)
        lock = " FOR UPDATE SKIP LOCKED" if self.store.dialect == "mysql" else ""
        with self._tx() as cur:
            found = cur.execute(
                f"SELECT id, service_name, COALESCE(path, meta), fingerprint, attempts, version, retake FROM {TABLE} "
                f"WHERE state=? AND type='file' AND service_name IN ({marks}) "
                f"AND (not_before IS NULL OR not_before <= ?) ORDER BY id LIMIT 1{lock}",
                (states.QUEUED, *services, _ts(now)),
            ).fetchone()
            if found is None:
                return None
            row_id, service, meta, fingerprint, attempts, version, retake = found
            cur.execute(
                f"UPDATE {TABLE} SET state=?, worker=?, heartbeat=?, attempts=attempts+1, "
                "started=1, completed=0, started_date=?, progress=0 WHERE id=? AND state=?",
                (states.RUNNING, worker, _ts(now), _ts(now), row_id, states.QUEUED),
            )
            if cur.rowcount != 1:
                return None
        return Job(
            row_id, service, from_text(meta), fingerprint or "", attempts + 1, version, worker, bool(retake)
        )

    def _running_update(self, cur: Cursor, job: Job, sets: str, params: Sequence[Any]) -> None:
        cur.execute(
            f"UPDATE {TABLE} SET {sets} WHERE id=? AND state=? AND worker=?",
            (*params, job.id, states.RUNNING, job.worker),
        )
        if cur.rowcount == 1:
            return
        # MySQL counts the rows an UPDATE changed, not those it matched: a heartbeat that sets the
        # values the row already has (same time, same progress) changes none, yet the lease is held.
        # A locking read: the row as it is now whatever the isolation level, held until the commit.
        lock = " FOR UPDATE" if self.store.dialect == "mysql" else ""
        found = cur.execute(f"SELECT state, worker FROM {TABLE} WHERE id=?{lock}", (job.id,)).fetchone()
        if found is None or found[0] != states.RUNNING or found[1] != job.worker:
            raise LeaseLost(f"{job.path}: no longer running under {job.worker} (lease expired?)")

    def heartbeat(self, job: Job, progress: float | None = None) -> None:
        """Extend the lease; raises LeaseLost if the row was swept or taken over."""
        with self._tx() as cur:
            if progress is None:
                self._running_update(cur, job, "heartbeat=?", (_ts(self.clock()),))
            else:
                self._running_update(cur, job, "heartbeat=?, progress=?", (_ts(self.clock()), progress))

    def complete(
        self,
        job: Job,
        rows_loaded: int,
        rows_rejected: int,
        *,
        fingerprint: str | None = None,
        content_hash: str | None = None,
        error: str | None = None,
        writes: SqlWrites | None = None,
        attach: Sequence[str] = (),
        dedupe: bool = False,
        shares: Collection[str] | None = None,
    ) -> bool:
        """Mark done, with the counts and the fingerprint of the version actually loaded.

        `writes(cursor, qualify)` runs in the same transaction (for example a file's aggregates,
        replacing its previous contribution), so they are committed exactly when the file is done.
        With `dedupe`, a file whose content hash another done file of the service already has is
        recorded as a duplicate of it instead, and `writes` is not run. Returns False then.
        `shares`: the paths of the files that first stored some of this file's content (see
        `_ownership`). A deadlock or lock-wait timeout runs this transaction again at once
        (`writes` must be repeatable: replace, never add), never the file's ingest.
        """
        return self._retry_locks(
            job,
            lambda: self._complete(
                job,
                rows_loaded,
                rows_rejected,
                fingerprint,
                content_hash,
                error,
                writes,
                attach,
                dedupe,
                shares,
            ),
        )

    def _complete(
        self,
        job: Job,
        rows_loaded: int,
        rows_rejected: int,
        fingerprint: str | None,
        content_hash: str | None,
        error: str | None,
        writes: SqlWrites | None,
        attach: Sequence[str],
        dedupe: bool,
        shares: Collection[str] | None,
    ) -> bool:
        now = _ts(self.clock())
        with self.store.transaction(self.database, immediate=True, attach=attach) as cur:
            if dedupe and content_hash:
                found = cur.execute(
                    f"SELECT MIN(id) FROM {TABLE} WHERE service_name=? AND content_hash=? AND state=? AND id<>?",
                    (job.service_name, content_hash, states.DONE, job.id),
                ).fetchone()
                if found and found[0] is not None:
                    self._running_update(
                        cur,
                        job,
                        "state=?, completed=1, completed_date=?, duplicate_of=?, content_hash=?, progress=1, "
                        "rows_loaded=0, rows_rejected=0, error=?, not_before=NULL",
                        (
                            states.DUPLICATE,
                            now,
                            found[0],
                            content_hash,
                            f"same content as tracking row {found[0]}",
                        ),
                    )
                    self._ownership(cur, job, shares)
                    return False
            self._running_update(
                cur,
                job,
                "state=?, completed=1, completed_date=?, rows_loaded=?, rows_rejected=?, progress=1, "
                "fingerprint=?, content_hash=?, error=?, not_before=NULL, duplicate_of=NULL",
                (
                    states.DONE,
                    now,
                    rows_loaded,
                    rows_rejected,
                    fingerprint or job.fingerprint,
                    content_hash,
                    None if error is None else display(error),
                ),
            )
            self._ownership(cur, job, shares)
            if writes is not None:
                main = self.database
                writes(cur, lambda database, table: self.store.qualified(main, database, table))
        return True

    def _ownership(self, cur: Cursor, job: Job, shares: Collection[str] | None) -> None:
        """Record which files first stored content this file also holds (None: leave the record
        as it is); and when a new version of this file ends (it gave up what it owned), queue
        again the done files that share its content or duplicate it, to re-take their own."""
        if shares is not None:
            cur.execute(f"DELETE FROM {SHARES} WHERE file_id=?", (job.id,))
            keys = sorted({path_key(p) for p in shares} - {path_key(job.path)})
            if keys:
                cur.executemany(
                    f"INSERT INTO {SHARES} (file_id, owner_key) VALUES (?, ?)", [(job.id, k) for k in keys]
                )
        if job.version > 1 and not job.retake:
            self._requeue_sharers(cur, job.service_name, job.id, job.path)

    def _requeue_sharers(self, cur: Cursor, service: str, row_id: int, path: str) -> None:
        """Queue again (to re-take their own) the done files of `service` that hold content first
        stored by the file `row_id` at `path`, or duplicate it: a new version of that file gave up
        what it owned, whether it then completed, failed, or was failed by the sweep."""
        cur.execute(
            f"UPDATE {TABLE} SET state=?, retake=1, attempts=0, started=0, completed=0, started_date=NULL, "
            "completed_date=NULL, error=NULL, rows_loaded=0, rows_rejected=0, progress=0, duplicate_of=NULL, "
            f"not_before=NULL, worker=NULL WHERE service_name=? AND state IN (?, ?) AND id<>? AND "
            f"(duplicate_of=? OR id IN (SELECT file_id FROM {SHARES} WHERE owner_key=?))",
            (
                states.QUEUED,
                service,
                states.DONE,
                states.DUPLICATE,
                row_id,
                row_id,
                path_key(path),
            ),
        )

    def fail(
        self,
        job: Job,
        error: str,
        rows_loaded: int = 0,
        rows_rejected: int = 0,
        *,
        writes: SqlWrites | None = None,
        attach: Sequence[str] = (),
    ) -> None:
        """Mark failed; `writes` (the rows derived from what was loaded, if kept) commit with it."""

        def transaction() -> None:
            with self.store.transaction(self.database, immediate=True, attach=attach) as cur:
                self._running_update(
                    cur,
                    job,
                    "state=?, error=?, rows_loaded=?, rows_rejected=?, not_before=NULL, started=0, completed=0",
                    (states.FAILED, display(error)[:60000], rows_loaded, rows_rejected),
                )
                self._ownership(cur, job, None)
                if writes is not None:
                    main = self.database
                    writes(cur, lambda database, table: self.store.qualified(main, database, table))

        self._retry_locks(job, transaction)

    def _retry_locks(self, job: Job, transaction: Callable[[], T]) -> T:
        """Run `transaction`, again at once (after a few ms' jitter) if the server rolled it back
        on a deadlock or a lock-wait timeout; the file's data is never read again for that."""
        for attempt in range(1, LOCK_RETRIES + 1):
            try:
                return transaction()
            except LockConflict as exc:
                if attempt == LOCK_RETRIES:
                    raise
                log.warning("%s: %s; running its completion transaction again", job.path, exc)
                time.sleep(random.uniform(0, 0.02 * attempt))
        raise AssertionError("unreachable")

    def release(self, job: Job, error: str | None, delay: float = 0, count_attempt: bool = True) -> None:
        """Put a running file back in the queue, due after `delay` seconds."""
        due = _ts(self.clock() + timedelta(seconds=delay))
        attempts = "attempts" if count_attempt else "attempts-1"
        with self._tx() as cur:
            self._running_update(
                cur,
                job,
                f"state=?, error=?, not_before=?, worker=NULL, started=0, attempts={attempts}",
                (states.QUEUED, None if error is None else display(error), due),
            )

    # -- recovery -----------------------------------------------------------------------------

    def sweep(
        self,
        lease_seconds: float,
        max_attempts: int,
        dead_workers: Sequence[str] = (),
        *,
        own_worker: str | None = None,
        keep: Collection[int] = (),
    ) -> int:
        """Return files whose worker stopped heartbeating (or is known dead) to the queue.

        `own_worker`: the sweeping daemon's worker; a file it holds but is not ingesting (not in
        `keep`, the ids of the files it is ingesting now) was abandoned by it and is returned at
        once; one in `keep` is never returned, whatever its heartbeat says. A file that has used up
        `max_attempts` is failed instead, with the reason named.
        """
        expired = _ts(self.clock() - timedelta(seconds=lease_seconds))
        changed = 0
        with self._tx() as cur:
            rows = cur.execute(
                f"SELECT id, worker, attempts, heartbeat, service_name, COALESCE(path, meta), version, retake "
                f"FROM {TABLE} WHERE state=?",
                (states.RUNNING,),
            ).fetchall()
            for row_id, worker, attempts, beat, service, path, version, retake in rows:
                if row_id in keep:
                    continue  # this daemon is ingesting it now: alive, whatever its heartbeat says
                dead = worker in dead_workers
                own = own_worker is not None and worker == own_worker
                beat_ts = _dt(beat)
                if not dead and not own and beat_ts is not None and _ts(beat_ts) >= expired:
                    continue
                if own:
                    why = f"abandoned by its worker {worker} (this daemon), which no longer ingests it"
                elif dead:
                    why = f"worker {worker} died while ingesting"
                else:
                    why = f"lease expired: worker {worker} sent no heartbeat for {lease_seconds:g}s"
                if attempts >= max_attempts:
                    cur.execute(
                        f"UPDATE {TABLE} SET state=?, error=?, started=0 WHERE id=? AND state=? AND worker=?",
                        (
                            states.FAILED,
                            f"{why}; gave up after {attempts} attempts",
                            row_id,
                            states.RUNNING,
                            worker,
                        ),
                    )
                    failed = cur.rowcount
                    changed += failed
                    if failed == 1:
                        log.warning(
                            "%s: %s; failed after %d attempts", display(from_text(str(path))), why, attempts
                        )
                    if failed == 1 and int(version) > 1 and not retake:
                        # The new version gave up the events it owned before its worker died:
                        # the files sharing them take them back, as after any other failure.
                        self._requeue_sharers(cur, service, row_id, path)
                else:
                    cur.execute(
                        f"UPDATE {TABLE} SET state=?, error=?, worker=NULL, started=0, not_before=NULL "
                        "WHERE id=? AND state=? AND worker=?",
                        (states.QUEUED, why, row_id, states.RUNNING, worker),
                    )
                    changed += cur.rowcount
                    if cur.rowcount == 1:
                        log.warning("%s: %s; back to the queue", display(from_text(str(path))), why)
        return changed

    def seconds_until_due(self, services: Sequence[str]) -> float | None:
        """Seconds until the next queued file of `services` is due, or None if none is queued."""
        if not services:
            return None
        marks = ", ".join("?" for _ in services)
        with self._tx(False) as cur:
            found = cur.execute(
                f"SELECT COUNT(*), MIN(not_before) FROM {TABLE} WHERE state=? AND service_name IN ({marks})",
                (states.QUEUED, *services),
            ).fetchone()
        if not found or not found[0]:
            return None
        due = _dt(found[1])
        return 0.0 if due is None else (due - self.clock()).total_seconds()

    def running_workers(self) -> list[str]:
        with self._tx(False) as cur:
            rows = cur.execute(
                f"SELECT DISTINCT worker FROM {TABLE} WHERE state=? AND worker IS NOT NULL",
                (states.RUNNING,),
            ).fetchall()
        return [r[0] for r in rows]

    def retry_failed(self, services: Sequence[str] = ()) -> int:
        """Queue failed files again with fresh attempts (the `retry` command)."""
        where = "state=?"
        params: list[Any] = [states.FAILED]
        if services:
            where += f" AND service_name IN ({', '.join('?' for _ in services)})"
            params.extend(services)
        with self._tx() as cur:
            cur.execute(
                f"UPDATE {TABLE} SET state=?, attempts=0, not_before=NULL, worker=NULL, started=0 "
                f"WHERE {where}",
                (states.QUEUED, *params),
            )
            return cur.rowcount

    # -- derived services ---------------------------------------------------------------------

    @contextmanager
    def exclusive(self, service: str) -> Iterator[bool]:
        """Whether this daemon may run the derived `service` now: True for at most one daemon at a
        time (a MySQL named lock held for the block; SQLite has one daemon per state directory)."""
        if self.store.dialect != "mysql":
            yield True
            return
        name = f"optimus-ingestor:{self.database}:{service}"[:64]
        with self._tx(False) as cur:
            found = cur.execute("SELECT GET_LOCK(?, 0)", (name,)).fetchone()
            mine = bool(found and found[0] == 1)
            try:
                yield mine
            finally:
                if mine:  # the lock belongs to the session, and connections are pooled
                    cur.execute("SELECT RELEASE_LOCK(?)", (name,))

    def record_run(self, service: str, started: datetime, error: str | None = None) -> None:
        """A run of a service without files: a `save_run` row (contract)."""
        now = _ts(self.clock())
        key = path_key(f"save_run:{uuid.uuid4()}")
        with self._tx() as cur:
            cur.execute(
                f"INSERT INTO {TABLE} (service_name, type, meta, path_key, started, completed, created, "
                "started_date, completed_date, state, error, progress) "
                "VALUES (?, 'save_run', '', ?, 1, 1, ?, ?, ?, ?, ?, 1)",
                (
                    service,
                    key,
                    _ts(started),
                    _ts(started),
                    now,
                    states.FAILED if error else states.DONE,
                    None if error is None else display(error),
                ),
            )

    def last_run_error(self, service: str) -> str | None:
        """The error of the service's latest `save_run` row; None if it succeeded or never ran."""
        with self._tx(False) as cur:
            found = cur.execute(
                f"SELECT state, error FROM {TABLE} WHERE type='save_run' AND service_name=? "
                "ORDER BY id DESC LIMIT 1",
                (service,),
            ).fetchone()
        if found is None or found[0] != states.FAILED:
            return None
        return str(found[1] or f"{service}: the last run failed")

    def pending_count(self, services: Sequence[str]) -> int:
        if not services:
            return 0
        marks = ", ".join("?" for _ in services)
        with self._tx(False) as cur:
            found = cur.execute(
                f"SELECT COUNT(*) FROM {TABLE} WHERE state IN (?, ?) AND service_name IN ({marks})",
                (*states.PENDING, *services),
            ).fetchone()
        return int(found[0]) if found else 0

    def last_completed(self, services: Sequence[str], run_type: str = "file") -> datetime | None:
        if not services:
            return None
        marks = ", ".join("?" for _ in services)
        with self._tx(False) as cur:
            found = cur.execute(
                f"SELECT MAX(completed_date) FROM {TABLE} WHERE completed=1 AND type=? "
                f"AND service_name IN ({marks})",
                (run_type, *services),
            ).fetchone()
        return _dt(found[0]) if found else None

    def last_run_started(self, service: str) -> datetime | None:
        with self._tx(False) as cur:
            found = cur.execute(
                f"SELECT MAX(started_date) FROM {TABLE} WHERE type='save_run' AND service_name=?",
                (service,),
            ).fetchone()
        return _dt(found[0]) if found else None

    # -- reading ------------------------------------------------------------------------------

    def rows(self, service: str | None = None, state: str | None = None, limit: int = 0) -> list[Row]:
        where = []
        params: list[Any] = []
        if service:
            where.append("service_name=?")
            params.append(service)
        if state:
            where.append("state=?")
            params.append(state)
        sql = f"SELECT {_ROW_COLUMNS} FROM {TABLE}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self._tx(False) as cur:
            return [_row(r) for r in cur.execute(sql, params).fetchall()]

    def get(self, row_id: int) -> Row | None:
        with self._tx(False) as cur:
            found = cur.execute(f"SELECT {_ROW_COLUMNS} FROM {TABLE} WHERE id=?", (row_id,)).fetchone()
        return _row(found) if found else None

    def counts(self) -> dict[str, dict[str, int]]:
        """Files per service and state."""
        return {service: {st: n for st, (n, _, _) in by.items()} for service, by in self.summary().items()}

    def summary(self) -> dict[str, dict[str, tuple[int, int, int]]]:
        """Per service and state: (files, rows loaded, rows rejected), in one query."""
        with self._tx(False) as cur:
            rows = cur.execute(
                f"SELECT service_name, state, COUNT(*), SUM(rows_loaded), SUM(rows_rejected) FROM {TABLE} "
                "WHERE type='file' GROUP BY service_name, state"
            ).fetchall()
        result: dict[str, dict[str, tuple[int, int, int]]] = {}
        for service, state, count, loaded, rejected in rows:
            result.setdefault(service, {})[state] = (int(count), int(loaded or 0), int(rejected or 0))
        return result

    def running(self) -> list[Row]:
        """The files being ingested now (by any daemon), with their progress."""
        return self.rows(state=states.RUNNING)

    # -- reading for the status API (each one indexed query) -----------------------------------

    # (name, columns): the indexes the status API's reads use; created idempotently.
    READ_INDEXES = (
        ("ingestor_summary", "type, service_name, state, rows_loaded, rows_rejected"),
        ("ingestor_service_list", "service_name, state, id"),
        ("ingestor_state_list", "state, id"),
        ("ingestor_state_created", "state, created"),
        ("ingestor_last_done", "completed, service_name, type, state, completed_date"),
        ("ingestor_completed_date", "completed_date"),
    )

    def ensure_read_indexes(self) -> None:
        """Add the status API's indexes to the tracking table if missing (MySQL and SQLite)."""
        with self._tx() as cur:
            if self.store.dialect == "sqlite":
                for name, columns in self.READ_INDEXES:
                    cur.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {TABLE} ({columns})")
                return
            have = {str(r[2]) for r in cur.execute(f"SHOW INDEX FROM {TABLE}").fetchall()}
        for name, columns in self.READ_INDEXES:
            if name in have:
                continue
            try:
                with self._tx() as cur:
                    cur.execute(f"CREATE INDEX {name} ON {TABLE} ({columns})")
            except TerminalError:
                # Another daemon sharing the table created it meanwhile (duplicate key name).
                with self._tx(False) as cur:
                    names = {str(r[2]) for r in cur.execute(f"SHOW INDEX FROM {TABLE}").fetchall()}
                if name not in names:
                    raise

    def page(
        self,
        service: str | None = None,
        state: str | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> list[Row]:
        """Tracked files newest first (highest id), those with an id below `before` only."""
        where = ["type='file'"]
        params: list[Any] = []
        if service:
            where.append("service_name=?")
            params.append(service)
        if state:
            where.append("state=?")
            params.append(state)
        if before is not None:
            where.append("id<?")
            params.append(before)
        sql = f"SELECT {_ROW_COLUMNS} FROM {TABLE} WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT {int(limit)}"
        with self._tx(False) as cur:
            return [_row(r) for r in cur.execute(sql, params).fetchall()]

    def last_completions(self) -> dict[tuple[str, str, str], datetime]:
        """The latest completion per (service, type, state) of completed rows."""
        with self._tx(False) as cur:
            rows = cur.execute(
                f"SELECT service_name, type, state, MAX(completed_date) FROM {TABLE} WHERE completed=1 "
                "GROUP BY service_name, type, state"
            ).fetchall()
        result = {}
        for service, kind, state, last in rows:
            when = _dt(last)
            if when is not None:
                result[(service, kind, state)] = when
        return result

    def oldest_queued(self) -> datetime | None:
        """When the file that has waited longest in the queue was queued."""
        with self._tx(False) as cur:
            found = cur.execute(
                f"SELECT MIN(created) FROM {TABLE} WHERE state=?", (states.QUEUED,)
            ).fetchone()
        return _dt(found[0]) if found else None

    def completed_since(
        self, after: datetime, limit: int = 5000
    ) -> list[tuple[int, str, datetime, datetime, int]]:
        """Files completed after `after`, oldest first: (id, service, started, completed, rows)."""
        with self._tx(False) as cur:
            rows = cur.execute(
                f"SELECT id, service_name, started_date, completed_date, rows_loaded FROM {TABLE} "
                f"WHERE completed_date>? AND type='file' ORDER BY completed_date LIMIT {int(limit)}",
                (_ts(after),),
            ).fetchall()
        result = []
        for row_id, service, started, completed, loaded in rows:
            start, end = _dt(started), _dt(completed)
            if start is not None and end is not None:
                result.append((int(row_id), str(service), start, end, int(loaded or 0)))
        return result

    def retry_file(self, row_id: int) -> bool:
        """Queue one failed file again with fresh attempts; False if it is not failed."""
        with self._tx() as cur:
            cur.execute(
                f"UPDATE {TABLE} SET state=?, attempts=0, not_before=NULL, worker=NULL, started=0 "
                "WHERE id=? AND state=? AND type='file'",
                (states.QUEUED, row_id, states.FAILED),
            )
            return cur.rowcount == 1

    def get_with_version(self, row_id: int) -> tuple[Row, int] | None:
        """One row and its version (the API's file record)."""
        with self._tx(False) as cur:
            found = cur.execute(
                f"SELECT {_ROW_COLUMNS}, version FROM {TABLE} WHERE id=?", (row_id,)
            ).fetchone()
        return (_row(found[:-1]), int(found[-1])) if found else None

    def next_queued(self, limit: int = 10) -> list[Row]:
        """The queued files in the order they will be claimed (oldest first)."""
        with self._tx(False) as cur:
            rows = cur.execute(
                f"SELECT {_ROW_COLUMNS} FROM {TABLE} WHERE state=? ORDER BY id LIMIT {int(limit)}",
                (states.QUEUED,),
            ).fetchall()
        return [_row(r) for r in rows]
