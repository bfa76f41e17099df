"""The compiled pass over a block of lines (`eventscan.prepare`) against the loader's Python steps.

`prepare` may leave any line to the per-line path; for a line it takes, every value it gives must
be what the Python steps give: the `_id` key (`content_id`), the stored text (`_Loader._encoded`'s
splice of the added fields into the line as written), the time (`parse_event_time`), the course
(`course_of`), the user (`user_of`), the event name (`event_name`) and the ip. The whole-ingest
comparison with and without the compiled pass is in test_eventscan.py.
"""

from __future__ import annotations

import itertools
import json
import os
import random
from collections.abc import Callable
from typing import Any

import bson
import pytest
from bson import ObjectId
from bson.raw_bson import RawBSONDocument
from pymongo import message as pymongo_message
from pymongo.compression_support import ZlibContext

from services.clickstream.derived_counts import ENROLMENT
from services.clickstream.events import (
    aggregate_problem,
    course_of,
    event_name,
    parse_with_text,
    user_of,
)
from services.clickstream.ids import content_id
from stores.documents.mongo import _routed, _routes, _runs_sent_as_documents
from utils.timeparse import TimeOutOfRange, parse_event_time

try:
    from eventscan import (  # type: ignore[import-not-found, unused-ignore]
        Bson,
        BsonBatch,
        CountedRows,
        prepare,
    )
    from eventscan import prepare_bson as into_batch
except ImportError:  # not built: scripts/test.sh builds it and sets OPTIMUS_REQUIRE_NATIVE
    if os.environ.get("OPTIMUS_REQUIRE_NATIVE") == "1":
        raise
    pytest.skip("native/eventscan is not built", allow_module_level=True)


def prepare_bson(lines: list[bytes], first: int, *args: Any) -> tuple[Any, ...]:
    """`prepare_bson` (`lines, first, time_first, source_file, geoip, places`, then `rows, noted,
    place`) into a new `BsonBatch`: its documents (`Bson`s, `batch[i]`), then what it returned."""
    batch = BsonBatch()
    time_first, source_file, geoip, places, *rest = args
    returned = into_batch(lines, first, time_first, source_file, geoip, places, batch, *rest)
    return (list(batch), *returned)


TAIL = ',"geoip":1700000000,"source_file":"/data/x-2015-06-01.log.gz","source_line":'

TIMES: list[Any] = [
    "2015-05-30T10:00:01.000001+00:00",
    "2015-05-30T10:00:01+00:00",
    "2015-05-30T10:00:01.5Z",
    "2015-05-30 10:00:01.123",
    "2015-05-30T10:00:01.9999999+00:00",  # 7 digits: cut by Python's lenient pass
    "2015-05-30T10:00:01+01:00",
    "2015-05-30T10:00:01+0000",
    "2015-05-30T10:00:01,5",
    "2015-05-30x10:00:01",
    "2015-05-30T10:00",
    "2015-05-30",
    "2016-02-29T23:59:59.999999Z",
    "2015-02-29T00:00:00",
    "2015-05-30T24:00:00",
    "2015-05-30T10:60:00",
    "2015-05-30T10:00:60",
    "1969-12-31T23:59:59.999999+00:00",
    "1970-01-01T00:00:00+00:00",
    "2106-02-07T06:28:15.999999+00:00",
    "2106-02-07T06:28:16+00:00",
    "0999-12-31T23:59:59",
    "1000-01-01T00:00:00",
    "9999-12-31T23:59:59.999999Z",
    "0001-01-01T00:00:00+05:00",
    " 2015-05-30T10:00:01",
    "2015-05-30T10:00:01 ",
    "2015-05-30T10:00:01.+00:00",
    "2015-05-30T10:00:01.12a",
    "\u0662015-05-30T10:00:01",
    "short",
    "",
    None,
    "<absent>",
]
USER_IDS: list[Any] = [
    42,
    0,
    -5,
    2**63 - 1,
    -(2**63),
    "42",
    "0042",
    "",
    "abc",
    "4 2",
    "\u0664\u0662",
    "99999999999999999999",
    "9223372036854775807",
    "9223372036854775808",
    None,
    "<absent>",
]
USERNAMES: list[Any] = [
    "anna",
    "anna ",
    " anna",
    "anna\t",
    "anna\u3000",
    "anna\x1c",
    "\u00e1nna",
    "\u540d\u524d",
    "a" * 255,
    "a" * 256,
    "\u00e9" * 255,
    "",
    None,
    "<absent>",
]
COURSES: list[Any] = [
    "course-v1:UQx+X+1T",
    "UQx/X/2014",
    "",
    None,
    "c" * 255,
    "c" * 256,
    "\u00e7" * 200,
    "<absent>",
]
NAMES: list[tuple[Any, Any]] = [
    ("play_video", "<absent>"),
    ("", "edx.video.played"),
    (None, "edx.video.played"),
    ("<absent>", "edx.video.played"),
    ("<absent>", "<absent>"),
    ("", ""),
    ("edx.course.enrollment.activated", "<absent>"),
    ("/courses/course-v1:UQx+X+1T/courseware", "<absent>"),
    ("edx.forum.thread.created", None),
]
IPS: list[Any] = ["1.2.3.4", "", "::1", None, "<absent>", "2001:db8::1"]
PAGES: list[Any] = [None, "https://x/courses/course-v1:UQx+P+2T/about", "<absent>"]
PATHS: list[Any] = ["/event", "/courses/UQx/Y/2015/xblock/", "<absent>"]


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value != "<absent>":
        target[key] = value


