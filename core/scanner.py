"""Finds what the data package holds: resolves each `latest` link and lists its entries.

`<root>/clickstream_logs/latest` and `<root>/database_state/latest` point to dated directories. Each
top-level file and directory of the target (and the files of an `ora/` sub-directory) is one entry.
Problems (a missing or broken `latest`, an unreadable entry, a link that leaves the allowed roots)
are reported, never raised: one bad directory must not stop the scan of the others.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from base_service import Entry
from utils.fingerprint import path_fingerprint

AREAS = ("clickstream_logs", "database_state")
SUBDIRS = ("ora",)  # files in these sub-directories are entries of their own


@dataclass
class ScanResult:
    entries: list[Entry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    targets: dict[str, str] = field(default_factory=dict)  # latest link -> resolved directory


def outside_roots(path: Path, roots: Sequence[Path]) -> str | None:
    """Why `path` is refused: it is a symbolic link that leads out of `roots`; None otherwise.

    A broken link is not refused here: the scheduler fails it as missing, where a user sees it.
    (Links inside a course export are the course reader's to refuse.)
    """
    if not path.is_symlink():
        return None
    target = Path(os.path.realpath(path))
    if not target.exists() or any(target.is_relative_to(os.path.realpath(r)) for r in roots):
        return None
    return f"{path}: a symbolic link to {target}, outside the allowed data roots; refused"


def _entry(path: Path, area: str) -> Entry:
    is_dir = path.is_dir() and not (path.is_symlink() and not path.exists())
    return Entry(path, area, is_dir, path_fingerprint(path))


def _list(directory: Path) -> Iterator[Path]:
    with os.scandir(directory) as it:
        names = sorted(e.name for e in it)
    for name in names:
        path = directory / name
        if name in SUBDIRS and path.is_dir() and not path.is_symlink():
            for sub in sorted(os.listdir(path)):
                yield path / sub
            continue
        yield path


def scan(data_paths: Sequence[Path], allowed_roots: Sequence[Path] = ()) -> ScanResult:
    """List the entries under every `latest` of every data root.

    `allowed_roots` (default: the data roots) are where a `latest` link, a data file or a link
    inside a data directory may lead; an entry that leaves them is a problem, not an entry.
    """
    roots = allowed_roots or data_paths
    result = ScanResult()
    for root in data_paths:
        for area in AREAS:
            latest = root / area / "latest"
            if not latest.exists() and not latest.is_symlink():
                if not (root / area).exists():
                    result.problems.append(f"{root / area}: no such directory")
                else:
                    result.problems.append(f"{latest}: missing (expected a link to a dated directory)")
                continue
            try:
                target = latest.resolve(strict=True)
            except (OSError, RuntimeError) as exc:
                result.problems.append(f"{latest}: broken link ({exc})")
                continue
            if not target.is_dir():
                result.problems.append(f"{latest}: points to {target}, which is not a directory")
                continue
            if (refused := outside_roots(latest, roots)) is not None:
                result.problems.append(refused)
                continue
            result.targets[str(latest)] = str(target)
            try:
                for path in _list(target):
                    if (refused := outside_roots(path, roots)) is not None:
                        result.problems.append(refused)
                    else:
                        result.entries.append(_entry(path, area))
            except OSError as exc:
                result.problems.append(f"{target}: cannot be listed ({exc})")
    return result


INCOMING = "incoming"
INCOMING_DEPTH = 6


def scan_incoming(incoming_paths: Sequence[Path], result: ScanResult) -> None:
    """Add the files found below each incoming directory (deliveries: `aws s3 sync` keeps S3's
    folders) to `result`, before the data roots' entries so that they are claimed first. Hidden
    names (temporary downloads) are skipped; links are not followed into other directories."""
    found: list[Entry] = []
    for root in incoming_paths:
        if not root.is_dir():
            result.problems.append(f"{root}: incoming directory missing")
            continue
        base = len(root.parts)
        for folder, dirs, files in os.walk(root, onerror=lambda exc: result.problems.append(str(exc))):
            here = Path(folder)
            dirs[:] = sorted(
                d for d in dirs if not d.startswith(".") and len(here.parts) - base < INCOMING_DEPTH
            )
            for name in sorted(files):
                if not name.startswith("."):
                    found.append(Entry(here / name, INCOMING, False, path_fingerprint(here / name)))
    result.entries[:0] = found
