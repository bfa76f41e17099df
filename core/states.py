"""The states of a tracked file and the transitions between them (no dependencies)."""

from __future__ import annotations

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
DUPLICATE = "duplicate"  # the same content was already loaded under another name

ALL = (QUEUED, RUNNING, DONE, FAILED, DUPLICATE)

TRANSITIONS: dict[str, frozenset[str]] = {
    QUEUED: frozenset({RUNNING}),
    RUNNING: frozenset({DONE, FAILED, QUEUED, DUPLICATE}),
    DONE: frozenset({QUEUED}),  # a new version of the file was delivered
    FAILED: frozenset({QUEUED}),  # retried, or a new version delivered
    DUPLICATE: frozenset({QUEUED}),
}

PENDING = (QUEUED, RUNNING)


def allowed(src: str, dst: str) -> bool:
    """True if a file may go from state `src` to state `dst`."""
    return dst in TRANSITIONS.get(src, frozenset())
