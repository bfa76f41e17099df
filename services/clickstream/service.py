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

import collections
import json
import queue
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import blake3
import bson
import bson.errors
import orjson
from bson import ObjectId

from base_service import Context, Entry, IngestResult, Service
from core.errors import Interrupted
from services.clickstream import aggregates, derived_counts, events
from services.clickstream.aggregates import Counted
from services.clickstream.derived_counts import ENROLMENT
from services.clickstream.events import aggregate_problem, course_of, event_name, parse_with_text, user_of
from services.clickstream.ids import collection_uses_time_ids, content_id
from stores.documents.base import InsertResult, completed, never_lists
from stores.documents.base import encode as encode_document
from utils.delivered import is_delivered
from utils.geoip import GeoIP
from utils.lines import TruncatedInput, iter_line_blocks
from utils.paths import to_text
from utils.read_ahead import read_ahead
from utils.timeparse import TimeOutOfRange, parse_event_time

COLLECTION = "clickstream"
LOGS = "logs"
# `<prefix>-YYYY-MM-DD.log[.gz]`: uqx-edx-events-, uqx-edge-events-, universityx-edge-, ...-prod-...
LOG_NAME = re.compile(r"^[A-Za-z0-9_.\-]+?(\d{4}-\d{2}-\d{2})\.log(?:\.gz)?$")
# Each index is paid on every insert (on FerretDB 20-45 us of server CPU per event each; see
# bench/README.md, "MongoDB path"), so only those a reader needs: the dashboards' three (data
# contract, the original's three) and `source_file` (a new version of a file deletes the events it
# owns). `username` and `time_date` are not among the contract's indexes: none of our regular
# queries filter on them (TimeFinder's `$exists: false` check runs once a day; the `_id` form's
# one-event `time_date` query, once a file, stops at the first event), and `time_date`'s (events in
# random time order) cost FerretDB ~10% of the ingest. A collection made by an older
# version keeps them; a dashboard that wants time ranges across courses creates it (README).
INDEXES: tuple[tuple[tuple[str, int], ...], ...] = (
    (("country", 1),),
    (("event_type", 1), ("context.course_id", 1)),
    (("context.course_id", 1),),
    (("source_file", 1),),
)
# What the daemon's own queries on the collection need: a new version of a file deletes the events
# of the previous one by `source_file`; the ownership check and the backfills' updates go by `_id`
# (the primary key). The other indexes serve the dashboards' queries (data contract), made only on
# a store they read (`outside_readers`: MongoDB); on the embedded store each would cost every
# insert a B-tree update (three of them at random places) and serve nothing. TimeFinder's and
# IPToCountry's `$exists: false` tests are a json_type test on SQLite, which no index serves.
OWN_INDEXES: tuple[tuple[tuple[str, int], ...], ...] = ((("source_file", 1),),)


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
        self.batch = 20000
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
            if store.outside_readers or keys in OWN_INDEXES:
                store.create_index(database, COLLECTION, keys)
        with ctx.sql.transaction(aggregates.DATABASE) as cur:
            for statement in aggregates.create_statements(ctx.sql.dialect) + derived_counts.create_statements(
                ctx.sql.dialect
            ):
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
        held = self.hold_newest and day == self._newest_date(entry.path.parent)
        return not held or is_delivered(entry.path)  # a delivered log is complete: never held

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
        assert ctx.job is not None and ctx.rejects is not None
        source = to_text(ctx.job.path)  # `source_file`: UTF-8 whatever the name's bytes (utils/paths)
        store = ctx.documents()
        database = ctx.settings.document_db(LOGS)
        if ctx.job.version > 1 and not ctx.job.retake:
            removed = store.delete_many(database, COLLECTION, {"source_file": source})
            ctx.log.info("%s: new version; removed %d events of the previous one", path, removed)
        loader = _Loader(self, ctx, source, database)
        size = max(path.stat().st_size, 1)
        failed = None
        try:
            try:
                too_long = _too_long_rejecter(ctx, ctx.settings.MAX_LINE_BYTES)
                blocks = _hashed_blocks(path, ctx.settings.MAX_LINE_BYTES, loader.digest)
                for first, lines, long_lines, position in read_ahead(blocks, name="clickstream-read"):
                    for long_line in long_lines:
                        too_long(*long_line)
                    loader.add_lines(first, lines)
                    ctx.progress(min(position / size, 0.99))
                    if ctx.should_stop():
                        raise Interrupted(f"{path}: stopped before line {first + len(lines)}")
            except TruncatedInput as exc:
                failed = f"{exc}; the {loader.events} events read before it are kept"
            loader.finish()
        except BaseException:
            loader.abandon()
            raise
        return IngestResult(
            rows_loaded=loader.events,
            rows_rejected=ctx.rejects.count,
            content_hash=loader.digest.hexdigest(),
            sql_writes=loader.derived.writer(source, loader.days.writer(source)),
            attach=(aggregates.DATABASE,),
            # A file that owns no event may be a mere copy of a done file; one that owns some is not.
            dedupe=loader.owned == 0,
            failed=failed,
            shares=frozenset(loader.shares),
        )