def _pick(rng: random.Random, options: list[Any]) -> Any:
    """The first (common) option half the time, else any."""
    return options[0] if rng.random() < 0.5 else rng.choice(options)


def _event(rng: random.Random) -> dict[str, Any]:
    event: dict[str, Any] = {"agent": "Mozilla/5.0 (caf\u00e9)", "event": '{"id": "v1"}'}
    kind, name = _pick(rng, NAMES)
    for key, value in (
        ("time", _pick(rng, TIMES)),
        ("username", _pick(rng, USERNAMES)),
        ("event_type", kind),
        ("name", name),
        ("ip", _pick(rng, IPS)),
        ("page", _pick(rng, PAGES)),
    ):
        _put(event, key, value)
    shape = rng.random()
    if shape < 0.05:
        event["context"] = None
    elif shape < 0.1:
        pass
    else:
        context: dict[str, Any] = {"org_id": "UQx"}
        _put(context, "user_id", _pick(rng, USER_IDS))
        _put(context, "course_id", _pick(rng, COURSES))
        _put(context, "path", _pick(rng, PATHS))
        event["context"] = context
    keys = list(event)
    rng.shuffle(keys)
    return {key: event[key] for key in keys}


def python_steps(raw: bytes) -> tuple[dict[str, Any], str, Any, int | None, str, str] | None:
    """(event, text, time, user id, username, course) as the loader's Python steps read a line it
    stores as written; None if it rejects the line or stores it otherwise (such a line the
    compiled pass must leave to the per-line path)."""
    event, _, text = parse_with_text(raw)
    if event is None or text is None:
        return None
    try:
        when = parse_event_time(event.get("time"))
    except TimeOutOfRange:
        return None
    user_id, username = user_of(event)
    course = course_of(event)
    if aggregate_problem(course, user_id, username, when):
        return None
    return event, text, when, user_id, username, course


def expected(raw: bytes, line: int, time_first: bool) -> tuple[Any, ...] | None:
    """What the loader's Python steps make of a line for `prepare` (see `python_steps`)."""
    steps = python_steps(raw)
    if steps is None:
        return None
    event, text, when, user_id, username, course = steps
    oid = content_id(raw, when, time_first).hex()
    if when is None:
        time_date = ',"time_date":null'
    else:
        time_date = f',"time_date":{{"$date":"{when.isoformat(timespec="milliseconds")}Z"}}'
    rest = text[1:].lstrip()
    head = '{"_id":{"$oid":"' + oid + '"}' + time_date
    tail = TAIL + str(line) + (rest if rest.startswith("}") else "," + rest)
    ip = event.get("ip")
    return ("o" + oid, head, tail, when, course, user_id, username, event_name(event), ip)


