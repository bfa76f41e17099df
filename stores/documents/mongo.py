"""The MongoDB backend, through pymongo: production MongoDB, FerretDB 1.24 in the tests.

Only what FerretDB 1.24 also implements is used (plain find/count, bulk writes, simple and
unique indexes, renameCollection without dropTarget as a fallback). Filters are checked against the
shared language first, so a filter MongoDB would accept but SQLite could not is refused here too.
"""

from __future__ import annotations

import functools
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

import bson
from bson import ObjectId
from bson.errors import BSONError, InvalidDocument
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient, UpdateOne
from pymongo.collection import Collection
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    ConfigurationError,
    ConnectionFailure,
    DocumentTooLarge,
    NetworkTimeout,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)

from core.errors import BadDataError, ConfigError, TerminalError, TransientError
from stores.documents.base import (
    Document,
    DocumentStore,
    Filter,
    IndexKeys,
    InsertResult,
    Projection,
    check_database_name,
    check_index_keys,
    check_name,
    check_projection,
    check_set_fields,
    completed,
    default_index_name,
)
from stores.documents.filters import bson_key, validate_filter
from utils.native import native

# native/eventscan's batch of raw documents, where it is built: what the clickstream loader hands
# over on MongoDB (unless OPTIMUS_NATIVE_SCAN=0). It routes itself (`BsonBatch.routes`) and gives
# each command's documents as one run of bytes (`_Send._command`); any other batch is a list of
# documents, routed and sent one at a time.
_BsonBatch: type | None = native("BsonBatch")

# A batch as the store sends it: a list of documents (`_id` first), or a `BsonBatch`.
Batch = Sequence[Document]


@functools.lru_cache(maxsize=1)
def _runs_sent_as_documents() -> bool:
    """Whether this pymongo sends a `BsonRun` (documents one after the other, `_type_marker` 101)
    as the documents it holds: it writes an `insert` command's `documents` as OP_MSG's document
    sequence, each raw document's bytes as they are, so the message is byte for byte the one it
    makes of the documents one by one. Checked once, plain and compressed; were a later pymongo to
    read raw documents otherwise, each document of a `BsonBatch` is sent on its own as before."""
    if _BsonBatch is None:
        return False
    try:
        from pymongo import message
        from pymongo.compression_support import ZlibContext

        docs = [bson.encode({"_id": ObjectId(bytes([n]) * 12), "n": n}) for n in range(2)]
        batch = _BsonBatch()
        for raw in docs:
            batch.append(raw)

        def sent(documents: list[Any], ctx: Any) -> bytes:
            command = {"insert": "c", "documents": documents, "ordered": False}
            _, data, _, _ = message._op_msg(0, command, "db", None, bson.DEFAULT_CODEC_OPTIONS, ctx)
            return bytes(data[:4] + data[16:])  # not the request id

        return all(
            sent([batch.run([0, 1])], ctx) == sent([RawBSONDocument(raw) for raw in docs], ctx)
            for ctx in (None, ZlibContext(-1))
        )
    except Exception:  # noqa: BLE001 - any change there: documents one by one
        return False


DUPLICATE_KEY = 11000
# FerretDB 1.24 (SQLite backend) keeps one pooled connection open per statement of an `update`
# command until the command ends; at about 100 statements its pool (100) is exhausted and the
# database deadlocks for good. So updates go in commands of at most this many statements.
UPDATE_CHUNK = 50
NOT_IMPLEMENTED = 238
INVALID_NAMESPACE = 73
COPY_BATCH = 5000
# Documents per `insert` command. The service hands over batches of CLICKSTREAM_BATCH (20,000)
# events; sent as one command they would be ~26 MB that the server decodes at once. 1,000 is what
# mongoimport sends; on FerretDB 1,000 and 20,000 cost the server the same (bench/README.md, "MongoDB
# path"), and the command's own 16 MiB limit leaves room for 1,000 events of up to ~16 KB.
INSERT_CHUNK = 1000
# Lanes that send one batch's `insert` commands side by side, each a thread sending its commands in
# order (on a pooled connection of its own while it waits for the reply). FerretDB reads a command
# and collects its garbage outside its SQLite write, and MongoDB writes on several cores, so a
# second lane keeps the server busy while the first waits: on FerretDB 1.24, 30,000 events went in
# 20-25% less time with two than with one, and no faster with three (bench/README.md, "What bounds
# the MongoDB path now").
INSERT_LANES = 2