# A batch is also written once its lines add up to this many bytes, so that the batches in flight
# (one being built, two queued, one being written) hold a bounded amount whatever the lines' length.
BATCH_BYTES = 8 << 20

# At most so many ips' place fields are kept while a file is read (`_Loader.places`).
MAX_PLACES = 100_000

ADDED = frozenset(("_id", "time_date", "country", "subdivision", "geoip", "source_file", "source_line"))
# The added fields every document gets (never a list): no index under them can become multikey.
ALWAYS_ADDED = frozenset(("_id", "time_date", "source_file", "source_line"))


class _Writer:
    """Stores the batches on a thread of its own, while the next batch is parsed.

    SQLite (and the network round trips to MongoDB) mostly run without the GIL, so parsing and
    writing overlap on two cores. At most two batches wait, so memory stays flat: one batch being
    built, two waiting, one being written. Two, not one: while the writer commits a group of
    batches (`grouped_writes`, most of a second for 48 MiB), the reading side parses on.

    A batch is stored in two steps: `start` hands it to the store and returns the future of its
    result, `finish` takes the result. Where the store is still storing a batch when the next
    arrives (MongoDB's pipelined inserts), the next is started before the first is finished, so
    that the store always has the next batch at hand: then one more batch is being written.
    """

    def __init__(
        self,
        start: Callable[[Any], Future[Any]],
        finish: Callable[[Any, Future[Any]], None],
        session: Callable[[], AbstractContextManager[None]],
    ) -> None:
        self._start = start
        self._finish = finish
        self._session = session  # entered on the writer thread around all its writes
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="clickstream-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        ended = False
        try:
            with self._session():
                pending: tuple[Any, Future[Any]] | None = None
                while (item := self._queue.get()) is not None:
                    if self.error is None:
                        # no name holds a finished batch while the next is stored: memory stays flat
                        stored = self._start(item)
                        if pending is not None:
                            self._finish(*pending)
                            pending = None
                        if stored.done():
                            self._finish(item, stored)
                        else:
                            pending = (item, stored)
                ended = True
                if pending is not None:
                    self._finish(*pending)
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
            if self.error is None:
                self.error = exc
        while not ended:  # keep taking batches until `close`, so that `put` never blocks
            ended = self._queue.get() is None

    def put(self, item: Any) -> None:
        if self.error is not None:
            raise self.error
        self._queue.put(item)

    def close(self, raise_error: bool = True) -> None:
        self._queue.put(None)
        self._thread.join()
        if raise_error and self.error is not None:
            raise self.error


