"""The scheduler's failure handling and ordering, with small services of the test's own."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from base_service import Context, Entry, IngestResult, Service
from core import states
from core.errors import TerminalError, TransientError
from core.registry import dependency_order
from core.scheduler import Scheduler
from stores.documents import open_document_store
from stores.sql import open_sql_store
from tests.packages import dump_dir, make_package, settings_for

calls: list[str] = []


class Flaky(Service):
    """Fails with a transient error the first `failures` times it sees a file."""

    name = "Flaky"
    failures = 1

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def wants(self, entry: Entry) -> bool:
        return entry.path.name.endswith(".flaky")

    def ingest(self, path: Path, ctx: Context) -> IngestResult:
        calls.append(f"Flaky:{path.name}")
        self.seen[path.name] = self.seen.get(path.name, 0) + 1
        if self.seen[path.name] <= self.failures:
            raise TransientError("database restarting")
        if path.name.startswith("broken"):
            raise TerminalError(f"{path}: cannot be loaded")
        if path.name.startswith("bug"):
            raise KeyError("unexpected")
        return IngestResult(rows_loaded=1)


class Later(Service):
    name = "Later"
    depends_on = ("Flaky",)

    def wants(self, entry: Entry) -> bool:
        return entry.path.name.endswith(".later")

    def ingest(self, path: Path, ctx: Context) -> IngestResult:
        calls.append(f"Later:{path.name}")
        return IngestResult(rows_loaded=1)


class Derived(Service):
    name = "Derived"
    derived = True
    depends_on = ("Flaky", "Later")

    def run(self, ctx: Context) -> None:
        calls.append("Derived")


@pytest.fixture
def scheduler(tmp_path):
    calls.clear()
    data = make_package(tmp_path / "data")
    for name in ("a.flaky", "b.later", "broken.flaky", "bug.flaky"):
        (dump_dir(data) / name).write_text("x")
    settings = settings_for(data, tmp_path / "var", MAX_ATTEMPTS="3")
    documents = open_document_store("sqlite", tmp_path / "var")
    services = [Flaky(), Later(), Derived()]
    sched = Scheduler(settings, services, open_sql_store("sqlite", tmp_path / "var"), lambda: documents)
    sched.prepare()
    sched.scan()
    return sched


def drain_all(sched: Scheduler) -> None:
    for _ in range(10):
        sched.drain()


def test_transient_errors_are_retried_and_other_failures_fail_only_their_file(scheduler):
    drain_all(scheduler)
    rows = {Path(r.meta).name: r for r in scheduler.queue.rows() if r.type == "file"}
    assert (rows["a.flaky"].state, rows["a.flaky"].attempts) == (states.DONE, 2)
    assert rows["broken.flaky"].state == states.FAILED and "cannot be loaded" in rows["broken.flaky"].error
    assert rows["bug.flaky"].state == states.FAILED and "KeyError" in rows["bug.flaky"].error
    assert rows["bug.flaky"].error.startswith(rows["bug.flaky"].meta), "the error names the file"
    assert rows["b.later"].state == states.DONE


def test_a_file_that_keeps_failing_transiently_is_failed_after_max_attempts(scheduler):
    scheduler.by_name["Flaky"].failures = 99
    drain_all(scheduler)
    row = next(r for r in scheduler.queue.rows() if r.meta.endswith("a.flaky"))
    assert (row.state, row.attempts) == (states.FAILED, 3)
    assert "gave up after 3 attempts" in row.error and "database restarting" in row.error


def test_dependent_services_wait_for_their_inputs_and_derived_ones_run_once_after(scheduler):
    drain_all(scheduler)
    later = calls.index("Later:b.later")
    assert all(i < later for i, c in enumerate(calls) if c.startswith("Flaky:"))
    assert calls.count("Derived") == 1 and calls[-1] == "Derived"
    runs = [r for r in scheduler.queue.rows() if r.type == "save_run"]
    assert [(r.service_name, r.meta, r.state) for r in runs] == [("Derived", "", states.DONE)]
    drain_all(scheduler)
    assert calls.count("Derived") == 1, "nothing new completed: not run again"


def test_dependency_loops_and_unknown_services_are_configuration_errors():
    from core.errors import ConfigError

    class A(Service):
        name = "A"
        depends_on = ("B",)

    class B(Service):
        name = "B"
        depends_on = ("A",)

    with pytest.raises(ConfigError, match="dependency loop"):
        dependency_order({"A": A, "B": B})
    from core.registry import discover, select

    with pytest.raises(ConfigError, match="Nope"):
        select(discover(), ["Nope"], [])


class Backfill(Service):
    """A derived service that runs only when due() says so, and counts how often it is asked."""

    name = "Backfill"
    derived = True
    depends_on = ("Flaky",)
    runs_on_new_input = False
    asked = 0
    wanted = False

    def due(self, ctx: Context) -> bool:
        Backfill.asked += 1
        return Backfill.wanted

    def run(self, ctx: Context) -> None:
        calls.append("Backfill")
        Backfill.wanted = False


def test_a_derived_service_found_not_due_is_asked_again_only_after_new_input_or_half_a_lease(tmp_path):
    """due() can cost a query over every stored event: a drain's second pass, the drains that
    follow, and other daemons do not repeat it for the same inputs; new input or time does."""
    data = make_package(tmp_path / "data")
    (dump_dir(data) / "a.flaky").write_text("x")
    settings = settings_for(data, tmp_path / "var", LEASE_SECONDS="4")
    documents = open_document_store("sqlite", tmp_path / "var")
    sql = open_sql_store("sqlite", tmp_path / "var")
    flaky = Flaky()
    flaky.failures = 0
    sched = Scheduler(settings, [flaky, Backfill()], sql, lambda: documents)
    sched.prepare()
    sched.scan()
    Backfill.asked, Backfill.wanted = 0, False
    for _ in range(3):
        sched.drain()
    assert Backfill.asked == 1
    (dump_dir(data) / "b.flaky").write_text("x")
    sched.scan()
    Backfill.wanted = True
    sched.drain()  # b.flaky done: new input, so asked again; it runs, and is asked once more
    assert (Backfill.asked, calls.count("Backfill")) == (3, 1)
    sched.drain()
    sched.drain()
    assert Backfill.asked == 3
    Backfill.wanted = True  # e.g. events written by another tool meanwhile
    time.sleep(2.1)  # LEASE_SECONDS / 2
    sched.drain()
    assert (Backfill.asked, calls.count("Backfill")) == (5, 2)


class _Looping(BaseException):
    """Not an Exception: the scheduler does not catch it."""


class ScanBackfill(Backfill):
    """A backfill whose due() reads every stored event (TimeFinder's kind): a long recheck."""

    name = "ScanBackfill"
    due_recheck_seconds = 3600.0
    asked = runs = 0
    away = False  # due() cannot answer: its store is away
    wanted = False  # events left to backfill
    broken = False  # run() fails

    def due(self, ctx: Context) -> bool:
        ScanBackfill.asked += 1
        if ScanBackfill.away:
            raise TransientError("document store restarting")
        return ScanBackfill.wanted

    def run(self, ctx: Context) -> None:
        ScanBackfill.runs += 1
        if ScanBackfill.runs > 20:  # run again and again: end the test, not the suite's time
            raise _Looping(f"{self.name} ran {ScanBackfill.runs} times")
        if ScanBackfill.broken:
            raise RuntimeError("cannot backfill")
        ScanBackfill.wanted = False


def _backfill_scheduler(tmp_path: Path) -> tuple[Scheduler, Path]:
    """A scheduler of Flaky (one file) and ScanBackfill, half a lease 30 s; not yet prepared."""
    data = make_package(tmp_path / "data")
    (dump_dir(data) / "a.flaky").write_text("x")
    settings = settings_for(data, tmp_path / "var", LEASE_SECONDS="60")
    documents = open_document_store("sqlite", tmp_path / "var")
    flaky = Flaky()
    flaky.failures = 0
    services = [flaky, ScanBackfill()]
    return Scheduler(settings, services, open_sql_store("sqlite", tmp_path / "var"), lambda: documents), data


def test_a_backfill_that_scans_the_store_is_asked_again_after_its_period_or_a_reload_not_on_new_input(
    tmp_path,
):
    """TimeFinder's and IPToCountry's checks read every stored event, and the daemon's own loads
    never make them due: an idle daemon no longer runs them every LEASE_SECONDS / 2 nor after each
    new log, but a SIGHUP (prepare), an unanswered check, or its own period bring them back."""
    sched, data = _backfill_scheduler(tmp_path)

    def age(seconds: float) -> None:
        """As if `seconds` had passed since the backfill was last looked at."""
        inputs, when, holds = sched._derived_seen["ScanBackfill"]
        sched._derived_seen["ScanBackfill"] = (inputs, when - seconds, holds)

    sched.prepare()
    sched.scan()
    ScanBackfill.asked = ScanBackfill.runs = 0
    ScanBackfill.away = ScanBackfill.wanted = ScanBackfill.broken = False
    sched.drain()
    assert ScanBackfill.asked == 1
    age(31)  # past LEASE_SECONDS / 2: a cheap check would be asked again
    sched.drain()
    assert ScanBackfill.asked == 1
    (dump_dir(data) / "b.flaky").write_text("x")
    sched.scan()
    sched.drain()  # a new input completed: not asked
    assert ScanBackfill.asked == 1
    sched.prepare()  # SIGHUP: maybe a new GeoIP database
    sched.drain()
    assert ScanBackfill.asked == 2
    age(3601)  # its period
    sched.drain()
    assert ScanBackfill.asked == 3
    sched.prepare()
    ScanBackfill.away = True
    sched.drain()
    assert ScanBackfill.asked == 4
    ScanBackfill.away = False
    sched.drain()
    assert ScanBackfill.asked == 4  # not at once
    age(31)
    sched.drain()  # unanswered: asked again after LEASE_SECONDS / 2
    assert ScanBackfill.asked == 5
    age(31)
    sched.drain()
    assert ScanBackfill.asked == 5


def test_a_derived_run_that_fails_is_not_repeated_at_once_and_a_finished_backfill_not_rechecked(tmp_path):
    """A backfill that stays due and whose run fails used to be asked and run again and again
    inside one drain(), which then never returned to scan for files."""
    sched, _ = _backfill_scheduler(tmp_path)
    sched.prepare()
    sched.scan()
    ScanBackfill.asked = ScanBackfill.runs = 0
    ScanBackfill.away = False
    ScanBackfill.wanted = ScanBackfill.broken = True
    sched.drain()  # returns
    assert (ScanBackfill.asked, ScanBackfill.runs) == (1, 1)
    sched.drain()
    assert (ScanBackfill.asked, ScanBackfill.runs) == (1, 1)
    inputs, when, holds = sched._derived_seen["ScanBackfill"]
    assert holds == 30  # tried again after LEASE_SECONDS / 2
    sched._derived_seen["ScanBackfill"] = (inputs, when - 31, holds)
    ScanBackfill.broken = False
    sched.drain()  # runs to its end: nothing left, so no scan right after it
    assert (ScanBackfill.asked, ScanBackfill.runs) == (2, 2)
    sched.drain()
    assert (ScanBackfill.asked, ScanBackfill.runs) == (2, 2)


# -- leases: a live worker keeps its file ---------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = datetime(2015, 6, 7, 12, 0, 0)

    def __call__(self) -> datetime:
        return self.now


class Slow(Service):
    """Runs `during(ctx)` in the middle of its ingest (what happens while a file is ingested)."""

    name = "Slow"

    def __init__(self, during) -> None:
        self.during = during
        self.after_check = 0

    def wants(self, entry: Entry) -> bool:
        return entry.path.name.endswith(".slow")

    def ingest(self, path: Path, ctx: Context) -> IngestResult:
        self.during(ctx)
        ctx.check_unchanged()  # as a service does before it replaces what the file loads
        self.after_check += 1
        return IngestResult(rows_loaded=1)


def _slow_scheduler(tmp_path, during, clock=None, **extra: str) -> tuple[Scheduler, Slow]:
    data = make_package(tmp_path / "data")
    (dump_dir(data) / "a.slow").write_text("x")
    limits = {"HEARTBEAT_SECONDS": "1", "LEASE_SECONDS": "120", **extra}
    settings = settings_for(data, tmp_path / "var", **limits)
    documents = open_document_store("sqlite", tmp_path / "var")
    service = Slow(during)
    sched = Scheduler(
        settings,
        [service],
        open_sql_store("sqlite", tmp_path / "var"),
        lambda: documents,
        **({"clock": clock} if clock else {}),
    )
    sched.prepare()
    sched.scan()
    return sched, service


def test_the_daemons_own_sweep_never_returns_the_file_it_is_ingesting(tmp_path):
    clock = _Clock()
    swept: list[int] = []

    def during(ctx: Context) -> None:
        clock.now += timedelta(seconds=600)  # a starved heartbeat: far older than the lease
        swept.append(sched.recover())

    sched, _ = _slow_scheduler(tmp_path, during, clock)
    sched.drain()
    assert swept == [0]
    (row,) = sched.queue.rows("Slow")
    assert (row.state, row.attempts, row.rows_loaded) == (states.DONE, 1, 1)


def test_the_heartbeat_goes_on_after_an_unexpected_error(tmp_path):
    beats: list[str] = []

    def during(ctx: Context) -> None:
        deadline = time.monotonic() + 60
        while beats.count("ok") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)

    sched, _ = _slow_scheduler(tmp_path, during)
    real = sched.queue.heartbeat

    def heartbeat(job, progress=None):
        if not beats:
            beats.append("error")
            raise OSError("disk I/O error")  # any error but a lost lease or a transient one
        real(job, progress)
        beats.append("ok")

    sched.queue.heartbeat = heartbeat  # type: ignore[method-assign]
    sched.drain()
    assert beats[0] == "error" and beats.count("ok") >= 2, "the lease was kept after the error"
    assert sched.queue.rows("Slow")[0].state == states.DONE


