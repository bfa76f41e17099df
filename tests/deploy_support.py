"""Helpers of the service-script and deployment tests: a copy of the code as it would be installed,
a wheel directory of requirements.txt (so virtualenvs are made without the network after the first
time), and a Python the daemon's unprivileged user can run."""

from __future__ import annotations

import getpass
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import REPO

CACHE = Path(os.environ.get("INGESTOR_TEST_DIR", tempfile.gettempdir())) / "deploy-cache"
SYSTEM_PYTHON = Path("/usr/bin/python3")
_IGNORED = shutil.ignore_patterns(
    ".git", "var", "__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache", "config.py"
)


def requirements_hash() -> str:
    return hashlib.sha256((REPO / "requirements.txt").read_bytes()).hexdigest()[:16]


# native/eventscan's build-system requirement (its pyproject.toml), for a deploy without an index
BUILD_BACKEND = ("maturin>=1.5,<2",)
BUILD_BACKEND_KEY = hashlib.sha256(" ".join(BUILD_BACKEND).encode()).hexdigest()[:8]


def copy_code(dest: Path) -> Path:
    """The working tree as an install would hold it (no .git, no state, no config.py)."""
    shutil.copytree(REPO, dest, ignore=_IGNORED, symlinks=True)
    return dest


def wheelhouse() -> Path:
    """Wheels of requirements.txt and of native/eventscan's build backend, fetched once from PyPI
    (through pip's cache) and kept."""
    target = CACHE / f"wheels-{requirements_hash()}-{BUILD_BACKEND_KEY}"
    if not (target / ".complete").exists():
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "-q",
                "--disable-pip-version-check",
                "-w",
                str(target),
                "-r",
                str(REPO / "requirements.txt"),
                *BUILD_BACKEND,
            ],
            check=True,
            timeout=600,
        )
        (target / ".complete").touch()
    return target


def make_venv(path: Path, python: Path = SYSTEM_PYTHON) -> Path:
    """A virtualenv of requirements.txt from the wheel directory; returns its python."""
    subprocess.run([str(python), "-m", "venv", str(path)], check=True, timeout=120)
    subprocess.run(
        [
            str(path / "bin" / "pip"),
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-index",
            "--find-links",
            str(wheelhouse()),
            "-r",
            str(REPO / "requirements.txt"),
        ],
        check=True,
        timeout=300,
    )
    return path / "bin" / "python"


def service_account() -> tuple[str, Path]:
    """(user, python) to run the daemon as: `nobody` with a venv of the system Python when the tests
    run as root (root's own Python is not readable by others), else the current user and Python."""
    if os.geteuid() != 0:
        return getpass.getuser(), Path(sys.executable)
    CACHE.mkdir(parents=True, exist_ok=True)
    venv = CACHE / f"system-venv-{requirements_hash()}"
    if not (venv / ".complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        make_venv(venv)
        (venv / ".complete").touch()
    CACHE.chmod(0o755)
    return "nobody", venv / "bin" / "python"


@contextmanager
def world_readable_dir(prefix: str) -> Iterator[Path]:
    """A temporary directory others can traverse (pytest's tmp_path is private to its user)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=CACHE.parent if CACHE.parent.exists() else None))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
