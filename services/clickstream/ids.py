"""The `_id` of a tracking-log event: made from the line itself, so that a line loaded twice is the
same document (exactly once across retries and re-deliveries).

Two forms, chosen once per collection (`collection_uses_time_ids`):

* **time-first** (collections created since this form exists): the 4 bytes of an ObjectId's
  timestamp are the event's own time in seconds (as MongoDB's own ObjectIds are), the 8 others the
  line's blake2b digest. A day's events (in whatever order the file has them) then land in the
  day's own part of the `_id` index, at its end, instead of all over it: the index pages a daily
  load dirties (and a SQLite store writes twice, through its write-ahead log) are that part's, not
  those of every day stored before (`bench/bench_store_growth.py`). Two distinct lines of the same
  second share an `_id` with a chance of 2**-64 per pair.
* **digest** (collections loaded before): the first 12 bytes of the line's blake2b digest. Such a
  collection keeps this form, so that a line delivered again finds the document it already made.

An event without a time, or with one outside what 4 bytes of seconds hold (1970-2106), gets the
digest form in both, so the form of a collection is read from a document with such a time.

A collection must not be loaded by daemons of both kinds (an older version beside or after a newer
one): each would store the lines it loads in its own form, and a line delivered again could then be
stored twice. Upgrade every daemon of a store together, and do not roll back past this form.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId

from stores.documents.base import DocumentStore

EPOCH = datetime(1970, 1, 1)
END = EPOCH + timedelta(seconds=2**32)  # 2106-02-07T06:28:16: the first second 4 bytes cannot hold
_SECOND = timedelta(seconds=1)
_EPOCH_DAY = EPOCH.toordinal()


def content_id(raw: bytes, when: datetime | None, time_first: bool, hashed: bytes | None = None) -> bytes:
    """The 12 bytes of the `_id` of the event of line `raw` (without its LF), whose time is `when`.

    `hashed`, if given, is `raw`'s blake2b digest of 8 bytes if `time_first`, else of 12 (made by
    native/eventscan in its pass over the line)."""
    if time_first and when is not None and EPOCH <= when < END:
        # = (when - EPOCH) // 1 s, without the two timedelta objects (half the time)
        seconds = (when.toordinal() - _EPOCH_DAY) * 86400 + when.hour * 3600 + when.minute * 60 + when.second
        if hashed is None:
            hashed = hashlib.blake2b(raw, digest_size=8).digest()
        return seconds.to_bytes(4, "big") + hashed
    if hashed is not None and not time_first:
        return hashed
    return hashlib.blake2b(raw, digest_size=12).digest()


def is_time_first(doc: dict[str, Any]) -> bool | None:
    """Whether a stored event's `_id` has the time-first form; None if its time cannot tell."""
    when, oid = doc.get("time_date"), doc.get("_id")
    if not isinstance(when, datetime) or not isinstance(oid, ObjectId):
        return None
    when = when.replace(tzinfo=None)  # pymongo may hand back an aware UTC datetime
    if not EPOCH <= when < END:
        return None
    return int.from_bytes(oid.binary[:4], "big") == (when - EPOCH) // _SECOND


def collection_uses_time_ids(store: DocumentStore, db: str, coll: str) -> bool:
    """The `_id` form of the events in `db.coll`: time-first unless it holds digest-form events.

    Decided by one stored event with a time in 1970-2106 (a digest-form `_id` starts with the time
    by a chance of 2**-32); an empty collection, or one without such an event, takes time-first.
    """
    after = EPOCH - timedelta(milliseconds=1)  # the filters know $gt and $lt; times are in ms
    found = list(
        store.find(db, coll, {"time_date": {"$gt": after, "$lt": END}}, {"_id": 1, "time_date": 1}, limit=1)
    )
    return not found or is_time_first(found[0]) is not False
