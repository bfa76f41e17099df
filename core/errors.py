"""The project's own error classes.

Stores translate driver exceptions into these at their boundary, so that the scheduler decides what
to do by looking at the class alone: retry a transient error with backoff, reject bad data row by row
and keep going, fail the file on a terminal error.
"""

from __future__ import annotations


class IngestorError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigError(IngestorError):
    """One or more configuration values are invalid; the message lists all of them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n  " + "\n  ".join(self.problems))


class TransientError(IngestorError):
    """A store or resource is temporarily unavailable (restarting, locked): retry later."""


class LockConflict(TransientError):
    """A deadlock or lock-wait timeout: the server rolled the transaction back; run it again at once."""


class BadDataError(IngestorError):
    """One record cannot be loaded; it is rejected and kept, the rest of the file goes on."""


class TerminalError(IngestorError):
    """The file cannot be loaded at all; it is failed with this message."""


class UnsafeNameError(TerminalError):
    """A name taken from a file (database, table, column) is not a safe identifier."""


class Interrupted(IngestorError):
    """The daemon was asked to stop between two batches; the file goes back to the queue."""
