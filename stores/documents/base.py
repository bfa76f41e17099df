"""The document store interface: what services may ask of MongoDB or of the embedded SQLite store.

Both backends give the same answers to the same calls (the filter language is in `filters.py`), so a
service is written once and tested against either. The interface holds what the services use and
nothing more (no sorting, no distinct, no listing or dropping of databases: tests that need those use
the backend's own client, see tests/documents.py). Names of databases and collections come from
file names and are validated here before any backend sees them.
"""

from __future__ import annotations

import base64
import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from bson import ObjectId

from core.errors import TerminalError, UnsafeNameError

Document = dict[str, Any]
Filter = Mapping[str, Any]
Projection = Mapping[str, Any]
IndexKeys = Sequence[tuple[str, int]]

MAX_NAME = 120
MAX_DATABASE_NAME = 64  # MongoDB's own limit on database names
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
FIELD_PART = re.compile(r"[A-Za-z0-9_\-]+")
_LONG_NUMBER = re.compile(r"[:,\[]-?[0-9]{19}")  # a JSON number of 19+ digits, maybe > 64 bits


def check_name(name: object, kind: str = "collection") -> str:
    """Return `name` if it is a safe collection name, else raise UnsafeNameError naming it.

    Allowed: 1-120 letters, digits, `_`, `-`, `.`; not starting with `.` or `-`, no `..`. Names
    starting with `system.` or `sqlite_` are reserved by MongoDB and SQLite respectively.
    """
    if not isinstance(name, str) or not name:
        raise UnsafeNameError(f"{kind} name must be a non-empty string, got {name!r}")
    if len(name) > MAX_NAME:
        raise UnsafeNameError(f"{kind} name longer than {MAX_NAME} characters: {name[:40]!r}...")
    if not _NAME.fullmatch(name) or ".." in name:
        raise UnsafeNameError(
            f"unsafe {kind} name {name!r}: only letters, digits, '_', '-', '.' are allowed, "
            "not starting with '.' or '-', without '..'"
        )
    if name.lower().startswith(("system.", "sqlite_")):
        raise UnsafeNameError(f"reserved {kind} name {name!r}")
    return name


def check_database_name(name: object) -> str:
    """Like `check_name`, but MongoDB also forbids `.` and more than 64 characters in a database."""
    check_name(name, "database")
    assert isinstance(name, str)
    if "." in name or len(name) > MAX_DATABASE_NAME:
        raise UnsafeNameError(
            f"unsafe database name {name!r}: no '.' and at most {MAX_DATABASE_NAME} characters"
        )
    return name


def check_field_path(path: object) -> str:
    """Validate a dotted field path used as an index key or a distinct field (`context.course_id`)."""
    if not isinstance(path, str) or not all(FIELD_PART.fullmatch(p) for p in path.split(".")):
        raise UnsafeNameError(f"unsafe field path {path!r}: dot-separated parts of letters, digits, '_', '-'")
    return path


def check_index_keys(keys: IndexKeys) -> list[tuple[str, int]]:
    """Validate index keys: a non-empty list of (field path, 1 or -1)."""
    checked = [(check_field_path(field), direction) for field, direction in keys]
    if not checked or any(d not in (1, -1) or isinstance(d, bool) for _, d in checked):
        raise TerminalError(f"index keys must be (field, 1 or -1) pairs, got {list(keys)!r}")
    return checked


def default_index_name(keys: IndexKeys) -> str:
    """MongoDB's default index name: `event_type_1_context.course_id_1`."""
    return "_".join(f"{field}_{direction}" for field, direction in keys)