def check_block(lines: list[bytes], first: int, time_first: bool) -> int:
    """Asserts that every line `prepare` takes is what the Python steps make of it, given in
    `rest` while its ip has no place, in the batch rows once it has one; the number taken."""
    rows, counted, numbers, size, rest = prepare(lines, first, time_first, TAIL, {})
    assert rows == counted == numbers == [] and size == 0
    assert [index for index, _ in rest] == list(range(len(lines)))
    places: dict[str | None, tuple[str, str | None, str | None]] = {}
    want_rows, want_counted, want_numbers, want_size, want_rest = [], [], [], 0, []
    for index, ready in rest:
        if ready is None:
            want_rest.append((index, None))
            continue
        want = expected(lines[index], first + index, time_first)
        assert ready == want, lines[index]
        assert want is not None
        assert [type(v) for v in ready] == [type(v) for v in want], lines[index]
        assert not ready[7].startswith(ENROLMENT)  # read whole by the per-line path
        key, head, tail, when, course, user_id, username, name, ip = want
        country = None if ip is None else "AU" if len(ip) % 2 else ""
        place = "" if country is None else f',"country":"{country}"'
        places[ip] = (place, country, None)
        want_rows.append((key, head + place + tail))
        want_counted.append((course, user_id, username, when, name, country, ip))
        want_numbers.append(first + index)
        want_size += len(lines[index])
        json.loads(head + place + tail)  # the splice is JSON
    assert prepare(lines, first, time_first, TAIL, places) == (
        want_rows,
        want_counted,
        want_numbers,
        want_size,
        want_rest,
    )
    # with a `CountedRows`, the counted events go there instead
    counted_rows = CountedRows()
    assert prepare(lines, first, time_first, TAIL, places, counted_rows) == (
        want_rows,
        [],
        want_numbers,
        want_size,
        want_rest,
    )
    assert counted_rows.tuples() == want_counted
    return len(want_rows)


def test_random_events_are_left_to_python_or_given_as_python_gives_them() -> None:
    rng = random.Random(3)
    lines = [json.dumps(_event(rng), ensure_ascii=rng.random() < 0.5).encode() for _ in range(20000)]
    taken = sum(
        check_block(lines[start : start + 1000], 1 + start, time_first)
        for start, time_first in zip(range(0, len(lines), 1000), itertools.cycle((True, False)))
    )
    assert taken > 3000


def test_the_common_line_is_taken_and_a_whole_block_keeps_line_order() -> None:
    common = {
        "username": "anna",
        "event_type": "play_video",
        "ip": "1.2.3.4",
        "context": {"course_id": "course-v1:UQx+X+1T", "user_id": 42},
        "time": "2015-05-30T10:00:01.000001+00:00",
        "event": "{}",
    }
    lines = [json.dumps({**common, "n": n}).encode() for n in range(50)]
    lines[7] = b"not json"
    lines[9] = b'{"a.b": 1}'
    assert check_block(lines, 100, True) == 48
    rows, _, numbers, _, rest = prepare(lines, 100, True, TAIL, {"1.2.3.4": ("", None, None)})
    assert rest == [(7, None), (9, None)]
    assert numbers == [100 + n for n in range(50) if n not in (7, 9)]
    assert rows[7][1].endswith(TAIL + "108," + lines[8].decode()[1:])


def test_edge_lines_are_left_to_python_or_given_as_python_gives_them() -> None:
    base = {"context": {"course_id": "c", "user_id": 1}, "username": "u"}
    lines = [
        b"{}",
        b'{"context": {"course_id": "c"}}',
        b'{ "context": {"course_id": "c"}, "username": "u"}\r',
        b'{"context": {"course_id": "c"}}  ',
        json.dumps({**base, "time": "2015-05-30T10:00:01Z", "x": 1.5e300}).encode(),
        json.dumps({**base, "time_date": 1}).encode(),
        json.dumps({**base, "_id": 1}).encode(),
        json.dumps({**base, "time": 5}).encode(),
        json.dumps({**base, "ip": 5}).encode(),
        json.dumps({**base, "username": "\u00e9" * 256}).encode(),
        b'{"context": {"course_id": "c", "user_id": 9223372036854775808}}',
        b'{"context": {"course_id": "c", "user_id": 1.0}}',
        b'{"context": {"course_id": "c"}, "username": "u", "username": "v"}',
    ]
    taken = check_block(lines, 1, True)
    assert prepare(lines[2:3], 1, True, TAIL, {})[4][0][1] is not None  # a CR, a space after the brace
    assert taken >= 4


# -- prepare_bson: the BSON pymongo makes of the loader's dict -------------------------------------

