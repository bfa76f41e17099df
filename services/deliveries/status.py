"""Each delivery's state in words, from its tracking row (for `ingestor.py status`)."""

from __future__ import annotations

from typing import Any

from core import states
from core.queue import Row

WORDS = {
    states.QUEUED: "found",
    states.RUNNING: "unpacking",
    states.DONE: "unpacked",
    states.FAILED: "failed",
    states.DUPLICATE: "duplicate",
}


def describe(row: Row) -> dict[str, Any]:
    """`{"file", "state", "progress", "detail"}` of one Deliveries tracking row."""
    info: dict[str, Any] = {"file": row.meta, "state": WORDS.get(row.state, row.state)}
    if row.state == states.RUNNING:
        info["progress"] = round(row.progress, 3)
    if row.error:
        info["detail"] = row.error
    return info