def redact_url(url: object) -> str:
    """A URL fit for a log line or error message: the password replaced by `***`."""
    return re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", str(url))


@contextmanager
def _translated(db: str, coll: str | None = None) -> Iterator[None]:
    """Turn driver errors into the project's: connection trouble is transient, the rest terminal."""
    where = f"{db}.{coll}" if coll else db
    try:
        yield
    except (AutoReconnect, ServerSelectionTimeoutError, NetworkTimeout, ConnectionFailure) as exc:
        raise TransientError(f"mongodb {where}: server unavailable: {exc}") from exc
    except OperationFailure as exc:
        if _server_going_away(exc):
            raise TransientError(f"mongodb {where}: server stopping or stepping down: {exc}") from exc
        raise TerminalError(f"mongodb {where}: {exc}") from exc
    except (InvalidDocument, OverflowError, UnicodeEncodeError) as exc:
        raise BadDataError(f"mongodb {where}: cannot store document: {exc}") from exc
    except (PyMongoError, BSONError) as exc:
        raise TerminalError(f"mongodb {where}: {exc}") from exc


# Server errors that mean the server is shutting down, stepping down or unreachable, not that the
# request is wrong: MongoDB's HostUnreachable, HostNotFound, NetworkTimeout, ShutdownInProgress,
# PrimarySteppedDown, SocketException, NotWritablePrimary, InterruptedAtShutdown,
# InterruptedDueToReplStateChange, NotPrimaryNoSecondaryOk, NotPrimaryOrSecondary.
_GOING_AWAY_CODES = frozenset({6, 7, 89, 91, 189, 9001, 10107, 11600, 11602, 13435, 13436})


def _server_going_away(exc: OperationFailure) -> bool:
    """True for a reply saying the server is going away (a later retry may succeed). FerretDB answers the
    requests in flight when it stops with InternalError "context canceled" (found by the
    FerretDB-restart test: the log then failed for good instead of waiting for the store)."""
    if exc.code in _GOING_AWAY_CODES or exc.has_error_label("RetryableWriteError"):
        return True
    return exc.code == 1 and "context canceled" in str(exc)


# Set by `_Send` on a duplicate-key error the server did not say the index of, once looked up.
_ID_CLASH = "_id_clash"


def _is_id_clash(error: Mapping[str, Any]) -> bool | None:
    """Whether a duplicate-key write error is about `_id`; None when the server does not say (and
    the collection has no other unique index, or `_Send` did not look)."""
    if _ID_CLASH in error:
        return bool(error[_ID_CLASH])
    key = error.get("keyPattern")
    if isinstance(key, Mapping):
        return list(key) == ["_id"]
    message = str(error.get("errmsg", ""))
    return (" index: _id_ " in message) if " index: " in message else None


def _id_first(doc: Document) -> Document:
    """The document with `_id` first (a new ObjectId, set in the caller's dict, if it has none), as
    MongoDB stores it: `insert_many` did this itself, an `insert` command does not. Raw BSON (a
    `RawBSONDocument`, an `eventscan.Bson`: what pymongo sends as its `raw` bytes) is sent as it
    is: its maker put `_id` first (reading it would decode it)."""
    if not isinstance(doc, dict) and getattr(doc, "_type_marker", None) == RawBSONDocument._type_marker:
        return doc
    if "_id" not in doc:
        if not isinstance(doc, dict):
            raise TerminalError(f"cannot give an _id to a {type(doc).__name__}")
        doc["_id"] = ObjectId()
    if next(iter(doc)) == "_id" or not isinstance(doc, dict):
        return doc
    return {"_id": doc["_id"], **doc}


# An ObjectId `_id` as the first element of raw BSON: its type byte and name, after the length.
_RAW_OBJECT_ID = b"\x07_id\x00"


def _lane_of(doc: Document, lanes: int) -> int:
    """The lane that sends `doc` (with its `_id`, see `_id_first`): the same for every document
    with the same `_id`. Each lane sends its documents in their batch order, batch after batch, so
    of two documents with one `_id` the first is the one stored, as with a single lane, whatever
    the timing (the stored event keeps the first line's `source_line`)."""
    raw = getattr(doc, "raw", None)
    if isinstance(raw, bytes):
        if raw[4:9] == _RAW_OBJECT_ID:
            return raw[20] % lanes  # the ObjectId's last byte, as below, without decoding the document
        key = bson.decode(raw)["_id"]  # plain dicts inside, as in a dict document
    else:
        key = doc["_id"]
    if isinstance(key, ObjectId):
        return key.binary[11] % lanes
    return hash(bson_key(key)) % lanes


