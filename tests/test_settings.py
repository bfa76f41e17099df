"""Configuration: defaults < config file < INGESTOR_* environment < command line; all errors at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import load_settings


def test_defaults_run_on_the_embedded_stores_against_the_sample_package(tmp_path):
    s = load_settings(environ={}, base_dir=tmp_path)
    assert (s.SQL_URL, s.MONGO_URL, s.SCAN_INTERVAL, s.API_HOST, s.API_PORT) == (
        "sqlite",
        "sqlite",
        300,
        "127.0.0.1",
        8850,
    )
    assert tmp_path / "var" == s.STATE_DIR and (tmp_path / "examples/data",) == s.DATA_PATHS


def test_later_sources_win_and_lists_split_on_colons(tmp_path):
    config = tmp_path / "config.py"
    config.write_text("SCAN_INTERVAL = 60\nAPI_PORT = 9000\nDATA_PATHS = ['/a']\n")
    s = load_settings(
        environ={
            "INGESTOR_API_PORT": "9100",
            "INGESTOR_DATA_PATHS": "/x:/y",
            "INGESTOR_LEGACY_SCHEMA": "yes",
        },
        overrides={"API_PORT": "9200"},
        base_dir=tmp_path,
    )
    assert (60, 9200, (Path("/x"), Path("/y")), True) == (
        s.SCAN_INTERVAL,
        s.API_PORT,
        s.DATA_PATHS,
        s.LEGACY_SCHEMA,
    )


def test_every_invalid_value_is_reported_together_with_its_source(tmp_path):
    (tmp_path / "config.py").write_text("SQL_URL = 'postgres://x'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(
            environ={"INGESTOR_SCAN_INTERVAL": "soon", "INGESTOR_API_PORT": "70000", "INGESTOR_NOPE": "1"},
            base_dir=tmp_path,
        )
    text = str(info.value)
    for expected in ("SCAN_INTERVAL (from environment)", "API_PORT", "INGESTOR_NOPE"[9:], "SQL_URL"):
        assert expected in text
    assert len(info.value.problems) == 4


def test_a_broken_config_file_is_a_config_error_naming_it(tmp_path):
    config = tmp_path / "config.py"
    config.write_text("SCAN_INTERVAL = (\n")
    with pytest.raises(ConfigError, match=r"config\.py"):
        load_settings(environ={}, base_dir=tmp_path)


def test_command_line_exits_2_on_a_configuration_error(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    result = subprocess.run(
        [sys.executable, str(REPO / "ingestor.py"), "--set", "SCAN_INTERVAL=never", "run", "--once"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2 and "SCAN_INTERVAL" in result.stderr


def test_course_registry_mistakes_are_warned_by_key_and_field_and_the_others_load(tmp_path):
    from core.courses import load_courses

    path = tmp_path / "courses.py"
    path.write_text(
        "EDX_DATABASES = {\n"
        "  'default': {'dbname': 'api'},\n"
        "  'good': {'dbname': 'UQx_A_1T', 'mongoname': 'UQx/A/1T', 'discussiontable': 'UQx-A-1T-prod', 'csjson': ''},\n"
        "  'colon': {'dbname': 'UQx_B_1T', 'mongoname': 'UQx/B/1T:', 'discussiontable': 'UQx-B-1T-prod'},\n"
        "  'empty': {'dbname': 'UQx_C_1T', 'mongoname': 'UQx/C/1T', 'discussiontable': ''},\n"
        "}\n"
    )
    courses = load_courses(path)
    assert list(courses.courses) == ["good"]
    assert any("'colon'" in w and "'mongoname'" in w for w in courses.warnings)
    assert any("'empty'" in w and "'discussiontable'" in w for w in courses.warnings)
    path.write_text("EDX_DATABASES = {\n")
    with pytest.raises(ConfigError, match="COURSES_FILE"):
        load_courses(path)


def _cli(tmp_path, *args, config: str | None = None):
    import subprocess
    import sys

    from tests.conftest import REPO

    base = ["--set", f"STATE_DIR={tmp_path / 'var'}", "--set", f"DATA_PATHS={tmp_path / 'data'}"]
    if config is not None:
        (tmp_path / "config.py").write_text(config)
        base = ["-c", str(tmp_path / "config.py"), *base]
    return subprocess.run(
        [sys.executable, str(REPO / "ingestor.py"), *base, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "config", "named"),
    [
        (["--set", "STATE_DIR=/proc/x", "run", "--once"], None, "STATE_DIR"),
        (["--set", "API_HOST=not-a-host", "run", "--once"], None, "API_HOST"),
        (["--set", "COURSES_FILE=/nonexistent.py", "run", "--once"], None, "COURSES_FILE"),
        (["retry", "--service", "NoSuch"], None, "NoSuch"),
        (["run", "--once"], "SCAN_INTERVALL = 60\n", "SCAN_INTERVALL"),
    ],
    ids=[
        "state_dir_in_proc",
        "api_host_unknown",
        "courses_file_missing",
        "retry_unknown_service",
        "typo_in_config",
    ],
)
def test_bad_values_exit_2_with_a_message_naming_the_key_or_service(tmp_path, args, config, named):
    result = _cli(tmp_path, *args, config=config)
    assert result.returncode == 2, result.stderr
    assert named in result.stderr and "Traceback" not in result.stderr


def test_an_unknown_key_in_config_py_is_an_error_with_a_suggestion(tmp_path):
    (tmp_path / "config.py").write_text("SCAN_INTERVALL = 60\nHELPER = 1\nlower_case = 2\n")
    with pytest.raises(ConfigError) as info:
        load_settings(environ={}, base_dir=tmp_path)
    assert any("SCAN_INTERVALL" in p and "did you mean SCAN_INTERVAL" in p for p in info.value.problems)
    assert any(p.startswith("HELPER") for p in info.value.problems)
    assert len(info.value.problems) == 2, "lower-case names are the file's own"


def test_a_status_api_address_already_taken_exits_2_naming_it(tmp_path):
    import socket

    from tests.packages import make_package

    make_package(tmp_path / "data")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _cli(
            tmp_path, "--set", f"API_PORT={port}", "--set", "SERVICES=EdxCourseStructure", "run", "--once"
        )
    assert result.returncode == 2 and "API_PORT" in result.stderr and "Traceback" not in result.stderr
