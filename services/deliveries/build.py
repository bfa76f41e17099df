"""Builds an encrypted delivery in edX's exact layout from a plain data directory.

For trying the whole path (scripts/make_delivery.py) and for the tests: the files of
`database_state/latest` become `{org}-{date}/<name>.gpg` members of `{org}-{date}.zip` (an unpacked
course directory is packed as edX ships it, `<name>-course-prod-analytics.xml.tar.gz`; `ora/`
kept), and each log of `clickstream_logs/latest` becomes `<name>.log.gz.gpg` (gzipped first if it
is plain). Encryption is `gpg --encrypt` to the given recipient, binary, as edX's exporter does.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import IO

from services.deliveries.names import DAILY

COURSE_SUFFIX = "-course-prod-analytics.xml.tar.gz"


def encrypt(source: IO[bytes], out: Path, recipient: str, home: str = "") -> None:
    """Encrypt the stream `source` to `recipient` into `out` (streamed through gpg's stdin)."""
    cmd = ["gpg", "--batch", "--yes", "--no-tty", "--trust-model", "always"]
    if home:
        cmd += ["--homedir", home]
    cmd += ["--recipient", recipient, "--output", str(out), "--encrypt"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stderr is not None
    shutil.copyfileobj(source, proc.stdin, 1 << 20)
    proc.stdin.close()
    errors = proc.stderr.read().decode("utf-8", "replace")
    if proc.wait() != 0:
        raise RuntimeError(f"gpg --encrypt {out.name}: {errors.strip()}")


def encrypt_file(path: Path, out: Path, recipient: str, home: str = "") -> None:
    with path.open("rb") as source:
        encrypt(source, out, recipient, home)


def _tar_course(directory: Path, out: Path) -> None:
    with tarfile.open(out, "w:gz") as tar:
        tar.add(directory, arcname=directory.name)


def build_weekly(data: Path, out_dir: Path, recipient: str, home: str = "", org: str = "uqx") -> Path:
    """`out_dir/{org}-{date}.zip` from `data/database_state/latest` (the date is its target's name)."""
    dump = (data / "database_state" / "latest").resolve(strict=True)
    folder = f"{org.lower()}-{dump.name}"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{folder}.zip"
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".build-") as work:
        members: list[tuple[Path, str]] = []
        for entry in sorted(dump.iterdir()):
            if entry.is_dir() and entry.name == "ora":
                for sub in sorted(entry.iterdir()):
                    members.append((sub, f"ora/{sub.name}"))
            elif entry.is_dir() and (entry / "course.xml").is_file():
                packed = Path(work) / f"{entry.name}{COURSE_SUFFIX}"
                _tar_course(entry, packed)
                members.append((packed, packed.name))
            elif entry.is_file():
                members.append((entry, entry.name))
        partial = out_dir / f".{target.name}.partial"
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            archive.writestr(zipfile.ZipInfo(f"{folder}/"), b"")
            for source, rel in members:
                encrypted = Path(work) / "member.gpg"
                encrypt_file(source, encrypted, recipient, home)
                archive.write(encrypted, f"{folder}/{rel}.gpg")
                encrypted.unlink()
        os.replace(partial, target)
    return target


def build_daily(data: Path, out_dir: Path, recipient: str, home: str = "") -> list[Path]:
    """One `<name>.log.gz.gpg` in `out_dir` per tracking log of `data/clickstream_logs/latest`."""
    logs = (data / "clickstream_logs" / "latest").resolve(strict=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    for path in sorted(logs.iterdir()):
        name = path.name if path.name.endswith(".gz") else f"{path.name}.gz"
        if not path.is_file() or not DAILY.fullmatch(f"{name}.gpg"):
            continue
        out = out_dir / f"{name}.gpg"
        if path.name.endswith(".gz"):
            encrypt_file(path, out, recipient, home)
        else:
            with tempfile.TemporaryFile() as packed:
                with path.open("rb") as plain, gzip.GzipFile(fileobj=packed, mode="wb", mtime=0) as gz:
                    shutil.copyfileobj(plain, gz, 1 << 20)
                packed.seek(0)
                encrypt(packed, out, recipient, home)
        made.append(out)
    return made