def check_set_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the fields of one `update_fields` entry: non-empty names, no `_id`, no `$`."""
    for name in fields:
        if not isinstance(name, str) or not name or name.startswith("$") or ".." in name:
            raise TerminalError(f"cannot set field {name!r}")
        if name == "_id" or name.startswith("_id."):
            raise TerminalError("cannot change _id with update_fields")
    return dict(fields)


def check_projection(projection: Mapping[str, Any] | None) -> tuple[bool, dict[str, Any]] | None:
    """Turn `{"a": 1, "b.c": 1}` or `{"a": 0}` into (inclusive?, tree of parts); None = whole doc.

    `_id` is kept unless `{"_id": 0}`; mixing inclusion and exclusion of other fields is an error.
    """
    if not projection:
        return None
    modes = set()
    tree: dict[str, Any] = {}
    for path, flag in projection.items():
        if not isinstance(flag, bool | int) or flag not in (0, 1):
            raise TerminalError(f"projection values must be 0 or 1, got {path!r}: {flag!r}")
        if path != "_id":
            modes.add(bool(flag))
            _add_path(tree, path.split("."), projection)
    if len(modes) > 1:
        raise TerminalError(f"projection cannot mix inclusion and exclusion: {dict(projection)!r}")
    id_flag = bool(projection.get("_id", True))
    inclusive = modes.pop() if modes else id_flag
    if inclusive == id_flag:  # keep _id in an inclusion, drop it in an exclusion
        tree["_id"] = True
    return inclusive, tree


def _add_path(tree: dict[str, Any], parts: list[str], projection: Mapping[str, Any]) -> None:
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if node is True:
            raise TerminalError(f"projection paths collide: {dict(projection)!r}")
    if parts[-1] in node:
        raise TerminalError(f"projection paths collide: {dict(projection)!r}")
    node[parts[-1]] = True


def project(doc: dict[str, Any], spec: tuple[bool, dict[str, Any]] | None) -> dict[str, Any]:
    """Apply a projection made by `check_projection` (list elements are projected one by one)."""
    if spec is None:
        return doc
    inclusive, tree = spec
    if inclusive:
        out = _include(doc, tree)
        if "_id" in out:  # MongoDB returns _id first
            out = {"_id": out.pop("_id"), **out}
        return out
    return _exclude(doc, tree)


def _include(node: Any, tree: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_include(e, tree) for e in node if isinstance(e, dict | list)]
    out = {}
    for key, value in node.items():
        sub = tree.get(key)
        if sub is True:
            out[key] = value
        elif sub is not None and isinstance(value, dict | list):
            out[key] = _include(value, sub)
    return out


def _exclude(node: Any, tree: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_exclude(e, tree) if isinstance(e, dict) else e for e in node]
    out = {}
    for key, value in node.items():
        sub = tree.get(key)
        if sub is True:
            continue
        out[key] = _exclude(value, sub) if sub is not None and isinstance(value, dict | list) else value
    return out


# --- values: what a document may hold, and its Extended JSON text form ---------------------------
#
# The SQLite backend stores documents as this text, and its SQL translation of filters compares
# against it, so both live here beside the interface that lists the supported types.


def normalize_datetime(value: datetime) -> datetime:
    """Naive UTC at millisecond precision: what a BSON datetime can hold."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def ext_json_scalar(value: Any) -> dict[str, str] | None:
    """The Extended JSON form of an ObjectId or datetime (`{"$oid": hex}`), else None."""
    if isinstance(value, ObjectId):
        return {"$oid": str(value)}
    if isinstance(value, datetime):
        return {"$date": normalize_datetime(value).isoformat(timespec="milliseconds") + "Z"}
    return None


def _default(value: Any) -> Any:
    scalar = ext_json_scalar(value)
    if scalar is not None:
        return scalar
    if isinstance(value, bytes):
        return {"$binary": {"base64": base64.b64encode(value).decode(), "subType": "00"}}
    raise TypeError(f"cannot store a value of type {type(value).__name__}")


def _check_ints(value: Any) -> None:
    """Refuse integers BSON cannot hold, as pymongo does (JSON would store them)."""
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise OverflowError(f"integer {value} does not fit in 64 bits")
    if isinstance(value, dict):
        value = value.values()
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        for item in value:
            _check_ints(item)


