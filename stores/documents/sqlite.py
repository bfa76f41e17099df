"""The embedded document store: one SQLite file per database, one table per collection.

Layout: `<root>/<database>.sqlite` holds one table per collection, `(id TEXT PRIMARY KEY, doc TEXT)`:
`doc` is the whole document as compact Extended JSON (`base.encode`), `id` the canonical text key
of its `_id` (`base.id_key`). The table `$indexes` records MongoDB-style indexes: each is a real
SQLite index on `json_extract(doc, '$."a"."b"')` and remembers whether its fields ever held a list
(MongoDB's "multikey"). `filters.to_sql` turns filters into SQL that uses those indexes.

Each database file has one writer connection, used under a lock (every write call is one
transaction, or a savepoint of the longer transactions of `grouped_writes`), and a few read-only
connections lent to one read at a time: a streaming `find` keeps its own snapshot while the same
thread writes (the backfill pattern) or reads elsewhere, which a single shared connection could not
promise. All are opened lazily, in WAL mode with
synchronous=NORMAL and a busy timeout.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from bson import ObjectId

from core.errors import BadDataError, TerminalError, TransientError
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
    decode,
    default_index_name,
    encode,
    id_key,
    never_lists,
    project,
)
from stores.documents.filters import (
    has_list,
    json_path,
    known_paths,
    list_sql,
    matches,
    set_path,
    to_sql,
    validate_filter,
)

log = logging.getLogger("ingestor")

_META = '"$indexes"'
_META_DDL = (
    f"CREATE TABLE IF NOT EXISTS {_META} (coll TEXT NOT NULL, name TEXT NOT NULL, sql_name TEXT "
    "NOT NULL UNIQUE, keys TEXT NOT NULL, uniq INTEGER NOT NULL, multikey INTEGER NOT NULL, "
    "PRIMARY KEY (coll, name))"
)
_FETCH = 500
# `grouped_writes` commits once its calls have written this many bytes of documents, or after this
# many calls (a loader of small batches still commits as it goes). Each commit writes every page it
# changed to the log again: the primary key's pages are most of them (a tracking log is not in time
# order, so its content ids land all over the day's part of the key), and a commit per batch of
# ~7,000 events wrote that part of the index once per batch.
_GROUP_BYTES = 48 << 20
_GROUP_CALLS = 6
# ... or this long after it began, so that another process's writer (30 s busy timeout) waits a few
# seconds at most while the loader is busy. (A loader that stalls between two calls keeps the lock
# for the stall: that writer may then time out and retry later.)
_GROUP_SECONDS = 5.0
# A new database file gets 32 KiB pages (SQLite's default is 4 KiB). A bulk load of documents of
# about 1 KB writes each page to the log and then to the database: with 8 times fewer, larger
# pages it makes 8 times fewer log frames, page splits and write calls. Loading 1,000,000 tracking
# events with 4, 16, 32 and 64 KiB pages took 37, 24, 20 and 18 us per event (store calls alone,
# `bench/README.md`); a 32 KiB page still costs a point read little. A file made before keeps the
# page size it was made with (SQLite fixes it when the first table is written).
_PAGE_BYTES = 32768
# Checkpoint once the log holds 256 MiB instead of SQLite's 4 MiB of pages: a page that several
# commits rewrite (the last pages of the table, the primary key's pages, see `_GROUP_BYTES`) is
# copied into the database once per checkpoint, and each checkpoint waits for an fsync. 64 MiB took
# 20 us per event, 256 MiB 14. The log file is then up to 256 MiB beside the database.
_CHECKPOINT_BYTES = 256 << 20
# A checkpoint on the writer's own connection stops the load while it copies the log's pages into
# the database and waits for the fsyncs (3.5 s of the 14.6 s a million tracking events took to
# store). So each commit of `grouped_writes` also asks a thread of the database's own (`_Checkpointer`)
# for a PASSIVE checkpoint, which copies the pages committed so far while the writer goes on; the
# writer's own checkpoint at `_CHECKPOINT_BYTES` then finds little left to copy, and the log still
# restarts there. Nothing else changes: the same pages reach the database, with the same fsyncs.
_IDLE_READERS = 4  # reader connections kept open per database between reads


def _q(name: str) -> str:
    """Quote an identifier (names are validated before; quoting is the second fence)."""
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def _translated(db: str, coll: str | None) -> Iterator[None]:
    """Turn sqlite3 errors into the project's: locked/busy is transient, the rest terminal."""
    where = f"{db}.{coll}" if coll else db
    try:
        yield
    except sqlite3.OperationalError as exc:
        text = str(exc).lower()
        if "locked" in text or "busy" in text:
            raise TransientError(f"sqlite document store {where}: {exc}") from exc
        raise TerminalError(f"sqlite document store {where}: {exc}") from exc
    except sqlite3.IntegrityError as exc:
        raise TerminalError(f"sqlite document store {where}: unique index violated: {exc}") from exc
    except sqlite3.Error as exc:
        raise TerminalError(f"sqlite document store {where}: {exc}") from exc
    except UnicodeEncodeError as exc:  # a lone surrogate in a string: MongoDB refuses it too
        raise BadDataError(f"sqlite document store {where}: cannot store text: {exc}") from exc


