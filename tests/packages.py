"""Builds small data packages (the `latest` layout) for tests."""

from __future__ import annotations

import os
from pathlib import Path

from core.settings import Settings, load_settings

AUTH_USER_HEADER = b"id\tusername\temail\tis_staff\tis_active\tlast_login\tdate_joined\n"


def make_package(root: Path, db_date: str = "2015-06-07", log_date: str = "2015-06-01") -> Path:
    """An empty package: both areas with a `latest` link to a dated directory."""
    (root / "database_state" / db_date).mkdir(parents=True, exist_ok=True)
    (root / "clickstream_logs" / log_date).mkdir(parents=True, exist_ok=True)
    for area, date in (("database_state", db_date), ("clickstream_logs", log_date)):
        link = root / area / "latest"
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(date, link)
    return root


def dump_dir(root: Path) -> Path:
    return (root / "database_state" / "latest").resolve()


def write_dump(root: Path, name: str, content: bytes) -> Path:
    path = dump_dir(root) / name
    path.write_bytes(content)
    return path


def settings_for(data: Path, state: Path, sql_url: str = "sqlite", **extra: str) -> Settings:
    overrides = {
        "DATA_PATHS": str(data),
        "STATE_DIR": str(state),
        "SQL_URL": sql_url,
        "API_ENABLED": "0",
        "HEARTBEAT_SECONDS": "1",
        "LEASE_SECONDS": "5",
        "RETRY_BACKOFF_SECONDS": "0",
        **extra,
    }
    return load_settings(config_file=None, environ={}, overrides=overrides, base_dir=state.parent)


STUDENTMODULE_HEADER = (
    b"id\tmodule_type\tmodule_id\tstudent_id\tstate\tgrade\tcreated\tmodified\tmax_grade\tdone\tcourse_id\n"
)


def write_large_studentmodule(path: Path, rows: int) -> None:
    """A deterministic courseware_studentmodule dump of `rows` rows, written in chunks."""
    with path.open("wb") as out:
        out.write(STUDENTMODULE_HEADER)
        chunk = []
        for i in range(1, rows + 1):
            state = (
                b'{"correct_map": {"p_2_1": {"correctness": "correct", "npoints": null}}, '
                b'"student_answers": {"p_2_1": "{\\\\"answer\\\\":\\\\"%d\\\\"}"}, "attempts": %d, "seed": 1}'
                % (i, i % 7)
            )
            chunk.append(
                b"%d\tproblem\tblock-v1:UQx+X+1T+type@problem+block@p%d\t%d\t%s\t%s\t2016-01-01 10:00:00\t"
                b"2016-01-02 10:00:%02d\t1\tna\tcourse-v1:UQx+X+1T\n"
                % (i, i % 50, i % 5000, state, b"NULL" if i % 3 == 0 else b"1", i % 60)
            )
            if len(chunk) >= 10000:
                out.write(b"".join(chunk))
                chunk = []
        out.write(b"".join(chunk))