SOURCE = "/data/clickstream_logs/2015-06-01/x-2015-06-01.log.gz"
NUMBERS = [0, 1, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**62, 10**17, -(10**17)]
TEXTS = ["0.5", "1.0", "-2.5e-3", "1e2", "1E+2", "-0", "-0.0", "0.0", "5e-324", "1.7976931348623157e307"]


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return rng.choice(NUMBERS)
    if kind == 1:
        return rng.choice(["", "x", "caf\u00e9", "\u540d", "tab\there", '"quoted"', "a\\b"])
    if kind == 2:
        return rng.choice([True, False, None])
    if kind in (3, 4):
        return float(rng.choice(TEXTS))
    if kind == 5:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {f"k{n}": _value(rng, depth + 1) for n in range(rng.randrange(4))}


def _bson_line(rng: random.Random) -> bytes:
    event = _event(rng)
    event["event"] = _value(rng)
    text = json.dumps(event, ensure_ascii=rng.random() < 0.5)
    for number in TEXTS:  # numbers as written, not as Python writes them back
        if rng.random() < 0.1:
            text = text[:-1] + f', "n": {number}}}'
    if rng.random() < 0.05:
        text = text[:-1] + ', "agent": "twice"}'  # a key twice
    return text.encode()


def expected_bson(
    raw: bytes, line: int, time_first: bool, geoip: int | None, place: tuple[str | None, str | None]
) -> bytes | None:
    """The BSON of the document the per-line path sends to MongoDB for a line (pymongo's
    encoding of the loader's dict), or None (see `python_steps`)."""
    steps = python_steps(raw)
    if steps is None:
        return None
    event, _, when, _, _, _ = steps
    country, subdivision = place
    event["time_date"] = when
    if country is not None:
        event["country"] = country
    if subdivision:
        event["subdivision"] = subdivision
    if geoip is not None:
        event["geoip"] = geoip
    event["source_file"] = SOURCE
    event["source_line"] = line
    event["_id"] = ObjectId(content_id(raw, when, time_first))
    return bson.encode(event)


# Pieces of page URLs, event types and paths, for the course found there when `context.course_id`
# is missing or empty (`course_of`: `_COURSE_IN_PATH`, then `_COURSE_IN_BLOCK`).
COURSE_PIECES = [
    "/courses/",
    "course-v1:",
    "block-v1:",
    "UQx",
    "Think101x",
    "1T2016",
    "+",
    "/",
    "?",
    "#",
    "type@",
    "+type@problem+block@",
    "courses",
    ":",
    "\u00e9",
    "\u540d",
    "https://x",
    "/courses/course-v1:",
    "block-v1:UQx+X+1T+type@",
    "a/b/c/",
    " ",
    "++",
    "//",
]


def _course_line(rng: random.Random) -> bytes:
    def candidate() -> str:
        return "".join(rng.choice(COURSE_PIECES) for _ in range(rng.randint(0, 9)))

    event: dict[str, Any] = {"username": "anna", "time": "2015-05-30T10:00:01+00:00", "ip": "1.2.3.4"}
    if rng.random() < 0.8:
        event["page"] = candidate()
    event["event_type"] = candidate() if rng.random() < 0.7 else "play_video"
    shape = rng.random()
    if shape < 0.1:
        event["context"] = None
    elif shape < 0.8:
        context: dict[str, Any] = {"user_id": 7, "path": candidate()}
        if rng.random() < 0.3:
            context["course_id"] = ""
        event["context"] = context
    return json.dumps(event, ensure_ascii=rng.random() < 0.5).encode()


def test_the_course_in_the_page_or_path_is_the_one_python_finds() -> None:
    rng = random.Random(11)
    lines = [_course_line(rng) for _ in range(20000)]
    courses: set[str] = set()
    for start in range(0, len(lines), 1000):
        block = lines[start : start + 1000]
        assert check_block(block, start + 1, True) == len(block), "all of them are taken"
        courses.update(course_of(json.loads(raw)) for raw in block)
        # MongoDB's pass finds the same (its counted rows, country and ip aside)
        places: dict[str | None, tuple[str, str | None, str | None]] = {"1.2.3.4": ("", "AU", None)}
        _, counted, _, _, _, missing = prepare_bson(block, start + 1, True, SOURCE, None, places)
        want = prepare(block, start + 1, True, TAIL, places)[1]
        assert missing == [] and [c[:5] for c in counted] == [c[:5] for c in want]
    assert "" in courses and len(courses) > 100, "found and not found, many forms"


