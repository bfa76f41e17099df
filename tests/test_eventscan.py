"""The compiled first pass of a tracking-log line (native/eventscan) against the Python parser.

`scan` may decline any line (the Python parser then reads it); a line it takes must give exactly
what `parse_with_text` gives: the same text stored, the same values of the fields it picks. And a
whole ingest with it must store, reject and count exactly what one without it does.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bench.generate_logs import write_log
from core.daemon import Daemon
from services.clickstream import aggregates, course_events, events, service
from services.clickstream.events import parse_with_text
from stores.documents import open_document_store
from stores.sql import open_sql_store
from tests.documents import drop_database
from tests.packages import make_package, settings_for

try:
    from eventscan import scan  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # not built: scripts/test.sh builds it and sets OPTIMUS_REQUIRE_NATIVE
    if os.environ.get("OPTIMUS_REQUIRE_NATIVE") == "1":
        raise
    pytest.skip("native/eventscan is not built", allow_module_level=True)

PICKED = ("time", "username", "ip", "event_type", "name", "page")
CONTEXT_PICKED = ("user_id", "course_id", "path")

TYPICAL = {
    "username": "anna",
    "event_type": "play_video",
    "event_source": "browser",
    "event": '{"id": "v1", "currentTime": 12.5}',
    "context": {"course_id": "course-v1:UQx+X+1T", "user_id": 42, "org_id": "UQx", "path": "/event"},
    "time": "2015-05-30T10:00:01.000001+00:00",
    "ip": "1.2.3.4",
    "agent": "Mozilla/5.0 (caf\u00e9)",
    "host": "courses.edx.org",
    "page": None,
}

EDGES = [
    b'{"a": 1}',
    b"{}",
    b"{ }",
    b'{"a": 1}\r',
    b'{"a": 1}  ',
    b'{"a": 1} x',
    b'{"a": NaN}',
    b'{"a": Infinity}',
    b'{"a": 1e400}',
    b'{"a": 1.79769313486231581e308, "page": "NaN"}',
    b'{"a": -1.79769313486231597e308, "page": "Infinity"}',
    b'{"a": 179769313486231585e291}',
    b'{"a": 1.7976931348623157e308}',
    b'{"a": 9.9e307}',
    b'{"a": 1e-400}',
    b'{"event_type": "edx.course.enrollment.activated", "event": {"x": 1.79769313486231581e308}}',
    b'{"a": 12345678901234567890}',
    b'{"a": "1234567890123456789"}',
    b'{"a": 123456789012345678}',
    b'{"a.b": 1}',
    b'{"$set": 1}',
    b'{"x": {"$oid": "0123456789abcdef01234567"}}',
    b'{"x": [1, {"a.b": 2}]}',
    b'{"x": [{"a.b": 2}]}',
    b'{"_id": {"$oid": "0123456789abcdef01234567"}}',
    b'{"_id": 7, "a": 1}',
    b'{"time_date": 1}',
    b'{"country": "NZ"}',
    b'{"source_line": 3}',
    b'{"username": "a", "username": "b"}',
    b'{"context": {"user_id": 1}, "context": {"user_id": 2}}',
    b'{"context": {"user_id": 1, "user_id": 2}}',
    b'{"context": null}',
    b'{"context": "x"}',
    b'{"context": {"user_id": "17"}}',
    b'{"context": {"user_id": 1.5}}',
    b'{"context": {"user_id": true}}',
    b'{"context": {"user_id": -9223372036854775808}}',
    b'{"context": {"user_id": 9223372036854775807}}',
    b'{"username": 5}',
    b'{"username": ["a"]}',
    b'{"time": 1432980001}',
    b'{"ip": {"v": 4}}',
    b'{"event_type": "edx.course.enrollment.activated", "event": {"user_id": 1}}',
    b'{"a": "\\ud83d\\ude00"}',
    b'{"a": "\\ud83d"}',
    b'{"a": "\\u0000"}',
    b'{"a\\u0000": 1}',
    b'{"a": "\\u00e9\\\\u"}',
    b'{"a": "caf\xc3\xa9"}',
    b'{"a": "caf\xe9"}',
    b'{"a": "tab\there"}',
    b'{"a": ' + b"[" * 100 + b"]" * 100 + b"}",
    b'{"a": ' + b"[" * 99 + b"]" * 99 + b"}",
    b"[1, 2]",
    b'"a"',
    b"",
    b"   ",
    b"# comment",
    b'2015-05-30 host: {"a": 1}',
    b'{"a": 1',
    b'{"a": tru}',
    b'{"a": 01}',
    b'{"a": -}',
    b'{"a": 1,}',
    b'{"a" 1}',
]


def restricted(event: dict[str, Any]) -> dict[str, Any]:
    """The event as `scan` gives it: only the picked fields, and `context`'s picked fields."""
    out = {key: event[key] for key in PICKED if key in event}
    if "context" in event:
        context = event["context"]
        out["context"] = (
            {key: context[key] for key in CONTEXT_PICKED if key in context}
            if isinstance(context, dict)
            else context
        )
    return out


