"""Where a course export is read from: an unpacked directory or the delivered `.xml.tar.gz`.

Both give the same view: `read("chapter/week_1.xml")` returns the bytes of that file of the course
(relative to the folder holding `course.xml`) or None. Nothing is ever unpacked to disk.

The tarball is read in one streaming pass. Every member is checked first: a name that is absolute
or climbs out with `..`, a symbolic or hard link pointing out of the archive, and a device or FIFO
member fail the whole file (UnsafeArchiveError), because an archive built like that is either
broken or hostile. Only the `.xml` and `.json` members are kept in memory (course exports carry no
static assets, and the HTML bodies are not needed), with a cap per member and in total. Links that
stay inside the archive are followed in memory.

The top folder's name is not trusted to identify the course (2020+ exports are named after the
run only): the folder is simply the one that holds `course.xml`.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
import tarfile
import zlib
from pathlib import Path

from core.errors import TerminalError

MAX_MEMBER_BYTES = 64 << 20
MAX_TOTAL_BYTES = 512 << 20
_KEPT = (".xml", ".json")
# One path segment as edX writes them: a tag or a url_name (`:` is allowed in url_names).
SAFE_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-:~]{0,254}")


class UnsafeArchiveError(TerminalError):
    """An archive member could write or read outside the archive, or is a device file."""


def safe_relative(rel: str) -> bool:
    """True if `rel` is a plain relative path of safe segments (no `..`, no absolute path)."""
    parts = rel.split("/")
    return all(SAFE_SEGMENT.fullmatch(p) and ".." not in p for p in parts)


class CourseSource:
    """The files of one course export, by path relative to the folder of `course.xml`."""

    label: str  # what error messages call it: the delivered path

    def read(self, rel: str) -> bytes | None:
        """The bytes of `rel`, or None if the export has no such file."""
        raise NotImplementedError


class DirectorySource(CourseSource):
    """An export already unpacked into a directory of the package."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.real_root = os.path.realpath(root)
        self.label = str(root)

    def read(self, rel: str) -> bytes | None:
        if not safe_relative(rel):
            return None
        path = self.root / rel
        if not path.exists() and not path.is_symlink():
            return None
        real = os.path.realpath(path)
        if os.path.commonpath([real, self.real_root]) != self.real_root:
            raise UnsafeArchiveError(f"{self.label}: {rel} is a link to outside the course directory")
        try:
            info = os.stat(real)
            if not stat.S_ISREG(info.st_mode):
                raise UnsafeArchiveError(f"{self.label}: {rel} is not a regular file")
            if info.st_size > MAX_MEMBER_BYTES:
                raise TerminalError(f"{self.label}: {rel} is larger than {MAX_MEMBER_BYTES} bytes")
            with open(real, "rb") as stream:
                return stream.read()
        except OSError as exc:
            raise TerminalError(f"{self.label}: {rel} cannot be read: {exc}") from exc


class TarSource(CourseSource):
    """A `.xml.tar.gz` export, read into memory in one checked pass."""

    def __init__(self, path: Path) -> None:
        self.label = str(path)
        self.files: dict[str, bytes] = {}
        self.prefix = ""
        self._load(path)

    def read(self, rel: str) -> bytes | None:
        if not safe_relative(rel):
            return None
        return self.files.get(self.prefix + rel)

    def _load(self, path: Path) -> None:
        links: dict[str, str] = {}
        total = 0
        try:
            with tarfile.open(path, mode="r|*") as archive:
                for member in archive:
                    name = self._check(member)
                    if member.issym() or member.islnk():
                        links[name] = self._link_target(member, name)
                        continue
                    if not member.isfile() or not name.endswith(_KEPT):
                        continue
                    if member.size > MAX_MEMBER_BYTES:
                        raise TerminalError(
                            f"{self.label}: member {name} is larger than {MAX_MEMBER_BYTES} bytes"
                        )
                    total += member.size
                    if total > MAX_TOTAL_BYTES:
                        raise TerminalError(
                            f"{self.label}: the XML files hold more than {MAX_TOTAL_BYTES} bytes"
                        )
                    stream = archive.extractfile(member)
                    if stream is not None:
                        self.files[name] = stream.read()
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise TerminalError(f"{self.label}: not a readable .tar.gz archive: {exc}") from exc
        for _ in range(8):  # links to links, a few deep
            for name, target in links.items():
                if target in self.files and name.endswith(_KEPT):
                    self.files[name] = self.files[target]
        self.prefix = self._course_folder()

    def _check(self, member: tarfile.TarInfo) -> str:
        """The member's normalised name; UnsafeArchiveError if it is unsafe."""
        raw = member.name
        shown = repr(raw)[:200]
        if "\0" in raw or raw.startswith("/") or re.match(r"[A-Za-z]:[\\/]", raw) or raw.startswith("\\"):
            raise UnsafeArchiveError(f"{self.label}: unsafe member {shown}: absolute path")
        name = posixpath.normpath(raw.replace("\\", "/"))
        if name == ".." or name.startswith("../"):
            raise UnsafeArchiveError(f"{self.label}: unsafe member {shown}: it points outside the archive")
        if member.ischr() or member.isblk() or member.isfifo():
            raise UnsafeArchiveError(f"{self.label}: unsafe member {shown}: a device or FIFO file")
        return "" if name == "." else name

    def _link_target(self, member: tarfile.TarInfo, name: str) -> str:
        """Where a link member points, normalised; UnsafeArchiveError if that is outside."""
        target = member.linkname.replace("\\", "/")
        shown = f"{name!r} -> {member.linkname!r}"[:200]
        if target.startswith("/") or "\0" in target:
            raise UnsafeArchiveError(f"{self.label}: unsafe link {shown}: absolute target")
        base = posixpath.dirname(name) if member.issym() else ""
        resolved = posixpath.normpath(posixpath.join(base, target))
        if resolved == ".." or resolved.startswith("../"):
            raise UnsafeArchiveError(f"{self.label}: unsafe link {shown}: it points outside the archive")
        return resolved

    def _course_folder(self) -> str:
        """`top/` (or `` for an archive without a top folder): where `course.xml` is."""
        if "course.xml" in self.files:
            return ""
        found = sorted(n for n in self.files if n.count("/") == 1 and n.endswith("/course.xml"))
        if not found:
            raise TerminalError(f"{self.label}: no course.xml at the top of the archive")
        if len(found) > 1:
            raise TerminalError(f"{self.label}: several courses in one archive ({', '.join(found[:5])})")
        return found[0][: -len("course.xml")]


def open_source(path: Path) -> CourseSource:
    """The right source for a delivered entry (a directory or a tarball)."""
    if path.is_symlink() and not path.exists():
        raise TerminalError(f"{path}: broken symbolic link")
    if path.is_dir():
        return DirectorySource(path)
    return TarSource(path)
