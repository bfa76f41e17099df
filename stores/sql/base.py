"""The SQL store interface: one SQL 'database' per course plus `api` and `Person_Course`.

Two backends implement it: MySQL/MariaDB through pymysql (production) and SQLite (the embedded
default, one file per database). Statements are written with `?` placeholders; the MySQL backend
converts them. Driver exceptions are translated into `core.errors` at this boundary.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from stores.sql.identifiers import quote

Kind = Literal["int", "float", "date", "datetime", "text", "longtext"]


@dataclass(frozen=True)
class Column:
    """A column to create: its name, kind, the longest value seen (bytes) and fractional seconds."""

    name: str
    kind: Kind
    max_bytes: int = 0
    fractional: bool = False


@dataclass(frozen=True)
class LoadSpec:
    """How to load a TSV spool into a table.

    `path` holds records in MySQL `LOAD DATA` escaping (backslash escapes, tab between fields, LF
    between records); `skip_lines` header lines are ignored. A field that is exactly `NULL` becomes
    SQL NULL in the columns listed in `null_columns` and stays the text `NULL` elsewhere.
    """

    path: Path
    columns: Sequence[Column]
    null_columns: frozenset[str]
    skip_lines: int = 0


class Cursor(Protocol):
    """The part of a DB-API cursor that callers use, with `?` placeholders."""

    rowcount: int
    lastrowid: int | None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def fetchone(self) -> tuple[Any, ...] | None: ...
    def fetchall(self) -> list[tuple[Any, ...]]: ...


class StagedLoad(Protocol):
    """A load into a staging table, swapped in by `commit()` or dropped by `abort()`."""

    def wait(self) -> int: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...
    def close(self) -> None: ...


class SqlStore(ABC):
    """A SQL server (or a directory of SQLite files) holding many databases."""

    dialect: str
    # True if `stage_load(..., background=True)` lets the server load while the caller reads on.
    supports_background_load = False

    def column_type(self, column: Column) -> str:
        """The SQL type this backend creates for `column`."""
        return column.kind

    def stage_load(self, database: str, table: str, spec: LoadSpec, background: bool) -> StagedLoad:
        """Load into a staging table; `commit()` swaps it in (only where supported)."""
        raise NotImplementedError(f"{self.dialect} has no staged loads")

    @abstractmethod
    def transaction(
        self, database: str, *, immediate: bool = False, attach: Sequence[str] = ()
    ) -> AbstractContextManager[Cursor]:
        """A cursor in one transaction on `database` (created if missing); commits on success.

        `immediate` takes the write lock at the start (SQLite `BEGIN IMMEDIATE`), for
        read-then-write sequences such as claiming a queued file. `attach` names other databases
        the transaction also writes (name their tables with `qualified`), so that for example a
        file's aggregates and its completion in the tracking table commit together.
        """

    @abstractmethod
    def qualified(self, main: str, database: str, table: str) -> str:
        """The quoted name of `database.table` inside a transaction opened on `main`."""

    @abstractmethod
    def load_table(self, database: str, table: str, spec: LoadSpec) -> int:
        """Replace `table` with the spool's rows, atomically; returns the number of rows loaded."""

    @abstractmethod
    def list_tables(self, database: str) -> list[str]:
        """The tables of `database` (empty if it does not exist)."""

    @abstractmethod
    def list_databases(self) -> list[str]:
        """The databases this store holds."""

    @abstractmethod
    def drop_database(self, database: str) -> None:
        """Remove `database` and everything in it (tests and clean-up)."""

    def query(self, database: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one read statement and return all rows."""
        with self.transaction(database) as cur:
            return cur.execute(sql, params).fetchall()

    def quote(self, name: str) -> str:
        """Validated, quoted identifier for this dialect."""
        return quote(name, self.dialect)

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release connections."""
