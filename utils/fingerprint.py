"""File fingerprints: cheap change detection (size and mtime) and content digests."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

MISSING = "missing"


def file_fingerprint(path: Path) -> str:
    """`size:mtime_ns` of a file (following links), or MISSING if it cannot be read."""
    try:
        st = path.stat()
    except OSError:
        return MISSING
    return f"{st.st_size}:{st.st_mtime_ns}"


def tree_fingerprint(path: Path) -> str:
    """A digest of the names, sizes and mtimes of every file below a directory."""
    digest = hashlib.blake2b(digest_size=16)
    try:
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                full = Path(root) / name
                try:
                    st = full.lstat()
                except OSError:
                    continue
                rel = os.fsencode(full.relative_to(path))
                digest.update(rel + b"\0" + f"{st.st_size}:{st.st_mtime_ns}".encode() + b"\n")
    except OSError:
        return MISSING
    return "tree:" + digest.hexdigest()


def path_fingerprint(path: Path) -> str:
    """The fingerprint of a scanned entry: a directory's tree, a file's size and mtime, or MISSING
    (a broken link, a file deleted since)."""
    if path.is_symlink() and not path.exists():
        return MISSING
    return tree_fingerprint(path) if path.is_dir() else file_fingerprint(path)


def content_digest(path: Path, chunk: int = 1 << 20) -> str:
    """blake2b of the file's bytes (as delivered, compressed or not)."""
    digest = hashlib.blake2b(digest_size=32)
    with path.open("rb") as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()
