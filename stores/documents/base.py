"""The document store interface: what services may ask of MongoDB or of the embedded SQLite store.

Both backends give the same answers to the same calls (the filter language is in `filters.py`), so a
service is written once and tested against either. Names of databases and collections come from
file names and are validated here before any backend sees them.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from core.errors import TerminalError, UnsafeNameError

Document = dict[str, Any]
Filter = Mapping[str, Any]
Projection = Mapping[str, Any]
SortSpec = Sequence[tuple[str, int]]
IndexKeys = Sequence[tuple[str, int]]

MAX_NAME = 120
MAX_DATABASE_NAME = 64  # MongoDB's own limit on database names
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_FIELD_PART = re.compile(r"[A-Za-z0-9_\-]+")


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
    if not isinstance(path, str) or not all(_FIELD_PART.fullmatch(p) for p in path.split(".")):
        raise UnsafeNameError(
            f"unsafe field path {path!r}: dot-separated parts of letters, digits, '_', '-'"
        )
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


@dataclass(frozen=True, slots=True)
class InsertResult:
    """What one `insert_many` call did: new documents written, and documents skipped because their
    `_id` was already there (which is how a re-ingest after a crash stays exactly-once)."""

    inserted: int
    duplicates: int


class DocumentStore(ABC):
    """Databases of collections of documents, by name; one instance serves every database.

    Documents are dicts of str, int (64-bit), float, bool, None, naive-UTC datetime (millisecond
    precision, as BSON stores it), bson.ObjectId, lists and nested dicts. Field names must not start
    with `$` or contain `.` (map them before storing). Every driver error leaves as a
    `core.errors` class: TransientError (retry), BadDataError, TerminalError (incl. UnsafeNameError).
    """

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
        sort: SortSpec | None = None,
        limit: int = 0,
    ) -> Iterator[Document]:
        """Stream the matching documents (constant memory unless `sort` is given); `limit=0` is
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
    def distinct(self, db: str, coll: str, field: str, filter: Filter | None = None) -> list[Any]:
        """The distinct values of `field` (list elements counted one by one, as MongoDB does),
        sorted in BSON order so both backends return the same list."""

    @abstractmethod
    def update_fields(
        self, db: str, coll: str, updates: Sequence[tuple[Any, Mapping[str, Any]]]
    ) -> int:
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
    def index_names(self, db: str, coll: str) -> list[str]:
        """Names of the collection's indexes, `_id_` included; [] if the collection is missing."""

    @abstractmethod
    def drop_collection(self, db: str, coll: str) -> None:
        """Drop the collection and its indexes; no error if it is missing."""

    @abstractmethod
    def list_collections(self, db: str) -> list[str]:
        """The collection names of a database, sorted."""

    @abstractmethod
    def list_databases(self) -> list[str]:
        """The names of the databases this store holds (not MongoDB's admin/local/config), sorted."""

    @abstractmethod
    def drop_database(self, db: str) -> None:
        """Drop a whole database; no error if it is missing."""

    @abstractmethod
    def replace_collection(self, db: str, src: str, dst: str) -> None:
        """Make `src` the new `dst`, replacing the old `dst` with its indexes (used to swap in a
        fully loaded snapshot so readers never see a half-loaded one). `src` must exist."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store may be used again afterwards (it reconnects lazily)."""

    def __enter__(self) -> DocumentStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
