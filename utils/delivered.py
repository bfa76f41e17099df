"""Marks of complete files: a directory's `.delivered` lists the names its producer finished.

The Deliveries service writes a daily log into the clickstream directory and lists its name here
first; the Clickstream service then knows that the newest log of the directory is complete and
need not be held back as a file that may still grow. The list is append-only (one name a line,
appended under a lock), so a reader sees a name or not, never half of one.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

MARKS = ".delivered"


def is_delivered(path: Path) -> bool:
    """True if `path`'s directory lists its name as complete."""
    try:
        text = (path.parent / MARKS).read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return path.name in text.splitlines()


def mark_delivered(path: Path) -> None:
    """List `path`'s name as complete in its directory (once)."""
    with open(path.parent / MARKS, "a+", encoding="utf-8") as marks:
        fcntl.flock(marks.fileno(), fcntl.LOCK_EX)
        try:
            marks.seek(0)
            if path.name not in marks.read().splitlines():
                marks.write(path.name + "\n")
                marks.flush()
                os.fsync(marks.fileno())
        finally:
            fcntl.flock(marks.fileno(), fcntl.LOCK_UN)
