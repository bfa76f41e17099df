"""Links out of the data roots are refused; the course registry and `run --once`'s status follow
what is on disk and in the tracking table, not what the daemon remembers."""

from __future__ import annotations

import json
import os
from pathlib import Path

from core import states
from core.daemon import Daemon
from tests.packages import AUTH_USER_HEADER, dump_dir, make_package, settings_for

DUMP = "UQx-A-1T-auth_user-prod-analytics.sql"
LOG = "uqx-edx-events-2015-05-30.log"
CSJSON = "UQx-A-1T-course_structure-prod-analytics.json"


def _daemon(tmp_path: Path, **extra: str) -> Daemon:
    return Daemon(settings_for(tmp_path / "data", tmp_path / "var", **extra), foreground=False)


def test_a_data_file_linking_out_of_the_data_roots_is_refused_as_a_scan_problem(tmp_path):
    data = make_package(tmp_path / "data")
    logs = (data / "clickstream_logs" / "latest").resolve()
    os.symlink("/etc/passwd", dump_dir(data) / DUMP)
    os.symlink("/etc/passwd", logs / LOG)
    (data / "other").mkdir()
    inside = data / "other" / "uqx-edx-events-2015-05-29.log"
    inside.write_bytes(json.dumps({"username": "u", "time": "2015-05-29T01:00:00+00:00"}).encode() + b"\n")
    os.symlink(inside, logs / inside.name)  # a link that stays inside the data root is fine
    daemon = _daemon(tmp_path, SERVICES="DatabaseState:Clickstream", CLICKSTREAM_HOLD_NEWEST="0")
    assert daemon.run(once=True) == 0
    rows = daemon.scheduler.queue.rows()
    assert [Path(r.meta).name for r in rows] == [inside.name] and rows[0].state == states.DONE
    assert daemon.scheduler.last_scan is not None
    problems = daemon.scheduler.last_scan.problems
    for name in (DUMP, LOG):
        assert any(name in p and "link to /etc/passwd, outside the allowed data roots" in p for p in problems)
    assert not list((tmp_path / "var" / "rejects").rglob("*.tsv")), "nothing of /etc/passwd copied"
    log = (tmp_path / "var" / "logs" / "ingestor.log").read_text()
    assert "link to /etc/passwd, outside the allowed data roots; refused" in log


def test_allowed_roots_admit_links_to_a_configured_place(tmp_path):
    data = make_package(tmp_path / "data")
    elsewhere = tmp_path / "deliveries"
    elsewhere.mkdir()
    (elsewhere / DUMP).write_bytes(AUTH_USER_HEADER + b"1\tu\tu@x\t0\t1\tNULL\t2015-01-01 00:00:00\n")
    os.symlink(elsewhere / DUMP, dump_dir(data) / DUMP)
    daemon = _daemon(tmp_path, SERVICES="DatabaseState", ALLOWED_ROOTS=f"{data}:{elsewhere}")
    assert daemon.run(once=True) == 0
    assert [r.state for r in daemon.scheduler.queue.rows()] == [states.DONE]


def test_a_file_replaced_by_a_link_out_after_the_scan_fails_before_it_is_read(tmp_path):
    data = make_package(tmp_path / "data")
    dump = dump_dir(data) / DUMP
    dump.write_bytes(AUTH_USER_HEADER + b"1\tu\tu@x\t0\t1\tNULL\t2015-01-01 00:00:00\n")
    daemon = _daemon(tmp_path, SERVICES="DatabaseState")
    daemon.scheduler.prepare()
    daemon.scheduler.scan()
    dump.unlink()
    os.symlink("/etc/passwd", dump)
    daemon.scheduler.drain()
    (row,) = daemon.scheduler.queue.rows()
    assert row.state == states.FAILED and "outside the allowed data roots" in (row.error or "")
    assert row.rows_rejected == 0 and "root:" not in (row.error or "")


def _registry(path: Path, *csjson: str) -> None:
    entries = {
        f"c{i}": {
            "dbname": f"UQx_C{i}_1T",
            "mongoname": f"UQx/C{i}/1T",
            "discussiontable": f"UQx-C{i}-1T-prod",
            "csjson": name,
        }
        for i, name in enumerate(csjson)
    }
    path.write_text(f"EDX_DATABASES = {entries!r}\n")


def test_sighup_rereads_the_course_registry(tmp_path):
    data = make_package(tmp_path / "data")
    courses = tmp_path / "courses.py"
    _registry(courses)
    (dump_dir(data) / CSJSON).write_text('{"block": {}}')
    config = {"SERVICES": "EdxCourseStructure", "COURSES_FILE": str(courses)}
    daemon = Daemon(
        settings_for(data, tmp_path / "var", **config),
        foreground=False,
        reload=lambda: settings_for(data, tmp_path / "var", **config),
    )
    assert daemon.run(once=True) == 0
    (row,) = daemon.scheduler.queue.rows()
    assert "no course in courses.py names this file" in (row.error or "")
    before = courses.stat()
    _registry(courses, CSJSON)
    os.utime(courses, ns=(before.st_atime_ns, before.st_mtime_ns))  # an edit within the same tick
    daemon._on_hup(1, None)
    daemon._cycle(once=True)
    assert [c.csjson for c in daemon.scheduler.courses().courses.values()] == [CSJSON]


def test_run_once_takes_its_status_from_the_tracking_table(tmp_path):
    data = make_package(tmp_path / "data")
    dump = dump_dir(data) / DUMP
    dump.write_bytes(b"id\tusername\n1\n")  # every row rejected: the file fails
    (dump_dir(data) / "UQx-A-1T-wiki_article-prod-analytics.sql.failed").write_text("export failed")
    assert _daemon(tmp_path, SERVICES="DatabaseState").run(once=True) == 1
    daemon = _daemon(tmp_path, SERVICES="DatabaseState")
    assert not hasattr(daemon.scheduler, "failed"), "no in-memory list of failures"
    assert daemon.run(once=True) == 1, "nothing changed: the failed files are still failed"
    (dump_dir(data) / "UQx-A-1T-wiki_article-prod-analytics.sql.failed").unlink()
    dump.write_bytes(AUTH_USER_HEADER + b"1\tu\tu@x\t0\t1\tNULL\t2015-01-01 00:00:00\n")
    assert _daemon(tmp_path, SERVICES="DatabaseState").run(once=True) == 0, (
        "files no longer delivered count not"
    )
