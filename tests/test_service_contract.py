"""The contract every file service passes (in the style of the Singer SDK's standard tap tests).

One suite, parametrised over the services that ingest files: each wants its sample and not what
is another service's; ingests its sample; ingesting it again (a new version with the same
content) gives the same stored result; a file gone before its ingest fails with a message naming
it and stores nothing; a file that changes while it is read goes back to the queue and is loaded
when it holds still. The last two are the scheduler's checks, made once for every service.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from base_service import Entry, Service
from core import registry, states
from core.daemon import Daemon
from core.errors import IngestorError
from core.scheduler import Scheduler
from tests.conftest import REPO, SAMPLE_DATA
from tests.packages import make_package, settings_for
from utils.fingerprint import path_fingerprint

DB = "UQx-PSYC1030.1x-4T2016"
SAMPLE_DUMPS = SAMPLE_DATA / "database_state" / "latest"
SAMPLE_LOGS = SAMPLE_DATA / "clickstream_logs" / "latest"


def _sql_rows(database: str, table: str) -> Callable[[Scheduler], Any]:
    def snapshot(s: Scheduler) -> Any:
        if table not in s.sql.list_tables(database):
            return None
        return s.sql.query(database, f"SELECT * FROM {s.sql.quote(table)} ORDER BY 1")

    return snapshot


def _documents(database: str, collection: str) -> Callable[[Scheduler], Any]:
    def snapshot(s: Scheduler) -> Any:
        store = s.documents()
        db = s.settings.document_db(database)
        return sorted(str(d["_id"]) for d in store.find(db, collection, {}, projection={"_id": 1})) or None

    return snapshot


def _output(*parts: str) -> Callable[[Scheduler], Any]:
    def snapshot(s: Scheduler) -> Any:
        path = s.settings.output_dir.joinpath(*parts)
        return path.read_bytes() if path.exists() else None

    return snapshot


@dataclass(frozen=True)
class Case:
    service: str
    sample: Path  # copied into the package's area
    area: str
    snapshots: tuple[Callable[[Scheduler], Any], ...]  # what a user reads of the stored result
    not_wanted: str  # a name in the same area that belongs to another service (or none)


CASES = [
    Case(
        "DatabaseState",
        SAMPLE_DUMPS / f"{DB}-auth_user-prod-analytics.sql",
        "database_state",
        (_sql_rows("UQx_PSYC10301x_4T2016", "auth_user"),),
        f"{DB}-prod.mongo",
    ),
    Case(
        "Clickstream",
        SAMPLE_LOGS / "uqx-edge-events-2015-05-31.log",
        "clickstream_logs",
        (_documents("logs", "clickstream"), _sql_rows("Person_Course", "person_course_day")),
        "uqx-edge-events.log.txt",
    ),
    Case(
        "DiscussionForums",
        SAMPLE_DUMPS / f"{DB}-prod.mongo",
        "database_state",
        (_documents("discussion_forum", f"{DB}-prod"), _sql_rows("Person_Course", "forum_author_counts")),
        f"{DB}-auth_user-prod-analytics.sql",
    ),
    Case(
        "CourseStructure",
        SAMPLE_DUMPS / f"{DB}-course-prod-analytics.xml.tar.gz",
        "database_state",
        (
            _output("course_structure", "UQx-PSYC10301x-4T2016.json"),
            _sql_rows("UQx_PSYC10301x_4T2016", "course_axis"),
        ),
        f"{DB}-course_structure-prod-analytics.json",
    ),
    Case(
        "EdxCourseStructure",
        SAMPLE_DUMPS / f"{DB}-course_structure-prod-analytics.json",
        "database_state",
        (_output("edx_course_structure", f"{DB}-course_structure-prod-analytics.json"),),
        f"{DB}-course-prod-analytics.xml.tar.gz",
    ),
]
FILE_SERVICES = sorted(name for name, cls in registry.discover().items() if not cls.derived)


def test_every_file_service_has_a_contract_case():
    assert sorted(c.service for c in CASES) == FILE_SERVICES


class Env:
    """A package holding one service's sample, and a scheduler running only that service."""

    def __init__(self, case: Case, tmp: Path) -> None:
        self.case = case
        self.data = make_package(tmp / "data")
        self.area = (self.data / case.area / "latest").resolve()
        self.path = self.area / case.sample.name
        shutil.copyfile(case.sample, self.path)
        settings = settings_for(
            self.data,
            tmp / "var",
            SERVICES=case.service,
            COURSES_FILE=str(REPO / "courses.py"),
            CLICKSTREAM_HOLD_NEWEST="0",
        )
        self.daemon = Daemon(settings, foreground=False)
        self.scheduler = self.daemon.scheduler
        self.scheduler.prepare()
        self.service: Service = self.scheduler.by_name[case.service]

    def run(self) -> None:
        self.scheduler.scan()
        for _ in range(5):
            self.scheduler.drain()

    def row(self) -> Any:
        rows = [r for r in self.scheduler.queue.rows() if r.type == "file"]
        assert len(rows) == 1, rows
        return rows[0]

    def stored(self) -> tuple[Any, ...]:
        try:
            return tuple(snapshot(self.scheduler) for snapshot in self.case.snapshots)
        except IngestorError as exc:  # a database never created: nothing stored
            return (f"nothing: {exc}",)

    def entry(self, path: Path, area: str | None = None) -> Entry:
        return Entry(path, area or self.case.area, path.is_dir(), path_fingerprint(path))

    def touch(self) -> None:
        st = self.path.stat()
        os.utime(self.path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000_000))


