"""What edX delivers, by name: the weekly zip, the daily logs, and the members a weekly zip may hold.

Spec (edx-data-package.md section 1): the weekly `{org}-YYYY-MM-DD.zip` holds one top folder
`{org}-YYYY-MM-DD/` of `.gpg` files (and an `ora/` sub-folder); the daily logs are
`{org}-{edx|edge}-events-YYYY-MM-DD.log.gz.gpg` (`prod` taken as `edx`, and the 2014 docs' form
without `-events-`). A member is checked before anything is written: a path that is absolute,
climbs with `..`, is a link, or leaves the top folder is unsafe; a name that is not edX's is
refused. Both are reported with the member's name, and the rest of the delivery goes on.
"""

from __future__ import annotations

import re
import stat
import zipfile
from dataclasses import dataclass
from datetime import date

WEEKLY = re.compile(r"(?P<org>[A-Za-z0-9][A-Za-z0-9_]{0,63})-(?P<date>\d{4}-\d{2}-\d{2})\.zip")
DAILY = re.compile(
    r"(?P<org>[A-Za-z0-9][A-Za-z0-9_]{0,63})-(?P<site>edx|edge|prod)(?:-events)?-"
    r"(?P<date>\d{4}-\d{2}-\d{2})\.log\.gz\.gpg"
)
# A file of the weekly dump once decrypted: `{course}-{table}-{suffix}.{ext}`, `{file}.failed`.
MEMBER = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9_.+\-]{0,230}\.(?:sql|mongo|json|csv|xml\.tar\.gz|7z)(?:\.failed)?"
)
SUBFOLDERS = ("ora",)
# The e-mail opt-in report comes in a zip of the same name in its own S3 folder: not a dump.
OTHER_FOLDERS = ("email-opt-in",)


class MemberProblem(Exception):
    """A member that is not written: the message says why (unsafe path, not an edX name, ...)."""


@dataclass(frozen=True)
class Delivery:
    """A delivered file recognised by its name."""

    kind: str  # "weekly" or "daily"
    org: str
    day: date
    name: str

    @property
    def folder(self) -> str:
        """The weekly zip's top folder (and the dated directory it is laid out in: `day`)."""
        return f"{self.org.lower()}-{self.day.isoformat()}"


def classify(name: str) -> Delivery | None:
    """The delivery `name` is, or None if it is not one of edX's delivery names."""
    for kind, pattern in (("weekly", WEEKLY), ("daily", DAILY)):
        match = pattern.fullmatch(name)
        if match:
            try:
                day = date.fromisoformat(match.group("date"))
            except ValueError:
                return None
            return Delivery(kind, match.group("org"), day, name)
    return None


def member_target(info: zipfile.ZipInfo, folder: str) -> str:
    """The relative path (without `.gpg`) a weekly zip's member is decrypted to, or MemberProblem."""
    name = info.filename
    if "\\" in name or "\0" in name or name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise MemberProblem("unsafe path (absolute, or with a backslash or NUL)")
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise MemberProblem("unsafe path (a '..', '.' or empty segment)")
    kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the zip tool wrote no Unix mode
    if kind and kind != stat.S_IFREG:
        raise MemberProblem("unsafe member: a link or a special file, not a regular file")
    if parts[0] != folder:
        raise MemberProblem(f"outside the delivery's folder {folder}/")
    if len(parts) == 3 and parts[1] in SUBFOLDERS:
        rel = f"{parts[1]}/{parts[2]}"
    elif len(parts) == 2:
        rel = parts[1]
    else:
        raise MemberProblem("not in edX's layout (a folder other than ora/)")
    if not rel.endswith(".gpg") or not MEMBER.fullmatch(parts[-1][: -len(".gpg")]):
        raise MemberProblem("not an edX file name (expected {course}-{table}-{suffix}.sql.gpg and the like)")
    return rel[: -len(".gpg")]


def is_folder_entry(info: zipfile.ZipInfo, folder: str) -> bool:
    """The zip's own folder entries (`folder/`, `folder/ora/`), which hold nothing to decrypt."""
    return info.filename in (f"{folder}/", *(f"{folder}/{s}/" for s in SUBFOLDERS))
