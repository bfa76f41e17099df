"""Reading a mongoexport `.mongo` forum file: one document per line, Extended JSON to real types.

Every mongoexport era edX used is read (edx-data-package.md 3.2), so that both document backends
store the same values:

* `{"$oid": hex}` -> `bson.ObjectId`;
* `{"$date": ...}` -> naive UTC `datetime` at millisecond precision, from integer milliseconds
  (also negative, before 1970, and as a string of digits), `{"$numberLong": "..."}`, or an ISO string
  `YYYY-MM-DDTHH:MM:SS[.fff]` followed by `Z`, `+HHMM`/`-0500` or `+HH:MM` (a time without a zone is
  refused: no mongoexport wrote one, and guessing it would shift posts by hours);
* `{"$numberLong": "n"}` and `{"$numberInt": "n"}` -> int, `{"$numberDouble": "x"}` -> float.

Any other Extended JSON form (`{"$regex": ...}`, `{"$binary": ...}`, a `$date` that is not a date ...)
makes the line bad. A key that starts with `$` but is not an Extended JSON keyword, or that contains
`.`, cannot be stored in MongoDB as it is; it is mapped as the clickstream maps event fields: a
leading `$` becomes `_` and every `.` becomes `-` (`{"$set.x": 1}` -> `{"_set-x": 1}`). If the mapped
name is taken (or is `_id`), `_` is appended until it is free, so no value is lost and no field
becomes the document's identity by accident. Integers beyond 64 bits, lone surrogates and NUL in a
field name are refused here, because MongoDB cannot store them and SQLite would.

`parent_ids` is always there on a `Comment`, because readers rely on it: a Comment without it (or
with null) gets `[parent_id]` if it has a `parent_id` (a reply) and `[]` otherwise (a response).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId

from utils.lines import DEFAULT_MAX_LINE, TooLong, iter_line_blocks

SUFFIX = ".mongo"
INT64 = (-(2**63), 2**63 - 1)
INT32 = (-(2**31), 2**31 - 1)
EPOCH = datetime(1970, 1, 1)
_UTF8_BOM = b"\xef\xbb\xbf"

# Keys that open an Extended JSON form (spec "MongoDB Extended JSON v2" and the legacy forms). A dict
# holding one of them is a form, never data; `$id`, `$type`, `$options`, `$scope` and `$db` appear only
# beside one of these, so alone they are ordinary keys and get mapped.
_FORM_KEYS = frozenset(
    {
        "$oid",
        "$date",
        "$numberLong",
        "$numberInt",
        "$numberDouble",
        "$numberDecimal",
        "$binary",
        "$uuid",
        "$regex",
        "$regularExpression",
        "$timestamp",
        "$minKey",
        "$maxKey",
        "$undefined",
        "$symbol",
        "$code",
        "$dbPointer",
        "$ref",
    }
)
_ISO = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:(Z)|([+-])(\d\d):?(\d\d))",
    re.ASCII,
)
_INTEGER = re.compile(r"-?\d{1,19}", re.ASCII)
# Only lines with such an escape can hold a lone surrogate or a NUL in a field name; they alone get the
# full walk (`_check_storable`). mongoexport writes UTF-8, so `\u` escapes are rare.
_SUSPECT = re.compile(r"\\u(?:[dD][89a-fA-F]|0000)", re.ASCII)


class BadLine(ValueError):
    """A line that is not a storable forum document; `reason` says why (for the rejects file)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def collection_name(path: Path) -> str:
    """The collection of a forum file: its name without `.mongo` (the registry's discussiontable)."""
    name = path.name
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name


