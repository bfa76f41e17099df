"""One tracking-log line -> one document, or the reason it is rejected.

What is kept: every field of the event as in the file (`event` stays a string where it is one).
What is added: `_id` (an ObjectId made of the first 12 bytes of the line's blake2b digest, so the
same line loaded twice is the same document), `time_date` (UTC datetime from `time`), `country` and
`subdivision` (GeoIP), `geoip` (the build time of the GeoIP database used, so that a newer one can
be applied later), `source_file` and `source_line`.

Field names that MongoDB cannot store are mapped, at any depth, as the original did: a leading `$`
becomes `_` and every `.` becomes `-` (`{"$set": 1, "a.b": 2}` -> `{"_set": 1, "a-b": 2}`). An
event's own `_id` (2012-era logs) is kept as `mongoid`.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from bson import ObjectId

from utils.timeparse import parse_event_time

TRUNCATION_LENGTHS = (512, 2043, 10000, 50000)
_SYSLOG = re.compile(rb"^[^{]*?(\{.*\})\s*$", re.S)
_COURSE_IN_PATH = re.compile(r"/courses/(course-v1:[^/?#]+|[^/?#]+/[^/?#]+/[^/?#]+)/")
_COURSE_IN_BLOCK = re.compile(r"block-v1:([^+/]+)\+([^+/]+)\+([^+/]+)\+type@")
_decoder = json.JSONDecoder()


def parse(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """The event of a line (without LF), or None and the reason it is rejected."""
    body = raw[:-1] if raw.endswith(b"\r") else raw
    if not body.strip():
        return None, "blank line"
    if body.lstrip().startswith(b"#"):
        return None, "comment line"
    if not body.startswith(b"{"):
        match = _SYSLOG.match(body)
        if match is None:
            return None, _not_an_object(body)
        body = match.group(1)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"invalid UTF-8 at byte {exc.start}"
    try:
        event = _decoder.decode(text)
    except json.JSONDecodeError as exc:
        if len(raw) in TRUNCATION_LENGTHS or exc.pos >= len(text) - 1:
            return None, f"truncated line ({len(raw)} bytes): {exc.msg}"
        return None, f"not JSON: {exc.msg} at column {exc.colno}"
    if not isinstance(event, dict):
        return None, "not a JSON object"
    if "_id" in event:
        event["mongoid"] = _mongoid(event.pop("_id"))
    if _needs_mapping(event):
        event = _map_keys(event)
    return event, ""


def _needs_mapping(event: dict[str, Any]) -> bool:
    """True if a key at any depth starts with `$` or holds a `.` (most events: a few dozen keys)."""
    stack = [event]
    while stack:
        for key, value in stack.pop().items():
            if "." in key or key[:1] == "$":
                return True
            kind = type(value)
            if kind is dict:
                stack.append(value)
            elif kind is list:
                stack.extend(v for v in value if type(v) is dict)
    return False


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


def content_id(raw: bytes) -> ObjectId:
    """The document id of a line: the same line always gives the same id."""
    return ObjectId(hashlib.blake2b(raw, digest_size=12).digest())


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
    user_id: Any = context.get("user_id") if isinstance(context, dict) else None
    if isinstance(user_id, str) and user_id.isdigit():
        user_id = int(user_id)
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        user_id = None
    username = event.get("username")
    if not isinstance(username, str):
        username = ""
    return user_id, username.strip()


def event_name(event: dict[str, Any]) -> str:
    """`event_type` (the name the dashboards match on); `name` where there is no event_type."""
    value = event.get("event_type") or event.get("name") or ""
    return value if isinstance(value, str) else ""
