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