def _maker(
    places: dict[str | None, tuple[str, str | None, str | None]],
    kept: dict[str | None, tuple[str, str | None, str | None]],
    asked: list[str | None],
    forget: bool = False,
) -> Callable[[str | None], tuple[str, str | None, str | None]]:
    """A `place` for `prepare_bson`: the place in `places`, kept in `kept` (emptied first if
    `forget`), the ip noted in `asked`."""

    def place(ip: str | None) -> tuple[str, str | None, str | None]:
        asked.append(ip)
        if forget:
            kept.clear()
        kept[ip] = places[ip]
        return places[ip]

    return place


def test_prepare_bson_gives_what_pymongo_makes_of_the_per_line_paths_document() -> None:
    rng = random.Random(5)
    lines = [_bson_line(rng) for _ in range(6000)]
    taken = 0
    for start in range(0, len(lines), 500):
        block = lines[start : start + 500]
        time_first, geoip = start % 1000 == 0, (1700000000 if start % 1500 else None)
        _, _, _, _, declined, missing = prepare_bson(block, start + 1, time_first, SOURCE, geoip, {})
        ips = {ip for _, ip in missing}
        places: dict[str | None, tuple[str, str | None, str | None]] = {
            ip: ("", None if ip is None else "AU", "QLD" if ip and len(ip) % 2 else "") for ip in ips
        }
        docs, counted, numbers, size, declined_again, missing_again = prepare_bson(
            block, start + 1, time_first, SOURCE, geoip, places
        )
        assert declined_again == declined and missing_again == []
        # the same call with a `CountedRows`: the same documents, the counted events kept there
        rows = CountedRows()
        again = prepare_bson(block, start + 1, time_first, SOURCE, geoip, places, rows)
        assert (
            [d.raw for d in again[0]] == [d.raw for d in docs]
            and again[1] == []
            and again[2:]
            == (
                numbers,
                size,
                declined,
                [],
            )
        )
        assert rows.tuples() == counted
        # with `place`, called for each new ip (kept in the places it looks in, which it may empty
        # as the loader's `_place` does at MAX_PLACES), the same in one call, as the loader makes
        # it: no line missing, nothing read twice
        asked: list[str | None] = []
        kept: dict[str | None, tuple[str, str | None, str | None]] = {}
        forget = start % 1000 == 0
        # (the enrolment events taken too, where `noted` is given: their ips placed as well)
        new_ips = {ip for _, ip in prepare_bson(block, start + 1, time_first, SOURCE, geoip, {}, None, [])[5]}
        every = {ip: places.get(ip, ("", "NZ", None)) for ip in new_ips}
        want_noted: list[int] = []
        want = prepare_bson(block, start + 1, time_first, SOURCE, geoip, every, None, want_noted)
        once_rows, once_noted = CountedRows(), list[int]()
        once = prepare_bson(
            block, start + 1, time_first, SOURCE, geoip, kept, once_rows, once_noted,
            _maker(every, kept, asked, forget),
        )  # fmt: skip
        assert set(asked) == new_ips and (forget or len(asked) == len(new_ips))
        assert [d.raw for d in once[0]] == [d.raw for d in want[0]] and once[1] == [] and once[5] == []
        assert once[2:5] == want[2:5] and once_rows.tuples() == want[1] and once_noted == want_noted
        assert numbers == [start + 1 + index for index, _ in missing]
        assert size == sum(len(block[index]) for index, _ in missing)
        for (index, ip), doc, row in zip(missing, docs, counted, strict=True):
            raw = block[index]
            assert doc.raw == expected_bson(raw, start + 1 + index, time_first, geoip, places[ip][1:]), raw
            assert row[5] == places[ip][1] and row[6] == ip
        taken += len(docs)
        for index in declined:
            # what it leaves to the per-line path includes every line that path rejects or maps
            assert index not in {i for i, _ in missing}
    assert taken > 600