def _copy_over(source: Collection[Document], target: Collection[Document]) -> None:
    """Replace `target` by a copy of `source` (indexes included), then drop `source`."""
    target.drop()
    for index in source.list_indexes():
        if index["name"] != "_id_":
            keys = [(field, int(direction)) for field, direction in index["key"].items()]
            options: dict[str, Any] = {"name": index["name"]}
            if index.get("unique"):
                options["unique"] = True
            target.create_index(keys, **options)
    batch: list[Document] = []
    for doc in source.find(batch_size=COPY_BATCH):
        batch.append(doc)
        if len(batch) == COPY_BATCH:
            target.insert_many(batch, ordered=False)
            batch = []
    if batch:
        target.insert_many(batch, ordered=False)
    source.drop()


class _Send:
    """One lane's share of a batch: its `insert` commands, in order, and what they answered (write
    errors with their positions in the batch; the error that ended them, translated).

    `failed` is shared by the sends of a batch, or of a pipelined block: once one has failed, the
    others send no more. Otherwise a later batch could store a repeat of an `_id` whose first
    document, in a command never sent, would be stored only by the retry, as its duplicate."""

    def __init__(
        self,
        collection: Collection[Document],
        batch: Batch,
        route: Sequence[int],
        extra: dict[str, Any],
        failed: list[BaseException],
    ) -> None:
        self.collection, self.batch, self.route, self.extra = collection, batch, route, extra
        self.runs = _is_bson_batch(batch) and _runs_sent_as_documents()
        self.failed = failed
        self.inserted = 0
        self.errors: list[dict[str, Any]] = []
        self.concern_errors: list[Any] = []
        self.failure: BaseException | None = None

    def run(self) -> None:
        """Send the commands; an error ends them and is kept in `failure` for whoever waits."""
        try:
            with _translated(self.collection.database.name, self.collection.name):
                for start in range(0, len(self.route), INSERT_CHUNK):
                    if self.failed:
                        self.failure = self.failed[0]
                        return
                    self.inserted += self._command(start, min(start + INSERT_CHUNK, len(self.route)))
                self._look_up_unknown_clashes()
        except BaseException as exc:  # noqa: BLE001 - raised by whoever waits for the batch
            self.failure = exc
            self.failed.append(exc)

    def _look_up_unknown_clashes(self) -> None:
        """Code 11000 also means a clash on another unique index. MongoDB says which index in the
        error; FerretDB does not, so then, if the collection has another unique index, the rejected
        `_id`s are looked up: a rejected document whose `_id` is absent clashed elsewhere. Done
        before the lane sends on, so that no later document of this lane can be what is found."""
        unknown = [e for e in self.errors if e.get("code") == DUPLICATE_KEY and _is_id_clash(e) is None]
        if not unknown or not any(ix.get("unique") for ix in self.collection.list_indexes()):
            return
        ids = [self.batch[e["index"]]["_id"] for e in unknown]
        present = {bson_key(d["_id"]) for d in self.collection.find({"_id": {"$in": ids}}, {"_id": 1})}
        for error, _id in zip(unknown, ids, strict=True):
            error[_ID_CLASH] = bson_key(_id) in present

    def _command(self, start: int, end: int) -> int:
        """One `insert` command of the route's [start:end] (halved while it is over the 16 MiB
        limit of a command)."""
        route = self.route
        documents: list[Any]
        # one run of the documents' bytes, sent as they are (eventscan's `BsonRun`); the store
        # never turns on pymongo's client-side encryption, which would encode them as one document
        if self.runs:
            documents = [self.batch.run(route[start:end])]  # type: ignore[attr-defined]
        else:
            documents = [self.batch[route[i]] for i in range(start, end)]
        command = {"insert": self.collection.name, "documents": documents, "ordered": False, **self.extra}
        try:
            reply = self.collection.database.command(command)
        except DocumentTooLarge:
            if end - start == 1:
                raise
            middle = (start + end) // 2
            return self._command(start, middle) + self._command(middle, end)
        for error in reply.get("writeErrors") or ():
            self.errors.append({**error, "index": route[start + int(error["index"])]})
        if reply.get("writeConcernError"):
            self.concern_errors.append(reply["writeConcernError"])
        return int(reply.get("n", 0))


