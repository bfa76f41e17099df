"""The one place where names taken from files become SQL identifiers.

Database, table and column names come from file names and header rows, which are not trusted. Each
is checked against a strict pattern and then quoted for the backend's dialect; a name that does not
pass raises `UnsafeNameError`, so it can never reach an SQL statement.
"""

from __future__ import annotations

import re

from core.errors import UnsafeNameError

# Letters, digits and underscores, not starting with a digit-only prefix problem for MySQL/SQLite.
_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
# Columns named like SQL keywords that readers expect renamed (the contract: `key` -> `_key`).
RENAMED_COLUMNS = {"key": "_key"}
# Course-event columns: `u_` + a component's url_name with `.` written `$` (data-contract.md).
_COMPONENT = re.compile(r"[A-Za-z0-9_.]{1,62}")
_COMPONENT_COLUMN = re.compile(r"u_[A-Za-z0-9_$]{1,62}")


def check_name(name: str, what: str = "name", max_len: int = 64) -> str:
    """Return `name` if it is a safe identifier of at most `max_len` characters, else raise."""
    if not isinstance(name, str) or len(name) > max_len or not _NAME.fullmatch(name):
        shown = repr(name)[:80]
        raise UnsafeNameError(f"unsafe {what} {shown}: only letters, digits and _ (1-{max_len})")
    return name


def column_name(header_field: str) -> str:
    """The stored column name for a header field, validated (`key` becomes `_key`)."""
    name = RENAMED_COLUMNS.get(header_field, header_field)
    return check_name(name, "column name")


def quote(name: str, dialect: str) -> str:
    """Validate and quote an identifier for `dialect` ('mysql' or 'sqlite')."""
    if not _COMPONENT_COLUMN.fullmatch(name):
        check_name(name)
    if dialect == "mysql":
        return f"`{name}`"
    return f'"{name}"'


def component_column(url_name: str) -> str | None:
    """The course-event column of a component (`u_<url_name>`, `.` written `$`: the contract), or
    None if the url_name cannot be one. `quote` accepts the `$` of these names only."""
    if not isinstance(url_name, str) or not _COMPONENT.fullmatch(url_name):
        return None
    return "u_" + url_name.replace(".", "$")
