"""The two forms of a tracking-log event's `_id` (services/clickstream/ids.py)."""

from __future__ import annotations

import hashlib
from datetime import datetime

from bson import ObjectId

from services.clickstream.ids import content_id, is_time_first

LINE = b'{"username": "u1", "time": "2015-05-30T10:00:01.5+00:00"}'
WHEN = datetime(2015, 5, 30, 10, 0, 1, 500000)


def test_a_time_first_id_is_the_events_second_then_the_lines_digest():
    made = ObjectId(content_id(LINE, WHEN, time_first=True))
    assert made.generation_time.replace(tzinfo=None) == datetime(2015, 5, 30, 10, 0, 1)
    assert made.binary[4:] == hashlib.blake2b(LINE, digest_size=8).digest()
    assert content_id(LINE, WHEN, time_first=True) == bytes(made.binary), "the same line, the same id"
    assert content_id(LINE + b" ", WHEN, time_first=True) != bytes(made.binary)


def test_the_digest_form_is_the_first_12_bytes_of_the_lines_blake2b():
    digest = hashlib.blake2b(LINE, digest_size=12).digest()
    assert content_id(LINE, WHEN, time_first=False) == digest
    assert content_id(LINE, None, time_first=True) == digest, "no time: the digest form in both"
    for outside in (datetime(1969, 12, 31, 23, 59, 59), datetime(2106, 2, 7, 6, 28, 16)):
        assert content_id(LINE, outside, time_first=True) == digest, outside
    last = datetime(2106, 2, 7, 6, 28, 15)
    assert content_id(LINE, last, time_first=True)[:4] == b"\xff\xff\xff\xff"


def test_the_form_of_a_stored_event_is_read_from_its_time():
    timed = {"_id": ObjectId(content_id(LINE, WHEN, True)), "time_date": WHEN}
    digest = {"_id": ObjectId(content_id(LINE, WHEN, False)), "time_date": WHEN}
    assert is_time_first(timed) is True
    assert is_time_first(digest) is False
    assert is_time_first({**timed, "time_date": None}) is None
    assert is_time_first({**timed, "time_date": datetime(1960, 1, 1)}) is None
