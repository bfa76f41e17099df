"""Clickstream: daily tracking logs into `logs.clickstream`, with time and country, exactly once.

Each line becomes one document (services/clickstream/events.py) whose `_id` is derived from the
line's content, so re-reading a file after a crash, or the same events delivered again, adds
nothing twice (duplicate `_id`s are expected and skipped; any other write error is not). A file
whose content changed replaces its previous version's events. A file whose content (the
decompressed lines) was already loaded under another name is recorded as its duplicate. Time and
country are computed while ingesting (the original's two extra passes cost three writes per event);
TimeFinder and IPToCountry only backfill documents loaded without them. Per-day counts for the
person-course tables are committed with the file's completion (aggregates.py).
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from pathlib import Path
from typing import Any

from base_service import Context, Entry, IngestResult, Service
from core.errors import Interrupted, TerminalError
from services.clickstream import aggregates
from services.clickstream.events import content_id, course_of, event_name, parse, user_of
from utils.geoip import GeoIP
from utils.lines import TruncatedInput, iter_line_blocks
from utils.timeparse import parse_event_time

COLLECTION = "clickstream"
LOGS = "logs"
# `<prefix>-YYYY-MM-DD.log[.gz]`: uqx-edx-events-, uqx-edge-events-, universityx-edge-, ...-prod-...
LOG_NAME = re.compile(r"^[A-Za-z0-9_.\-]+?(\d{4}-\d{2}-\d{2})\.log(?:\.gz)?$")
INDEXES: tuple[tuple[tuple[str, int], ...], ...] = (
    (("country", 1),),
    (("event_type", 1), ("context.course_id", 1)),
    (("context.course_id", 1),),
    (("time_date", 1),),
    (("username", 1),),
    (("context.user_id", 1),),
    (("source_file", 1),),
)


def log_date(name: str) -> date | None:
    match = LOG_NAME.match(name)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def open_geoip(ctx: Context) -> GeoIP | None:
    if not ctx.settings.GEOIP_DATABASE:
        return None
    return GeoIP(Path(ctx.settings.GEOIP_DATABASE))


class ClickstreamService(Service):
    name = "Clickstream"

    def __init__(self) -> None:
        self.hold_newest = True
        self.batch = 5000
        self.geoip: GeoIP | None = None
        self._newest: dict[Path, tuple[int, date | None]] = {}

    def start(self, ctx: Context) -> None:
        self.hold_newest = ctx.settings.CLICKSTREAM_HOLD_NEWEST
        self.batch = ctx.settings.CLICKSTREAM_BATCH
        self.geoip = open_geoip(ctx)
        if self.geoip is None:
            ctx.log.warning("no GEOIP_DATABASE configured: events get no country")
        store = ctx.documents()
        database = ctx.settings.document_db(LOGS)
        for keys in INDEXES:
            store.create_index(database, COLLECTION, keys)
        with ctx.sql.transaction(aggregates.DATABASE) as cur:
            for statement in aggregates.create_statements(ctx.sql.dialect):
                cur.execute(statement)

    def status_extra(self, ctx: Context) -> dict[str, object]:
        if self.geoip is None:
            return {"country": "off (no GEOIP_DATABASE)"}
        return {"country": f"on ({self.geoip.database_type}, built {self.geoip.build_epoch})"}

    def wants(self, entry: Entry) -> bool:
        if entry.area != "clickstream_logs" or entry.is_dir:
            return False
        day = log_date(entry.path.name)
        if day is None:
            return False
        return not (self.hold_newest and day == self._newest_date(entry.path.parent))

    def _newest_date(self, directory: Path) -> date | None:
        """The newest date among the directory's logs (cached while the directory is unchanged)."""
        try:
            mtime = directory.stat().st_mtime_ns
        except OSError:
            return None
        cached = self._newest.get(directory)
        if cached and cached[0] == mtime:
            return cached[1]
        dates = [d for d in (log_date(p.name) for p in directory.iterdir()) if d is not None]
        newest = max(dates) if dates else None
        self._newest[directory] = (mtime, newest)
        return newest

    def ingest(self, path: Path, ctx: Context) -> IngestResult:
        if not path.exists():
            raise TerminalError(f"{path}: missing (broken symbolic link?)")
        assert ctx.job is not None and ctx.rejects is not None
        source = ctx.job.path
        store = ctx.documents()
        database = ctx.settings.document_db(LOGS)
        if ctx.job.version > 1:
            removed = store.delete_many(database, COLLECTION, {"source_file": source})
            ctx.log.info("%s: new version; removed %d events of the previous one", path, removed)
        loader = _Loader(self, ctx, source, database)
        size = max(path.stat().st_size, 1)
        position = [0]
        failed = None
        try:
            for first, lines in iter_line_blocks(path, position):
                loader.add_lines(first, lines)
                ctx.progress(min(position[0] / size, 0.99))
                if ctx.should_stop():
                    raise Interrupted(f"{path}: stopped before line {first + len(lines)}")
        except TruncatedInput as exc:
            failed = f"{exc}; the {loader.events} events read before it are kept"
        loader.flush()
        return IngestResult(
            rows_loaded=loader.events,
            rows_rejected=ctx.rejects.count,
            content_hash=loader.digest.hexdigest(),
            sql_writes=loader.days.writer(source),
            attach=(aggregates.DATABASE,),
            dedupe=True,
            failed=failed,
        )


class _Loader:
    """The per-file state of an ingest: the batch, the counts, the content digest."""

    def __init__(self, service: ClickstreamService, ctx: Context, source: str, database: str) -> None:
        self.ctx = ctx
        self.store = ctx.documents()
        self.database = database
        self.source = source
        self.geoip = service.geoip
        self.geoip_build = service.geoip.build_epoch if service.geoip else None
        self.batch_size = service.batch
        self.batch: list[dict[str, Any]] = []
        self.days = aggregates.DayCounts()
        self.digest = hashlib.blake2b(digest_size=32)
        self.events = 0
        self.inserted = 0
        self.duplicates = 0

    def add_lines(self, first: int, lines: list[bytes]) -> None:
        self.digest.update(b"\n".join(lines) + b"\n")
        rejects = self.ctx.rejects
        assert rejects is not None
        lookup = self.geoip.lookup if self.geoip else None
        for index, raw in enumerate(lines):
            event, reason = parse(raw)
            if event is None:
                rejects.add(first + index, reason, raw)
                continue
            when = parse_event_time(event.get("time"))
            event["time_date"] = when
            ip = event.get("ip")
            country = None
            if lookup is not None:
                found = lookup(ip) if isinstance(ip, str) else None
                if found is not None:
                    country, subdivision = found
                    event["country"] = country
                    if subdivision:
                        event["subdivision"] = subdivision
                event["geoip"] = self.geoip_build
            elif ip == "" or ip == "::1":
                event["country"] = country = ""
            user_id, username = user_of(event)
            self.days.add(course_of(event), user_id, username, when, event_name(event), country, ip)
            event["_id"] = content_id(raw)
            event["source_file"] = self.source
            event["source_line"] = first + index
            self.batch.append(event)
            self.events += 1
            if len(self.batch) >= self.batch_size:
                self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        result = self.store.insert_many(self.database, COLLECTION, self.batch)
        self.inserted += result.inserted
        self.duplicates += result.duplicates
        self.batch = []
