"""One tracking-log line -> one document, or the reason it is rejected.

What is kept: every field of the event as in the file (`event` stays a string where it is one).
What is added: `_id` (made from the line itself, see `ids.py`, so that the same line loaded twice
is the same document), `time_date` (UTC datetime from `time`), `country` and
`subdivision` (GeoIP), `geoip` (the build time of the GeoIP database used, so that a newer one can
be applied later), `source_file` and `source_line`.

Field names that MongoDB cannot store are mapped, at any depth, as the original did: a leading `$`
becomes `_` and every `.` becomes `-` (`{"$set": 1, "a.b": 2}` -> `{"_set": 1, "a-b": 2}`). An
event's own `_id` (2012-era logs) is kept as `mongoid`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

import orjson
from bson import ObjectId

from utils.native import native
from utils.timeparse import parse_event_time

TRUNCATION_LENGTHS = (512, 2043, 10000, 50000)
_SYSLOG = re.compile(rb"^[^{]*?(\{.*\})\s*$", re.S)
_COURSE_IN_PATH = re.compile(r"/courses/(course-v1:[^/?#]+|[^/?#]+/[^/?#]+/[^/?#]+)/")
_COURSE_IN_BLOCK = re.compile(r"block-v1:([^+/]+)\+([^+/]+)\+([^+/]+)\+type@")
MAX_DEPTH = 100  # MongoDB's limit on the nesting of a document
INT64 = (-(2**63), 2**63 - 1)
MAX_NAME = 255  # the VARCHAR(255) of person_course_day's course_id and username
# Only lines with such an escape can hold a lone surrogate or a NUL in a field name, only lines with
# so many brackets a deep nesting: the others skip the walk that checks them.
_SUSPECT = re.compile(r"\\u(?:[dD][89a-fA-F]|0000)", re.ASCII)
# orjson reads an integer beyond 64 bits as a float where json (with `_int64`) rejects the line, and
# one in 2**63..2**64-1 as an int: lines with 19 digits in a row are left to json. (Found by mapping
# digits to "0" and the rest to " ": a C pass and a substring search, far cheaper than a regex.)
# The same pass maps "{" and "[" to "{", so that one count of "{" gives the brackets that open a level.
_DIGITS_ONLY = bytes(0x30 if 0x30 <= b <= 0x39 else 0x7B if b in b"{[" else 0x20 for b in range(256))
_LONG_DIGITS = b"0" * 19


class _TooBig(ValueError):
    pass


def _int64(text: str) -> int:
    """json's parse_int: an integer beyond 64 bits cannot be stored (BSON) nor counted (BIGINT)."""
    value = int(text)
    if len(text) > 18 and not INT64[0] <= value <= INT64[1]:
        raise _TooBig(f"integer {text[:40]} does not fit in 64 bits")
    return value


_decoder = json.JSONDecoder(parse_int=_int64)


Scan = Callable[[bytes, int], tuple[dict[str, Any], str, bytes] | None]
# (key, head, tail, time, course, user id, username, event name, ip) of a line
Ready = tuple[str, str, str, datetime | None, str, int | None, str, str, str | None]
# ip -> (the place fields' text, country, subdivision)
Places = dict[str | None, tuple[str, str | None, str | None]]
Prepared = tuple[list[tuple[str, str]], list[Any], list[int], int, list[tuple[int, Ready | None]]]
# the last argument: the `CountedRows` the counted events go to (else they are returned as tuples)
# and the list the indexes of the enrolment events taken go to (without it, they are not taken)
Prepare = Callable[[list[bytes], int, bool, str, Places, Any, list[int]], Prepared]
# (counted, numbers, size, declined, missing): the documents are appended to the `BsonBatch` given
PreparedBson = tuple[list[Any], list[int], int, list[int], list[tuple[int, str | None]]]
PrepareBson = Callable[
    [
        list[bytes],
        int,
        bool,
        str,
        int | None,
        Places,
        Any,
        Any,
        list[int],
        Callable[[str | None], tuple[str, str | None, str | None]],
    ],
    PreparedBson,
]


# The compiled first pass of a line, where it is built: `scan(raw, size)` gives `(fields, text,
# digest)` for a line whose document is the line as written (what `parse_with_text` gives as
# `text`), where `fields` is the event restricted to `time`, `username`, `ip`, `event_type`, `name`,
# `page` and `context`'s `user_id`, `course_id`, `path`, and `digest` is
# `hashlib.blake2b(raw, digest_size=size).digest()`; None for every other line, which
# `parse_with_text` then reads. Without it the loader gives the same documents, more slowly (bench/README.md).
native_scan = cast(Scan | None, native("scan"))

