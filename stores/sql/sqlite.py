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

from core.errors import TerminalError, TransientError
from stores.sql.base import Column, Cursor, LoadSpec, SqlStore
from stores.sql.identifiers import check_name, quote
from utils.tsv import iter_record_blocks, split_fields, unescape

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

    def column_type(self, column: Column) -> str:
        return _TYPES[column.kind]

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
    def transaction(
        self, database: str, *, immediate: bool = False, attach: Sequence[str] = ()
    ) -> Iterator[Cursor]:
        try:
            conn = self._connect(database)
            for other in attach:
                if other != database:
                    conn.execute(
                        "ATTACH DATABASE ? AS " + quote(other, self.dialect), (str(self.path(other)),)
                    )
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

    def qualified(self, main: str, database: str, table: str) -> str:
        if database == main:
            return quote(table, self.dialect)
        return f"{quote(database, self.dialect)}.{quote(table, self.dialect)}"

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
    """Decode the records into values, with the NULL policy of `spec`."""
    nullable = [c.name in spec.null_columns for c in spec.columns]
    all_nullable = all(nullable)
    width = len(spec.columns)
    with spec.path.open("rb") as stream:
        for first, records, numbers, _ in iter_record_blocks(stream):
            for index, raw in enumerate(records):
                line_no = numbers[index] if numbers is not None else first + index
                if line_no <= spec.skip_lines:
                    continue
                record = raw.decode("utf-8")
                if "\\" in record:
                    fields = [f.decode("utf-8") for f in split_fields(raw)]
                    values: list[str | None] = [
                        None if f == "\\N" or (n and f == "NULL") else unescape(f)
                        for f, n in zip(fields, nullable, strict=False)
                    ]
                else:
                    fields = record.split("\t")
                    if all_nullable:
                        values = [None if f == "NULL" else f for f in fields]
                    else:
                        values = [
                            None if n and f == "NULL" else f for f, n in zip(fields, nullable, strict=False)
                        ]
                if len(fields) != width:
                    raise TerminalError(f"{spec.path}:{line_no}: {len(fields)} fields, expected {width}")
                yield values
