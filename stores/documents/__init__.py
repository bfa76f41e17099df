"""Document stores: where events and forum posts go (MongoDB, or SQLite files when embedded).

`open_document_store(url, state_dir)` picks the backend from the configured URL: `"sqlite"` keeps
one SQLite file per database under `<state_dir>/documents/`, a `mongodb://` URL uses pymongo.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import ConfigError
from stores.documents.base import DocumentStore, InsertResult
from stores.documents.mongo import MongoDocumentStore, redact_url
from stores.documents.sqlite import SqliteDocumentStore

__all__ = [
    "DocumentStore",
    "InsertResult",
    "MongoDocumentStore",
    "SqliteDocumentStore",
    "open_document_store",
]


def open_document_store(url: str, state_dir: Path) -> DocumentStore:
    """The document store for `url`: `"sqlite"` or `mongodb://...` (`mongodb+srv://...`)."""
    if url == "sqlite":
        return SqliteDocumentStore(Path(state_dir) / "documents")
    if isinstance(url, str) and url.startswith(("mongodb://", "mongodb+srv://")):
        return MongoDocumentStore(url)
    raise ConfigError([f"document store URL {redact_url(url)!r}: expected 'sqlite' or a mongodb:// URL"])
