"""Which MongoDB server replies are transient (the file waits and is retried) and which are not."""

from __future__ import annotations

import pytest
from pymongo.errors import OperationFailure

from core.errors import TerminalError, TransientError
from stores.documents.mongo import _translated


def reply(code: int, message: str, labels: tuple[str, ...] = ()) -> OperationFailure:
    details = {"ok": 0.0, "errmsg": message, "code": code, "errorLabels": list(labels)}
    return OperationFailure(message, code, details)


@pytest.mark.parametrize(
    "error",
    [
        # FerretDB 1.24 stopping (SIGTERM) with an insert in flight, as the restart test met it
        reply(
            1,
            "[msg_insert.go:168 handler.(*Handler).MsgInsert] [db.go:134 fsql.(*DB).InTransaction] context canceled",
        ),
        reply(11600, "interrupted at shutdown"),
        reply(91, "The server is in quiesce mode and will shut down"),
        reply(10107, "not primary"),
        reply(50, "operation exceeded time limit", ("RetryableWriteError",)),
    ],
)
def test_a_server_going_away_is_transient(error: OperationFailure) -> None:
    with pytest.raises(TransientError, match="stopping"), _translated("db", "c"):
        raise error


@pytest.mark.parametrize("error", [reply(2, "bad value"), reply(1, "some other internal error")])
def test_other_server_errors_stay_terminal(error: OperationFailure) -> None:
    with pytest.raises(TerminalError), _translated("db", "c"):
        raise error