class _Handle:
    """The connections of one database file."""

    def __init__(self, path: Path, writer: sqlite3.Connection) -> None:
        self.path = path
        self.writer = writer
        self.lock = threading.RLock()  # serializes use of the writer across threads
        self.idle_readers: list[sqlite3.Connection] = []
        self.closed = False
        self.group: _Group | None = None  # the `grouped_writes` in progress, if any
        self.checkpointer: _Checkpointer | None = None  # started by the first grouped commit
        self.no_checkpointer = False  # set if that thread could not be started


class _Checkpointer:
    """A thread that runs PASSIVE checkpoints of one database file on its own connection when
    asked (see `_CHECKPOINT_BYTES`). A PASSIVE checkpoint waits for no reader or writer: it copies
    what it can and leaves the rest to the next one, or to the writer's own. A failed one is only
    logged: the writer's own checkpoints still keep the log bounded."""

    def __init__(self, path: Path, db: str) -> None:
        self._path, self._db = path, db
        self._wanted = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"sqlite-checkpoint-{db}", daemon=True)
        self._thread.start()

    def request(self) -> None:
        self._wanted.set()

    def close(self) -> None:
        self._stopping = True
        self._wanted.set()
        self._thread.join()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        failed = ""
        try:
            while True:
                self._wanted.wait()
                self._wanted.clear()
                if self._stopping:
                    return
                try:
                    if conn is None:
                        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:
                    if str(exc) != failed:  # once, not at every commit while it lasts
                        log.warning(
                            "sqlite document store %s: background checkpoint failed: %s", self._db, exc
                        )
                    failed = str(exc)
        finally:
            if conn is not None:
                conn.close()


class _Group:
    """The writes of one thread's `grouped_writes`: its transaction (open or not), what its calls
    wrote since the last commit, and why those were lost, if they were."""

    def __init__(self, owner: int) -> None:
        self.owner = owner  # thread ident
        self.open = False
        self.began = 0.0
        self.bytes = 0
        self.calls = 0
        self.lost = ""


class _Index(NamedTuple):
    name: str
    sql_name: str
    keys: list[tuple[str, int]]
    unique: bool
    multikey: bool