def test_a_worker_whose_file_another_daemon_took_stops_before_replacing_anything(tmp_path):
    clock = _Clock()

    def during(ctx: Context) -> None:
        # Its heartbeat came too late: another daemon sweeps the lease and takes the file.
        clock.now += timedelta(seconds=600)
        assert sched.queue.sweep(120, 3) == 1
        assert sched.queue.claim("other:1:x", ["Slow"]) is not None

    sched, service = _slow_scheduler(tmp_path, during, clock)
    sched.drain()
    assert service.after_check == 0, "the stale worker stopped at check_unchanged"
    (row,) = sched.queue.rows("Slow")
    assert (row.state, row.worker, row.rows_loaded) == (states.RUNNING, "other:1:x", 0)


def test_a_late_heartbeat_is_said_in_the_log(tmp_path, caplog):
    beats: list[str] = []

    def during(ctx: Context) -> None:
        deadline = time.monotonic() + 60
        while len(beats) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)

    sched, _ = _slow_scheduler(tmp_path, during, LEASE_SECONDS="2")
    real = sched.queue.heartbeat

    def heartbeat(job, progress=None):
        if len(beats) == 1:
            time.sleep(1.5)  # a starved process: the heartbeat lands later than half the lease
        real(job, progress)
        beats.append("ok")

    sched.queue.heartbeat = heartbeat  # type: ignore[method-assign]
    with caplog.at_level("WARNING"):
        sched.drain()
    assert any("the process was starved" in r.getMessage() for r in caplog.records)
