"""What the derived services share about SQL: dialect snippets and swapping a built table in.

A derived table is built under a staging name (`<table>__new`) and swapped in: on SQLite by
dropping the old table and renaming the new one in the transaction that built it (a reader keeps
its snapshot until the commit and then sees the new table); on MySQL/MariaDB with one atomic
`RENAME TABLE old TO old__old, new TO old`. A reader therefore sees the previous table or the new
one, never a missing or half-built one, and a crash leaves the previous table (the next build
drops the leftover staging table first).
"""

from __future__ import annotations

from stores.sql.base import Cursor, SqlStore
from stores.sql.identifiers import check_name


def staging_name(table: str) -> str:
    return check_name(f"{check_name(table, 'table name', 56)}__new", "table name")


def auto_id(dialect: str) -> str:
    """An auto-increment integer primary key column."""
    if dialect == "mysql":
        return "id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY"
    return "id INTEGER PRIMARY KEY AUTOINCREMENT"


def table_tail(dialect: str) -> str:
    return " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci" if dialect == "mysql" else ""


def as_int(expr: str, dialect: str) -> str:
    """`expr` as an integer when it is one (text such as '1990' too), else NULL. MySQL's strict mode
    turns a failed conversion inside INSERT ... SELECT into an error, so it is guarded. (No `?` in
    these patterns: the MySQL store reads `?` as a placeholder.)"""
    if dialect == "mysql":
        return f"(CASE WHEN CAST({expr} AS CHAR) REGEXP '^-{{0,1}}[0-9]{{1,18}}$' THEN CAST({expr} AS SIGNED) END)"
    return (
        f"(CASE WHEN CAST({expr} AS TEXT) GLOB '[0-9]*' AND CAST({expr} AS TEXT) NOT GLOB '*[^0-9]*' "
        f"THEN CAST({expr} AS INTEGER) WHEN CAST({expr} AS TEXT) GLOB '-[0-9]*' "
        f"AND substr(CAST({expr} AS TEXT), 2) NOT GLOB '*[^0-9]*' THEN CAST({expr} AS INTEGER) END)"
    )


def as_float(expr: str, dialect: str) -> str:
    """`expr` as a number when it is one, else NULL."""
    if dialect == "mysql":
        return (
            f"(CASE WHEN CAST({expr} AS CHAR) REGEXP '^-{{0,1}}[0-9]*[.]{{0,1}}[0-9]+([eE][-+]{{0,1}}[0-9]+){{0,1}}$' "
            f"THEN CAST({expr} AS DOUBLE) END)"
        )
    return (
        f"(CASE WHEN trim(CAST({expr} AS TEXT)) <> '' AND CAST({expr} AS TEXT) NOT GLOB '*[^0-9.eE+-]*' "
        f"THEN CAST({expr} AS REAL) END)"
    )


def null_text(expr: str) -> str:
    """A text value with the legacy four-letter `NULL` read as SQL NULL."""
    return f"NULLIF({expr}, 'NULL')"


def table_exists(cur: Cursor, store: SqlStore, database: str, table: str) -> bool:
    if store.dialect == "mysql":
        row = cur.execute(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema=? AND table_name=?",
            (database, table),
        ).fetchone()
    else:
        schema = "main"
        row = cur.execute(
            f"SELECT COUNT(*) FROM {schema}.sqlite_master WHERE type='table' AND name=?", (table,)
        ).fetchone()
    return bool(row and row[0])


def swap_in(cur: Cursor, store: SqlStore, database: str, table: str) -> None:
    """Replace `table` by its staging table (see the module docstring). On SQLite the caller's
    transaction must be opened on `database`."""
    final, staging = store.quote(table), store.quote(staging_name(table))
    old = store.quote(check_name(f"{table}__old", "table name"))
    if store.dialect == "mysql":
        cur.execute(f"DROP TABLE IF EXISTS {old}")
        if table_exists(cur, store, database, table):
            cur.execute(f"RENAME TABLE {final} TO {old}, {staging} TO {final}")
            cur.execute(f"DROP TABLE {old}")
        else:
            cur.execute(f"RENAME TABLE {staging} TO {final}")
    else:
        cur.execute(f"DROP TABLE IF EXISTS {final}")
        cur.execute(f"ALTER TABLE {staging} RENAME TO {final}")


def drop(cur: Cursor, store: SqlStore, table: str) -> None:
    cur.execute(f"DROP TABLE IF EXISTS {store.quote(table)}")