class SqliteDocumentStore(DocumentStore):
    """Documents in SQLite files under `root` (`<state_dir>/documents`): the embedded backend."""

    def __init__(self, root: Path, busy_timeout: float = 30.0) -> None:
        self.root = Path(root)
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._handles: dict[str, _Handle] = {}

    def path_for(self, db: str) -> Path:
        """The file holding database `db`."""
        return self.root / f"{check_database_name(db)}.sqlite"

    def _connect(self, path: Path, db: str, read_only: bool) -> sqlite3.Connection:
        with _translated(db, None):
            # The writer caches no statement: a cached statement keeps the copies of its last
            # parameters, which for the many-row INSERTs of `_insert_chunks` is megabytes each.
            conn = sqlite3.connect(
                path,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=128 if read_only else 0,
            )
            try:
                if read_only:
                    conn.execute("PRAGMA query_only = ON")
                else:
                    conn.execute(f"PRAGMA page_size = {_PAGE_BYTES}")  # before WAL makes the file
                    conn.execute("PRAGMA journal_mode = WAL")
                    # Bulk loads touch the primary key's B-tree (content ids: random places): a
                    # 32 MiB page cache (instead of 2 MiB) keeps its hot pages; more only grows RSS.
                    conn.execute("PRAGMA cache_size = -32768")
                    page = conn.execute("PRAGMA page_size").fetchone()[0]
                    conn.execute(f"PRAGMA wal_autocheckpoint = {_CHECKPOINT_BYTES // page}")
                    conn.execute(f"PRAGMA journal_size_limit = {_CHECKPOINT_BYTES}")
                    conn.execute(_META_DDL)
                conn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error:
                conn.close()
                raise
        return conn

    def _open(self, db: str, create: bool = True) -> _Handle | None:
        """The connections of `db`, opened on first use; None if it does not exist and not `create`."""
        path = self.path_for(db)
        with self._lock:
            handle = self._handles.get(db)
            if handle is not None or (not create and not path.exists()):
                return handle
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise TerminalError(f"sqlite document store {db}: {exc}") from exc
            handle = self._handles[db] = _Handle(path, self._connect(path, db, read_only=False))
            return handle

    @contextmanager
    def _write(self, db: str, coll: str, size: int = 0) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT), rolled back on any error.

        Within the `grouped_writes` of this thread: a savepoint in the group's transaction, which
        commits once `size` (the bytes of documents written) adds up to `_GROUP_BYTES`, after
        `_GROUP_CALLS` calls, or `_GROUP_SECONDS` after it began."""
        handle = self._open(db)
        assert handle is not None
        conn = handle.writer
        with handle.lock, _translated(db, coll):
            ident = threading.get_ident()
            group = handle.group if handle.group and handle.group.owner == ident else None  # this thread's
            if handle.group is not None and group is None:
                _commit_group(handle)  # another thread writes: commit the group's whole calls first
            if group is not None:
                if group.lost:
                    raise _lost(db, group)
                if not group.open:
                    conn.execute("BEGIN IMMEDIATE")
                    group.open, group.began = True, time.monotonic()
                conn.execute("SAVEPOINT grouped_write")
            else:
                conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if group is not None:
                    _undo_grouped_call(handle, group)
                elif conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            if group is None:
                conn.execute("COMMIT")
                return
            conn.execute("RELEASE grouped_write")
            group.bytes += size
            group.calls += 1
            if (
                group.bytes >= _GROUP_BYTES
                or group.calls >= _GROUP_CALLS
                or time.monotonic() - group.began >= _GROUP_SECONDS
            ):
                _commit_group(handle)

    @contextmanager
    def grouped_writes(self, db: str) -> Iterator[None]:
        """See `DocumentStore.grouped_writes`. If the group's transaction is lost (SQLite aborts
        it on an I/O error or a full disk; its commit fails, also when another thread's write
        commits it), every later write of the block and the block's end raise TerminalError: the
        caller must start its load again (the Clickstream loader fails the file, which is retried).
        """
        handle = self._open(db)
        assert handle is not None
        with handle.lock:
            group = _Group(threading.get_ident()) if handle.group is None else None
            if group is not None:  # a second loader of this database at once is not grouped
                handle.group = group
        if group is None:
            yield
            return
        finished = False
        try:
            yield
            finished = True
        finally:
            with handle.lock, _translated(db, None):
                try:
                    _commit_group(handle)
                except BaseException:
                    if finished:
                        raise
                finally:
                    handle.group = None
                if finished and group.lost:
                    raise _lost(db, group)

    @contextmanager
    def _read(self, db: str, coll: str | None) -> Iterator[sqlite3.Connection | None]:
        """A reader lent for the duration of the block; None if the database or collection is
        missing."""
        handle = self._open(db, create=False)
        if handle is None:
            yield None
            return
        with self._lock:
            conn = handle.idle_readers.pop() if handle.idle_readers else None
        if conn is None:
            conn = self._connect(handle.path, db, read_only=True)
        try:
            with _translated(db, coll):
                found = coll is None or _has_table(conn, coll)
                yield conn if found else None
        finally:
            with self._lock:
                keep = not handle.closed and len(handle.idle_readers) < _IDLE_READERS
                if keep:
                    handle.idle_readers.append(conn)
            if not keep:
                conn.close()

    def _indexes(self, conn: sqlite3.Connection, coll: str) -> list[_Index]:
        rows = conn.execute(
            f"SELECT name, sql_name, keys, uniq, multikey FROM {_META} WHERE coll = ? ORDER BY rowid",
            (coll,),
        )
        return [
            _Index(name, sql, [(p, d) for p, d in json.loads(keys)], bool(u), bool(m))
            for name, sql, keys, u, m in rows
        ]

    def _known(self, conn: sqlite3.Connection, coll: str) -> set[str]:
        return known_paths(ix.keys for ix in self._indexes(conn, coll) if not ix.multikey)

    def _plan(self, conn: sqlite3.Connection, coll: str, filt: Filter) -> tuple[str, list[Any], bool]:
        """(" WHERE ...", parameters, exact?) for a validated filter."""
        sql, params, exact = to_sql(filt, self._known(conn, coll), id_key)
        return (f" WHERE {sql}" if sql else ""), params, exact

    def _note_lists(self, conn: sqlite3.Connection, coll: str, docs: Sequence[Document]) -> None:
        """Mark an index multikey once a document holds a list on one of its paths."""
        if not docs:
            return
        for ix in self._indexes(conn, coll):
            if not ix.multikey and any(map(_list_checker(tuple(p for p, _ in ix.keys)), docs)):
                conn.execute(f"UPDATE {_META} SET multikey = 1 WHERE sql_name = ?", (ix.sql_name,))

    def _matching(self, db: str, coll: str, filt: Filter, limit: int = 0) -> Iterator[Document]:
        """Stream the matching documents: SQL narrows, Python decides unless SQL was exact."""
        with self._read(db, coll) as conn:
            if conn is None:
                return
            where, params, exact = self._plan(conn, coll, filt)
            sql = f"SELECT doc FROM {_q(coll)}{where}"
            if exact and limit:
                sql, params = f"{sql} LIMIT ?", [*params, limit]
            cursor = conn.execute(sql, params)
            try:
                found = 0
                while rows := cursor.fetchmany(_FETCH):
                    for (text,) in rows:
                        doc = decode(text)
                        if exact or matches(doc, filt):
                            yield doc
                            found += 1
                            if found == limit:
                                return
            finally:
                cursor.close()

    accepts_encoded = True
    outside_readers = False  # the dashboards read MongoDB (data contract): see `outside_readers`

    def insert_encoded(
        self, db: str, coll: str, rows: Sequence[tuple[str, str]], maybe_lists: Sequence[Document] = ()
    ) -> InsertResult:
        """`insert_many` for documents the caller already encoded: (id_key(_id), encode(doc)).

        For bulk loaders that can build the stored text more cheaply than `encode` (a tracking-log
        line is already JSON). `maybe_lists` must hold the documents for which `may_hold_lists`
        is true, so that an index they make multikey is marked so.
        """
        check_database_name(db)
        check_name(coll)
        if not rows:
            return InsertResult(0, 0)
        rows = list(rows)
        with self._write(db, coll, sum(len(doc) for _, doc in rows)) as conn:
            _create_table(conn, coll)
            self._note_lists(conn, coll, maybe_lists)
            return _insert_rows(conn, coll, rows)

    def may_hold_lists(
        self, db: str, coll: str, own_fields: frozenset[str] = frozenset()
    ) -> Callable[[Document], bool]:
        """A fast test, for a bulk loader to run on every document: may it hold a list on a path
        of one of the collection's indexes not yet multikey? (Read once; indexes are made at start.)
        Paths under `own_fields` are not checked (see `DocumentStore.may_hold_lists`)."""
        check_name(coll)
        with self._read(db, coll) as conn:
            indexes = [] if conn is None else self._indexes(conn, coll)
        paths = {
            p for ix in indexes if not ix.multikey for p, _ in ix.keys if p.split(".")[0] not in own_fields
        }
        return _list_checker(tuple(sorted(paths))) if paths else never_lists

    def insert_many(self, db: str, coll: str, docs: Iterable[Document]) -> InsertResult:
        check_database_name(db)
        check_name(coll)
        rows: list[tuple[str, str]] = []
        with_lists: list[Document] = []  # documents that may hold a list somewhere
        try:
            for doc in docs:
                if "_id" not in doc:
                    doc["_id"] = ObjectId()  # in the caller's dict too, as pymongo does
                body = doc if next(iter(doc)) == "_id" else {"_id": doc["_id"], **doc}
                if isinstance(body["_id"], list | tuple):
                    raise TerminalError(f"{db}.{coll}: _id cannot be a list: {body['_id']!r}")
                text = encode(body)
                rows.append((id_key(body["_id"]), text))
                if "[" in text:
                    with_lists.append(body)
        except (TypeError, ValueError, OverflowError) as exc:
            raise BadDataError(f"{db}.{coll}: cannot store document: {exc}") from exc
        if not rows:
            return InsertResult(0, 0)
        with self._write(db, coll, sum(len(doc) for _, doc in rows)) as conn:
            _create_table(conn, coll)
            self._note_lists(conn, coll, with_lists)
            return _insert_rows(conn, coll, rows)

    def find(
        self,
        db: str,
        coll: str,
        filter: Filter | None = None,
        projection: Projection | None = None,
        limit: int = 0,
    ) -> Iterator[Document]:
        check_database_name(db)
        check_name(coll)
        filt, spec = validate_filter(filter), check_projection(projection)
        if limit < 0:
            raise TerminalError(f"limit must be >= 0, got {limit}")
        return (project(doc, spec) for doc in self._matching(db, coll, filt, limit))

    def count(self, db: str, coll: str, filter: Filter | None = None) -> int:
        check_name(coll)
        filt = validate_filter(filter)
        with self._read(db, coll) as conn:
            if conn is None:
                return 0
            where, params, exact = self._plan(conn, coll, filt)
            if exact:
                return int(conn.execute(f"SELECT count(*) FROM {_q(coll)}{where}", params).fetchone()[0])
        return sum(1 for _ in self._matching(db, coll, filt))

    def update_fields(self, db: str, coll: str, updates: Sequence[tuple[Any, Mapping[str, Any]]]) -> int:
        """Read, change and rewrite the documents in one transaction; returns how many matched."""
        check_name(coll)
        batch = [(id_key(_id), check_set_fields(fields)) for _id, fields in updates]
        if not batch or self._open(db, create=False) is None:
            return 0
        with self._write(db, coll) as conn:
            if not _has_table(conn, coll):
                return 0
            docs: dict[str, Document] = {}
            keys = list(dict.fromkeys(key for key, _ in batch))
            for start in range(0, len(keys), _FETCH):
                chunk = keys[start : start + _FETCH]
                marks = ", ".join("?" * len(chunk))
                found = conn.execute(f"SELECT id, doc FROM {_q(coll)} WHERE id IN ({marks})", chunk)
                docs.update((key, decode(text)) for key, text in found)
            matched = 0
            for key, fields in batch:
                if key in docs:
                    matched += 1
                    for path, value in fields.items():
                        set_path(docs[key], path, value)
            try:
                rows = [(encode(doc), key) for key, doc in docs.items()]
            except (TypeError, ValueError, OverflowError) as exc:
                raise BadDataError(f"{db}.{coll}: cannot store document: {exc}") from exc
            self._note_lists(conn, coll, list(docs.values()))
            conn.executemany(f"UPDATE {_q(coll)} SET doc = ? WHERE id = ?", rows)
        return matched

    def delete_many(self, db: str, coll: str, filter: Filter) -> int:
        check_name(coll)
        filt = validate_filter(filter)
        if self._open(db, create=False) is None:
            return 0
        with self._write(db, coll) as conn:
            if not _has_table(conn, coll):
                return 0
            where, params, exact = self._plan(conn, coll, filt)
            if exact:
                return int(conn.execute(f"DELETE FROM {_q(coll)}{where}", params).rowcount)
            rows = conn.execute(f"SELECT id, doc FROM {_q(coll)}{where}", params)
            doomed = [(key,) for key, text in rows if matches(decode(text), filt)]  # keys only
            conn.executemany(f"DELETE FROM {_q(coll)} WHERE id = ?", doomed)
            return len(doomed)

    def create_index(
        self, db: str, coll: str, keys: IndexKeys, unique: bool = False, name: str | None = None
    ) -> str:
        """A SQLite index on the fields' json_extract expressions. Unlike MongoDB, a unique index
        lets several documents lack the field, and compares a list field as one whole value."""
        check_name(coll)
        spec = check_index_keys(keys)
        name = name or default_index_name(spec)
        if spec == [("_id", 1)]:
            return "_id_"
        with self._write(db, coll) as conn:
            _create_table(conn, coll)
            for ix in self._indexes(conn, coll):
                if ix.name == name and ix.keys == spec and ix.unique == unique:
                    return name
                if ix.name == name or ix.keys == spec:
                    raise TerminalError(
                        f"{db}.{coll}: index {ix.name!r} on {ix.keys} already exists; "
                        f"cannot create {name!r} on {spec} (unique={unique})"
                    )
            sql_name = "ix_" + uuid.uuid4().hex
            columns = ", ".join(
                f'json_extract("doc", {json_path(path.split("."))}){" DESC" if d < 0 else ""}'
                for path, d in spec
            )
            kind = "UNIQUE INDEX" if unique else "INDEX"
            conn.execute(f"CREATE {kind} {_q(sql_name)} ON {_q(coll)} ({columns})")
            lists = " OR ".join(c for path, _ in spec for c in list_sql(path.split(".")))
            multikey = conn.execute(f"SELECT EXISTS (SELECT 1 FROM {_q(coll)} WHERE {lists})")
            conn.execute(
                f"INSERT INTO {_META} VALUES (?, ?, ?, ?, ?, ?)",
                (coll, name, sql_name, json.dumps(spec), int(unique), multikey.fetchone()[0]),
            )
        return name

    def drop_collection(self, db: str, coll: str) -> None:
        check_name(coll)
        if self._open(db, create=False) is None:
            return
        with self._write(db, coll) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {_q(coll)}")
            conn.execute(f"DELETE FROM {_META} WHERE coll = ?", (coll,))

    def replace_collection(self, db: str, src: str, dst: str) -> None:
        """Atomic here: drop `dst` and rename `src` (indexes included) in one transaction."""
        check_name(src)
        check_name(dst)
        if self._open(db, create=False) is None:
            raise TerminalError(f"{db}.{src} does not exist: cannot make it {dst}")
        with self._write(db, dst) as conn:
            if not _has_table(conn, src):
                raise TerminalError(f"{db}.{src} does not exist: cannot make it {dst}")
            if src != dst:
                conn.execute(f"DROP TABLE IF EXISTS {_q(dst)}")
                conn.execute(f"DELETE FROM {_META} WHERE coll = ?", (dst,))
                conn.execute(f"ALTER TABLE {_q(src)} RENAME TO {_q(dst)}")
                conn.execute(f"UPDATE {_META} SET coll = ? WHERE coll = ?", (dst, src))

    def query_plan(self, db: str, coll: str, filter: Filter | None = None) -> list[str]:
        """SQLite's EXPLAIN QUERY PLAN for `find` with this filter (to check index use)."""
        check_name(coll)
        filt = validate_filter(filter)
        with self._read(db, coll) as conn:
            if conn is None:
                return []
            where, params, _ = self._plan(conn, coll, filt)
            plan = conn.execute(f"EXPLAIN QUERY PLAN SELECT doc FROM {_q(coll)}{where}", params)
            return [str(row[3]) for row in plan]

    def ping(self) -> None:
        if self.root.exists() and not (self.root.is_dir() and os.access(self.root, os.W_OK)):
            raise TerminalError(f"document store directory {self.root} is not a writable directory")

    def close(self) -> None:
        """Close every connection; readers lent to unfinished finds close when those end."""
        with self._lock:
            handles = list(self._handles.values())
            self._handles.clear()
        for handle in handles:
            self._close(handle)

    def _close(self, handle: _Handle) -> None:
        with self._lock:
            handle.closed = True
            idle, handle.idle_readers = handle.idle_readers, []
        for conn in idle:
            conn.close()
        with handle.lock:
            if handle.checkpointer is not None:
                handle.checkpointer.close()
                handle.checkpointer = None
            handle.writer.close()


