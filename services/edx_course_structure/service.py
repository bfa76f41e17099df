"""EdxCourseStructure: edX's course_structure JSON, checked and served to the dashboards as delivered.

Input: `*-course_structure-*-analytics.json` in `database_state` (spec 5.1: one pretty-printed JSON
object mapping block locations to their data). The file must parse as a JSON object; it is then
placed, byte for byte, at `<output_dir>/edx_course_structure/<its own name>` with an atomic write,
so the dashboards never read half a file. The bytes written are the bytes that were checked (the
file is read once). The JSON must be strict (RFC 8259) and UTF-8: `NaN`/`Infinity`, UTF-16/32 text, invalid UTF-8 and
nesting too deep to parse fail the file with a clear message (a leading UTF-8 byte order mark is
dropped from the served copy). A file that is not JSON is failed with the parser's message (line, column);
the name is checked before it becomes a path, so a crafted name cannot leave the output directory.
A file no courses.py entry names in `csjson` is still served, with a warning: the dashboards look
the file up by that field.
"""

from __future__ import annotations

import fnmatch
import json
import re
import sys
from pathlib import Path

from base_service import Context, Entry, IngestResult, Service
from core.errors import TerminalError, UnsafeNameError
from utils.atomic import atomic_write_bytes

PATTERN = "*-course_structure-*-analytics.json"
OUTPUT_FOLDER = "edx_course_structure"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+\-]{0,199}")
MAX_BYTES = 1 << 30
_JSON_KINDS: dict[type, str] = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


_UTF8_BOM = b"\xef\xbb\xbf"


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON (browsers' JSON.parse refuses it)")


def parse_strict_json(data: bytes, path: Path) -> object:
    """The value of `data` as strict JSON in UTF-8 (RFC 8259): no NaN/Infinity, no other encoding;
    every failure is a TerminalError naming the file and the place."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:4]:
        raise TerminalError(f"{path}: not valid JSON: UTF-16 or UTF-32 text, where UTF-8 is required")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TerminalError(
            f"{path}: not valid JSON: not UTF-8 text (invalid byte at offset {exc.start})"
        ) from exc
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise TerminalError(f"{path}: not valid JSON: {exc}") from exc
    except ValueError as exc:
        raise TerminalError(f"{path}: not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise TerminalError(
            f"{path}: JSON nested too deeply to be checked (more than about {sys.getrecursionlimit()} levels)"
        ) from exc


def check_file_name(name: str) -> str:
    """`name` if it can be used as a file name in the output directory, else UnsafeNameError."""
    if not _SAFE_NAME.fullmatch(name) or ".." in name or not fnmatch.fnmatchcase(name, PATTERN):
        raise UnsafeNameError(
            f"unsafe file name {name[:120]!r}: letters, digits and _ . + - only, no '..', matching {PATTERN}"
        )
    return name


class EdxCourseStructureService(Service):
    name = "EdxCourseStructure"

    def wants(self, entry: Entry) -> bool:
        return (
            entry.area == "database_state"
            and not entry.is_dir
            and fnmatch.fnmatchcase(entry.path.name, PATTERN)
        )

    def ingest(self, path: Path, ctx: Context) -> IngestResult:
        try:
            name = check_file_name(path.name)
        except UnsafeNameError as exc:
            raise UnsafeNameError(f"{path}: {exc}") from exc
        try:
            if path.stat().st_size > MAX_BYTES:
                raise TerminalError(f"{path}: larger than {MAX_BYTES} bytes")
            data = path.read_bytes()
        except OSError as exc:
            raise TerminalError(f"{path}: cannot be read: {exc}") from exc
        if data.startswith(_UTF8_BOM):
            data = data[len(_UTF8_BOM) :]  # RFC 8259 lets a parser ignore it; the served file has none
        parsed = parse_strict_json(data, path)
        if not isinstance(parsed, dict):
            kind = _JSON_KINDS.get(type(parsed), type(parsed).__name__)
            raise TerminalError(f"{path}: the JSON is {kind}, where an object was expected")
        ctx.check_unchanged()
        warnings = []
        if not any(course.csjson == name for course in ctx.courses().courses.values()):
            warnings.append(f"{name}: no course in courses.py names this file in csjson")
        out = ctx.settings.output_dir / OUTPUT_FOLDER / name
        atomic_write_bytes(out, data)
        for warning in warnings:
            ctx.log.warning("%s: %s", path, warning)
        ctx.log.info("%s: %d blocks -> %s", path, len(parsed), out)
        return IngestResult(rows_loaded=len(parsed), warnings=warnings)
