"""Holding a daemon process at a chosen point of its work (SIGSTOP/SIGCONT and /proc), so that a test
acts in the middle of a file whatever the machine's speed."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.test_daemon_process import wait_for

SIGTERM_BIT = 1 << (signal.SIGTERM - 1)


def _proc_state(task: Path) -> str:
    stat = (task / "stat").read_text()
    return stat[stat.rindex(")") + 2]  # the field after "(comm)", whatever comm holds


def freeze(pid: int) -> None:
    """SIGSTOP the daemon and return once every one of its threads is stopped."""
    os.kill(pid, signal.SIGSTOP)
    wait_for(
        lambda: all(_proc_state(t) in "tT" for t in Path(f"/proc/{pid}/task").iterdir()),
        timeout=60,
        what=f"pid {pid} to stop",
    )


def term_pending(pid: int) -> bool:
    """Whether a SIGTERM waits for the (stopped) process."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return bool(int(fields["ShdPnd"], 16) & SIGTERM_BIT)


def read_position(pid: int, path: Path) -> int | None:
    """Where the process is in `path` (the kernel's offset of its descriptor), None if it has the
    file not open."""
    target = os.path.realpath(path)
    found: int | None = None
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) != target:
                continue
            fields = dict(
                line.split(":", 1)
                for line in (Path(f"/proc/{pid}/fdinfo") / fd.name).read_text().splitlines()
            )
        except OSError:
            continue  # closed meanwhile
        # The furthest descriptor: a MySQL load sends the file from one of its own, whose
        # offset `sendfile` leaves at 0.
        found = max(found or 0, int(fields["pos"]))
    return found


def pause_while_reading(pid: int, path: Path, deadline: float = 600) -> int:
    """Let the daemon run in short steps, each followed by a SIGSTOP and a look at its descriptors,
    until it has `path` open and has read into it; return with the daemon stopped there and the
    byte offset it is at. Nothing but the first read opens the dump (the claim and its checks only
    stat it), and one step runs the daemon for a few milliseconds against seconds for the read,
    so the daemon is held inside that first read, however loaded the machine is."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        freeze(pid)
        position = read_position(pid, path)
        if position:
            return position
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.02)
    raise AssertionError(f"the daemon did not start reading {path.name} within {deadline}s")