@lru_cache(maxsize=256)
def _list_checker(paths: tuple[str, ...]) -> Callable[[Document], bool]:
    """A fast `has_list` for the paths of one index (called for every document of a bulk load)."""
    heads = tuple(dict.fromkeys(path.split(".")[0] for path in paths))
    deep = tuple((head, rest.split(".")) for head, _, rest in (p.partition(".") for p in paths) if rest)

    def check(doc: Document) -> bool:
        get = doc.get
        for head in heads:
            if type(get(head)) is list:
                return True
        for head, rest in deep:
            value = get(head)
            if type(value) is dict and has_list(value, rest):
                return True
        return False

    return check


def _insert_rows(conn: sqlite3.Connection, coll: str, rows: list[tuple[str, str]]) -> InsertResult:
    """Insert (id, doc) rows, skipping ids already stored; report where the skipped ones were.

    The common case (no duplicate) is one pass of multi-row INSERTs. Only when some were skipped
    is it undone and done again knowing which ids exist (an INSERT returns no RETURNING rows to
    a statement that is not read row by row)."""
    conn.execute("SAVEPOINT insert_rows")
    inserted = _insert_chunks(conn, coll, rows)
    if inserted == len(rows):
        conn.execute("RELEASE insert_rows")
        return InsertResult(inserted, 0)
    conn.execute("ROLLBACK TO insert_rows")
    conn.execute("RELEASE insert_rows")
    keys = json.dumps([key for key, _ in rows])
    found = conn.execute(f"SELECT id FROM {_q(coll)} WHERE id IN (SELECT value FROM json_each(?))", (keys,))
    seen = {key for (key,) in found}
    fresh, duplicate_at = [], []
    for position, row in enumerate(rows):
        if row[0] in seen:
            duplicate_at.append(position)
        else:
            seen.add(row[0])
            fresh.append(row)
    _insert_chunks(conn, coll, fresh)
    return InsertResult(len(fresh), len(duplicate_at), tuple(duplicate_at))


