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

from core.errors import ConfigError, TerminalError, TransientError
from stores.sql.base import Column, Cursor, LoadSpec, SqlStore
from stores.sql.identifiers import check_name, quote

# Connection lost, server gone or restarting, too many connections, lock wait timeout, deadlock.
_TRANSIENT_CODES = {1040, 1053, 1205, 1213, 2002, 2003, 2006, 2013, 2055}
_PLACEHOLDER = re.compile(r"\?")


def _translate(exc: pymysql.MySQLError, what: str) -> Exception:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
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
    if column.kind == "int":
        return "BIGINT"
    if column.kind == "float":
        return "DOUBLE"
    if column.kind == "date":
        return "DATE"
    if column.kind == "datetime":
        return "DATETIME(6)" if column.fractional else "DATETIME"
    if column.kind == "longtext":
        return "LONGTEXT"
    # max_bytes bounds the character length from above, so VARCHAR(max_bytes) never truncates.
    if column.max_bytes <= 255:
        return f"VARCHAR({max(column.max_bytes, 1)})"
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
    def transaction(self, database: str, *, immediate: bool = False) -> Iterator[Cursor]:
        conn = self._connect(database)
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

    def load_table(self, database: str, table: str, spec: LoadSpec) -> int:
        check_name(table, "table name", 56)
        final = quote(table, self.dialect)
        staging = quote(f"{table}__load", self.dialect)
        old = quote(f"{table}__old", self.dialect)
        columns_sql = ", ".join(f"{quote(c.name, self.dialect)} {_mysql_type(c)}" for c in spec.columns)
        variables = ", ".join(f"@v{i}" for i in range(len(spec.columns)))
        assignments = ", ".join(
            f"{quote(c.name, self.dialect)} = "
            + (f"NULLIF(@v{i}, _binary'NULL')" if c.name in spec.null_columns else f"@v{i}")
            for i, c in enumerate(spec.columns)
        )
        conn = self._connect(database)
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {staging}, {old}")
                cur.execute(
                    f"CREATE TABLE {staging} ({columns_sql}) ENGINE=InnoDB "
                    "DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"
                )
                cur.execute(
                    f"LOAD DATA LOCAL INFILE %s INTO TABLE {staging} CHARACTER SET utf8mb4 "
                    "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
                    f"IGNORE {int(spec.skip_lines)} LINES ({variables}) SET {assignments}",
                    (str(spec.path),),
                )
                loaded = int(cur.rowcount)
                cur.execute("SHOW WARNINGS LIMIT 5")
                warnings = list(cur.fetchall())
                if warnings:
                    cur.execute(f"DROP TABLE IF EXISTS {staging}")
                    details = "; ".join(f"{w[0]} {w[1]}: {w[2]}" for w in warnings)
                    raise TerminalError(f"loading {spec.path} into {database}.{table}: {details}")
                cur.execute(
                    "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema=%s AND table_name=%s",
                    (database, table),
                )
                exists = cur.fetchone()[0] > 0
                if exists:
                    cur.execute(f"RENAME TABLE {final} TO {old}, {staging} TO {final}")
                    cur.execute(f"DROP TABLE {old}")
                else:
                    cur.execute(f"RENAME TABLE {staging} TO {final}")
            conn.commit()
            return loaded
        except pymysql.MySQLError as exc:
            raise _translate(exc, f"loading {spec.path} into {database}.{table}") from exc
        finally:
            conn.close()