_ENCODER = json.JSONEncoder(default=_default, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        text = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return {"$numberDouble": text}
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def encode(doc: Any) -> str:
    """A document as compact Extended JSON text (ObjectId `{"$oid": hex}`, datetime
    `{"$date": "2014-01-02T03:04:05.123Z"}`, NaN/infinity `{"$numberDouble": "NaN"}`, bytes
    `{"$binary": ...}`), which SQLite's JSON functions and `bson.json_util` both read.
    TypeError/ValueError (OverflowError for integers beyond 64 bits) if it cannot be stored."""
    try:
        text = _ENCODER.encode(doc)
    except ValueError as exc:
        if "float" not in str(exc):
            raise
        text = _ENCODER.encode(_finite(doc))
    if _LONG_NUMBER.search(text):  # rare: only then look for integers too big for BSON
        _check_ints(doc)
    return text


def _object_hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        if "$oid" in obj:
            return ObjectId(obj["$oid"])
        if "$date" in obj:
            return datetime.fromisoformat(obj["$date"][:-1])
        if "$numberDouble" in obj:
            return float(obj["$numberDouble"])
        if "$binary" in obj:
            return base64.b64decode(obj["$binary"]["base64"])
    return obj


_DECODER = json.JSONDecoder(object_hook=_object_hook)


def decode(text: str) -> Any:
    """The inverse of `encode`."""
    return _DECODER.decode(text)


def id_key(value: Any) -> str:
    """The canonical text key of an `_id` (`o<hex>`, `s<text>`, `n<number>` ...): equal exactly
    when MongoDB considers two `_id`s the same (1 and 1.0 are; 1 and True are not)."""
    if isinstance(value, ObjectId):
        return "o" + str(value)
    if isinstance(value, str):
        return "s" + value
    if isinstance(value, bool):
        return "b1" if value else "b0"
    if isinstance(value, int):
        return "n" + str(value)
    if isinstance(value, float):
        return "n" + (str(int(value)) if value.is_integer() else repr(value))
    if value is None:
        return "z"
    return "j" + encode(value)


@dataclass(frozen=True, slots=True)
class InsertResult:
    """What one `insert_many` call did: new documents written, and documents skipped because their
    `_id` was already there (which is how a re-ingest after a crash stays exactly-once).

    `duplicate_at` holds the positions in the batch of those skipped documents (empty when there
    were none), so that a caller can ask who stored them first."""

    inserted: int
    duplicates: int
    duplicate_at: tuple[int, ...] = ()


def never_lists(doc: Document) -> bool:
    return False


def completed(result: InsertResult) -> Future[InsertResult]:
    """A future that holds `result` already: a batch stored before `submit` returned."""
    future: Future[InsertResult] = Future()
    future.set_result(result)
    return future


class DocumentStore(ABC):
    """Databases of collections of documents, by name; one instance serves every database.

    Documents are dicts of str, int (64-bit), float, bool, None, naive-UTC datetime (millisecond
    precision, as BSON stores it), bson.ObjectId, bytes, lists and nested dicts. Field names must not start
    with `$` or contain `.` (map them before storing). Every driver error leaves as a
    `core.errors` class: TransientError (retry), BadDataError, TerminalError (incl. UnsafeNameError).
    """

    # True where `insert_encoded` takes documents already encoded as the backend stores them.
    accepts_encoded = False
    # True where programs other than this daemon (the dashboards) query the collections, so that
    # indexes serving only their queries are worth maintaining. The embedded store is read by the
    # daemon alone: there each index costs every insert and serves no query.
    outside_readers = True

    def insert_encoded(
        self, db: str, coll: str, rows: Sequence[tuple[str, str]], maybe_lists: Sequence[Document] = ()
    ) -> InsertResult:
        """Insert documents given as (id_key(_id), encode(doc)); only where `accepts_encoded`.
        `maybe_lists`: the documents of the batch for which `may_hold_lists` is true."""
        raise NotImplementedError(f"{type(self).__name__} takes documents, not encoded text")

    def may_hold_lists(
        self, db: str, coll: str, own_fields: frozenset[str] = frozenset()
    ) -> Callable[[Document], bool]:
        """For `insert_encoded`: which documents may make one of the collection's indexes
        multikey (the store keeps track; MongoDB does it itself, so here: none). `own_fields`:
        top-level fields the caller sets itself, never to a list, so no index under them is
        checked; `never_lists` is returned when nothing is left to check."""
        return never_lists

    @contextmanager
    def grouped_writes(self, db: str) -> Iterator[None]:
        """For a bulk loader: inside the block, the calling thread's writes to `db` may share
        transactions, committed every few calls, seconds or tens of MiB, when the block ends, and
        when another thread writes to `db`. Each call stays as atomic as outside the block (on
        SQLite one that fails leaves nothing) and the calls before a failed one stay, unless the
        shared transaction itself is lost (an I/O error, a full disk): then every later write of
        the block and its end raise TerminalError, and the load must start again. What the block
        wrote may be invisible to readers, and lost in a crash, until it is committed: a loader
        must not rely on it before the block ends. The default (MongoDB: no transactions) changes
        nothing."""
        yield

    @contextmanager
    def pipelined_inserts(
        self, db: str, coll: str
    ) -> Iterator[Callable[[Sequence[Document]], Future[InsertResult]]]:
        """For a bulk loader: `submit(batch)` inserts the batch as `insert_many` does and returns
        the future of its result, so that the next batch can be handed over while this one is
        stored. Batches are stored as if one after the other (of documents with one `_id`, the
        first submitted is the one stored), and the block ends once every submitted batch is.
        The batch may be read until its future is done: the caller does not change it.
        The default stores a batch before `submit` returns; an error is raised by `submit`."""

        yield lambda batch: completed(self.insert_many(db, coll, batch))

    @abstractmethod
    def insert_many(self, db: str, coll: str, docs: Iterable[Document]) -> InsertResult:
        """Insert one batch, unordered; skip and count documents whose `_id` exists already.

        A document without `_id` gets a new ObjectId, set in the caller's dict as pymongo does.
        A unique-index violation on another field, or any other write error, raises TerminalError.
        """

    @abstractmethod
    def find(
        self,
        db: str,
        coll: str,
        filter: Filter | None = None,
        projection: Projection | None = None,
        limit: int = 0,
    ) -> Iterator[Document]:
        """Stream the matching documents in constant memory, in no particular order; `limit=0` is
        no limit. A missing database or collection is empty."""

    def find_one(
        self,
        db: str,
        coll: str,
        filter: Filter | None = None,
        projection: Projection | None = None,
    ) -> Document | None:
        """The first matching document, or None."""
        found = self.find(db, coll, filter, projection, limit=1)
        try:
            return next(iter(found), None)
        finally:
            close = getattr(found, "close", None)
            if close is not None:
                close()

    @abstractmethod
    def count(self, db: str, coll: str, filter: Filter | None = None) -> int:
        """How many documents match."""

    @abstractmethod
    def update_fields(self, db: str, coll: str, updates: Sequence[tuple[Any, Mapping[str, Any]]]) -> int:
        """`$set` the given (possibly dotted) fields of each `_id`; return how many were found."""

    @abstractmethod
    def delete_many(self, db: str, coll: str, filter: Filter) -> int:
        """Delete the matching documents (`{}` deletes all); return how many."""

    @abstractmethod
    def create_index(
        self, db: str, coll: str, keys: IndexKeys, unique: bool = False, name: str | None = None
    ) -> str:
        """Create an index if it is not there yet; return its name (MongoDB's default naming)."""

    @abstractmethod
    def drop_collection(self, db: str, coll: str) -> None:
        """Drop the collection and its indexes; no error if it is missing."""

    @abstractmethod
    def replace_collection(self, db: str, src: str, dst: str) -> None:
        """Make `src` the new `dst`, replacing the old `dst` with its indexes (used to swap in a
        fully loaded snapshot so readers never see a half-loaded one). `src` must exist."""

    @abstractmethod
    def ping(self) -> None:
        """Raise the project's error if the store does not answer (the status API's readiness)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store may be used again afterwards (it reconnects lazily)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
