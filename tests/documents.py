"""What tests need of a document store beyond the services' interface (listing, dropping), done
with each backend's own means: pymongo's client for MongoDB, sqlite3 and the files for SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from stores.documents import DocumentStore, MongoDocumentStore, SqliteDocumentStore

_SYSTEM = ("admin", "local", "config")


def list_databases(store: DocumentStore) -> list[str]:
    if isinstance(store, MongoDocumentStore):
        return sorted(n for n in store.client.list_database_names() if n not in _SYSTEM)
    assert isinstance(store, SqliteDocumentStore)
    return sorted(p.stem for p in store.root.glob("*.sqlite")) if store.root.is_dir() else []


def drop_database(store: DocumentStore, db: str) -> None:
    if isinstance(store, MongoDocumentStore):
        store.client.drop_database(db)
        return
    assert isinstance(store, SqliteDocumentStore)
    path = store.path_for(db)
    store.close()  # its connections reopen lazily
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def _sqlite_rows(store: SqliteDocumentStore, db: str, sql: str, params: Iterable[Any] = ()) -> list[Any]:
    path = store.path_for(db)
    if not path.exists():
        return []
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, tuple(params)).fetchall()
    finally:
        conn.close()


def list_collections(store: DocumentStore, db: str) -> list[str]:
    if isinstance(store, MongoDocumentStore):
        return sorted(n for n in store.client[db].list_collection_names() if not n.startswith("system."))
    assert isinstance(store, SqliteDocumentStore)
    rows = _sqlite_rows(
        store,
        db,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name != '$indexes' AND name NOT LIKE 'sqlite%'",
    )
    return sorted(name for (name,) in rows)


def index_names(store: DocumentStore, db: str, coll: str) -> list[str]:
    if isinstance(store, MongoDocumentStore):
        return [ix["name"] for ix in store.client[db][coll].list_indexes()]
    assert isinstance(store, SqliteDocumentStore)
    if coll not in list_collections(store, db):
        return []
    rows = _sqlite_rows(store, db, 'SELECT name FROM "$indexes" WHERE coll = ? ORDER BY rowid', (coll,))
    return ["_id_", *(name for (name,) in rows)]