def _enrolment_lines(rng: random.Random, count: int) -> list[bytes]:
    """Generated lines, a third of them made enrolment events (their `event` a dict or its JSON)."""
    lines = []
    for index in range(count):
        raw = _bson_line(rng)
        if index % 3 == 0 and b'"agent": "twice"' not in raw:
            event = json.loads(raw)
            event["event_type"] = rng.choice(
                ("edx.course.enrollment.activated", "edx.course.enrollment.mode_changed")
            )
            body = {"course_id": "course-v1:UQx+X+1", "user_id": rng.randrange(100), "mode": "audit"}
            event["event"] = body if rng.random() < 0.5 else json.dumps(body)
            raw = json.dumps(event).encode()
        lines.append(raw)
    return lines


def test_given_noted_the_passes_take_the_enrolment_events_and_list_them() -> None:
    """With `noted`, an enrolment event is taken as any other line (the same document), and its
    index listed (the loader reads its `event`); without it, it is left to the per-line path."""
    lines = _enrolment_lines(random.Random(12), 1500)
    enrolments = {i for i, raw in enumerate(lines) if event_name(json.loads(raw)).startswith(ENROLMENT)}
    storable = {i for i, raw in enumerate(lines) if python_steps(raw) is not None}
    assert len(enrolments & storable) > 200
    _, _, _, _, _, missing = prepare_bson(lines, 1, True, SOURCE, None, {}, None, [])
    places: dict[str | None, tuple[str, str | None, str | None]] = {ip: ("", "AU", None) for _, ip in missing}
    before = prepare_bson(lines, 1, True, SOURCE, None, places)
    noted: list[int] = []
    docs, _, numbers, _, declined, missing = prepare_bson(lines, 1, True, SOURCE, None, places, None, noted)
    assert missing == [] and enrolments.isdisjoint(n - 1 for n in before[2])
    taken = {n - 1 for n in numbers}
    assert taken == {n - 1 for n in before[2]} | (enrolments - set(declined))
    assert set(declined) == set(before[4]) - taken
    assert sorted(noted) == sorted(taken & enrolments) and len(noted) > 150
    for number, doc in zip(numbers, docs, strict=True):
        assert doc.raw == expected_bson(lines[number - 1], number, True, None, ("AU", None))
    # `prepare` likewise (it takes a few more: BSON has reasons of its own to decline a line)
    text_noted: list[int] = []
    rows, _, _, _, rest = prepare(lines, 1, True, TAIL, {}, None, text_noted)
    text_taken = {index for index, ready in rest if ready is not None}
    assert rows == [] and taken <= text_taken
    assert sorted(text_noted) == sorted(text_taken & enrolments) and set(noted) <= set(text_noted)
    for index, ready in rest:
        if ready is not None:
            assert ready == expected(lines[index], 1 + index, True), lines[index]


def test_prepare_bson_leaves_negative_zero_and_repeated_keys_to_the_per_line_path() -> None:
    base = '{"context": {"course_id": "c", "user_id": 1}, "username": "u", "time": "2015-05-30T10:00:01Z"'
    lines = [
        (base + ', "x": -0}').encode(),
        (base + ', "x": -0.0}').encode(),
        (base + ', "x": 0.0}').encode(),
        (base + ', "x": {"a": 1, "a": 2}}').encode(),
        (base + ', "x": [-1, 2147483648, 1.5]}').encode(),
    ]
    docs, _, numbers, _, declined, missing = prepare_bson(
        lines, 1, True, SOURCE, None, {None: ("", None, None)}
    )
    assert declined == [0, 1, 3] and missing == []
    assert numbers == [3, 5]
    assert bson.decode(docs[1].raw)["x"] == [-1, 2147483648, 1.5]
    assert docs[0].raw == expected_bson(lines[2], 3, True, None, (None, None))