# Its whole pass over a block of lines, for the embedded store where the stored text is the line's
# own: `prepare(lines, first, time_first, tail_prefix, places, rows, noted)` gives the batch
# rows, the counted tuples (appended to `rows` instead, a `CountedRows`, if it is given) and the
# line numbers of the common lines whose ip is in `places`, and for the others
# `(index, ready)`: None (left to the per-line path) or the `Ready` pieces of a line whose ip is not
# yet in `places`. Given `noted` (a list), it also takes the enrolment events, and appends the
# indexes of those it takes to it: their `event` is read for `DerivedCounts.note` by the loader.
# What it computes is what `parse_event_time`, `course_of`, `user_of`, `event_name` and
# `content_id` give; see native/eventscan/src/block.rs for the lines it leaves to the per-line
# path.
native_prepare = cast(Prepare | None, native("prepare"))

# The same for MongoDB: `prepare_bson(lines, first, time_first, source_file, geoip, places, batch,
# rows, noted, place)` (the lines numbered from `first`) appends the BSON documents (what pymongo
# makes of the loader's dict, `_id` first) to `batch`, a `BsonBatch`, and gives the counted tuples
# (or none, appended to `rows` if it is given) and the line numbers of the common lines (one for
# each document), the indexes of the lines left to the per-line path and `(index, ip)` of those
# whose ip is not in `places` (none where `place(ip)`, called for such an ip, gives its place);
# see native/eventscan/src/bson.rs.
native_prepare_bson = cast(PrepareBson | None, native("prepare_bson"))


