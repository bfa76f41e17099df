"""Shared fixtures: the real test servers (MariaDB, FerretDB) that scripts/test.sh starts.

The servers are reached through INGESTOR_TEST_MYSQL_URL and INGESTOR_TEST_MONGO_URL. A test that
needs one and cannot reach it fails (it is never silently skipped); run `-m "not mysql and not mongo"`
to leave them out on purpose.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DATA = REPO / "examples" / "data"

MYSQL_URL = os.environ.get("INGESTOR_TEST_MYSQL_URL", "mysql://ingestor:ingestor@127.0.0.1:3306")
MONGO_URL = os.environ.get("INGESTOR_TEST_MONGO_URL", "mongodb://127.0.0.1:27017/")


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), 2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def mysql_url() -> str:
    if not _reachable(MYSQL_URL, 3306):
        pytest.fail(f"MariaDB test server not reachable at {MYSQL_URL}: run scripts/start_mariadb.sh")
    return MYSQL_URL


@pytest.fixture(scope="session")
def mongo_url() -> str:
    if not _reachable(MONGO_URL, 27017):
        pytest.fail(f"MongoDB-wire test server not reachable at {MONGO_URL}: run scripts/start_ferretdb.sh")
    return MONGO_URL


@pytest.fixture
def unique_name() -> str:
    """A short name no other test uses, for databases created on the shared servers."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "var"
    path.mkdir()
    yield path


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def sql_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The SQL_URL of each backend: the embedded SQLite one and the real MariaDB server."""
    if request.param == "sqlite":
        yield "sqlite"
    else:
        yield request.getfixturevalue("mysql_url")


@pytest.fixture
def sql_store(sql_backend: str, tmp_path: Path, unique_name: str) -> Iterator[object]:
    """A SqlStore on each backend; the databases named after the test's `unique_name` are dropped
    afterwards (MariaDB). Only those: tests run in parallel on the same server."""
    from stores.sql import open_sql_store

    store = open_sql_store(sql_backend, tmp_path / "var")
    yield store
    if store.dialect == "mysql":
        for name in store.list_databases():
            if unique_name in name:
                store.drop_database(name)


# -- GnuPG keys (deliveries): made once per session ----------------------------------------------


@dataclass(frozen=True)
class Keys:
    plain: str  # GnuPG home with a secret key without passphrase
    plain_uid: str
    secret: str  # GnuPG home whose key needs the passphrase in `passfile`
    secret_uid: str
    passfile: str
    other: str  # another university's key: deliveries to it cannot be read with `plain`
    other_uid: str


def _make_key(home: Path, uid: str, passphrase: str = "") -> None:
    home.mkdir(mode=0o700)
    subprocess.run(
        [
            *("gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", "--passphrase"),
            *(passphrase, "--quick-gen-key", uid, "future-default", "default", "never"),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="session")
def keys() -> Iterator[Keys]:
    base = Path(tempfile.mkdtemp(prefix="oi-gpg-", dir="/tmp"))  # short: gpg-agent's socket path
    homes = {name: base / name for name in ("plain", "secret", "other")}
    _make_key(homes["plain"], "plain@example.org")
    _make_key(homes["secret"], "secret@example.org", "correct horse battery")
    _make_key(homes["other"], "other@example.org")
    passfile = base / "passphrase"
    passfile.write_text("correct horse battery\n")
    passfile.chmod(0o600)
    try:
        yield Keys(
            str(homes["plain"]),
            "plain@example.org",
            str(homes["secret"]),
            "secret@example.org",
            str(passfile),
            str(homes["other"]),
            "other@example.org",
        )
    finally:
        for home in homes.values():
            subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