def iter_lines(
    path: Path, max_line: int = DEFAULT_MAX_LINE, too_long: TooLong | None = None
) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line without its LF), read in large blocks; lines longer than `max_line`
    go to `too_long` instead (see utils.lines)."""
    blocks = (
        iter_line_blocks(path, None, max_line, too_long)
        if too_long
        else iter_line_blocks(path, None, max_line)
    )
    for first, lines in blocks:
        yield from enumerate(lines, first)


def parse_line(raw: bytes, line_no: int = 0) -> dict[str, Any]:
    """One line as a document with real types, or BadLine with the reason."""
    if line_no == 1 and raw.startswith(_UTF8_BOM):
        raw = raw[len(_UTF8_BOM) :]
    if not raw or raw.isspace():
        raise BadLine("blank line")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadLine(f"invalid UTF-8 at byte {exc.start}") from None
    try:
        doc = json.loads(text, object_hook=_hook, parse_int=_int64)
    except json.JSONDecodeError as exc:
        raise BadLine(f"not JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise BadLine("not storable: nested too deeply") from None
    except ValueError as exc:  # BadLine from the hook, or an integer too long for Python
        raise BadLine(exc.reason if isinstance(exc, BadLine) else f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadLine(f"not a JSON object but {_kind(doc)}")
    if "_id" not in doc:
        raise BadLine("no _id")
    if isinstance(doc["_id"], list):
        raise BadLine("_id is an array")
    if "\\u" in text and _SUSPECT.search(text):
        _check_storable(doc)
    if doc.get("_type") == "Comment":
        _ensure_parent_ids(doc)
    return doc


def _int64(text: str) -> int:
    """json's parse_int: BSON holds 64-bit integers only (SQLite's JSON would keep more: refuse both)."""
    value = int(text)
    if len(text) > 18 and not INT64[0] <= value <= INT64[1]:
        raise BadLine(f"integer {_short(text)} does not fit in 64 bits")
    return value


def parse_date(value: object) -> datetime:
    """The naive UTC datetime of a `$date` value (its `$numberLong` already made an int)."""
    if type(value) is int:
        return _from_millis(value)
    if isinstance(value, str):
        if _INTEGER.fullmatch(value):
            return _from_millis(int(value))
        found = _ISO.fullmatch(value)
        if found is not None:
            return _from_iso(found)
    raise BadLine(f"invalid $date: {_short(value)}")


def _from_millis(millis: int) -> datetime:
    try:
        return EPOCH + timedelta(milliseconds=millis)
    except OverflowError:
        raise BadLine(f"invalid $date: {millis} ms is out of range") from None


def _from_iso(found: re.Match[str]) -> datetime:
    year, month, day, hour, minute, second, fraction, utc, sign, off_h, off_m = found.groups()
    try:
        millis = int((fraction or "0").ljust(3, "0")[:3])
        value = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), millis * 1000)
        if not utc:
            hours, minutes = int(off_h), int(off_m)
            if hours > 23 or minutes > 59:
                raise ValueError(f"offset {sign}{off_h}{off_m}")
            offset = timedelta(hours=hours, minutes=minutes)
            value = value - offset if sign == "+" else value + offset
    except (ValueError, OverflowError) as exc:
        raise BadLine(f"invalid $date: {found.string!r} ({exc})") from None
    return value


def _object_id(value: object) -> ObjectId:
    if isinstance(value, str):
        try:
            return ObjectId(value)
        except InvalidId:
            pass
    raise BadLine(f"invalid $oid: {_short(value)}")


def _number(kind: str, low_high: tuple[int, int]) -> Callable[[object], int]:
    def convert(value: object) -> int:
        if isinstance(value, str) and _INTEGER.fullmatch(value):
            number = int(value)
            if low_high[0] <= number <= low_high[1]:
                return number
        raise BadLine(f"invalid {kind}: {_short(value)}")

    return convert


def _double(value: object) -> float:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise BadLine(f"invalid $numberDouble: {_short(value)}")


_CONVERT: dict[str, Callable[[object], Any]] = {
    "$oid": _object_id,
    "$date": parse_date,
    "$numberLong": _number("$numberLong", INT64),
    "$numberInt": _number("$numberInt", INT32),
    "$numberDouble": _double,
}


def _hook(obj: dict[str, Any]) -> Any:
    """json's object_hook: called innermost first, so a `$date`'s `$numberLong` is an int by then."""
    keys = "".join(obj)  # one C-speed test for the common case: nothing to convert or map
    if "$" not in keys and "." not in keys:
        return obj
    if len(obj) == 1:
        convert = _CONVERT.get(keys)
        if convert is not None:
            return convert(obj[keys])
    if not _FORM_KEYS.isdisjoint(obj):
        raise BadLine(f"unsupported extended JSON form {{{', '.join(obj)}}}")
    return _mapped(obj)


def map_key(key: str) -> str:
    """A storable field name: leading `$` -> `_`, every `.` -> `-`."""
    if key[:1] == "$":
        key = "_" + key[1:]
    return key.replace(".", "-")


def _mapped(obj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key[:1] == "$" or "." in key:
            new = map_key(key)
            while new in obj or new in out or new == "_id":  # never becomes the document's identity
                new += "_"
            out[new] = value
        else:
            out[key] = value
    return out


def _check_storable(node: Any) -> None:
    """Refuse what BSON cannot hold, the same way on both backends: lone surrogates (not Unicode, so
    not UTF-8), NUL in a field name."""
    if isinstance(node, dict):
        for key, value in node.items():
            if "\x00" in key:
                raise BadLine(f"NUL character in field name {key!r}")
            _check_storable(key)
            _check_storable(value)
    elif isinstance(node, list):
        for value in node:
            _check_storable(value)
    elif isinstance(node, str):
        try:
            node.encode("utf-8")
        except UnicodeEncodeError:
            raise BadLine(f"invalid Unicode (lone surrogate) in {_short(node)}") from None


def _ensure_parent_ids(doc: dict[str, Any]) -> None:
    parent_ids = doc.get("parent_ids")
    if parent_ids is None:
        parent = doc.get("parent_id")
        doc["parent_ids"] = [] if parent is None else [parent]
    elif isinstance(parent_ids, ObjectId):
        doc["parent_ids"] = [parent_ids]
    elif not isinstance(parent_ids, list):
        raise BadLine(f"parent_ids is {_kind(parent_ids)}, not a list of ids")


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
