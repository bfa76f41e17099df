"""CourseStructure: a course export (OLX) becomes the dashboards' JSON tree and a `course_axis` table.

Input, in `database_state`: a directory holding `course.xml` (an export already unpacked) or a
`*-course-prod-analytics.xml.tar.gz` (also `-prod-edge-analytics`, `-prod-edx-replica`), read
straight from the archive (archive.py). The course is identified by `course.xml`
(`<course url_name=RUN org=ORG course=COURSE/>`), never by the folder name, which from 2020 on is
just the run. Its courses.py entry is the one whose `dbname` is `ORG_COURSE_RUN` (`-` -> `_`, `.`
dropped), else the one whose `mongoname` is `ORG/COURSE/RUN` or `course-v1:ORG+COURSE+RUN`; that
entry gives the database and the course id. A course missing from courses.py gets the derived
database name and the course id `course-v1:ORG+COURSE+RUN`, with a warning.

Output, written only once the whole course has been read, so that an interrupted or failed run
leaves the previous output as it was:

* `<output_dir>/course_structure/<dbname with _ as ->.json`, written atomically: the tree of olx.py,
  whose root also carries `policy` (the `course/<run>` object of `policies/<run>/policy.json`),
  `grading_policy`, `course_id` and `warnings` (always present, possibly empty). `display_name`,
  `start` and `end` missing from the course element are taken from the policy.
* table `course_axis` of the course's database, replaced whole: one row per block in document
  order. A block is the course, any element with a `url_name`, and any child of a chapter,
  sequential or vertical (so `wiki`, a video's `source` and a problem's inner elements are not
  blocks). `idx` counts from 0 (the course); `chapter` is the url_name of the enclosing chapter (a
  chapter's own); `parent` the url_name of the parent block (NULL for the course); `category` the
  tag. `start`, `due` and `graded` are the block's own value or else the
  nearest ancestor's (edX inheritance); `weight` is the block's own, NULL when absent, `"null"` or
  not a number (the tree keeps the string). `path` is the url_names from the chapter down to the
  block itself (`/week_1/week_1_lectures/w1_welcome/welcome_video`; `/` for the course).

The table is loaded with `SqlStore.load_table` (a staging table swapped in), not with `sql_writes`:
it must be created with its own schema, and DDL inside the completion transaction would commit it
early on MySQL. Loading is idempotent, so a crash between the load and the completion only means
the same rows are loaded again. Missing values are written as `\\N`, which both backends read as
NULL, so a display name that is literally `NULL` stays text.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from base_service import Context, Entry, IngestResult, Service
from core.courses import Courses
from core.errors import Interrupted, TerminalError, UnsafeNameError
from services.course_structure.archive import open_source
from services.course_structure.olx import (
    CourseRef,
    Node,
    OlxReader,
    Warnings,
    clean_date,
)
from services.database_state.filenames import database_name
from stores.sql.base import Column, Kind, LoadSpec
from utils.atomic import atomic_write_bytes
from utils.timeparse import parse_event_time

TARBALL_SUFFIXES = (
    "-course-prod-analytics.xml.tar.gz",
    "-course-prod-edge-analytics.xml.tar.gz",
    "-course-prod-edx-replica.xml.tar.gz",
)
AXIS_TABLE = "course_axis"
AXIS_COLUMNS: tuple[tuple[str, Kind], ...] = (
    ("course_id", "text"),
    ("idx", "int"),
    ("category", "text"),
    ("url_name", "text"),
    ("display_name", "text"),
    ("chapter", "text"),
    ("parent", "text"),
    ("graded", "int"),
    ("due", "datetime"),
    ("start", "datetime"),
    ("weight", "float"),
    ("path", "text"),
)
CONTAINERS = frozenset({"chapter", "sequential", "vertical", "videosequence"})
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})

AxisRow = list[str | int | float | None]


@dataclass(frozen=True)
class Identity:
    """Which course an export is: its edX id and its SQL database."""

    course_id: str
    dbname: str


class CourseStructureService(Service):
    name = "CourseStructure"

    def wants(self, entry: Entry) -> bool:
        if entry.area != "database_state":
            return False
        if entry.is_dir:
            return (entry.path / "course.xml").is_file()
        return entry.path.name.endswith(TARBALL_SUFFIXES)

    def ingest(self, path: Path, ctx: Context) -> IngestResult:
        warnings = Warnings()
        reader = OlxReader(open_source(path), warnings)
        ref = reader.course_ref()
        identity = identify(ref, ctx.courses(), str(path), warnings)
        element, rel = reader.course_element(ref)

        def each_chapter(done: int, total: int) -> None:
            if ctx.should_stop():
                raise Interrupted(f"{path}: stopped after {done} of {total} chapters")
            ctx.progress(0.8 * done / max(total, 1))

        tree = reader.build_root(element, rel, ref, each_chapter)
        _attach_policies(tree, reader, ref, warnings)
        tree["course_id"] = identity.course_id
        rows = axis_rows(tree, identity.course_id, warnings)
        tree["warnings"] = warnings.as_list()
        tree["children"] = tree.pop("children")  # last, for people reading the file
        if ctx.should_stop():
            raise Interrupted(f"{path}: stopped before writing")
        ctx.check_unchanged()
        loaded = _load_axis(rows, identity.dbname, ctx)
        if loaded != len(rows):
            raise TerminalError(f"{path}: {len(rows)} course_axis rows built but {loaded} loaded")
        out = ctx.settings.output_dir / "course_structure" / f"{identity.dbname.replace('_', '-')}.json"
        atomic_write_bytes(out, json.dumps(tree, ensure_ascii=True, separators=(",", ":")).encode("ascii"))
        ctx.progress(1.0)
        for warning in tree["warnings"]:
            ctx.log.warning("%s: %s", path, warning)
        ctx.log.info("%s: %s (%s) -> %s, %d blocks", path, identity.course_id, identity.dbname, out, loaded)
        return IngestResult(rows_loaded=loaded, warnings=list(tree["warnings"]))


def identify(ref: CourseRef, courses: Courses, label: str, warnings: Warnings) -> Identity:
    """The course's id and database, from courses.py where it knows the course."""
    try:
        derived = database_name(f"{ref.org}-{ref.course}-{ref.run}")
    except UnsafeNameError as exc:
        raise UnsafeNameError(f"{label}: course.xml: {exc}") from exc
    ids = (f"{ref.org}/{ref.course}/{ref.run}", f"course-v1:{ref.org}+{ref.course}+{ref.run}")
    course = courses.by_dbname(derived) or next(
        (c for c in courses.courses.values() if c.mongoname in ids), None
    )
    if course is None:
        warnings.add(f"course {ids[1]} is not in courses.py: database {derived}, course id {ids[1]}")
        return Identity(ids[1], derived)
    if course.mongoname not in ids:
        warnings.add(
            f"courses.py {course.key!r}: mongoname {course.mongoname!r} is neither {ids[0]} nor {ids[1]}"
        )
    return Identity(course.mongoname, course.dbname)


