"""A MySQL `LOAD DATA LOCAL INFILE` into a staging table, optionally on a thread, swapped in by
`commit()` (one atomic `RENAME TABLE`) or dropped by `abort()`.

The load runs on a connection of its own. After a failed or killed `LOAD DATA` that connection is
still inside a transaction holding the staging table's metadata lock, so it is rolled back at once,
and the abort drops the table on that same connection: a drop from another connection would wait
for the lock (`lock_wait_timeout`, a day by default) while the holder waits for the drop to return.
Every load session also waits at most `LOCK_WAIT_SECONDS` for a metadata lock (a dashboard reading
the old table during the swap), then fails with a transient error, retried later. A speculative
load (`background`) uses its own staging name, so the confirmed load after an abort never touches
what the aborted one left.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import threading
import time
from typing import TYPE_CHECKING, Any

import pymysql
import pymysql.connections
from pymysql.constants import CR, ER
from pymysql.protocol import LoadLocalPacketWrapper

from core.errors import TerminalError, TransientError
from stores.sql.base import Column, LoadSpec
from stores.sql.identifiers import check_name, quote
from stores.sql.mysql_pool import Pooled, translate

if TYPE_CHECKING:
    from stores.sql.mysql import MysqlStore

log = logging.getLogger("ingestor")

LOCK_WAIT_SECONDS = 300
_DROP_LOCK_WAIT_SECONDS = 5  # the fallback drop after an abort, tried a few times
_DROP_ATTEMPTS = 6
SPECULATIVE_SUFFIX = "__spec"
STAGING_SUFFIX = "__load"
_PACKET_BYTES = 1 << 20  # data packets of LOAD DATA LOCAL (pymysql sends 16 KB ones)
LOAD_TOKEN = "ingestor-load"  # the file name in the statement; LoadConnection sends its allowed_file


class _LoadResult(pymysql.connections.MySQLResult):
    """A statement's result; the file a `LOAD DATA LOCAL` asks for is sent by `_send_file`."""

    def _read_load_local_packet(self, first_packet: Any) -> None:
        conn = self.connection
        assert isinstance(conn, LoadConnection)
        wanted = LoadLocalPacketWrapper(first_packet).filename
        try:
            _send_file(conn, wanted)
        finally:
            proto: Any = conn  # pymysql's private protocol state (PyMySQL 1.x), not in its stubs
            if proto._sock is not None:  # not after a failure midway: the connection is closed then
                conn.write_packet(b"")  # the end of the file (also after a refusal, as pymysql does)
                ok_packet = conn._read_packet()
        if not ok_packet.is_ok_packet():
            raise pymysql.err.OperationalError(CR.CR_COMMANDS_OUT_OF_SYNC, "Commands Out of Sync")
        result: Any = self  # pymysql's private protocol methods (PyMySQL 1.x), not in its stubs
        result._read_ok_packet(ok_packet)


class LoadConnection(pymysql.connections.Connection):
    """A pymysql connection whose `LOAD DATA LOCAL INFILE` sends only the file it was given
    (`allowed_file`) and sends it with `socket.sendfile` in 1 MB packets: the kernel copies the
    file while the GIL is free, where pymysql sends 16 KB packets from Python, each waiting for
    the GIL, so a thread checking the same file at the same time slowed the load down."""

    allowed_file: str | None = None

    def _read_query_result(self, unbuffered: bool = False) -> int:
        assert not unbuffered, "loads are buffered"
        self._result = None
        result = _LoadResult(self)
        result.read()
        self._result = result
        if result.server_status is not None:
            self.server_status = result.server_status
        return int(result.affected_rows or 0)


def _send_file(conn: LoadConnection, wanted: bytes) -> None:
    """The data packets of `conn.allowed_file` (refusing any other file the server asks for).

    The statement names the file by `LOAD_TOKEN`, not by its path: a path that is not UTF-8 cannot
    be sent in the statement's text."""
    if conn.allowed_file is None or wanted != LOAD_TOKEN.encode():
        raise pymysql.err.OperationalError(
            CR.CR_UNKNOWN_ERROR, f"the server asked for {wanted!r}, not the file being loaded"
        )
    proto: Any = conn  # pymysql's private protocol state (PyMySQL 1.x), not in its stubs
    packet = max(1024, min(_PACKET_BYTES, conn.max_allowed_packet - 1024))
    sock = proto._sock
    try:
        source = open(conn.allowed_file, "rb")  # noqa: SIM115 (closed below)
    except OSError as exc:  # nothing sent yet: the connection stays usable
        raise pymysql.err.OperationalError(
            ER.FILE_NOT_FOUND, f"cannot read {conn.allowed_file!r}: {exc}"
        ) from exc
    try:
        with source:
            size = os.fstat(source.fileno()).st_size
            offset = 0
            while offset < size:
                length = min(packet, size - offset)
                sock.sendall(struct.pack("<I", length)[:3] + bytes([proto._next_seq_id]))
                proto._next_seq_id = (proto._next_seq_id + 1) % 256
                if sock.sendfile(source, offset, length) != length:
                    # Shorter than the packet announced: the stream cannot be continued.
                    proto._force_close()
                    raise pymysql.err.OperationalError(
                        CR.CR_SERVER_LOST, f"{conn.allowed_file} became shorter while it was sent"
                    )
                offset += length
    except OSError as exc:
        proto._force_close()
        raise pymysql.err.OperationalError(
            CR.CR_SERVER_GONE_ERROR, f"sending the file failed: {exc}"
        ) from exc