def _routes(batch: list[Document], lanes: int) -> list[Sequence[int]]:
    """The positions in `batch` each lane sends, by `_lane_of`."""
    if lanes == 1:
        return [range(len(batch))]
    routes: list[list[int]] = [[] for _ in range(lanes)]
    for position, doc in enumerate(batch):
        routes[_lane_of(doc, lanes)].append(position)
    return list(routes)


def _is_bson_batch(docs: object) -> bool:
    return _BsonBatch is not None and isinstance(docs, _BsonBatch)


def _routed(docs: Iterable[Document], lanes: int) -> tuple[Batch, list[Sequence[int]]]:
    """The batch as sent (`_id_first` of each document) and its `_routes`. A `BsonBatch` whose
    documents all have an ObjectId `_id` first (as the loader makes them) is sent as it is and
    routes itself, as `_lane_of` routes each document: a Python loop over the documents cost ~1.2
    us each (bench/README.md, "What bounds the MongoDB path now")."""
    if _is_bson_batch(docs):
        routes: list[list[int]] | None = docs.routes(lanes)  # type: ignore[attr-defined]
        if routes is not None:
            return docs, list(routes)  # type: ignore[return-value]
    batch = [_id_first(doc) for doc in docs]
    return batch, _routes(batch, lanes)


