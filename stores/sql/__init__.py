"""The SQL store: one SQL 'database' per course plus `api` and `Person_Course`.

`open_sql_store(url, state_dir)` picks the backend from the configured URL: `"sqlite"` keeps one
SQLite file per database under `<state_dir>/sql/`, a `mysql://` URL uses pymysql (MySQL/MariaDB).
The interface is in `stores/sql/base.py`.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import ConfigError
from stores.sql.base import Column, Cursor, LoadSpec, SqlStore, StagedLoad
from stores.sql.mysql import MysqlStore
from stores.sql.sqlite import SqliteStore

__all__ = [
    "Column",
    "Cursor",
    "LoadSpec",
    "MysqlStore",
    "SqlStore",
    "SqliteStore",
    "StagedLoad",
    "open_sql_store",
]


def open_sql_store(url: str, state_dir: Path) -> SqlStore:
    """The store for `SQL_URL`: `sqlite` (files under `<state_dir>/sql/`) or `mysql://...`."""
    if url == "sqlite":
        return SqliteStore(Path(state_dir) / "sql")
    if isinstance(url, str) and url.startswith("mysql://"):
        return MysqlStore(url)
    raise ConfigError([f"SQL_URL: expected 'sqlite' or 'mysql://user:password@host:port', got {url!r}"])
