"""Where deliveries are laid out in the data root, and the steps that make them visible at once.

```
<target>/database_state/2015-06-07/          a weekly zip, decrypted (ora/ kept, .xml.tar.gz kept)
<target>/database_state/latest -> 2015-06-07 moved once the whole delivery is in place
<target>/database_state/.2015-06-07.unpacking  the delivery being decrypted (invisible to the others)
<target>/clickstream_logs/latest/<log>.log.gz  daily logs, still gzipped (latest -> events if new)
<target>/.deliveries/<delivered name>.json   what was published from which original (sha256, failures)
```

Every step is a rename within one directory, so a reader sees the old state or the new one: the
unpacked delivery is renamed into place (a corrected re-delivery of the same date is exchanged
with the previous directory in one step where the kernel allows it), then `latest` is replaced by
a new link renamed over it. A crash leaves at most a staging directory, which the next attempt
removes and redoes.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from core.errors import TerminalError, TransientError
from utils.atomic import (
    atomic_write_bytes,
    fsync_path,
)

DATABASE_STATE = "database_state"
CLICKSTREAM = "clickstream_logs"
NEW_LOG_DIR = "events"
MANIFESTS = ".deliveries"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return bool(result == 0)


def replace_dir(staging: Path, final: Path) -> None:
    """Put the complete `staging` directory at `final`, replacing a previous version if any."""
    if not final.exists() and not final.is_symlink():
        os.rename(staging, final)
    elif final.is_dir() and not final.is_symlink() and _exchange(staging, final):
        shutil.rmtree(staging)  # now the previous version
    else:
        old = final.with_name(f".{final.name}.replaced")
        if old.exists():
            shutil.rmtree(old)
        os.rename(final, old)
        os.rename(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    fsync_path(final.parent, directory=True)


def point_latest(area: Path, name: str) -> None:
    """Make `area/latest` a relative link to `name`, replacing the old link in one rename."""
    latest = area / "latest"
    if latest.exists() and not latest.is_symlink():
        raise TerminalError(f"{latest} is not a symbolic link; not replaced")
    temp = area / f".latest.{os.getpid()}.new"
    temp.unlink(missing_ok=True)
    os.symlink(name, temp)
    os.replace(temp, latest)
    fsync_path(area, directory=True)


def latest_day(area: Path) -> date | None:
    """The date `area/latest` points to, if its target is named after one."""
    latest = area / "latest"
    try:
        return date.fromisoformat(latest.resolve(strict=True).name)
    except (OSError, RuntimeError, ValueError):
        return None


def clickstream_dir(root: Path) -> Path:
    """The directory `clickstream_logs/latest` points to; created as `events` when there is none."""
    area = root / CLICKSTREAM
    latest = area / "latest"
    if latest.is_symlink() or latest.exists():
        try:
            target = latest.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise TerminalError(f"{latest}: broken link ({exc}); logs not placed") from exc
        if not target.is_dir():
            raise TerminalError(f"{latest}: points to {target}, not a directory; logs not placed")
        return target
    (area / NEW_LOG_DIR).mkdir(parents=True, exist_ok=True)
    point_latest(area, NEW_LOG_DIR)
    return area / NEW_LOG_DIR


def free_bytes(directory: Path, limit: int = 0) -> int:
    """Bytes that may be written below `directory`: the disk's free space, at most `limit` if set."""
    st = os.statvfs(directory)
    free = st.f_bavail * st.f_frsize
    return min(free, limit) if limit else free


def manifest_path(root: Path, name: str) -> Path:
    return root / MANIFESTS / f"{name}.json"


def read_manifest(root: Path, name: str) -> dict[str, Any] | None:
    try:
        value = json.loads(manifest_path(root, name).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def write_manifest(root: Path, name: str, manifest: dict[str, Any]) -> None:
    data = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
    atomic_write_bytes(manifest_path(root, name), data)


def recent_manifests(root: Path, count: int) -> list[dict[str, Any]]:
    """The `count` most recently published manifests, newest last."""
    folder = root / MANIFESTS
    try:
        paths = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)[-count:]
    except OSError:
        return []
    found = []
    for path in paths:
        value = read_manifest(root, path.name[: -len(".json")])
        if value is not None:
            found.append(value)
    return found


@contextlib.contextmanager
def locked(root: Path, key: str) -> Iterator[None]:
    """One worker at a time lays out `key` (a date or a log name) in this root."""
    folder = root / MANIFESTS / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{key}.lock", "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise TransientError(f"another worker is laying out {key} in {root}") from exc
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
