"""The course registry `EDX_DATABASES` of courses.py, loaded and checked.

Real registries are hand-edited; a bad entry gives a warning naming the key and the field and is
left out, and the other courses go on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigError
from core.settings import read_python_file

SPECIAL = {"default", "personcourse", "Course_Event"}
_DBNAME = re.compile(r"[A-Za-z0-9_]{1,64}")
_MONGONAME = re.compile(
    r"(?:[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+|course-v1:[A-Za-z0-9_.\-]+\+[A-Za-z0-9_.\-]+\+[A-Za-z0-9_.\-]+)"
)
_COLLECTION = re.compile(r"[A-Za-z0-9_.\-]{1,120}")


@dataclass(frozen=True)
class Course:
    key: str
    dbname: str
    mongoname: str
    discussiontable: str
    csjson: str
    icon: str = ""
    year: str = ""
    term: str = ""


@dataclass(frozen=True)
class Courses:
    courses: dict[str, Course]
    warnings: list[str]

    def by_dbname(self, dbname: str) -> Course | None:
        for course in self.courses.values():
            if course.dbname == dbname:
                return course
        return None


def load_courses(path: Path) -> Courses:
    """Read `EDX_DATABASES` from `path`; raise ConfigError only if the file itself is unusable."""
    if not path.exists():
        return Courses({}, [f"{path}: no course registry; per-course services have no courses"])
    registry = read_python_file(path, "COURSES_FILE").get("EDX_DATABASES")
    if not isinstance(registry, dict):
        raise ConfigError([f"COURSES_FILE {path}: EDX_DATABASES is missing or not a dict"])
    courses: dict[str, Course] = {}
    warnings: list[str] = []
    for key, entry in registry.items():
        if key in SPECIAL:
            continue
        problems = _check(key, entry)
        if problems:
            warnings.extend(problems)
            continue
        courses[key] = Course(
            key=key,
            dbname=entry["dbname"],
            mongoname=entry["mongoname"],
            discussiontable=entry["discussiontable"],
            csjson=entry.get("csjson", ""),
            icon=str(entry.get("icon", "")),
            year=str(entry.get("year", "")),
            term=str(entry.get("term", "")),
        )
    return Courses(courses, warnings)


def _check(key: str, entry: object) -> list[str]:
    if not isinstance(entry, dict):
        return [f"courses.py: entry {key!r} is not a dict; skipped"]
    problems = []
    checks = (("dbname", _DBNAME), ("mongoname", _MONGONAME), ("discussiontable", _COLLECTION))
    for field, pattern in checks:
        value = entry.get(field)
        if not isinstance(value, str) or not pattern.fullmatch(value):
            problems.append(f"courses.py: course {key!r} field {field!r} is invalid ({value!r}); skipped")
    return problems