class _Loader:
    """The per-file state of an ingest: the batch, the counts, the content digest.

    Ownership: an event belongs to the file that first stored it (its `source_file`). A file's
    per-day counts take only the events it owns: the ones it inserts, and the duplicates whose
    stored `source_file` is this file (a retry after a crash). The other duplicates are counted by
    their owner; their owners' paths are reported (`shares`) so that a new version of an owner,
    which deletes what it owned, makes this file take them back. So the per-day rows of all files
    sum to the distinct stored events.
    """

    def __init__(self, service: ClickstreamService, ctx: Context, source: str, database: str) -> None:
        self.ctx = ctx
        self.store = ctx.documents()
        self.database = database
        self.source = source
        self.source_json = json.dumps(source, ensure_ascii=False)
        self.geoip = service.geoip
        self.geoip_build = service.geoip.build_epoch if service.geoip else None
        self.batch_size = service.batch
        self.encoded = self.store.accepts_encoded
        # On MongoDB, with the compiled pass, the batch is the module's `BsonBatch`: the documents'
        # BSON one after the other, the common lines' made by `events.native_prepare_bson`.
        self.prepare_bson = None if self.encoded else events.native_prepare_bson
        batch_class = events.native("BsonBatch") if self.prepare_bson is not None else None
        self.new_batch: Callable[[], Any] = batch_class if batch_class is not None else list
        self.batch: Any = self.new_batch()
        self.batch_bytes = 0
        self.days = aggregates.DayCounts()
        self.derived = derived_counts.DerivedCounts()
        # A batch's counted events: a native `CountedRows` where the native counters count them
        # (the block passes append theirs to it), else tuples.
        rows_class = events.native("CountedRows")
        natively = self.days.native is not None and self.derived.event_types.native is not None
        self.new_counted: Callable[[], aggregates.CountedBatch] = (
            rows_class if natively and rows_class is not None else list
        )
        self.counted: aggregates.CountedBatch = self.new_counted()
        self.lines: list[int] = []
        self.maybe_lists: list[dict[str, Any]] = []
        self.may_hold_lists = self.store.may_hold_lists(database, COLLECTION, ALWAYS_ADDED)
        # The compiled first pass (events.native_scan) gives only the fields the loader reads. That
        # is enough where the stored text is the line's own and no index needs the whole event;
        # elsewhere (MongoDB, an index that may become multikey) a line it takes is read whole by
        # orjson, which is then all `parse_with_text` would do with it.
        self.scan = events.native_scan
        self.whole = not (self.encoded and self.may_hold_lists is never_lists)
        # Where the loader needs only those fields, the compiled pass also does the rest of its work
        # on the common lines, a block at a time (`events.native_prepare`).
        self.prepare = None if self.whole else events.native_prepare
        self.time_first = collection_uses_time_ids(self.store, database, COLLECTION)  # see ids.py
        # What follows `source_file` in every stored text of this file (geoip is per file too).
        self.geoip_json = "" if self.geoip_build is None else f',"geoip":{self.geoip_build}'
        self.source_tail = f',"source_file":{self.source_json},"source_line":'
        self.tail_prefix = self.geoip_json + self.source_tail  # what `prepare` puts after the place
        self.places: events.Places = {}  # the place fields of each ip seen (`_add_ready`)
        self.digest = _file_digest()
        self.events = 0
        self.inserted = 0
        self.owned = 0
        self.shares: set[str] = set()
        # The owned events of each stored batch, in order, until the reading thread counts them.
        self.stored: collections.deque[aggregates.CountedBatch] = collections.deque()
        # Batches share SQLite transactions (`grouped_writes`). Nothing depends on a batch being
        # committed before the end: the counts are written with the file's state, after the last
        # commit, and an ingest that fails is done again from its first line.
        self.submit: Callable[[Any], Future[InsertResult]] | None = None  # in the writer's session
        self.writer = _Writer(self._store_batch, self._stored_batch, self._session)

    @contextmanager
    def _session(self) -> Iterator[None]:
        """The writer thread's: shared transactions on SQLite, pipelined inserts on MongoDB."""
        with (
            self.store.grouped_writes(self.database),
            self.store.pipelined_inserts(self.database, COLLECTION) as submit,
        ):
            self.submit = submit
            yield

    def add_lines(self, first: int, lines: list[bytes]) -> None:
        """Parse and batch a block of lines (the content digest is fed by `iter_line_blocks`).

        With the compiled pass, a batch holds a part's common lines first, then the others: not in
        line order. Nothing depends on that order but `batch`, `counted` and `lines` staying
        parallel, and identical lines always take the same path (their first is the owner)."""
        if self.prepare_bson is not None:
            self._add_bson(first, lines)
            return
        if self.prepare is None:
            self._add_each(first, lines)
            return
        at = 0
        while at < len(lines):
            part = lines[at : at + max(self.batch_size - len(self.batch), 1)]
            noted: list[int] = []
            rows, counted, numbers, size, rest = self.prepare(
                part, first + at, self.time_first, self.tail_prefix, self.places, self._rows(), noted
            )
            for index in noted:
                self._note(part[index])
            self.batch.extend(rows)
            self._extend_counted(counted)
            self.lines.extend(numbers)
            self.events += len(rows)
            self.batch_bytes += size
            for index, ready in rest:
                if ready is None:
                    self._add_each(first + at + index, part[index : index + 1])
                else:
                    self._add_ready(first + at + index, part[index], ready)
            at += len(part)
            if len(self.batch) >= self.batch_size or self.batch_bytes >= BATCH_BYTES:
                self.flush()

    def _add_bson(self, first: int, lines: list[bytes]) -> None:
        """`add_lines` on MongoDB, where `prepare_bson` makes the documents of the common lines
        (a new ip's place made by `_place` when the module meets it: no line read twice)."""
        assert self.prepare_bson is not None
        at = 0
        while at < len(lines):
            part = lines[at : at + max(self.batch_size - len(self.batch), 1)]
            start = first + at
            noted: list[int] = []
            counted, numbers, size, declined, missing = self.prepare_bson(
                part,
                start,
                self.time_first,
                self.source,
                self.geoip_build,
                self.places,
                self.batch,
                self._rows(),
                noted,
                self._place,
            )
            if missing:  # never, with `place` given; a line left out would be lost
                raise RuntimeError(f"{self.source}: lines {missing} of a block not taken")
            for index in noted:
                self._note(part[index])
            self._extend_counted(counted)
            self.lines.extend(numbers)
            self.events += len(numbers)  # a document appended to the batch for each
            self.batch_bytes += size
            for index in declined:
                self._add_each(start + index, part[index : index + 1])
            at += len(part)
            if len(self.batch) >= self.batch_size or self.batch_bytes >= BATCH_BYTES:
                self.flush()

    def _note(self, raw: bytes) -> None:
        """`DerivedCounts.note` of an enrolment event the compiled pass took (the rare events
        whose `event` it keeps, which the pass does not read): the line read whole by orjson, its
        fields as `_add_each` reads them (the pass reads the same, `tests/test_eventscan.py`)."""
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:  # not for a line the pass takes; as `_add_each` if so
            event = parse_with_text(raw)[0]
            if event is None:
                return
        try:
            when = parse_event_time(event.get("time"))
        except TimeOutOfRange:  # not taken by the pass
            return
        user_id, username = user_of(event)
        self.derived.note(event, event_name(event), course_of(event), user_id, username, when)

    def _rows(self) -> aggregates.CountedRows | None:
        """The `CountedRows` the block passes append the batch's counted events to, if it is one."""
        return None if isinstance(self.counted, list) else self.counted

    def _extend_counted(self, counted: list[Counted]) -> None:
        """Add what a block pass returned as counted tuples (nothing if it appended to `_rows`)."""
        if counted:
            assert isinstance(self.counted, list)
            self.counted.extend(counted)

    def _place(self, ip: str | None) -> tuple[str, str | None, str | None]:
        """The place fields of an ip (stored text, country, subdivision), kept in `places`."""
        known = self.places.get(ip)
        if known is not None:
            return known
        country = subdivision = None
        if self.geoip:
            found = self.geoip.lookup(ip) if ip is not None else None
            if found is not None:
                country, subdivision = found
        elif ip == "" or ip == "::1":
            country = ""
        place = "" if country is None else ',"country":' + _json_text(country)
        if subdivision:
            place += ',"subdivision":' + _json_text(subdivision)
        if len(self.places) >= MAX_PLACES:
            self.places.clear()
        self.places[ip] = found_place = (place, country, subdivision)
        return found_place

    def _add_ready(self, line: int, raw: bytes, ready: events.Ready) -> None:
        """Batch a line `prepare` made ready but for its place, whose ip is not yet in `places`:
        what `_add_each` does with such a line, the rest done by `prepare`."""
        key, head, tail, when, course, user_id, username, name, ip = ready
        place, country, _ = self._place(ip)
        self.batch.append((key, head + place + tail))
        self.counted.append((course, user_id, username, when, name, country, ip))
        self.lines.append(line)
        self.events += 1
        self.batch_bytes += len(raw)

    def _add_each(self, first: int, lines: list[bytes]) -> None:
        """Parse and batch lines one at a time."""
        rejects = self.ctx.rejects
        assert rejects is not None
        lookup = self.geoip.lookup if self.geoip else None
        counted, numbers = self.counted, self.lines
        time_first = self.time_first
        scan, whole = self.scan, self.whole
        size = 8 if time_first else 12  # the digest `content_id` takes (ids.py)
        text: str | None
        for index, raw in enumerate(lines):
            scanned = scan(raw, size) if scan is not None else None
            hashed = event = None
            if scanned is not None:
                fields, text, hashed = scanned
                # read whole where the loader needs the whole event (an enrolment event too:
                # `derived.note` keeps more of it than `scan` gives); by orjson, as
                # `parse_with_text` would, unless orjson refuses it after all
                event = _whole(text) if whole or event_name(fields).startswith(ENROLMENT) else fields
            if event is None:
                event, reason, text = parse_with_text(raw)
                if event is None:
                    rejects.add(first + index, reason, raw)
                    continue
            line = first + index
            try:
                when = parse_event_time(event.get("time"))
            except TimeOutOfRange as exc:
                rejects.add(line, str(exc), raw)
                continue
            user_id, username = user_of(event)
            course = course_of(event)
            problem = aggregate_problem(course, user_id, username, when)
            if problem:
                rejects.add(line, problem, raw)
                continue
            ip = event.get("ip")
            country = subdivision = None
            if lookup is not None:
                found = lookup(ip) if type(ip) is str else None
                if found is not None:
                    country, subdivision = found
            elif ip == "" or ip == "::1":
                country = ""
            digest = content_id(raw, when, time_first, hashed)
            if self.encoded:
                try:
                    self.batch.append(self._encoded(event, text, digest, when, country, subdivision, line))
                except (TypeError, ValueError, OverflowError) as exc:
                    rejects.add(line, f"not storable: {exc}", raw)
                    continue
            else:
                self._complete(event, when, country, subdivision, line)
                event["_id"] = ObjectId(digest)
                if type(self.batch) is list:
                    self.batch.append(event)
                else:  # a `BsonBatch`: the document pymongo would make of the dict, `_id` first
                    try:
                        self.batch.append(bson.encode({"_id": event["_id"], **event}))
                    except (bson.errors.BSONError, TypeError, ValueError, OverflowError) as exc:
                        # (`parse_with_text` rejects what BSON cannot hold first: not expected)
                        rejects.add(line, f"not storable: {exc}", raw)
                        continue
            name = event_name(event)
            counted.append((course, user_id, username, when, name, country, ip))
            self.derived.note(event, name, course, user_id, username, when)
            numbers.append(line)
            self.events += 1
            self.batch_bytes += len(raw)
            if len(self.batch) >= self.batch_size or self.batch_bytes >= BATCH_BYTES:
                self.flush()
                counted, numbers = self.counted, self.lines

    def _complete(
        self, event: dict[str, Any], when: Any, country: str | None, subdivision: str | None, line: int
    ) -> None:
        event["time_date"] = when
        if country is not None:
            event["country"] = country
        if subdivision:
            event["subdivision"] = subdivision
        if self.geoip_build is not None:
            event["geoip"] = self.geoip_build
        event["source_file"] = self.source
        event["source_line"] = line

    def _encoded(
        self,
        event: dict[str, Any],
        text: str | None,
        digest: bytes,
        when: Any,
        country: str | None,
        subdivision: str | None,
        line: int,
    ) -> tuple[str, str]:
        """(id key, stored text): the line's own JSON with the added fields spliced in front."""
        oid = digest.hex()
        if self.may_hold_lists(event):
            self.maybe_lists.append(event)
        if text is None or not ADDED.isdisjoint(event):
            self._complete(event, when, country, subdivision, line)
            event["_id"] = ObjectId(digest)
            return "o" + oid, encode_document({"_id": event.pop("_id"), **event})
        if when is None:
            time_date = ',"time_date":null'
        else:
            time_date = f',"time_date":{{"$date":"{when.isoformat(timespec="milliseconds")}Z"}}'
        place = "" if country is None else ',"country":' + _json_text(country)
        if subdivision:
            place += ',"subdivision":' + _json_text(subdivision)
        rest = text[1:].lstrip()
        return "o" + oid, "".join(
            (
                '{"_id":{"$oid":"',
                oid,
                '"}',
                time_date,
                place,
                self.geoip_json,
                self.source_tail,
                str(line),
                rest if rest.startswith("}") else "," + rest,
            )
        )

    def flush(self) -> None:
        if not self.batch:
            return
        self.writer.put((self.batch, self.counted, self.lines, self.maybe_lists))
        self.batch, self.counted, self.lines, self.maybe_lists = self.new_batch(), self.new_counted(), [], []
        self.batch_bytes = 0
        self.count_stored()

    def count_stored(self) -> None:
        """Count the owned events of the batches the writer has stored (on the reading thread: the
        writer thread keeps to the store, whose work runs without the GIL)."""
        while self.stored:
            self.count_owned(self.stored.popleft())

    def _store_batch(
        self, item: tuple[Any, aggregates.CountedBatch, list[int], list[dict[str, Any]]]
    ) -> Future[InsertResult]:
        """On the writer thread: hand one batch to the store (`_Writer`)."""
        batch, _, _, maybe_lists = item
        if not self.encoded:
            assert self.submit is not None
            return self.submit(batch)
        return completed(self.store.insert_encoded(self.database, COLLECTION, batch, maybe_lists))

    def _stored_batch(
        self,
        item: tuple[Any, aggregates.CountedBatch, list[int], list[dict[str, Any]]],
        stored: Future[InsertResult],
    ) -> None:
        """On the writer thread: once a batch is stored, hand the events this file owns to `count_stored`."""
        batch, counted, lines, _ = item
        result = stored.result()
        self.inserted += result.inserted
        if result.duplicate_at:
            foreign = self._not_owned(batch, lines, result.duplicate_at)
            if isinstance(counted, list):
                counted = [c for position, c in enumerate(counted) if position not in foreign]
            else:  # in place: `_Writer` finishes each batch once
                counted.drop_positions(foreign)
        self.owned += len(counted)
        self.stored.append(counted)

    def _not_owned(self, batch: Any, lines: list[int], positions: tuple[int, ...]) -> set[int]:
        """The positions of duplicates this file must not count (one query, for those ids only):
        stored by another file (remembered in `shares`), or an identical earlier line of this file.
        A duplicate stored from this very line (an attempt before a crash) is this file's own."""
        ids = [ObjectId(batch[p][0][1:]) if self.encoded else batch[p]["_id"] for p in positions]
        stored = {
            doc["_id"]: (doc.get("source_file"), doc.get("source_line"))
            for doc in self.store.find(
                self.database, COLLECTION, {"_id": {"$in": ids}}, {"source_file": 1, "source_line": 1}
            )
        }
        skipped = set()
        for position, _id in zip(positions, ids, strict=True):
            owner, line = stored.get(_id, (None, None))
            if owner != self.source or line != lines[position]:
                skipped.add(position)
                if owner != self.source and isinstance(owner, str):
                    self.shares.add(owner)
        return skipped

    def count_owned(self, counted: aggregates.CountedBatch) -> None:
        """The one hook of the per-file accumulators: called with the events this file owns."""
        self.days.add_all(counted)
        self.derived.add_all(counted)

    def finish(self) -> None:
        """Write what is left and wait for the writer; raises what a write raised."""
        self.flush()
        self.writer.close()
        self.count_stored()

    def abandon(self) -> None:
        self.writer.close(raise_error=False)