@pytest.fixture(params=CASES, ids=[c.service for c in CASES])
def env(request, tmp_path):
    return Env(request.param, tmp_path)


def test_wants_its_sample_and_not_another_services_file_nor_the_other_area(env):
    assert env.service.wants(env.entry(env.path))
    other = env.area / env.case.not_wanted
    other.write_bytes(b"x")
    assert not env.service.wants(env.entry(other))
    wrong_area = "clickstream_logs" if env.case.area == "database_state" else "database_state"
    assert not env.service.wants(env.entry(env.path, wrong_area))


def test_ingests_its_sample(env):
    assert not any(env.stored())
    env.run()
    row = env.row()
    assert row.state == states.DONE, row.error
    assert row.rows_loaded > 0 and row.fingerprint == path_fingerprint(env.path)
    assert all(env.stored()), "every stored result is there"


def test_ingesting_a_new_version_with_the_same_content_gives_the_same_result(env):
    env.run()
    first, loaded = env.stored(), env.row().rows_loaded
    env.touch()
    env.run()
    row = env.row()
    assert row.state == states.DONE, row.error
    assert row.rows_loaded == loaded and row.fingerprint == path_fingerprint(env.path)
    assert env.stored() == first


def test_a_file_gone_before_its_ingest_fails_naming_it_and_stores_nothing(env):
    env.scheduler.scan()
    before = env.stored()
    env.path.unlink()
    for _ in range(3):
        env.scheduler.drain()
    row = env.row()
    assert row.state == states.FAILED
    assert str(env.path) in row.error and "missing" in row.error
    assert env.stored() == before


def test_a_broken_link_fails_naming_it(env):
    env.path.unlink()
    os.symlink(env.area / "gone", env.path)
    env.run()
    row = env.row()
    assert row.state == states.FAILED and "broken symbolic link" in row.error and str(env.path) in row.error


def test_a_file_changed_while_read_goes_back_to_the_queue_then_loads(env, monkeypatch):
    ingest = env.service.ingest

    def changing(path, ctx):
        env.touch()  # after the scheduler took the fingerprint, before the service reads
        monkeypatch.setattr(env.service, "ingest", ingest)
        return ingest(path, ctx)

    monkeypatch.setattr(env.service, "ingest", changing)
    env.scheduler.scan()
    env.scheduler.run_one()
    row = env.row()
    assert (row.state, row.attempts) == (states.QUEUED, 1)
    assert "changed while it was being read" in row.error
    env.run()
    row = env.row()
    assert row.state == states.DONE, row.error
    assert row.fingerprint == path_fingerprint(env.path), "the version recorded is the one read"
    assert all(env.stored())