class _Lane:
    """A lane's thread for pipelined inserts: runs the sends handed to it, in order."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[_Send, Callable[[], None]] | None] = queue.SimpleQueue()
        self.thread: threading.Thread | None = threading.Thread(
            target=self._run, name="mongo-insert", daemon=True
        )
        try:
            self.thread.start()
        except RuntimeError:  # the system cannot start one
            self.thread = None

    def put(self, send: _Send, then: Callable[[], None]) -> None:
        self._jobs.put((send, then))

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            send, then = job
            send.run()  # never raises: its error is the batch's
            then()

    def stop(self) -> None:
        """Return once every send handed over has run."""
        self._jobs.put(None)
        if self.thread is not None:
            self.thread.join()


# How long one operation may wait for the server's reply (pymongo waits forever by default): a
# server that accepts a connection and never answers must not hold the daemon. Generous, since a
# delete of a large file's events or an index build can take minutes; `socketTimeoutMS` in
# MONGO_URL sets another. A timeout is a NetworkTimeout, a transient error: the file is retried.
SOCKET_TIMEOUT_MS = 600_000


class MongoDocumentStore(DocumentStore):
    """Documents in MongoDB (or a MongoDB-wire server) at `url`."""

    def __init__(
        self,
        url: str,
        server_selection_timeout_ms: int = 5000,
        socket_timeout_ms: int = SOCKET_TIMEOUT_MS,
        insert_lanes: int = INSERT_LANES,
    ) -> None:
        self._url = url
        self._lanes = max(1, insert_lanes)
        self._timeout_ms = server_selection_timeout_ms
        self._socket_timeout_ms = socket_timeout_ms
        self._lock = threading.Lock()
        self._client: MongoClient[Document] | None = self._connect()

    def _connect(self) -> MongoClient[Document]:
        try:
            options: dict[str, Any] = {"serverSelectionTimeoutMS": self._timeout_ms, "tz_aware": False}
            if "sockettimeoutms" not in self._url.lower():  # the URL's own setting wins
                options["socketTimeoutMS"] = self._socket_timeout_ms
            client: MongoClient[Document] = MongoClient(self._url, **options)
        except (ConfigurationError, ValueError, TypeError) as exc:
            raise ConfigError([f"document store URL {redact_url(self._url)}: {exc}"]) from exc
        if not client.write_concern.acknowledged:
            client.close()
            raise ConfigError(
                [f"document store URL {redact_url(self._url)}: w=0 is refused (inserts report duplicates)"]
            )
        return client

    @property
    def client(self) -> MongoClient[Document]:
        """The pymongo client, reopened after `close()`."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _coll(self, db: str, coll: str) -> Collection[Document]:
        return self.client[check_database_name(db)][check_name(coll)]

    def insert_many(self, db: str, coll: str, docs: Iterable[Document]) -> InsertResult:
        """Sent as `insert` commands of at most INSERT_CHUNK documents (see there why), unordered,
        on the store's lanes (INSERT_LANES unless told) side by side once the batch fills more than
        one command (see `_lane_of` for why that stores the same documents as one lane would).

        Duplicate `_id`s come back as write errors (code 11000) and are counted; any other write
        error raises once the whole batch was sent (what was written stays: a retry skips it)."""
        batch: Batch = docs if _is_bson_batch(docs) else list(docs)  # type: ignore[assignment]
        if len(batch) <= INSERT_CHUNK or self._lanes == 1:
            return self._insert_here(self._coll(db, coll), batch)
        with self.pipelined_inserts(db, coll) as submit:
            return submit(batch).result()

    def _insert_here(self, collection: Collection[Document], docs: Iterable[Document]) -> InsertResult:
        """A batch sent by the calling thread alone, as one lane."""
        batch, (route,) = _routed(docs, 1)
        send = _Send(collection, batch, route, self._extra(collection), [])
        send.run()
        return self._result(collection, batch, [send])

    @contextmanager
    def pipelined_inserts(self, db: str, coll: str) -> Iterator[Callable[[Batch], Future[InsertResult]]]:
        """Each batch's commands go to the store's lanes, each a thread of this block that sends
        its share of one batch after its share of the previous one: a lane that is done with a
        batch goes on with the next while the other finishes. A document's lane is `_lane_of` its
        `_id`, so of documents with one `_id` the first submitted is stored. Once a send fails, no
        lane sends any more (see `_Send`): the batches not yet stored fail with its error."""
        collection = self._coll(db, coll)
        lanes = [_Lane() for _ in range(self._lanes)]
        failed: list[BaseException] = []
        ended = False
        try:
            if any(lane.thread is None for lane in lanes):  # no thread to be had: one batch at a time
                yield lambda docs: completed(self._insert_here(collection, docs))
                return

            def submit(docs: Batch) -> Future[InsertResult]:
                if ended:
                    raise TerminalError(
                        f"mongodb {collection.full_name}: pipelined inserts after their block"
                    )
                batch, routes = _routed(docs, len(lanes))
                sends = [_Send(collection, batch, route, self._extra(collection), failed) for route in routes]
                future: Future[InsertResult] = Future()
                future.set_running_or_notify_cancel()  # not to be cancelled: it is being stored
                left = [len(sends)]
                lock = threading.Lock()

                def one_done() -> None:
                    with lock:
                        left[0] -= 1
                        if left[0]:
                            return
                    try:
                        future.set_result(self._result(collection, batch, sends))
                    except BaseException as exc:  # noqa: BLE001 - raised by whoever waits for it
                        future.set_exception(exc)

                for lane, send in zip(lanes, sends, strict=True):
                    lane.put(send, one_done)
                return future

            yield submit
        finally:
            ended = True
            for lane in lanes:
                lane.stop()

    @staticmethod
    def _extra(collection: Collection[Document]) -> dict[str, Any]:
        """The `insert` command's write concern, unless the server's default."""
        wc = collection.write_concern
        return {} if wc.is_server_default else {"writeConcern": wc.document}

    def _result(self, collection: Collection[Document], batch: Batch, sends: list[_Send]) -> InsertResult:
        """A batch's result from its sends: the first error that ended one, raised; else the
        documents inserted and the duplicates counted (`_after_duplicates`)."""
        for send in sends:
            if send.failure is not None:
                raise send.failure
        inserted = sum(send.inserted for send in sends)
        errors = [error for send in sends for error in send.errors]
        concern_errors = [error for send in sends for error in send.concern_errors]
        if not errors and not concern_errors:
            return InsertResult(inserted, 0)
        return self._after_duplicates(collection, batch, inserted, errors, concern_errors)

    def _after_duplicates(
        self,
        collection: Collection[Document],
        batch: Batch,
        inserted: int,
        errors: list[dict[str, Any]],
        concern_errors: list[Any],
    ) -> InsertResult:
        """Count duplicate `_id`s of an unordered insert; raise for any other error, and for a
        clash on another unique index (`_is_id_clash`, the unknown ones looked up by `_Send`)."""
        others = [e for e in errors if e.get("code") != DUPLICATE_KEY]
        if others or concern_errors:
            first = others[0]["errmsg"] if others else concern_errors[0]
            raise TerminalError(f"mongodb {collection.full_name}: insert failed: {first}")
        errors.sort(key=lambda e: int(e["index"]))
        clashes = [batch[e["index"]]["_id"] for e in errors if _is_id_clash(e) is False]
        if clashes:
            raise TerminalError(
                f"mongodb {collection.full_name}: unique index violated by _id {clashes[:5]!r}"
            )
        positions = tuple(int(e["index"]) for e in errors)
        return InsertResult(inserted, len(errors), positions)

    def find(
        self,
        db: str,
        coll: str,
        filter: Filter | None = None,
        projection: Projection | None = None,
        limit: int = 0,
    ) -> Iterator[Document]:
        collection = self._coll(db, coll)
        filt = validate_filter(filter)
        check_projection(projection)
        if limit < 0:
            raise TerminalError(f"limit must be >= 0, got {limit}")
        return self._stream(collection, filt, dict(projection) if projection else None, limit)

    def _stream(
        self,
        collection: Collection[Document],
        filt: dict[str, Any],
        projection: dict[str, Any] | None,
        limit: int,
    ) -> Iterator[Document]:
        db, coll = collection.database.name, collection.name
        with _translated(db, coll):
            cursor = collection.find(filt, projection, limit=limit)
            try:
                yield from cursor
            finally:
                cursor.close()

    def count(self, db: str, coll: str, filter: Filter | None = None) -> int:
        collection = self._coll(db, coll)
        filt = validate_filter(filter)
        with _translated(db, coll):
            return collection.count_documents(filt)

    def update_fields(self, db: str, coll: str, updates: Sequence[tuple[Any, Mapping[str, Any]]]) -> int:
        """Sent as commands of at most UPDATE_CHUNK updates (see there why); if one fails, those
        before it stay applied (setting a field again is harmless)."""
        collection = self._coll(db, coll)
        ops = [UpdateOne({"_id": _id}, {"$set": check_set_fields(f)}) for _id, f in updates]
        with _translated(db, coll):
            try:
                return sum(
                    collection.bulk_write(ops[i : i + UPDATE_CHUNK], ordered=False).matched_count
                    for i in range(0, len(ops), UPDATE_CHUNK)
                )
            except BulkWriteError as exc:
                first = exc.details.get("writeErrors", [{}])[0].get("errmsg", exc.details)
                raise TerminalError(f"mongodb {db}.{coll}: update failed: {first}") from exc
            except KeyError as exc:  # FerretDB 1.24 answers some failed updates without nModified
                raise TerminalError(f"mongodb {db}.{coll}: update failed: {exc!r}") from exc

    def delete_many(self, db: str, coll: str, filter: Filter) -> int:
        collection = self._coll(db, coll)
        filt = validate_filter(filter)
        with _translated(db, coll):
            return collection.delete_many(filt).deleted_count

    def create_index(
        self, db: str, coll: str, keys: IndexKeys, unique: bool = False, name: str | None = None
    ) -> str:
        collection = self._coll(db, coll)
        spec = check_index_keys(keys)
        if spec == [("_id", 1)]:
            return "_id_"
        options: dict[str, Any] = {"name": name or default_index_name(spec)}
        if unique:
            options["unique"] = True
        with _translated(db, coll):
            return collection.create_index(spec, **options)

    def drop_collection(self, db: str, coll: str) -> None:
        collection = self._coll(db, coll)
        with _translated(db, coll):
            collection.drop()

    def replace_collection(self, db: str, src: str, dst: str) -> None:
        """renameCollection with dropTarget: atomic on MongoDB.

        FerretDB 1.24 lacks dropTarget, so there `dst` is dropped and then `src` renamed: for the
        moment between the two commands readers find no `dst` at all (never a half-loaded one).
        It also refuses to rename names containing `.` (most forum names), so those are copied
        into `dst` with their indexes and `src` dropped: readers may then see `dst` partly copied.
        """
        source = self._coll(db, src)
        check_name(dst)
        with _translated(db, src):
            names = set(source.database.list_collection_names())
            if src not in names:
                raise TerminalError(f"{db}.{src} does not exist: cannot make it {dst}")
            if src == dst:
                return
            try:
                if dst not in names:
                    source.rename(dst)
                    return
                try:
                    source.rename(dst, dropTarget=True)
                except OperationFailure as exc:
                    if exc.code != NOT_IMPLEMENTED:
                        raise
                    source.database.drop_collection(dst)
                    source.rename(dst)
            except OperationFailure as exc:
                if exc.code != INVALID_NAMESPACE or "." not in src + dst:
                    raise
                _copy_over(source, source.database[dst])

    def ping(self) -> None:
        with _translated("admin"):
            self.client.admin.command("ping")

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