def mysql_type(column: Column) -> str:
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


class MysqlLoad:
    """One staged load; see the module's docstring."""

    def __init__(
        self, store: MysqlStore, database: str, table: str, spec: LoadSpec, background: bool
    ) -> None:
        check_name(table, "table name", 56)
        self.store, self.database, self.table, self.spec = store, database, table, spec
        dialect = store.dialect
        self.final = quote(table, dialect)
        self.staging_name = table + (SPECULATIVE_SUFFIX if background else STAGING_SUFFIX)
        self.staging = quote(self.staging_name, dialect)
        self.old = quote(f"{table}__old", dialect)
        self.columns_sql = ", ".join(f"{quote(c.name, dialect)} {mysql_type(c)}" for c in spec.columns)
        self.conn = store.load_connection()
        self.conn.allowed_file = str(spec.path)
        try:
            store.pool.use(Pooled(self.conn), database)
            with self.conn.cursor() as cur:
                cur.execute("SET SESSION lock_wait_timeout = %s", (LOCK_WAIT_SECONDS,))
                cur.execute("SELECT @@max_allowed_packet")
                row = cur.fetchone()
            if row is not None:  # the server refuses longer packets: the file's must fit
                self.conn.max_allowed_packet = min(self.conn.max_allowed_packet, int(row[0]))
        except pymysql.MySQLError as exc:
            self.conn.close()
            raise translate(exc, self._what()) from exc
        except BaseException:
            self.conn.close()
            raise
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
                    (LOAD_TOKEN,),
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
            self._rollback()  # a failed or killed LOAD DATA leaves its transaction (and lock) open
            self.error = translate(exc, self._what())
        except (AttributeError, OSError) as exc:
            # The server went away while pymysql was sending the file: it drops its socket midway.
            lost = isinstance(exc, OSError) or not self.conn.open
            self._rollback()
            self.error = TransientError(f"{self._what()}: connection lost ({exc})") if lost else exc
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            self._rollback()
            self.error = exc

    def _rollback(self) -> None:
        try:
            self.conn.rollback()
        except (pymysql.MySQLError, OSError) as exc:
            log.warning("%s: rollback failed, closing the connection: %s", self._what(), exc)
            with contextlib.suppress(pymysql.MySQLError, OSError):
                self.conn.close()

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
            raise translate(exc, self._what()) from exc

    def abort(self) -> None:
        """Stop a running load (KILL QUERY), end its transaction and drop the staging table."""
        if self.thread is not None and self.thread.is_alive():
            try:
                self.store.admin_query("KILL QUERY %s", (self.conn.thread_id(),))
            except TransientError as exc:
                log.warning("could not stop %s: %s", self._what(), exc)
            self.thread.join()
        try:
            # On the load's own connection: it holds the staging table's lock, if anyone does.
            self.conn.rollback()
            with self.conn.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {self.staging}")
            self.conn.commit()
            return
        except (pymysql.MySQLError, OSError) as exc:
            log.warning("%s: dropping the staging table on a new connection (%s)", self._what(), exc)
        with contextlib.suppress(pymysql.MySQLError, OSError):
            self.conn.close()  # the server rolls the session back and releases its locks
        self._drop_elsewhere()

    def _drop_elsewhere(self) -> None:
        """Drop the staging table from a fresh session that waits for its lock only briefly."""
        for attempt in range(_DROP_ATTEMPTS):
            try:
                conn = self.store.pool.connect()
            except TransientError as exc:
                log.warning("could not drop the staging table of %s: %s", self._what(), exc)
                return
            try:
                with conn.cursor() as cur:
                    cur.execute("SET SESSION lock_wait_timeout = %s", (_DROP_LOCK_WAIT_SECONDS,))
                    cur.execute(f"DROP TABLE IF EXISTS {quote(self.database, 'mysql')}.{self.staging}")
                conn.commit()
                return
            except pymysql.MySQLError as exc:
                if attempt == _DROP_ATTEMPTS - 1:
                    log.warning("could not drop the staging table of %s: %s", self._what(), exc)
                else:
                    time.sleep(0.5)
            finally:
                with contextlib.suppress(pymysql.MySQLError, OSError):
                    conn.close()

    def close(self) -> None:
        if self.thread is not None:
            self.thread.join()
        with contextlib.suppress(pymysql.MySQLError, OSError):
            self.conn.close()