def test_prepare_bson_refuses_a_key_twice_only_within_one_object_and_names_long_arrays() -> None:
    base = '{"context": {"course_id": "c", "user_id": 1}, "username": "u", "time": "2015-05-30T10:00:01Z"'
    lines = [
        # the same key in sibling and nested objects, and after an object that held it: taken
        (base + ', "a": {"a": {"a": 1}, "b": 2}, "b": {"a": [{"a": 3}, {"a": 4}]}}').encode(),
        # a key twice in a nested object after a deeper one, or at the top after a nested one
        (base + ', "a": {"b": {"c": 1}, "c": 2, "b": 3}}').encode(),
        (base + ', "a": {"b": 1}, "b": 2, "a": 3}').encode(),
        # written with an escape the second time: the same key
        (base + ', "ab": 1, "a\\u0062": 2}').encode(),
        (base + ', "context2": {"user_id": 1, "user_id": 2}}').encode(),
        # arrays past ten and a hundred elements (brackets: at most 100 a line): each element is
        # named by its index
        (
            base + ', "x": ' + json.dumps(list(range(12))) + ', "y": ' + json.dumps(list(range(105))) + "}"
        ).encode(),
    ]
    places: dict[str | None, tuple[str, str | None, str | None]] = {None: ("", None, None)}
    docs, _, numbers, _, declined, missing = prepare_bson(lines, 1, True, SOURCE, None, places)
    assert declined == [1, 2, 3, 4] and missing == [] and numbers == [1, 6]
    for doc, line in zip(docs, (1, 6), strict=True):
        assert doc.raw == expected_bson(lines[line - 1], line, True, None, (None, None))
    assert bson.decode(docs[1].raw)["y"][104] == 104
    # an object of more than 1,000 keys is left to the per-line path (each key is compared with
    # those before it); 1,000 are taken
    wide = [
        (base + ', "w": ' + json.dumps({f"k{i}": i for i in range(n)}) + "}").encode() for n in (1000, 1001)
    ]
    docs, _, numbers, _, declined, _ = prepare_bson(wide, 1, True, SOURCE, None, places)
    assert declined == [1] and numbers == [1]
    assert docs[0].raw == expected_bson(wide[0], 1, True, None, (None, None))


def test_pymongo_sends_a_prepared_document_as_the_raw_bson_document_of_its_bytes() -> None:
    line = b'{"username": "u", "time": "2015-05-30T10:00:01Z", "context": {"course_id": "c", "user_id": 1}}'
    docs, _, _, _, _, _ = prepare_bson([line], 1, True, SOURCE, None, {None: ("", None, None)})
    (doc,) = docs
    command = {"insert": "clickstream", "documents": [doc], "ordered": False}
    as_raw = {**command, "documents": [RawBSONDocument(doc.raw)]}
    assert bson.encode(command) == bson.encode(as_raw)
    # what the duplicate handling reads of it (`doc["_id"]`)
    assert doc["_id"] == ObjectId(content_id(line, parse_event_time("2015-05-30T10:00:01Z"), True))
    assert doc["username"] == "u" and doc.get("username") == "u" and doc.get("absent") is None
    assert "_id" in doc and "absent" not in doc
    assert list(doc) == list(RawBSONDocument(doc.raw)) and len(doc) == len(list(doc))


def test_pymongo_sends_a_run_of_a_batch_as_the_documents_it_holds() -> None:
    """The MongoDB store's lanes send a command's documents as one `BsonRun`: pymongo's message
    is byte for byte the one it makes of those documents, each a `RawBSONDocument` (its header
    aside, whose request id is new for each message)."""
    lines = [
        b'{"username": "u%d", "time": "2015-05-30T10:00:0%dZ", "context": {"course_id": "c", "user_id": %d}}'
        % (n, n, n)
        for n in range(5)
    ]
    batch = BsonBatch()
    into_batch(lines, 1, True, SOURCE, None, {None: ("", None, None)}, batch)
    assert len(batch) == 5

    def message(documents: list[Any]) -> tuple[bytes, bytes, int]:
        command = {"insert": "clickstream", "documents": documents, "ordered": False}
        _, sent, _, _ = pymongo_message._op_msg(0, command, "db", None, bson.DEFAULT_CODEC_OPTIONS)
        assert command["documents"] is documents  # put back after
        return sent[:4], sent[16:], len(sent)

    each = [RawBSONDocument(doc.raw) for doc in batch]
    assert message([batch.run([0, 1, 2, 3, 4])]) == message(each)
    assert message([batch.run([3, 0])]) == message([each[3], each[0]])
    # compressed too; the store checks the same once before it sends runs
    ctx = ZlibContext(-1)
    run = {"insert": "clickstream", "documents": [batch.run([1, 4])], "ordered": False}
    one_by_one = {**run, "documents": [each[1], each[4]]}
    compressed = [
        pymongo_message._op_msg(0, c, "db", None, bson.DEFAULT_CODEC_OPTIONS, ctx)[1]
        for c in (run, one_by_one)
    ]
    assert compressed[0][16:] == compressed[1][16:]
    assert _runs_sent_as_documents()