def same_as_python(raw: bytes) -> bool:
    """Asserts that a line `scan` takes is one `parse_with_text` stores as it is; True if taken."""
    size = 8 + 4 * (len(raw) % 2)  # both sizes the loader asks for
    scanned = scan(raw, size)
    if scanned is None:
        return False
    fields, text, digest = scanned
    assert digest == hashlib.blake2b(raw, digest_size=size).digest(), raw
    event, reason, python_text = parse_with_text(raw)
    assert reason == "", raw
    assert event is not None and python_text == text, raw
    expected = restricted(event)
    assert fields == expected, raw
    # the same types too (1 == 1.0 == True in Python)
    assert [type(v) for v in fields.values()] == [type(v) for v in expected.values()], raw
    if isinstance(fields.get("context"), dict):
        assert [type(v) for v in fields["context"].values()] == [
            type(v) for v in expected["context"].values()
        ]
    return True


def test_every_edge_line_is_declined_or_read_as_python_reads_it() -> None:
    taken = [raw for raw in EDGES if same_as_python(raw)]
    assert same_as_python(json.dumps(TYPICAL).encode())
    # what it must leave to Python: every line Python maps, re-encodes or rejects
    for raw in EDGES:
        _, reason, text = parse_with_text(raw)
        if reason or text is None:
            assert raw not in taken, raw
    assert b'{"a": 1}\r' in taken and b'{"context": {"user_id": "17"}}' in taken


def test_a_run_of_19_digits_is_found_wherever_it_starts() -> None:
    """`scan` reads a line 64 bytes at a time for digits: runs of 18, 19 and 20 digits at every
    offset (within a chunk, across one or two chunk ends, at the end), in a string and as a
    number, against Python's own test."""
    for offset in range(140):
        for length in (18, 19, 20):
            digits = b"7" * length
            for raw in (
                b'{"a": "' + b"x" * offset + digits + b'"}',
                b'{"' + b"k" * offset + b'": ' + digits + b"}",
            ):
                long_run = events._LONG_DIGITS in raw.translate(events._DIGITS_ONLY)
                assert long_run == (length >= 19)
                assert (scan(raw, 8) is None) if long_run else same_as_python(raw), raw


def test_the_digest_is_hashlibs_blake2b_of_the_whole_line_for_every_size_and_length() -> None:
    """The content id (ids.py) takes its digest from `scan`: it must be hashlib's, bit for bit,
    across BLAKE2b's 128-byte blocks and with a final CR (hashed, though not in the text)."""
    rng = random.Random(11)
    for length in [*range(0, 300), 1023, 1024, 1025, 4096, 100_000]:
        raw = b'{"a": "' + bytes(rng.choice(b"abc xyz") for _ in range(length)) + b'"}'
        for tail in (b"", b"\r"):
            for size in (1, 8, 12, 32, 64):
                scanned = scan(raw + tail, size)
                assert scanned is not None
                assert scanned[2] == hashlib.blake2b(raw + tail, digest_size=size).digest()
    with pytest.raises(ValueError):
        scan(b"{}", 65)


def test_random_variations_of_real_events_are_declined_or_read_as_python_reads_them() -> None:
    rng = random.Random(7)
    pieces = [
        ".",
        "$",
        "\\u0000",
        "\\ud800",
        "\\u00e9",
        "1234567890",
        "[",
        "{",
        "}",
        '"',
        ",",
        ":",
        "\\",
        " ",
        "\r",
    ]
    base = json.dumps(TYPICAL)
    taken = 0
    for _ in range(20000):
        text = base
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(text) + 1)
            text = text[:at] + rng.choice(pieces) + text[at:]
        taken += same_as_python(text.encode("utf-8", "surrogatepass"))
    assert taken > 2000  # many variations are still plain events


def test_the_benchmark_generators_lines_are_almost_all_taken(tmp_path: Path) -> None:
    log = tmp_path / "generated-2024-01-06.log"
    write_log(log, 3000, seed=3, bad_every=300)
    lines = log.read_bytes().split(b"\n")[:-1]
    taken = sum(same_as_python(raw) for raw in lines)
    assert taken >= 0.9 * 3000