# Rows per INSERT statement. `executemany` runs one sqlite3_step per row and takes the GIL back
# after each: on a writer thread beside a busy parsing thread every row then waits for the GIL (up
# to a switch interval), which made the writes several times slower than SQLite's own work. One
# statement of many rows is one step: the whole chunk is written without the GIL.
_CHUNK_ROWS = 16383


def _insert_chunks(conn: sqlite3.Connection, coll: str, rows: Sequence[tuple[str, str]]) -> int:
    """INSERT ... VALUES (?, ?), (?, ?), ... ON CONFLICT (id) DO NOTHING, a chunk at a time;
    returns how many rows were inserted."""
    per = min(_CHUNK_ROWS, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // 2)
    inserted = 0
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        marks = ",".join(["(?,?)"] * len(chunk))
        sql = f"INSERT INTO {_q(coll)} (id, doc) VALUES {marks} ON CONFLICT (id) DO NOTHING"
        inserted += conn.execute(sql, [value for row in chunk for value in row]).rowcount
    return inserted


def _commit_group(handle: _Handle) -> None:
    """Commit the open transaction of `grouped_writes`, if any (under `handle.lock`); if that
    fails, the group's calls since its last commit are lost, and it says so to its owner."""
    group = handle.group
    if group is None or not group.open:
        return
    group.open, group.bytes, group.calls = False, 0, 0
    conn = handle.writer
    try:
        conn.execute("COMMIT")
    except BaseException as exc:
        group.lost = f"commit failed: {exc}"
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if handle.checkpointer is None and not handle.closed and not handle.no_checkpointer:
        try:
            handle.checkpointer = _Checkpointer(handle.path, handle.path.stem)
        except RuntimeError as exc:  # no thread to be had: the writer's own checkpoints do it all
            log.warning("sqlite document store %s: no checkpointing thread: %s", handle.path.stem, exc)
            handle.no_checkpointer = True
    if handle.checkpointer is not None:
        handle.checkpointer.request()


def _lost(db: str, group: _Group) -> TerminalError:
    return TerminalError(
        f"sqlite document store {db}: the writes grouped since the last commit were lost "
        f"({group.lost}); the load must start again"
    )


def _undo_grouped_call(handle: _Handle, group: _Group) -> None:
    """Undo a failed call of a group (under `handle.lock`): back to its savepoint, or, if SQLite
    ended the transaction or cannot go back, the whole group since its last commit."""
    conn = handle.writer
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK TO grouped_write")
            conn.execute("RELEASE grouped_write")
            return
        except sqlite3.Error:
            pass
    group.lost = "a failed write ended the transaction"
    group.open, group.bytes, group.calls = False, 0, 0
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _has_table(conn: sqlite3.Connection, coll: str) -> bool:
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (coll,))
    return found.fetchone() is not None


def _create_table(conn: sqlite3.Connection, coll: str) -> None:
    conn.execute(f"CREATE TABLE IF NOT EXISTS {_q(coll)} (id TEXT PRIMARY KEY NOT NULL, doc TEXT NOT NULL)")
