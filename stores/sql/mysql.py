"""The production SQL backend: MySQL/MariaDB through pymysql.

A `.sql` dump is loaded with `LOAD DATA LOCAL INFILE` (the server parses the TSV, as in the
original) into a staging table, then swapped in with one atomic `RENAME TABLE`. Any warning from
the load (a value that did not fit, a bad date) fails the load instead of silently changing data.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlparse

import pymysql
import pymysql.cursors

from core.errors import ConfigError, LockConflict, TerminalError, TransientError
from stores.sql.base import Column, Cursor, LoadSpec, SqlStore
from stores.sql.identifiers import check_name, quote

# Connection lost, server gone or restarting, too many connections, lock wait timeout, deadlock.
_TRANSIENT_CODES = {1040, 1053, 1205, 1213, 2002, 2003, 2006, 2013, 2055}
_LOCK_CODES = {1205, 1213}  # lock wait timeout, deadlock: the transaction alone can run again
_PLACEHOLDER = re.compile(r"\?")


def _translate(exc: pymysql.MySQLError, what: str) -> Exception:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    if code in _LOCK_CODES:
        return LockConflict(f"{what}: {exc}")
    if code in _TRANSIENT_CODES or isinstance(exc, pymysql.err.InterfaceError):
        return TransientError(f"{what}: {exc}")
    return TerminalError(f"{what}: {exc}")


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


def _mysql_type(column: Column) -> str:
    """The column type for a kind; text sizes go by class, so that the type depends on the data only
    through the class of its longest value (and nothing is ever truncated)."""
    if column.kind == "int":
        return "BIGINT"
    if column.kind == "float":
        return "DOUBLE"
    if column.kind == "date":
        return "DATE"
    if column.kind == "datetime":
        return "DATETIME(6)"
    if column.kind == "longtext":
        return "LONGTEXT"
    # max_bytes bounds the character length from above, so these never truncate.
    if column.max_bytes <= 255:
        return "VARCHAR(255)"
    if column.max_bytes <= 65535:
        return "TEXT"
    if column.max_bytes <= 16777215:
        return "MEDIUMTEXT"
    return "LONGTEXT"


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
            "local_infile": True,
            "connect_timeout": 10,
            "autocommit": False,
            # No gap locks: daemons completing different files never block each other's inserts.
            "init_command": "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
        }
        self.display = f"mysql://{parsed.hostname}:{parsed.port or 3306}"

    def _connect(self, database: str | None) -> pymysql.connections.Connection[Any]:
        try:
            conn = pymysql.connect(**self._params)
            if database is not None:
                name = quote(database, self.dialect)
                with conn.cursor() as cur:
                    cur.execute(
                        f"CREATE DATABASE IF NOT EXISTS {name} "
                        "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                    )
                    cur.execute(f"USE {name}")
            return conn
        except pymysql.MySQLError as exc:
            raise _translate(exc, f"connecting to {self.display}") from exc

    @contextmanager
    def transaction(
        self, database: str, *, immediate: bool = False, attach: Sequence[str] = ()
    ) -> Iterator[Cursor]:
        conn = self._connect(database)
        for other in attach:
            if other != database:
                self._connect(other).close()  # creates it if missing
        try:
            with conn.cursor() as raw:
                try:
                    raw.execute("START TRANSACTION")
                    yield _Cursor(raw)  # type: ignore[misc]
                    conn.commit()
                except BaseException:
                    conn.rollback()
                    raise
        except pymysql.MySQLError as exc:
            raise _translate(exc, f"MySQL database {database}") from exc
        finally:
            conn.close()

    def qualified(self, main: str, database: str, table: str) -> str:
        return f"{quote(database, self.dialect)}.{quote(table, self.dialect)}"

    def list_tables(self, database: str) -> list[str]:
        rows = self._admin_query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema=%s ORDER BY 1",
            (check_name(database, "database name"),),
        )
        return [row[0] for row in rows]

    def list_databases(self) -> list[str]:
        return [row[0] for row in self._admin_query("SHOW DATABASES", ())]

    def drop_database(self, database: str) -> None:
        self._admin_query(f"DROP DATABASE IF EXISTS {quote(database, self.dialect)}", ())

    def _admin_query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        conn = self._connect(None)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, tuple(params))
                rows = list(cur.fetchall())
            conn.commit()
            return rows
        except pymysql.MySQLError as exc:
            raise _translate(exc, f"MySQL {self.display}") from exc
        finally:
            conn.close()

    supports_background_load = True

    def column_type(self, column: Column) -> str:
        return _mysql_type(column)

    def load_table(self, database: str, table: str, spec: LoadSpec) -> int:
        load = self.stage_load(database, table, spec, background=False)
        try:
            rows = load.wait()
            load.commit()
        finally:
            load.close()
        return rows

    def stage_load(self, database: str, table: str, spec: LoadSpec, background: bool) -> _MysqlLoad:
        """Start loading `spec` into `<table>__load`; `commit()` swaps it in with one RENAME TABLE.

        With `background`, the server parses the file while the caller goes on (the caller then
        checks the same file and either commits or aborts).
        """
        return _MysqlLoad(self, database, table, spec, background)


class _MysqlLoad:
    """A LOAD DATA into a staging table, optionally on a thread, swapped in by `commit()`."""

    def __init__(
        self, store: MysqlStore, database: str, table: str, spec: LoadSpec, background: bool
    ) -> None:
        check_name(table, "table name", 56)
        self.store, self.database, self.table, self.spec = store, database, table, spec
        self.final = quote(table, store.dialect)
        self.staging = quote(f"{table}__load", store.dialect)
        self.old = quote(f"{table}__old", store.dialect)
        self.columns_sql = ", ".join(f"{quote(c.name, store.dialect)} {_mysql_type(c)}" for c in spec.columns)
        self.conn = store._connect(database)
        self.rows: int | None = None
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        if background:
            self.thread = threading.Thread(target=self._run, name=f"load-{table}", daemon=True)
            self.thread.start()
        else:
            self._run()

    def _what(self) -> str:
        return f"loading {self.spec.path} into {self.database}.{self.table}"

    def _run(self) -> None:
        spec = self.spec
        variables = ", ".join(f"@v{i}" for i in range(len(spec.columns)))
        assignments = ", ".join(
            f"{quote(c.name, self.store.dialect)} = "
            + (f"NULLIF(@v{i}, _binary'NULL')" if c.name in spec.null_columns else f"@v{i}")
            for i, c in enumerate(spec.columns)
        )
        try:
            with self.conn.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {self.staging}, {self.old}")
                cur.execute(
                    f"CREATE TABLE {self.staging} ({self.columns_sql}) ENGINE=InnoDB "
                    "DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"
                )
                cur.execute(
                    f"LOAD DATA LOCAL INFILE %s INTO TABLE {self.staging} CHARACTER SET utf8mb4 "
                    "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
                    f"IGNORE {int(spec.skip_lines)} LINES ({variables}) SET {assignments}",
                    (str(spec.path),),
                )
                loaded = int(cur.rowcount)
                cur.execute("SHOW WARNINGS LIMIT 5")
                warnings = list(cur.fetchall())
            self.conn.commit()
            if warnings:
                details = "; ".join(f"{w[0]} {w[1]}: {w[2]}" for w in warnings)
                raise TerminalError(f"{self._what()}: {details}")
            self.rows = loaded
        except pymysql.MySQLError as exc:
            self.error = _translate(exc, self._what())
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            self.error = exc

    def wait(self) -> int:
        """Rows loaded into the staging table; raises what the load raised."""
        if self.thread is not None:
            self.thread.join()
        if self.error is not None:
            raise self.error
        assert self.rows is not None
        return self.rows

    def commit(self) -> None:
        """Swap the staging table in (atomically, with one RENAME TABLE)."""
        try:
            with self.conn.cursor() as cur:
                cur.execute(
                    "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema=%s AND table_name=%s",
                    (self.database, self.table),
                )
                row = cur.fetchone()
                if row and row[0] > 0:
                    cur.execute(f"RENAME TABLE {self.final} TO {self.old}, {self.staging} TO {self.final}")
                    cur.execute(f"DROP TABLE {self.old}")
                else:
                    cur.execute(f"RENAME TABLE {self.staging} TO {self.final}")
            self.conn.commit()
        except pymysql.MySQLError as exc:
            raise _translate(exc, self._what()) from exc

    def abort(self) -> None:
        """Stop a running load (KILL QUERY) and drop the staging table."""
        if self.thread is not None and self.thread.is_alive():
            try:
                killer = self.store._connect(None)
                try:
                    with killer.cursor() as cur:
                        cur.execute("KILL QUERY %s", (self.conn.thread_id(),))
                finally:
                    killer.close()
            except (pymysql.MySQLError, TransientError) as exc:
                logging.getLogger("ingestor").warning("could not stop %s: %s", self._what(), exc)
            self.thread.join()
        try:
            with self.store._connect(self.database).cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {self.staging}")
        except (pymysql.MySQLError, TransientError) as exc:
            logging.getLogger("ingestor").warning(
                "could not drop the staging table of %s: %s", self._what(), exc
            )

    def close(self) -> None:
        if self.thread is not None:
            self.thread.join()
        self.conn.close()