def _file_digest() -> Any:
    """The content digest's hasher: BLAKE3 (the `blake3` package), ~3,300 MiB/s on the read-ahead
    thread that feeds it every decompressed byte, against ~930 for BLAKE2b (1.2 us an event of
    a tracking log, which the loader's own CPU per event is measured by; bench/README.md).

    Files done before 246c8d0 carry a BLAKE2b digest. A copy of one of them delivered under
    another name is therefore not recognised as its copy: it is done as a file of its own that
    owns none of its events (they are the first file's), so no event is stored or counted twice
    (README: only the API's `rows_loaded` totals count its lines again)."""
    return blake3.blake3()


def _whole(text: str) -> dict[str, Any] | None:
    """The whole event of a line `events.native_scan` took, or None if orjson refuses it."""
    try:
        event: dict[str, Any] = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return event


# A block of lines as the reading thread gets it: (number of its first line, the lines, the
# too-long lines before it as (line number, length, first bytes), bytes of the file read so far).
Block = tuple[int, list[bytes], list[tuple[int, int, bytes]], int]


def _hashed_blocks(path: Path, max_line: int, digest: Any) -> Iterator[Block]:
    """The file's blocks of lines, each added to the content digest (of the lines that are not too
    long, LF-terminated) by `iter_line_blocks`. Run by `read_ahead` on its own thread:
    decompression and hashing release the GIL, so they overlap the parsing. Too-long lines are
    handed over with the next block, so that they are rejected in line order on the reading
    thread."""
    long_lines: list[tuple[int, int, bytes]] = []
    position = [0]
    try:
        for first, lines in iter_line_blocks(
            path, position, max_line, lambda *line: long_lines.append(line), digest
        ):
            yield first, lines, long_lines[:], position[0]
            long_lines.clear()
    except TruncatedInput:
        if long_lines:
            yield 0, [], long_lines[:], position[0]
        raise
    if long_lines:
        yield 0, [], long_lines[:], position[0]


def _too_long_rejecter(ctx: Context, limit: int) -> Callable[[int, int, bytes], None]:
    rejects = ctx.rejects
    assert rejects is not None

    def reject(line_no: int, length: int, head: bytes) -> None:
        rejects.add(
            line_no, f"line too long ({length} bytes > MAX_LINE_BYTES {limit}); its first bytes kept", head
        )

    return reject


@lru_cache(maxsize=4096)
def _json_text(value: str) -> str:
    return json.dumps(value)