def _ingest(
    data: Path, state: Path, prefix: str, mongo_url: str = "sqlite"
) -> tuple[list[Any], list[Any], list[str]]:
    settings = settings_for(
        data,
        state,
        CLICKSTREAM_HOLD_NEWEST="0",
        MONGO_URL=mongo_url,
        DOCUMENT_DB_PREFIX=prefix,
        TRACKING_DATABASE=f"api_{prefix}",
        SERVICES="Clickstream",
    )
    assert Daemon(settings, foreground=False).run(once=True) == 0
    stored: list[Any]
    if mongo_url == "sqlite":
        with sqlite3.connect(state / "documents" / f"{prefix}logs.sqlite") as conn:
            stored = sorted(conn.execute("SELECT id, doc FROM clickstream"))
        conn.close()
    else:
        docs = open_document_store(mongo_url, state)
        try:
            stored = sorted((str(d["_id"]), d) for d in docs.find(f"{prefix}logs", "clickstream"))
        finally:
            drop_database(docs, f"{prefix}logs")
            docs.close()
    days = sorted(
        tuple(row)
        for row in open_sql_store("sqlite", state).query(
            "Person_Course",
            "SELECT course_id, user_id, username, day, nevents, countries FROM person_course_day",
        )
    )
    sql = open_sql_store("sqlite", state)
    for table in ("course_event_type_day", "clickstream_file_courses", "enrolment_events"):
        days.append(
            (table, sorted(tuple(row) for row in sql.query("Person_Course", f"SELECT * FROM {table}")))
        )
    rejects = sorted(p.read_text("utf-8", "replace") for p in (state / "rejects").rglob("*") if p.is_file())
    return stored, days, rejects


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)])
def test_an_ingest_with_the_native_pass_stores_rejects_and_counts_what_one_without_it_does(
    tmp_path: Path,
    unique_name: str,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    backend: str,
) -> None:
    """On the embedded store the loader uses the picked fields; on MongoDB it reads a taken line
    whole with orjson (`_Loader.whole`)."""
    mongo_url = "sqlite" if backend == "sqlite" else request.getfixturevalue("mongo_url")
    data = make_package(tmp_path / "data")
    logs = (data / "clickstream_logs" / "latest").resolve()
    write_log(logs / "uqx-edx-events-2015-06-01.log.gz", 4000, seed=5, bad_every=400)
    with (logs / "uqx-edx-events-2015-05-31.log").open("wb") as out:
        # FerretDB refuses NaN, infinite numbers, lists in lists and a `$oid` key (kept, as the
        # original kept it) in a document that is not an ObjectId, which MongoDB stores: those
        # lines are loaded on SQLite only
        unfit = (b"NaN", b"Inf", b"e400", b"e308", b"e291", b"[[", b"$oid")
        edges = [e for e in EDGES if backend == "sqlite" or not any(x in e for x in unfit)]
        out.write(b"\n".join(edges) + b"\n" + json.dumps(TYPICAL).encode() + b"\n")
    # a later file that repeats lines of the first (its events, owned by that file, are not
    # counted again here: the batch's counted events lose those positions)
    with gzip.open(logs / "uqx-edx-events-2015-06-01.log.gz") as first:
        repeated = first.read().split(b"\n")[:700:2]
    with (logs / "uqx-edx-events-2015-06-02.log").open("wb") as out:
        out.write(b"\n".join(repeated) + b"\n" + json.dumps({**TYPICAL, "page": "x"}).encode() + b"\n")
    with_native = _ingest(data, tmp_path / "with", unique_name + "a", mongo_url)
    monkeypatch.setattr(events, "native_scan", None)
    monkeypatch.setattr(events, "native_prepare", None)
    monkeypatch.setattr(events, "native_prepare_bson", None)
    # and the Python counters, fed with tuples (the native ones read the module's `CountedRows`)
    monkeypatch.setattr(aggregates, "native_counter", lambda name: None)
    monkeypatch.setattr(course_events, "native_counter", lambda name: None)
    without = _ingest(data, tmp_path / "without", unique_name + "b", mongo_url)
    stored, days, rejects = with_native
    assert len(stored) > 4000 and days and len(rejects) >= 1
    assert any("mongoid" in str(doc) for _, doc in stored)  # an `_id` line, mapped by Python
    derived = dict(
        row
        for row in days
        if isinstance(row[0], str) and row[0] in ("enrolment_events", "clickstream_file_courses")
    )
    assert derived["enrolment_events"]  # read back from the `CountedRows` as tuples
    # the repeating file counts only its own last line
    assert [n for source, _, n, _ in derived["clickstream_file_courses"] if source.endswith("06-02.log")] == [
        1
    ]
    assert with_native == without


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)])
def test_a_full_place_cache_loses_no_line(
    tmp_path: Path,
    unique_name: str,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    backend: str,
) -> None:
    """The loader's `places` is emptied once it holds MAX_PLACES ips, also between two of the new
    ips of one block: every line is still stored, rejected and counted as with a large cache."""
    mongo_url = "sqlite" if backend == "sqlite" else request.getfixturevalue("mongo_url")
    data = make_package(tmp_path / "data")
    logs = (data / "clickstream_logs" / "latest").resolve()
    write_log(logs / "uqx-edx-events-2015-06-01.log.gz", 3000, seed=8, bad_every=300)
    whole = _ingest(data, tmp_path / "whole", unique_name + "a", mongo_url)
    monkeypatch.setattr(service, "MAX_PLACES", 3)
    small = _ingest(data, tmp_path / "small", unique_name + "b", mongo_url)
    assert len(whole[0]) >= 3000 and small == whole