def test_prepare_bson_appends_to_a_batch_after_what_it_holds() -> None:
    """The loader's batch holds the documents of several blocks and of the per-line path, in turn:
    each stays whole and in its place."""
    lines = [
        b'{"username": "u%d", "time": "2015-05-30T10:00:0%dZ", "context": {"course_id": "c", "user_id": %d}}'
        % (n, n, n)
        for n in range(6)
    ]
    places: dict[str | None, tuple[str, str | None, str | None]] = {None: ("", None, None)}
    alone = [doc.raw for doc in prepare_bson(lines, 1, True, SOURCE, None, places)[0]]
    first, last = bson.encode({"_id": ObjectId(), "n": 1}), bson.encode({"_id": ObjectId(), "n": 2})
    batch = BsonBatch()
    batch.append(first)
    into_batch(lines[:3], 1, True, SOURCE, None, places, batch)
    into_batch(lines[3:], 4, True, SOURCE, None, places, batch)
    batch.append(last)
    assert [doc.raw for doc in batch] == [first, *alone, last]
    assert batch.run([0, 7, 3]).raw == first + last + alone[2]


def test_the_store_routes_a_batch_of_prepared_documents_as_it_routes_each_document() -> None:
    """A `BsonBatch` routes itself (in one call, for the MongoDB store) as the store routes each
    document, in order; a batch holding a document whose `_id` is not an ObjectId first is left to
    the store's own loop over its documents."""
    rng = random.Random(9)
    lines = [_bson_line(rng) for _ in range(3000)]
    _, _, _, _, _, missing = prepare_bson(lines, 1, True, SOURCE, None, {})
    places: dict[str | None, tuple[str, str | None, str | None]] = {ip: ("", "AU", None) for _, ip in missing}
    batch = BsonBatch()
    numbers = into_batch(lines, 1, True, SOURCE, None, places, batch)[1]
    docs = list(batch)
    assert len(docs) == len(batch) == len(numbers) > 300
    for lanes in (1, 2, 3, 7):
        routes = batch.routes(lanes)
        assert routes == [list(route) for route in _routes(docs, lanes)]  # type: ignore[arg-type]
        assert sorted(p for route in routes for p in route) == list(range(len(docs)))
        sent, routed = _routed(batch, lanes)  # type: ignore[arg-type]
        assert sent is batch and routed == routes
    assert batch.routes(0) is None
    for other in ({"_id": 5, "x": 1}, {"_id": "text"}, {"_id": {"oid": 1}}):
        mixed = BsonBatch()
        for doc in [*docs[:5], Bson(bson.encode(other)), *docs[5:9]]:
            mixed.append(doc.raw)
        assert mixed.routes(2) is None
        sent, routed = _routed(mixed, 2)  # type: ignore[arg-type]
        assert [d.raw for d in sent] == [d.raw for d in mixed]  # type: ignore[attr-defined]
        assert [list(r) for r in routed] == [list(r) for r in _routes(list(mixed), 2)]  # type: ignore[arg-type]


def test_a_batch_holds_whole_documents_and_gives_runs_of_them() -> None:
    """`append` takes one whole BSON document; `batch[i]` is a copy of the i-th, `run(positions)`
    those documents one after the other (what a command of the MongoDB store sends)."""
    docs = [bson.encode({"_id": ObjectId(), "n": n, "s": "x" * n}) for n in range(40)]
    batch = BsonBatch()
    for raw in docs:
        batch.append(raw)
    assert len(batch) == 40 and batch[3].raw == docs[3] and batch[-1].raw == docs[-1]
    assert batch[7]["n"] == 7 and batch[7]["_id"] == bson.decode(docs[7])["_id"]
    with pytest.raises(IndexError):
        batch[40]
    run = batch.run([5, 1, 39])
    assert run.raw == docs[5] + docs[1] + docs[39] and len(run) == 3 and run._type_marker == 101
    assert batch.run([]).raw == b"" and batch.run(range(2, 4)).raw == docs[2] + docs[3]
    with pytest.raises(IndexError):
        batch.run([40])
    for broken in (b"", docs[0][:-1], docs[0] + b"\x00", b"\x05\x00\x00\x00\x01", docs[0] + docs[1]):
        with pytest.raises(ValueError, match="not one whole BSON document"):
            batch.append(broken)
    assert len(batch) == 40