def _attach_policies(tree: Node, reader: OlxReader, ref: CourseRef, warnings: Warnings) -> None:
    """`policy` and `grading_policy` on the root; the policy fills a missing name, start or end."""
    found = reader.json_file([f"policies/{ref.run}/policy.json", "policies/course/policy.json"])
    policy: dict[str, Any] = {}
    if found is None:
        warnings.add(f"no policies/{ref.run}/policy.json (nor policies/course/policy.json)")
    else:
        data, rel = found
        keys = (
            [k for k in data if isinstance(k, str) and k.startswith("course/")]
            if isinstance(data, dict)
            else []
        )
        key = next(
            (k for k in (f"course/{ref.run}", "course/course") if k in keys),
            keys[0] if len(keys) == 1 else None,
        )
        if key is None or not isinstance(data[key], dict):
            warnings.add(f'{rel}: no "course/{ref.run}" object')
        else:
            policy = data[key]
    for name in ("display_name", "start", "end"):
        value = policy.get(name)
        if name not in tree and isinstance(value, str):
            tree[name] = str(clean_date(value))
    tree["policy"] = policy
    grading = reader.json_file(
        [f"policies/{ref.run}/grading_policy.json", "policies/course/grading_policy.json"]
    )
    if grading is None:
        warnings.add(f"no policies/{ref.run}/grading_policy.json (nor policies/course/grading_policy.json)")
    tree["grading_policy"] = grading[0] if grading is not None else {}


