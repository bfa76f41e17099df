"""The embedded SQL backend: one SQLite file per database under `<STATE_DIR>/sql/`.

WAL mode lets the status API read while the daemon writes. A table is replaced by loading a new
one and renaming it over the old inside one transaction, so readers see the old table or the new
one, never a partial one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.errors import TerminalError, TransientError
from stores.sql.base import Column, Cursor, LoadSpec, SqlStore
from stores.sql.identifiers import check_name, quote
from utils.tsv import iter_records, split_fields, unescape

_TYPES = {
    "int": "INTEGER",
    "float": "REAL",
    "date": "DATE",
    "datetime": "DATETIME",
    "text": "TEXT",
    "longtext": "TEXT",
}
_BATCH = 5000


def _translate(exc: sqlite3.Error, what: str) -> Exception:
    message = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in message or "busy" in message):
        return TransientError(f"{what}: {message}")
    return TerminalError(f"{what}: {message}")


class SqliteStore(SqlStore):
    """SQLite files in one directory, one per database."""

    dialect = "sqlite"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, database: str) -> Path:
        return self.directory / f"{check_name(database, 'database name')}.sqlite"

    def _connect(self, database: str) -> sqlite3.Connection:
        self.directory.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path(database), timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @contextmanager
    def transaction(self, database: str, *, immediate: bool = False) -> Iterator[Cursor]:
        try:
            conn = self._connect(database)
        except sqlite3.Error as exc:
            raise _translate(exc, f"opening SQLite database {database}") from exc
        try:
            conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            cur = conn.cursor()
            try:
                yield cur  # type: ignore[misc]
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        except sqlite3.Error as exc:
            raise _translate(exc, f"SQLite database {database}") from exc
        finally:
            conn.close()

    def list_tables(self, database: str) -> list[str]:
        if not self.path(database).exists():
            return []
        rows = self.query(database, "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        return [row[0] for row in rows]

    def list_databases(self) -> list[str]:
        if not self.directory.exists():
            return []
        return sorted(p.stem for p in self.directory.glob("*.sqlite"))

    def drop_database(self, database: str) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(str(self.path(database)) + suffix).unlink(missing_ok=True)

    def load_table(self, database: str, table: str, spec: LoadSpec) -> int:
        check_name(table, "table name", 56)
        final = quote(table, self.dialect)
        staging = quote(f"{table}__load", self.dialect)
        columns_sql = ", ".join(f"{quote(c.name, self.dialect)} {_TYPES[c.kind]}" for c in spec.columns)
        marks = ", ".join("?" for _ in spec.columns)
        insert = f"INSERT INTO {staging} VALUES ({marks})"
        loaded = 0
        with self.transaction(database, immediate=True) as cur:
            cur.execute(f"DROP TABLE IF EXISTS {staging}")
            cur.execute(f"CREATE TABLE {staging} ({columns_sql})")
            batch: list[list[str | None]] = []
            for row in _rows(spec):
                batch.append(row)
                if len(batch) >= _BATCH:
                    cur.executemany(insert, batch)
                    loaded += len(batch)
                    batch = []
            if batch:
                cur.executemany(insert, batch)
                loaded += len(batch)
            cur.execute(f"DROP TABLE IF EXISTS {final}")
            cur.execute(f"ALTER TABLE {staging} RENAME TO {final}")
        return loaded


def _rows(spec: LoadSpec) -> Iterator[list[str | None]]:
    """Decode the spool's records into values, with the NULL policy of `spec`."""
    nullable = [c.name in spec.null_columns for c in spec.columns]
    width = len(spec.columns)
    with spec.path.open("rb") as stream:
        for line_no, record in iter_records(stream):
            if line_no <= spec.skip_lines or not record:
                continue
            fields = split_fields(record)
            if len(fields) != width:
                raise TerminalError(f"{spec.path}:{line_no}: {len(fields)} fields, expected {width}")
            yield [_value(f, n) for f, n in zip(fields, nullable, strict=True)]


def _value(field: bytes, nullable: bool) -> str | None:
    if field == b"\\N" or (nullable and field == b"NULL"):
        return None
    return unescape(field.decode("utf-8"))


def column_types(columns: Sequence[Column]) -> dict[str, Any]:
    """The declared SQLite type of each column (for tests and documentation)."""
    return {c.name: _TYPES[c.kind] for c in columns}
