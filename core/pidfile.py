"""The pid file: one daemon per state directory, held with an advisory lock.

The lock (not the mere existence of the file) says whether a daemon is running, so a pid file left
by a killed daemon never blocks a restart.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import IO


class AlreadyRunning(RuntimeError):
    def __init__(self, path: Path, pid: int | None) -> None:
        super().__init__(f"another ingestor (pid {pid}) holds {path}")
        self.pid = pid


class PidLock:
    """An exclusive lock on the pid file, holding the current pid; usable as DaemonContext pidfile."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stream: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        stream = self.path.open("a+")
        try:
            fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            stream.close()
            raise AlreadyRunning(self.path, read_pid(self.path)) from exc
        stream.seek(0)
        stream.truncate()
        stream.write(f"{os.getpid()}\n")
        stream.flush()
        self._stream = stream

    def release(self) -> None:
        if self._stream is not None:
            self._stream.seek(0)
            self._stream.truncate()
            fcntl.flock(self._stream, fcntl.LOCK_UN)
            self._stream.close()
            self._stream = None

    def __enter__(self) -> PidLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def running_pid(path: Path) -> int | None:
    """The pid of the daemon holding the lock, or None if no daemon holds it."""
    if not path.exists():
        return None
    with path.open("a+") as stream:
        try:
            fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return read_pid(path) or -1
        fcntl.flock(stream, fcntl.LOCK_UN)
    return None