def axis_rows(tree: Node, course_id: str, warnings: Warnings) -> list[AxisRow]:
    """One row per block, in document order (see the module docstring for what a block is)."""
    rows: list[AxisRow] = []

    def visit(
        node: Node,
        parent: str | None,
        chapter: str | None,
        path: str,
        start: str | None,
        due: str | None,
        graded: int,
    ) -> None:
        tag = str(node.get("tag", ""))
        url_name = _text(node.get("url_name"))
        where = f"<{tag}> {url_name or '(no url_name)'}"
        if tag == "chapter":
            chapter = url_name
        start = _datetime(node.get("start"), where, "start", warnings) or start
        due = _datetime(node.get("due"), where, "due", warnings) or due
        graded = _graded(node.get("graded"), where, warnings, graded)
        if parent is not None:
            path = f"{path.rstrip('/')}/{url_name or tag}"
        rows.append(
            [
                course_id,
                len(rows),
                tag,
                url_name,
                _text(node.get("display_name")),
                chapter,
                parent,
                graded,
                due,
                start,
                _weight(node.get("weight"), where, warnings),
                path,
            ]
        )
        for child in node.get("children", []):
            if isinstance(child, dict) and ("url_name" in child or tag in CONTAINERS):
                visit(child, url_name or tag, chapter, path, start, due, graded)

    visit(tree, None, None, "/", None, None, 0)
    return rows


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _datetime(value: object, where: str, name: str, warnings: Warnings) -> str | None:
    """`YYYY-MM-DD HH:MM:SS[.ffffff]` in UTC, or None (with a warning if the value is not a date)."""
    if not isinstance(value, str) or not value.strip() or value.strip().lower() == "null":
        return None
    parsed = parse_event_time(value.strip().strip('"'))
    if parsed is None or parsed.year < 1000:
        warnings.add(f"{where}: {name} {value!r} is not a date; NULL in course_axis")
        return None
    return parsed.isoformat(sep=" ")


def _graded(value: object, where: str, warnings: Warnings, inherited: int) -> int:
    if not isinstance(value, str):
        return inherited
    if value.strip().lower() in {"true", "false"}:
        return int(value.strip().lower() == "true")
    warnings.add(f"{where}: graded {value!r} is neither true nor false; inherited value kept")
    return inherited


def _weight(value: object, where: str, warnings: Warnings) -> float | None:
    if not isinstance(value, str) or value.strip().lower() in {"", "null", "none"}:
        return None
    try:
        number = float(value)
    except ValueError:
        warnings.add(f"{where}: weight {value!r} is not a number; NULL in course_axis")
        return None
    return number if math.isfinite(number) else None


def _field(value: str | int | float | None) -> str:
    """One TSV field in MySQL LOAD DATA escaping; `\\N` is NULL."""
    if value is None:
        return "\\N"
    if isinstance(value, float):
        return repr(value)
    return str(value).translate(_ESCAPES)


def _load_axis(rows: list[AxisRow], dbname: str, ctx: Context) -> int:
    """Replace `course_axis` with `rows`, through a TSV spool in the temporary directory."""
    columns = [
        Column(name, kind, max((len(str(r[i]).encode()) for r in rows if r[i] is not None), default=0))
        for i, (name, kind) in enumerate(AXIS_COLUMNS)
    ]
    spool = ctx.settings.tmp_dir / f"{dbname}.{AXIS_TABLE}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tsv"
    spool.parent.mkdir(parents=True, exist_ok=True)
    try:
        with spool.open("w", encoding="utf-8", newline="\n") as out:
            for row in rows:
                out.write("\t".join(map(_field, row)) + "\n")
        return ctx.sql.load_table(dbname, AXIS_TABLE, LoadSpec(spool, columns, frozenset()))
    finally:
        spool.unlink(missing_ok=True)
