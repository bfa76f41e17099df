"""The contract every service implements.

A service declares what it is (`name`), which files it wants from a scan, what it depends on, and
how to ingest one file; or, for a derived service without files, when it is due and how to run.
The scheduler does ordering, leases and retries: a service never sleeps, loops or touches the
tracking table itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from core.courses import Courses
    from core.queue import Job, SqlWrites
    from core.rejects import Rejects
    from core.settings import Settings
    from stores.documents.base import DocumentStore
    from stores.sql.base import SqlStore


@dataclass(frozen=True)
class Entry:
    """One thing found under a `latest` directory: a file or a directory."""

    path: Path  # the real path (the `latest` link resolved), with the delivered name
    area: str  # "clickstream_logs" or "database_state"
    is_dir: bool
    fingerprint: str  # size and mtime (files) or a digest of them (directories); "missing" if broken


@dataclass
class IngestResult:
    """What an ingest reports back to the tracking table.

    `sql_writes(cursor, qualify)` is run in the transaction that marks the file done (qualify(db,
    table) names a table of another database listed in `attach`), so derived rows such as per-day
    aggregates are committed exactly once with the file. With `dedupe`, a file whose
    `content_hash` a done file already has is recorded as its duplicate and `sql_writes` is skipped.
    """

    rows_loaded: int = 0
    rows_rejected: int = 0
    content_hash: str | None = None
    warnings: list[str] = field(default_factory=list)
    sql_writes: SqlWrites | None = None
    attach: tuple[str, ...] = ()
    dedupe: bool = False
    failed: str | None = None  # the file is failed with this message, but what was loaded is kept
    # Paths of the files that first stored some of this file's content (tracking-log events are
    # owned by the first file that stored them): queued again when such a file gets a new version.
    shares: frozenset[str] | None = None


@dataclass
class Context:
    """Everything an ingest may use. `progress` also checks the lease; `should_stop` the signals.

    The scheduler has already checked that the file exists and stays inside the data roots, and
    checks after the ingest that it did not change meanwhile; a service that commits its data
    before returning calls `check_unchanged()` just before it commits (it raises TransientError if
    the file changed, and the file goes back to the queue).
    """

    settings: Settings
    sql: SqlStore
    documents: Callable[[], DocumentStore]
    courses: Callable[[], Courses]
    log: logging.Logger
    job: Job | None = None
    rejects: Rejects | None = None
    progress: Callable[[float], None] = lambda fraction: None
    should_stop: Callable[[], bool] = lambda: False
    check_unchanged: Callable[[], None] = lambda: None


# `due_recheck_seconds` of a backfill whose `due()` reads every stored event (TimeFinder's and
# IPToCountry's `$exists: false` tests, which no index serves): events that need it come from older
# versions, other tools or a new GeoIP database (a SIGHUP), never from this daemon's own loads.
SCAN_RECHECK_SECONDS = 24 * 3600


class Service:
    """Base class of the plugin services in `services/<name>/service.py`."""

    name: ClassVar[str] = ""
    depends_on: ClassVar[tuple[str, ...]] = ()
    derived: ClassVar[bool] = False  # True: no files, runs when its inputs changed
    # Derived services: False to run only when `due()` says so, not after every new input.
    runs_on_new_input: ClassVar[bool] = True
    # True: ordered before every other service (Deliveries lays out the files the others read).
    first: ClassVar[bool] = False
    # Derived services: None to be asked `due()` again when the inputs complete anew or after
    # LEASE_SECONDS / 2; else how long a "not due" answer holds whatever the inputs do (a backfill
    # whose `due()` reads every stored event, needed only by data its inputs never produce). Every
    # service is asked again after `prepare()` (start, SIGHUP).
    due_recheck_seconds: ClassVar[float | None] = None

    def wants(self, entry: Entry) -> bool:
        """True if this service ingests `entry`."""
        return False

    def ingest(self, path: Path, ctx: Context) -> IngestResult:
        """Load one file (or directory). Raise core.errors classes for failures."""
        raise NotImplementedError(f"{self.name} ingests no files")

    def start(self, ctx: Context) -> None:
        """Called once when the daemon starts (create indexes, check resources)."""

    def due(self, ctx: Context) -> bool:
        """Derived services: True if a run is needed even though no input completed since the
        last run (for example data left to backfill). The inputs must still have nothing pending."""
        return False

    def run(self, ctx: Context) -> None:
        """Derived services: recompute from the inputs."""
        raise NotImplementedError(f"{self.name} is not a derived service")

    def rescan_wanted(self) -> bool:
        """True once after this service laid out new files in the data roots, so that the daemon
        scans again at once (and `run --once` takes them in the same run)."""
        return False

    def status_extra(self, ctx: Context) -> dict[str, object]:
        """Extra facts for the status API (for example 'country lookup off')."""
        return {}
