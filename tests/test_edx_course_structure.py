"""EdxCourseStructure through the real daemon loop (`run --once`): edX's course_structure JSON served
byte for byte, and bad files failed with clear messages. It writes no SQL besides the tracking
table, so SQLite is enough here."""

from __future__ import annotations

import os
import shutil

import pytest

from core import states
from core.daemon import Daemon
from tests.conftest import REPO, SAMPLE_DATA
from tests.packages import dump_dir, make_package, settings_for, write_dump

SAMPLE_FILES = (
    "UQx-BIOIMG101x-1T2014-course_structure-prod-analytics.json",
    "UQx-PSYC1030.1x-4T2016-course_structure-prod-analytics.json",
)
OTHER = "UQx-OTHER101x-1T2020-course_structure-prod-analytics.json"


@pytest.fixture
def env(tmp_path, unique_name):
    data = make_package(tmp_path / "data")
    state = tmp_path / "var"

    class Env:
        def __init__(self):
            self.data, self.state, self.tmp = data, state, tmp_path
            self.out = state / "www" / "edx_course_structure"

        def sample(self):
            shutil.rmtree(data)
            shutil.copytree(SAMPLE_DATA, data, symlinks=True)

        def run(self):
            settings = settings_for(
                data,
                state,
                TRACKING_DATABASE=f"api_{unique_name}",
                SERVICES="EdxCourseStructure",
                COURSES_FILE=str(REPO / "courses.py"),
            )
            daemon = Daemon(settings, foreground=False)
            status = daemon.run(once=True)
            self.scheduler = daemon.scheduler
            return status

        def rows(self):
            return {os.path.basename(r.meta): r for r in self.scheduler.queue.rows()}

        def outputs(self):
            return sorted(p.name for p in self.out.iterdir()) if self.out.exists() else []

    return Env()


def test_sample_course_structure_files_are_served_byte_for_byte(env):
    env.sample()
    assert env.run() == 0
    assert env.outputs() == sorted(SAMPLE_FILES), "DEMO101x has none, and that is not an error"
    for name in SAMPLE_FILES:
        delivered = (dump_dir(env.data) / name).read_bytes()
        assert b", \n" in delivered, "Python 2.7 separators: lines end in a space"
        assert (env.out / name).read_bytes() == delivered
        row = env.rows()[name]
        assert row.state == states.DONE and row.rows_loaded > 0 and row.error is None
    assert not list(env.out.glob(".*.tmp")), "no temporary file left behind"


def test_new_delivery_replaces_the_served_file(env):
    write_dump(env.data, OTHER, b'{"a": {"category": "course"}}')
    assert env.run() == 0
    assert "no course in courses.py" in env.rows()[OTHER].error
    write_dump(env.data, OTHER, b'{"b": {"category": "course"}}\n')
    assert env.run() == 0
    assert (env.out / OTHER).read_bytes() == b'{"b": {"category": "course"}}\n'


def test_json_that_does_not_parse_fails_with_line_and_column(env):
    write_dump(env.data, OTHER, b'{\n  "a": {"category": "course",\n  }\n}\n')
    assert env.run() == 1
    row = env.rows()[OTHER]
    assert row.state == states.FAILED
    assert OTHER in row.error and "not valid JSON" in row.error
    assert "line 3 column 3" in row.error
    assert env.outputs() == []


def test_json_that_is_not_an_object_fails(env):
    write_dump(env.data, OTHER, b"[1, 2, 3]")
    assert env.run() == 1
    assert "the JSON is an array, where an object was expected" in env.rows()[OTHER].error
    assert env.outputs() == []


def test_json_that_is_not_utf8_fails(env):
    write_dump(env.data, OTHER, b'{"a": "\xff"}')
    assert env.run() == 1
    assert "not valid JSON" in env.rows()[OTHER].error


def test_previous_output_stays_when_a_later_delivery_is_bad(env):
    write_dump(env.data, OTHER, b'{"a": {}}')
    assert env.run() == 0
    write_dump(env.data, OTHER, b'{"a": ')
    assert env.run() == 1
    assert (env.out / OTHER).read_bytes() == b'{"a": {}}'


@pytest.mark.parametrize(
    "name",
    [
        "UQx-..-course_structure-prod-analytics.json",
        "UQx X;rm-course_structure-prod-analytics.json",
        ".hidden-course_structure-prod-analytics.json",
    ],
    ids=["dotdot", "odd_characters", "hidden"],
)
def test_unsafe_file_name_fails_and_nothing_is_written(env, name):
    write_dump(env.data, name, b'{"a": {}}')
    before = set(env.tmp.rglob("*"))
    assert env.run() == 1
    row = env.rows()[name]
    assert row.state == states.FAILED and "unsafe file name" in row.error
    assert env.outputs() == []
    new = {p for p in set(env.tmp.rglob("*")) - before if p != env.state and env.state not in p.parents}
    assert new == set()


def test_broken_link_fails_with_a_clear_error(env):
    os.symlink("/nonexistent/x.json", dump_dir(env.data) / OTHER)
    assert env.run() == 1
    assert "broken symbolic link" in env.rows()[OTHER].error


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"a": {"weight": NaN}}', "NaN is not JSON"),
        (b'{"a": {"weight": -Infinity}}', "-Infinity is not JSON"),
        ('{"a": {"category": "course"}}'.encode("utf-16"), "UTF-16 or UTF-32 text"),
        ('{"a": {"category": "course"}}'.encode("utf-16-le"), "UTF-16 or UTF-32 text"),
        (b'{"a": ' * 10_000 + b"1" + b"}" * 10_000, "nested too deeply"),
    ],
    ids=["nan", "infinity", "utf16_bom", "utf16_no_bom", "10000_deep"],
)
def test_json_that_is_not_strict_utf8_json_fails_with_a_clear_message(env, content, message):
    write_dump(env.data, OTHER, content)
    assert env.run() == 1
    row = env.rows()[OTHER]
    assert row.state == states.FAILED and OTHER in row.error and message in row.error
    assert "Traceback" not in row.error
    assert env.outputs() == []


def test_utf8_byte_order_mark_is_dropped_from_the_served_copy(env):
    write_dump(env.data, OTHER, b'\xef\xbb\xbf{"a": {"category": "course"}}\n')
    assert env.run() == 0
    assert (env.out / OTHER).read_bytes() == b'{"a": {"category": "course"}}\n'
