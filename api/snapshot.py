"""The daemon's picture for the status API, read from the tracking table at most once a second.

Every read endpoint answers from one `Snapshot`, so a burst of requests costs the tracking database
a handful of indexed queries per second however large the table grows. When the database does not
answer, `Monitor.snapshot()` raises `Unavailable` with the reason, and the next request tries again:
nothing has to be restarted when the database comes back.

Requests do not pay for the reads either: a snapshot due for a refresh is read by a background thread
while requests are answered from the previous one, and each endpoint's body is built once per
snapshot (`Monitor.rendered`), so most requests cost a dictionary look-up and a socket write.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import states
from core.errors import IngestorError
from core.queue import Row
from utils.paths import display

if TYPE_CHECKING:
    from core.scheduler import Scheduler

TTL_SECONDS = 1.0
STALE_SECONDS = 5.0  # an older snapshot is not given out while the next is read: the request reads
RECENT_FAILURES = 20
HISTORY_MINUTES = 120
EVENT_SERVICES = frozenset({"Clickstream"})  # their rows are events (clickstream lines)


class Unavailable(Exception):
    """The tracking database does not answer; the message says why."""


def iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


@dataclass
class Snapshot:
    taken: datetime
    summary: dict[str, dict[str, tuple[int, int, int]]]
    running: list[Row]
    completions: dict[tuple[str, str, str], datetime]
    oldest_queued: datetime | None
    failures: list[Row]
    queued: list[Row]
    history: list[dict[str, Any]] = field(default_factory=list)


class Monitor:
    """Builds snapshots (cached for TTL_SECONDS) and keeps what the metrics count over time."""

    def __init__(self, scheduler: Scheduler, ttl: float = TTL_SECONDS) -> None:
        self.scheduler = scheduler
        self.ttl = ttl
        self.lock = threading.Lock()
        self.cached: tuple[float, Snapshot] | None = None
        self.generation = 0  # raised by invalidate(): a read begun before it is not kept
        self.bodies: dict[str, tuple[Snapshot, bytes]] = {}
        self.problem: str | None = None
        self.indexed = False
        self.started = scheduler.clock()
        # Files completed since this process started feed the duration histogram; the chart's
        # history starts HISTORY_MINUTES earlier.
        self.seen_until = self.started - timedelta(minutes=HISTORY_MINUTES)
        self.seen_ids: set[int] = set()
        self.buckets: dict[datetime, list[int]] = {}
        self.durations: deque[tuple[str, float]] = deque()  # (service, seconds), drained by metrics

    # -- the snapshot ---------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The current snapshot. A request never waits for a refresh while a recent one exists: when
        the snapshot is older than `ttl` (and younger than `STALE_SECONDS`) one background thread
        reads the next one while every request is answered from the previous. Only the first
        request, one after a failure or an `invalidate()`, or one after a long quiet spell reads
        the tracking table itself (and raises `Unavailable` if it does not answer)."""
        cached = self.cached
        if cached is not None:
            age = time.monotonic() - cached[0]
            if age < self.ttl:
                return cached[1]
            if age < STALE_SECONDS:
                if self.lock.acquire(blocking=False):
                    threading.Thread(
                        target=self._refresh_and_release, name="status-snapshot", daemon=True
                    ).start()
                return cached[1]
        with self.lock:
            cached = self.cached
            if cached is not None and time.monotonic() - cached[0] < self.ttl:
                return cached[1]
            return self._refresh()

    def _refresh(self) -> Snapshot:
        """Reads a new snapshot (the caller holds the lock). One begun before an `invalidate()`
        (a retry or a scan committed meanwhile) is answered but not kept as fresh."""
        generation = self.generation
        try:
            snap = self._read()
        except IngestorError as exc:
            self.problem = f"tracking database unavailable: {exc}"
            self.cached = None
            raise Unavailable(self.problem) from exc
        self.problem = None
        if generation == self.generation:
            self.cached = (time.monotonic(), snap)
        return snap

    def _refresh_and_release(self) -> None:
        try:
            self._refresh()
        except Unavailable:
            pass  # said by the next request, which finds no snapshot and reads (and fails) itself
        except Exception:  # a bug here must not leave the lock held forever
            self.cached = None
            logging.getLogger("ingestor.api").exception("status API: refreshing the snapshot failed")
        finally:
            self.lock.release()

    def invalidate(self) -> None:
        self.generation += 1
        self.cached = None

    def rendered(self, key: str, snap: Snapshot, build: Callable[[Snapshot], bytes]) -> bytes:
        """An answer's body built once per snapshot: later requests on the same snapshot get the
        same bytes (two requests racing on a new snapshot may both build it; either result is kept)."""
        entry = self.bodies.get(key)
        if entry is not None and entry[0] is snap:
            return entry[1]
        body = build(snap)
        self.bodies[key] = (snap, body)
        return body

    def _read(self) -> Snapshot:
        queue = self.scheduler.queue
        if not self.indexed:
            queue.ensure_schema()
            queue.ensure_read_indexes()
            self.indexed = True
        snap = Snapshot(
            taken=self.scheduler.clock(),
            summary=queue.summary(),
            running=queue.rows(state=states.RUNNING),
            completions=queue.last_completions(),
            oldest_queued=queue.oldest_queued(),
            failures=queue.page(state=states.FAILED, limit=RECENT_FAILURES),
            queued=queue.next_queued(10),
        )
        self._follow(snap.taken)
        snap.history = self._history(snap.taken)
        return snap

    def _follow(self, now: datetime) -> None:
        """Take in the files completed since the last look (bounded per look)."""
        done = self.scheduler.queue.completed_since(self.seen_until - timedelta(seconds=1))
        for row_id, service, started, completed, loaded in done:
            if row_id in self.seen_ids:
                continue
            self.seen_ids.add(row_id)
            if completed >= self.started:
                self.durations.append((service, max((completed - started).total_seconds(), 0.0)))
            minute = completed.replace(second=0, microsecond=0)
            slot = self.buckets.setdefault(minute, [0, 0])
            slot[0 if service in EVENT_SERVICES else 1] += loaded
            self.seen_until = max(self.seen_until, completed)
        horizon = now - timedelta(minutes=HISTORY_MINUTES)
        for minute in [m for m in self.buckets if m < horizon]:
            del self.buckets[minute]
        if len(self.seen_ids) > 50_000:
            self.seen_ids = set(sorted(self.seen_ids)[-10_000:])

    def _history(self, now: datetime) -> list[dict[str, Any]]:
        return [
            {"minute": iso(minute), "events": slot[0], "rows": slot[1]}
            for minute, slot in sorted(self.buckets.items())
        ]

    # -- views ------------------------------------------------------------------------------------

    def relative(self, meta: str) -> str:
        """A tracked path relative to the data root it lies under (never an absolute path); a byte
        that is not UTF-8 written `\\xff`."""
        path = Path(meta)
        for root in self.scheduler.settings.DATA_PATHS:
            for base in (root, root.resolve()):
                try:
                    return display(path.relative_to(base).as_posix())
                except ValueError:
                    continue
        return display(path.name)

    def scrub_paths(self, text: str | None) -> str | None:
        """A message with the data roots' absolute prefixes taken out (paths read as in `path`)."""
        if not text:
            return text
        for root in self.scheduler.settings.DATA_PATHS:
            for base in {str(root), str(root.resolve())}:
                text = text.replace(base.rstrip("/") + "/", "")
        return text

    def running_file(self, row: Row, now: datetime) -> dict[str, Any]:
        try:
            size = os.stat(row.path).st_size
        except OSError:
            size = None
        fraction = min(max(row.progress, 0.0), 1.0)
        elapsed = (now - row.started_date).total_seconds() if row.started_date else None
        eta = None
        if elapsed is not None and fraction > 0.001:
            eta = round(elapsed * (1 - fraction) / fraction, 1)
        return {
            "id": row.id,
            "path": self.relative(row.path),
            "started": iso(row.started_date),
            "percent": round(fraction * 100, 1),
            "bytes_done": int(size * fraction) if size is not None else None,
            "bytes_total": size,
            "eta_seconds": eta,
            "attempt": row.attempts,
        }

    def services(self, snap: Snapshot) -> list[dict[str, Any]]:
        running = {row.service_name: row for row in snap.running}
        failures: dict[str, Row] = {}
        for row in snap.failures:
            failures.setdefault(row.service_name, row)
        result = []
        for service in self.scheduler.services:
            state = self.scheduler.states[service.name]
            by_state = snap.summary.get(service.name, {})
            counts = {s: by_state.get(s, (0, 0, 0))[0] for s in states.ALL}
            kept = [by_state.get(s, (0, 0, 0)) for s in (states.DONE, states.FAILED)]
            current = running.get(service.name)
            kind = "save_run" if service.derived else "file"
            last_done = [
                snap.completions.get((service.name, kind, s)) for s in (states.DONE, states.DUPLICATE)
            ]
            last_failed = snap.completions.get((service.name, kind, states.FAILED))
            newest_failure = failures.get(service.name)
            entry: dict[str, Any] = {
                "name": service.name,
                "kind": "derived" if service.derived else "files",
                "depends_on": list(service.depends_on),
                "state": (
                    "running"
                    if state.status == "running" or (current is not None and state.status != "waiting")
                    else state.status
                ),
                "running": self.running_file(current, snap.taken) if current else None,
                "counts": counts,
                "rows_loaded": sum(k[1] for k in kept),
                "rows_rejected": sum(k[2] for k in kept),
                "last_completed": iso(max((d for d in last_done if d), default=None)),
                "last_error": self.scrub_paths(
                    state.last_error or (newest_failure.error if newest_failure else None) or None
                ),
                "extra": dict(state.extra),
            }
            if service.derived:
                last_ok = last_done[0]
                last_run = max((d for d in (last_ok, last_failed) if d), default=None)
                entry["last_run"] = {
                    "at": iso(last_run),
                    "ok": None if last_run is None else last_run == last_ok,
                }
            result.append(entry)
        return result

    def file_view(self, row: Row, version: int | None = None) -> dict[str, Any]:
        view: dict[str, Any] = {
            "id": row.id,
            "service": row.service_name,
            "path": self.relative(row.path),
            "state": row.state,
            "attempts": row.attempts,
            "error": self.scrub_paths(row.error),
            "queued": iso(row.created),
            "started": iso(row.started_date),
            "completed": iso(row.completed_date),
            "rows_loaded": row.rows_loaded,
            "rows_rejected": row.rows_rejected,
            "progress": round(row.progress, 4),
            "duplicate_of": row.duplicate_of,
        }
        if version is not None:
            view["version"] = version
            view["rejects"] = None
            if row.rows_rejected:
                from core.rejects import _UNSAFE

                safe = _UNSAFE.sub("_", Path(row.path).name)[:180] or "unnamed"
                view["rejects"] = f"rejects/{row.service_name}/{safe}.{row.id}.v{version}.rejects.tsv"
        return view
