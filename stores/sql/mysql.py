"""The production SQL backend: MySQL/MariaDB through pymysql.

A `.sql` dump is loaded with `LOAD DATA LOCAL INFILE` (the server parses the TSV, as in the
original) into a staging table, then swapped in with one atomic `RENAME TABLE`. Any warning from
the load (a value that did not fit, a bad date) fails the load instead of silently changing data.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlparse

import pymysql
import pymysql.cursors

from core.errors import ConfigError, TransientError
from stores.sql.base import Column, Cursor, LoadSpec, SqlStore
from stores.sql.identifiers import check_name, quote
from stores.sql.mysql_load import LoadConnection, MysqlLoad, mysql_type
from stores.sql.mysql_pool import UNKNOWN_DATABASE, ConnectionPool, error_code, is_broken
from stores.sql.mysql_pool import translate as _translate

_PLACEHOLDER = re.compile(r"\?")


class _Cursor:
    """A pymysql cursor taking `?` placeholders, so callers write one SQL text for both backends."""

    def __init__(self, cursor: pymysql.cursors.Cursor) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Cursor:
        self._cursor.execute(_PLACEHOLDER.sub("%s", sql.replace("%", "%%")), tuple(params))
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(_PLACEHOLDER.sub("%s", sql.replace("%", "%%")), rows)

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._cursor.fetchone()

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._cursor.fetchall())


class MysqlStore(SqlStore):
    """Databases on one MySQL/MariaDB server."""

    dialect = "mysql"

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        if not parsed.hostname:
            raise ConfigError([f"SQL_URL: no host in {url!r}"])
        self._params: dict[str, Any] = {
            "host": parsed.hostname,
            "port": parsed.port or 3306,
            "user": unquote(parsed.username or ""),
            "password": unquote(parsed.password or ""),
            "charset": "utf8mb4",
            # Only the load connections (LoadConnection) may send a file: a server asking for one on
            # any other connection is refused by pymysql itself.
            "local_infile": False,
            "connect_timeout": 10,
            "autocommit": False,
            # No gap locks: daemons completing different files never block each other's inserts.
            "init_command": "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
        }
        self.display = f"mysql://{parsed.hostname}:{parsed.port or 3306}"
        self.pool = ConnectionPool(self._params, self.display)

    @contextmanager
    def transaction(
        self, database: str, *, immediate: bool = False, attach: Sequence[str] = ()
    ) -> Iterator[Cursor]:
        pooled = self.pool.checkout(database)
        broken = False
        try:
            for other in attach:
                self.pool.ensure(pooled, other)  # creates it if missing
            conn = pooled.conn
            with conn.cursor() as raw:
                try:
                    raw.execute("START TRANSACTION")
                    yield _Cursor(raw)  # type: ignore[misc]
                    conn.commit()
                except BaseException as exc:
                    broken = is_broken(exc)
                    if not broken:
                        try:
                            conn.rollback()
                        except (pymysql.MySQLError, OSError):
                            broken = True
                    raise
        except pymysql.MySQLError as exc:
            broken = broken or is_broken(exc)
            if error_code(exc) == UNKNOWN_DATABASE:
                # Dropped behind the store's back: the retry creates it again.
                for name in (database, *attach):
                    self.pool.forget(name)
                pooled.database = None
                raise TransientError(f"MySQL database {database}: {exc}") from exc
            raise _translate(exc, f"MySQL database {database}") from exc
        finally:
            self.pool.checkin(pooled, broken)

    def qualified(self, main: str, database: str, table: str) -> str:
        return f"{quote(database, self.dialect)}.{quote(table, self.dialect)}"

    def list_tables(self, database: str) -> list[str]:
        rows = self.admin_query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema=%s ORDER BY 1",
            (check_name(database, "database name"),),
        )
        return [row[0] for row in rows]

    def list_databases(self) -> list[str]:
        return [row[0] for row in self.admin_query("SHOW DATABASES", ())]

    def drop_database(self, database: str) -> None:
        self.admin_query(f"DROP DATABASE IF EXISTS {quote(database, self.dialect)}", ())
        self.pool.forget(database)

    def admin_query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """One statement outside any database (pymysql `%s` placeholders)."""
        pooled = self.pool.checkout(None)
        broken = False
        try:
            with pooled.conn.cursor() as cur:
                cur.execute(sql, tuple(params))
                rows = list(cur.fetchall())
            pooled.conn.commit()
            return rows
        except pymysql.MySQLError as exc:
            broken = is_broken(exc)
            raise _translate(exc, f"MySQL {self.display}") from exc
        finally:
            self.pool.checkin(pooled, broken)

    def close(self) -> None:
        self.pool.close()

    supports_background_load = True

    def column_type(self, column: Column) -> str:
        return mysql_type(column)

    def load_connection(self) -> LoadConnection:
        """A connection of its own for one `LOAD DATA LOCAL INFILE` (not pooled)."""
        try:
            return LoadConnection(**{**self._params, "local_infile": True})
        except pymysql.MySQLError as exc:
            raise _translate(exc, f"connecting to {self.display}") from exc

    def load_table(self, database: str, table: str, spec: LoadSpec) -> int:
        load = self.stage_load(database, table, spec, background=False)
        try:
            rows = load.wait()
            load.commit()
        finally:
            load.close()
        return rows

    def stage_load(self, database: str, table: str, spec: LoadSpec, background: bool) -> MysqlLoad:
        """Start loading `spec` into `<table>__load`; `commit()` swaps it in with one RENAME TABLE.

        With `background`, the server parses the file while the caller goes on (the caller then
        checks the same file and either commits or aborts).
        """
        return MysqlLoad(self, database, table, spec, background)
