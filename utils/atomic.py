"""Atomic file writes: readers see the old file or the new one, never a half-written one.

The new content goes to a temporary file in the target's own directory (so that `os.replace` is a
rename within one file system), is flushed and fsynced, and then replaces the target in one step.
The directory is fsynced too, so the rename survives a crash. On any error the temporary file is
removed and the previous file stays as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

# Files written here are served to the dashboards by a web server running as another user.
DEFAULT_MODE = 0o644


@contextlib.contextmanager
def atomic_writer(path: Path, mode: int = DEFAULT_MODE) -> Iterator[BinaryIO]:
    """A binary stream whose content replaces `path` when the block ends without an error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
            stream.flush()
            os.fchmod(stream.fileno(), mode)
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent, directory=True)


def atomic_write_bytes(path: Path, data: bytes, mode: int = DEFAULT_MODE) -> None:
    """Replace `path` with `data`, atomically."""
    with atomic_writer(path, mode) as stream:
        stream.write(data)


def fsync_path(path: Path, directory: bool = False) -> None:
    """Flush a file (or, with `directory`, a rename in it) to disk; some file systems do not allow
    it, which is then not an error."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