def parse(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """The event of a line (without LF), or None and the reason it is rejected.

    For an event stored exactly as in the file (no key mapped), the reason is "" and the JSON
    text of the event is in `parse.text` (see `parse_with_text`)."""
    event, reason, _ = parse_with_text(raw)
    return event, reason


def parse_with_text(raw: bytes) -> tuple[dict[str, Any] | None, str, str | None]:
    """`parse`, plus the event's JSON text when the document may be stored as that text."""
    body = raw[:-1] if raw.endswith(b"\r") else raw
    if not body.strip():
        return None, "blank line", None
    if body.lstrip().startswith(b"#"):
        return None, "comment line", None
    if not body.startswith(b"{"):
        match = _SYSLOG.match(body)
        if match is None:
            return None, _not_an_object(body), None
        body = match.group(1)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"invalid UTF-8 at byte {exc.start}", None
    event, digits = _fast_decode(body)
    plain = event is not None  # orjson refuses NaN and Infinity: such a line is left to json
    try:
        if event is None:
            event = _decoder.decode(text)
    except RecursionError:
        return None, f"nested deeper than {MAX_DEPTH} levels", None
    except _TooBig as exc:
        return None, str(exc), None
    except json.JSONDecodeError as exc:
        if len(raw) in TRUNCATION_LENGTHS or exc.pos >= len(text) - 1:
            return None, f"truncated line ({len(raw)} bytes): {exc.msg}", None
        return None, f"not JSON: {exc.msg} at column {exc.colno}", None
    if not isinstance(event, dict):
        return None, "not a JSON object", None
    problem = _unstorable(event, body, text, digits)
    if problem:
        return None, problem, None
    as_is: str | None = text
    if "_id" in event:
        event["mongoid"] = _mongoid(event.pop("_id"))
        as_is = None
    if _needs_mapping(event):
        event = _map_keys(event)
        as_is = None
    elif as_is is not None and not plain and ("NaN" in text or "Infinity" in text):
        as_is = None  # not JSON for SQLite's json functions: re-encoded by the store's encoder
    return event, "", as_is


def _fast_decode(body: bytes) -> tuple[dict[str, Any] | None, bytes]:
    """(orjson's reading of an object line where it is certain to equal `_decoder`'s, else None;
    the line with its digits as "0", its brackets as "{" and the rest as " ", see `_unstorable`).

    Left to json: lines with a long digit run (see `_LONG_DIGITS`), and whatever orjson refuses
    (NaN and Infinity, which json reads; lone surrogates; every malformed line, so that the reasons
    given are json's)."""
    digits = body.translate(_DIGITS_ONLY)
    if _LONG_DIGITS in digits:
        return None, digits
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, digits
    return (event if type(event) is dict else None), digits


def _needs_mapping(event: dict[str, Any]) -> bool:
    """True if a key at any depth starts with `$` or holds a `.`.

    Each dict's keys are checked in one joined string (C speed); only dicts and lists are descended,
    every element of a list (a dict after a number, `[1, {"a.b": 2}]`, is checked too)."""
    stack: list[Any] = [event]
    while stack:
        current = stack.pop()
        if type(current) is list:
            stack.extend(v for v in current if type(v) is dict or type(v) is list)
            continue
        keys = "\x00" + "\x00".join(current)
        if "." in keys or "\x00$" in keys:
            return True
        for value in current.values():
            kind = type(value)
            if kind is dict or (kind is list and value):
                stack.append(value)
    return False


def _unstorable(event: dict[str, Any], body: bytes, text: str, digits: bytes) -> str:
    """Why MongoDB could not store the event (and SQLite should not either), or "".

    `digits` is `body` through `_DIGITS_ONLY`, where both brackets that open a level are "{"."""
    deep = digits.count(b"{") > MAX_DEPTH
    suspect = b"\\u" in body and _SUSPECT.search(text) is not None
    if not (deep or suspect):
        return ""
    stack: list[tuple[Any, int]] = [(event, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        if type(node) is dict:
            for key, value in node.items():
                if suspect and ("\x00" in key or not _utf8(key)):
                    return f"invalid field name {_short(key)} (NUL or lone surrogate)"
                stack.append((value, depth + 1))
        elif type(node) is list:
            stack.extend((value, depth + 1) for value in node)
        elif suspect and type(node) is str and not _utf8(node):
            return f"invalid Unicode (lone surrogate) in {_short(node)}"
    return ""


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def aggregate_problem(course: str, user_id: int | None, username: str, when: Any) -> str:
    """Why the per-day row of an event could not be written (SQL column limits), or ""."""
    if user_id is not None and not INT64[0] <= user_id <= INT64[1]:
        return f"context.user_id {_short(user_id)} does not fit in 64 bits"
    if len(username) > MAX_NAME:
        return f"username longer than {MAX_NAME} characters"
    if len(course) > MAX_NAME:
        return f"course id longer than {MAX_NAME} characters"
    if when is not None and when.year < 1000:
        return f"time {when.isoformat()} is before the year 1000 (not an SQL DATETIME)"
    return ""


def _not_an_object(body: bytes) -> str:
    try:
        json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return "not JSON"
    return "not a JSON object"


def _map_keys(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key.startswith("$") and key != "$oid":
                key = "_" + key[1:]
            if "." in key:
                key = key.replace(".", "-")
            out[key] = _map_keys(item)
        return out
    if isinstance(value, list):
        return [_map_keys(v) for v in value]
    return value


def _mongoid(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"$oid"}:
        try:
            return ObjectId(value["$oid"])
        except (TypeError, ValueError):
            return {"_oid": value["$oid"]}
    return _map_keys(value) if isinstance(value, dict) else value


def event_time(event: dict[str, Any]) -> Any:
    return parse_event_time(event.get("time"))


def course_of(event: dict[str, Any]) -> str:
    """`context.course_id`, else the course key in the page URL or the implicit event's path."""
    context = event.get("context")
    if isinstance(context, dict):
        course = context.get("course_id")
        if isinstance(course, str) and course:
            return course
        path = context.get("path")
    else:
        path = None
    for candidate in (event.get("page"), event.get("event_type"), path):
        if not isinstance(candidate, str) or ("/courses/" not in candidate and "block-v1:" not in candidate):
            continue
        match = _COURSE_IN_PATH.search(candidate)
        if match:
            return match.group(1)
        block = _COURSE_IN_BLOCK.search(candidate)
        if block:
            return "course-v1:" + "+".join(block.groups())
    return ""


def user_of(event: dict[str, Any]) -> tuple[int | None, str]:
    """(`context.user_id` as an int if it is one, `username`)."""
    context = event.get("context")
    user_id = context.get("user_id") if type(context) is dict else None
    if type(user_id) is not int:
        user_id = int(user_id) if type(user_id) is str and user_id.isdigit() else None
    username = event.get("username")
    if type(username) is not str:
        username = ""
    elif username[-1:].isspace():
        username = username.strip()
    return user_id, username


def event_name(event: dict[str, Any]) -> str:
    """`event_type` (the name the dashboards match on); `name` where there is no event_type."""
    value = event.get("event_type") or event.get("name") or ""
    return value if isinstance(value, str) else ""
