"""Reused MySQL/MariaDB connections, shared safely by the daemon's threads.

A connection is used by one thread at a time: `checkout()` takes an idle one (or opens one),
pings it and replaces it transparently if the server dropped it (a restart, `wait_timeout`, a
`KILL`), then selects the wanted database only if it is not already the current one. `checkin()`
puts it back for the next transaction; a connection that failed is closed instead. Databases are
created (`CREATE DATABASE IF NOT EXISTS`) once per store, not once per transaction.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pymysql

from core.errors import LockConflict, TerminalError, TransientError
from stores.sql.identifiers import check_name, quote

# Connection lost, server gone or restarting, too many connections, lock wait timeout, deadlock,
# query interrupted (KILL QUERY, max_statement_time), server shutting down.
TRANSIENT_CODES = {1040, 1053, 1205, 1213, 1317, 1927, 2002, 2003, 2006, 2013, 2055}
# The connection itself is unusable after these: never hand it out again.
_BROKEN_CODES = {1053, 1927, 2002, 2003, 2006, 2013, 2055}
# Lock wait timeout, deadlock: the server rolled back the transaction alone; it can run again at once.
LOCK_CODES = {1205, 1213}
UNKNOWN_DATABASE = 1049
MAX_IDLE = 4


def error_code(exc: BaseException) -> int | None:
    """The server's (or the client's) numeric error code of a pymysql error, if any."""
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def translate(exc: pymysql.MySQLError, what: str) -> Exception:
    """The project's error class for a driver error: transient (retry) or terminal."""
    if error_code(exc) in LOCK_CODES:
        return LockConflict(f"{what}: {exc}")
    if error_code(exc) in TRANSIENT_CODES or isinstance(exc, pymysql.err.InterfaceError):
        return TransientError(f"{what}: {exc}")
    return TerminalError(f"{what}: {exc}")


def is_broken(exc: BaseException) -> bool:
    """True if the connection that raised `exc` must not be used again."""
    if isinstance(exc, pymysql.err.InterfaceError | OSError):
        return True
    return isinstance(exc, pymysql.MySQLError) and error_code(exc) in _BROKEN_CODES


@dataclass
class Pooled:
    """A connection with the database it has selected (None: none yet)."""

    conn: pymysql.connections.Connection[Any]
    database: str | None = None
    returned: float = field(default_factory=time.monotonic)


class ConnectionPool:
    """Idle connections to one server, handed to one thread at a time."""

    def __init__(self, params: dict[str, Any], display: str) -> None:
        self._params = params
        self.display = display
        self._lock = threading.Lock()
        self._idle: list[Pooled] = []
        self._created: set[str] = set()  # databases known to exist
        self._pid = os.getpid()

    def connect(self) -> pymysql.connections.Connection[Any]:
        """A new connection of its own (not pooled), for example for a long `LOAD DATA`."""
        try:
            return pymysql.connect(**self._params)
        except pymysql.MySQLError as exc:
            raise translate(exc, f"connecting to {self.display}") from exc

    def checkout(self, database: str | None) -> Pooled:
        """A live connection with `database` (created if missing) selected."""
        while True:
            pooled = self._take()
            if pooled is None:
                pooled = Pooled(self.connect())
            else:
                try:
                    pooled.conn.ping()
                except (pymysql.MySQLError, OSError):
                    _close_quietly(pooled.conn)
                    continue  # dropped while idle: try the next one, or a new connection
            try:
                if database is not None:
                    self.use(pooled, database)
                return pooled
            except BaseException:
                _close_quietly(pooled.conn)
                raise

    def ensure(self, pooled: Pooled, database: str) -> None:
        """Create `database` if this store has not yet seen it exist."""
        if database not in self._created:
            try:
                self.create(pooled, database)
            except pymysql.MySQLError as exc:
                raise translate(exc, f"MySQL database {database}") from exc

    def use(self, pooled: Pooled, database: str) -> None:
        """Create `database` once per store and select it on this connection if it is not current."""
        try:
            if database not in self._created:
                self.create(pooled, database)
            if pooled.database != database:
                try:
                    pooled.conn.select_db(check_name(database, "database name"))
                except pymysql.err.OperationalError as exc:
                    if error_code(exc) != UNKNOWN_DATABASE:
                        raise
                    self.create(pooled, database)  # dropped behind our back: create it again
                    pooled.conn.select_db(database)
                pooled.database = database
        except pymysql.MySQLError as exc:
            raise translate(exc, f"MySQL database {database}") from exc

    def create(self, pooled: Pooled, database: str) -> None:
        with pooled.conn.cursor() as cur:
            cur.execute(
                f"CREATE DATABASE IF NOT EXISTS {quote(database, 'mysql')} "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
        with self._lock:
            self._created.add(database)

    def forget(self, database: str) -> None:
        """`database` was dropped: create it again on next use."""
        with self._lock:
            self._created.discard(database)
            for pooled in self._idle:
                if pooled.database == database:
                    pooled.database = None

    def checkin(self, pooled: Pooled, broken: bool = False) -> None:
        """Give a connection back (closed instead if `broken` or if enough are idle)."""
        if not broken and os.getpid() == self._pid:
            pooled.returned = time.monotonic()
            with self._lock:
                if len(self._idle) < MAX_IDLE:
                    self._idle.append(pooled)
                    return
        _close_quietly(pooled.conn)

    def close(self) -> None:
        """Close every idle connection (the pool can still be used afterwards)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for pooled in idle:
            _close_quietly(pooled.conn)

    def _take(self) -> Pooled | None:
        with self._lock:
            if os.getpid() != self._pid:
                # A forked child must not share its parent's sockets: forget them, never close them.
                self._idle, self._created, self._pid = [], set(), os.getpid()
            return self._idle.pop() if self._idle else None


def _close_quietly(conn: pymysql.connections.Connection[Any]) -> None:
    with contextlib.suppress(pymysql.MySQLError, OSError):  # already gone: nothing to release
        conn.close()
