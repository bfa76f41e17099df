"""One suite for both document store backends: embedded SQLite and MongoDB (FerretDB in the tests).

Every test in the parametrized part runs against both, with the same expectations: the SQLite
backend must answer exactly as MongoDB does.
"""

from __future__ import annotations

import math
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import bson
import pytest
from bson import ObjectId
from bson.raw_bson import RawBSONDocument

import stores.documents.mongo as mongo_module
import stores.documents.sqlite as sqlite_module
from core.errors import BadDataError, ConfigError, TerminalError, TransientError, UnsafeNameError
from stores.documents import (
    DocumentStore,
    InsertResult,
    MongoDocumentStore,
    SqliteDocumentStore,
    open_document_store,
)
from tests.documents import drop_database, index_names, list_collections, list_databases
from tests.native import eventscan_module

COURSE = "UQx/BIOIMG101x/1T2014"
OTHER_COURSE = "course-v1:UQx+Think101x+1T2016"
OID = [ObjectId(f"5f1a0000000000000000000{i}") for i in range(1, 6)]


@pytest.fixture(params=["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)])
def store(request: pytest.FixtureRequest, state_dir: Path, unique_name: str) -> Iterator[DocumentStore]:
    """A store of each backend; the test's database (`db`) is dropped afterwards."""
    url = "sqlite" if request.param == "sqlite" else request.getfixturevalue("mongo_url")
    opened = open_document_store(url, state_dir)
    try:
        yield opened
    finally:
        drop_database(opened, unique_name)
        opened.close()


@pytest.fixture
def db(unique_name: str) -> str:
    return unique_name


@pytest.fixture
def sqlite_store(state_dir: Path) -> Iterator[SqliteDocumentStore]:
    opened = SqliteDocumentStore(state_dir / "documents")
    try:
        yield opened
    finally:
        opened.close()


def events() -> list[dict]:
    """Tracking-log-like documents covering the shapes the filters must handle."""
    return [
        {
            "_id": 1,
            "username": "ann",
            "event_type": "play_video",
            "context": {"course_id": COURSE, "user_id": 11},
            "time_date": datetime(2014, 3, 1, 10, 0),
            "country": "AU",
            "n": 5,
            "tags": ["a", "b"],
            "flag": True,
            "author": OID[0],
        },
        {
            "_id": 2,
            "username": "bob",
            "event_type": "edx.course.enrollment.activated",
            "context": {"course_id": OTHER_COURSE, "user_id": 12},
            "time_date": datetime(2014, 3, 2, 10, 0),
            "country": "",
            "n": 2.5,
            "tags": ["b"],
            "flag": False,
            "author": OID[1],
        },
        {
            "_id": 3,
            "username": "cid",
            "event_type": "play_video",
            "context": {"course_id": COURSE, "user_id": 13},
            "time_date": datetime(2014, 3, 3, 10, 0, 0, 250000),
            "n": 10,
            "tags": [],
            "flag": 1,
            "author": OID[2],
        },
        {
            "_id": 4,
            "username": "dee",
            "event_type": "problem_check",
            "context": {"course_id": COURSE},
            "time_date": None,
            "country": "US",
            "n": "7",
            "tags": "a",
            "author": OID[3],
        },
        {
            "_id": 5,
            "username": "eve",
            "event_type": "page_close",
            "context": {},
            "country": None,
            "n": -1,
            "sub": [{"k": 1}, {"k": 2}],
        },
    ]


def ids(docs: Iterator[dict] | list[dict]) -> list:
    return sorted(d["_id"] for d in docs)


# --- types ------------------------------------------------------------------------------------


def test_every_supported_type_round_trips_exactly(store: DocumentStore, db: str) -> None:
    doc = {
        "_id": ObjectId(),
        "text": 'héllo ✓ 日本 \t\n"quoted" \\ back',
        "int": 42,
        "int64_max": 2**63 - 1,
        "int64_min": -(2**63),
        "float": 3.25,
        "float_whole": 2.0,
        "true": True,
        "false": False,
        "none": None,
        "when": datetime(2014, 1, 2, 3, 4, 5, 123000),
        "oid": ObjectId(),
        "nested": {"a": {"b": [1, {"c": "d", "e": [2, 3]}]}},  # FerretDB refuses lists in lists
        "empty_doc": {},
        "empty_list": [],
        "oids": [ObjectId(), ObjectId()],
        "mixed": [1, "a", None, 2.5, True, datetime(2000, 1, 1)],
        "bytes": b"\x00\xffraw",
        "digits": "12345678901234567890123",
    }
    assert store.insert_many(db, "types", [dict(doc)]) == InsertResult(1, 0)
    got = store.find_one(db, "types", {"_id": doc["_id"]})
    assert got == doc
    assert type(got["int"]) is int and type(got["float_whole"]) is float
    assert type(got["true"]) is bool and type(got["oids"][0]) is ObjectId
    assert next(iter(got)) == "_id"


def test_datetimes_come_back_naive_utc_at_millisecond_precision(store: DocumentStore, db: str) -> None:
    brisbane = timezone(timedelta(hours=10))
    store.insert_many(
        db,
        "times",
        [
            {"_id": "aware", "t": datetime(2014, 1, 2, 13, 4, 5, 999999, tzinfo=brisbane)},
            {"_id": "naive", "t": datetime(2014, 1, 2, 3, 4, 5, 123456)},
            {"_id": "utc", "t": datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)},
        ],
    )
    got = {d["_id"]: d["t"] for d in store.find(db, "times")}
    assert got == {
        "aware": datetime(2014, 1, 2, 3, 4, 5, 999000),
        "naive": datetime(2014, 1, 2, 3, 4, 5, 123000),
        "utc": datetime(1969, 12, 31, 23, 59, 59),
    }
    assert all(t.tzinfo is None for t in got.values())


def test_ids_of_different_types_are_different_documents(store: DocumentStore, db: str) -> None:
    result = store.insert_many(db, "ids", [{"_id": 1}, {"_id": "1"}, {"_id": True}, {"_id": 1.0}])
    assert result == InsertResult(inserted=3, duplicates=1, duplicate_at=(3,))  # 1 and 1.0 are the same _id
    assert store.count(db, "ids", {"_id": "1"}) == 1
    assert store.count(db, "ids", {"_id": 1}) == 1


# --- inserting ----------------------------------------------------------------------------------


def test_reinserting_a_batch_skips_and_counts_every_duplicate(store: DocumentStore, db: str) -> None:
    assert store.insert_many(db, "clickstream", events()[:3]) == InsertResult(3, 0)
    assert store.insert_many(db, "clickstream", events()) == InsertResult(2, 3, (0, 1, 2))
    assert store.insert_many(db, "clickstream", events()) == InsertResult(0, 5, (0, 1, 2, 3, 4))
    assert store.count(db, "clickstream") == 5


def test_a_batch_larger_than_one_command_counts_duplicates_at_their_positions(
    store: DocumentStore, db: str
) -> None:
    """2,500 documents: MongoDB sends them as several `insert` commands; the positions of the
    duplicates are those in the whole batch, and `_id` (last in the dicts) is stored first."""
    first = [{"n": i, "_id": i} for i in range(0, 2500, 2)]
    assert store.insert_many(db, "c", first) == InsertResult(1250, 0)
    batch = [{"n": i, "_id": i} for i in range(2500)]
    random.Random(7).shuffle(batch)
    result = store.insert_many(db, "c", batch)
    expected = tuple(p for p, doc in enumerate(batch) if doc["_id"] % 2 == 0)
    assert result == InsertResult(1250, 1250, expected)
    assert store.count(db, "c") == 2500
    found = store.find_one(db, "c", {"_id": 2499})
    assert found is not None and list(found) == ["_id", "n"]


def test_duplicate_ids_within_one_batch_keep_the_first(store: DocumentStore, db: str) -> None:
    result = store.insert_many(db, "c", [{"_id": "x", "v": 1}, {"_id": "x", "v": 2}])
    assert result == InsertResult(1, 1, (1,))
    assert store.find_one(db, "c", {"_id": "x"}) == {"_id": "x", "v": 1}


def repeated_ids(count: int, keys: int, seed: int) -> list[dict]:
    """`count` documents numbered `n`, each `_id` drawn from `keys` ObjectIds, so that most repeat
    far apart: in other `insert` commands, which MongoDB sends on connections side by side."""
    rnd = random.Random(seed)
    pool = [ObjectId() for _ in range(keys)]
    return [{"_id": rnd.choice(pool), "n": n} for n in range(count)]


def assert_first_of_each_id_stored(store: DocumentStore, db: str, batch: list, result: InsertResult) -> None:
    first: dict[ObjectId, int] = {}
    for doc in batch:
        first.setdefault(doc["_id"], doc["n"])
    later = tuple(p for p, doc in enumerate(batch) if first[doc["_id"]] != doc["n"])
    assert result == InsertResult(len(first), len(later), later)
    assert {doc["_id"]: doc["n"] for doc in store.find(db, "c")} == first


def test_of_documents_with_one_id_the_first_in_the_batch_is_stored(store: DocumentStore, db: str) -> None:
    """As with one connection: the stored event of a line repeated in a log keeps the first
    line's number, whatever the timing of the connections."""
    batch = repeated_ids(6000, 1500, seed=11)
    assert_first_of_each_id_stored(store, db, batch, store.insert_many(db, "c", batch))


def test_pipelined_batches_are_stored_as_if_one_after_the_other(store: DocumentStore, db: str) -> None:
    """On MongoDB the next batch is sent while the last is stored; the outcome is the same."""
    batch = repeated_ids(6000, 1500, seed=13)
    with store.pipelined_inserts(db, "c") as submit:
        futures = [submit(batch[start : start + 1500]) for start in range(0, 6000, 1500)]
    results = [future.result() for future in futures]
    later = tuple(1500 * k + p for k, result in enumerate(results) for p in result.duplicate_at)
    inserted = sum(result.inserted for result in results)
    assert_first_of_each_id_stored(store, db, batch, InsertResult(inserted, len(later), later))


def test_a_pipelined_block_left_early_ends_once_its_batches_are_stored(store: DocumentStore, db: str) -> None:
    batch = repeated_ids(3000, 3000, seed=14)
    with pytest.raises(KeyError), store.pipelined_inserts(db, "c") as submit:
        stored = submit(batch)
        raise KeyError("the loader failed")
    assert stored.done() and stored.result().inserted == len({doc["_id"] for doc in batch})
    assert store.count(db, "c") == stored.result().inserted


@pytest.mark.mongo
def test_after_a_failed_send_no_later_batch_is_stored(
    mongo_url: str, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A document too large for any command ends its lane's send. Had the lane gone on, the next
    batch would store the repeat of an `_id` whose first document was never sent, and the retry
    would find the first one a duplicate: the stored event would keep the wrong line."""
    monkeypatch.setattr(mongo_module, "INSERT_CHUNK", 1)  # a command per document
    too_large, first = ObjectId(b"\x00" * 12), ObjectId(b"\x01" + b"\x00" * 11)
    store = MongoDocumentStore(mongo_url, insert_lanes=2)  # both ObjectIds end in 0: the same lane
    try:
        with store.pipelined_inserts(db, "c") as submit:
            failing = submit([{"_id": too_large, "blob": "x" * (17 << 20)}, {"_id": first, "n": 1}])
            later = submit([{"_id": first, "n": 2}])
        with pytest.raises(BadDataError):
            failing.result()
        with pytest.raises(BadDataError):
            later.result()
        assert store.find_one(db, "c", {"_id": first}) is None
    finally:
        drop_database(store, db)
        store.close()


@pytest.mark.mongo
def test_raw_and_dict_documents_with_one_id_keep_the_first_in_the_batch(mongo_url: str, db: str) -> None:
    """The Clickstream service hands over raw BSON (most lines) and dicts (the others) in one
    batch: a raw document and a dict with the same `_id` go through the same connection."""
    batch = repeated_ids(6000, 1500, seed=12)
    sent: list[Any] = [RawBSONDocument(bson.encode(doc)) if n % 2 else doc for n, doc in enumerate(batch)]
    store = MongoDocumentStore(mongo_url, insert_lanes=3)
    try:
        assert_first_of_each_id_stored(store, db, batch, store.insert_many(db, "c", sent))
    finally:
        drop_database(store, db)
        store.close()


def bson_batch(docs: list[dict]) -> Any:
    """native/eventscan's `BsonBatch` of the documents (what the Clickstream service hands over)."""
    batch = eventscan_module().BsonBatch()
    for doc in docs:
        batch.append(bson.encode(doc))
    return batch


@pytest.mark.mongo
@pytest.mark.parametrize("lanes,chunk", [(2, 1000), (3, 7)])
def test_a_bson_batch_is_stored_as_its_documents_each_counted_at_its_position(
    mongo_url: str, db: str, monkeypatch: pytest.MonkeyPatch, lanes: int, chunk: int
) -> None:
    """A lane sends a command's documents as one run of their bytes: the server stores each, and
    its duplicates come back at their positions in the batch, the first of each `_id` stored."""
    monkeypatch.setattr(mongo_module, "INSERT_CHUNK", chunk)
    batch = repeated_ids(6000, 1500, seed=15)
    store = MongoDocumentStore(mongo_url, insert_lanes=lanes)
    try:
        with store.pipelined_inserts(db, "c") as submit:
            futures = [submit(bson_batch(batch[start : start + 2000])) for start in range(0, 6000, 2000)]
        results = [future.result() for future in futures]
        later = tuple(2000 * k + p for k, result in enumerate(results) for p in result.duplicate_at)
        inserted = sum(result.inserted for result in results)
        assert_first_of_each_id_stored(store, db, batch, InsertResult(inserted, len(later), later))
        # sent again, outside a pipelined block: every one a duplicate
        again = store.insert_many(db, "c", bson_batch(batch[:1500]))
        assert again == InsertResult(0, 1500, tuple(range(1500)))
    finally:
        drop_database(store, db)
        store.close()


@pytest.mark.mongo
def test_a_run_over_the_limit_of_a_command_is_halved_and_a_document_over_it_fails(
    mongo_url: str, db: str
) -> None:
    """Five documents of 4 MiB make a run of 20 MiB, over a command's 16 MiB: sent in halves. A
    document of 17 MiB fails its batch as a dict of that size does."""
    store = MongoDocumentStore(mongo_url, insert_lanes=1)
    try:
        big = [{"_id": ObjectId(), "n": n, "blob": "x" * (4 << 20)} for n in range(5)]
        assert store.insert_many(db, "c", bson_batch(big)) == InsertResult(5, 0)
        assert sorted(doc["n"] for doc in store.find(db, "c", {}, {"n": 1})) == [0, 1, 2, 3, 4]
        with pytest.raises(BadDataError):
            store.insert_many(db, "c", bson_batch([{"_id": ObjectId(), "blob": "x" * (17 << 20)}]))
        assert store.count(db, "c") == 5
    finally:
        drop_database(store, db)
        store.close()


def test_documents_without_id_get_an_object_id(store: DocumentStore, db: str) -> None:
    docs = [{"event_type": "a"}, {"event_type": "b"}]
    assert store.insert_many(db, "c", docs) == InsertResult(2, 0)
    assert all(isinstance(d["_id"], ObjectId) for d in docs)
    assert ids(store.find(db, "c")) == sorted(d["_id"] for d in docs)


@pytest.mark.mongo
def test_unacknowledged_writes_are_refused(mongo_url: str) -> None:
    """With w=0 the server would not report duplicate `_id`s, which exactly-once relies on."""
    separator = "&" if "?" in mongo_url else ("?" if mongo_url.endswith("/") else "/?")
    with pytest.raises(ConfigError, match="w=0"):
        MongoDocumentStore(mongo_url + separator + "w=0")


def test_an_empty_batch_inserts_nothing(store: DocumentStore, db: str) -> None:
    assert store.insert_many(db, "c", []) == InsertResult(0, 0)


@pytest.mark.parametrize("value", [{1, 2}, date(2014, 1, 2), "broken \ud800 text", 2**63], ids=repr)
def test_unstorable_value_raises_bad_data_error(store: DocumentStore, db: str, value: object) -> None:
    with pytest.raises(BadDataError, match=r"\.c\b"):
        store.insert_many(db, "c", [{"_id": 1, "v": value}])


# --- filters --------------------------------------------------------------------------------------

FILTER_CASES = [
    ({}, [1, 2, 3, 4, 5]),
    ({"username": "ann"}, [1]),
    ({"context.course_id": COURSE}, [1, 3, 4]),
    ({"event_type": "play_video", "context.course_id": COURSE}, [1, 3]),
    ({"context.user_id": 12}, [2]),
    ({"context.user_id": 12.0}, [2]),
    ({"country": None}, [3, 5]),
    ({"country": ""}, [2]),
    ({"country": {"$in": ["AU", "US"]}}, [1, 4]),
    ({"country": {"$exists": False}}, [3]),
    ({"country": {"$exists": True}}, [1, 2, 4, 5]),
    ({"context.user_id": {"$exists": False}}, [4, 5]),
    ({"context.user_id": {"$in": [11, 13]}}, [1, 3]),
    ({"n": {"$gt": 2.5}}, [1, 3]),
    ({"n": {"$lt": 5}}, [2, 5]),
    ({"n": {"$lt": 6, "$gt": 0}}, [1, 2]),
    ({"n": {"$gt": "5"}}, [4]),
    ({"username": {"$lt": "c"}}, [1, 2]),
    ({"time_date": {"$gt": datetime(2014, 3, 2)}}, [2, 3]),
    ({"time_date": {"$lt": datetime(2014, 3, 2)}}, [1]),
    ({"time_date": datetime(2014, 3, 3, 10, 0, 0, 250000)}, [3]),
    ({"time_date": {"$gt": datetime(2014, 3, 2, 20, tzinfo=timezone(timedelta(hours=10)))}}, [3]),
    ({"author": OID[0]}, [1]),
    ({"author": {"$gt": OID[1]}}, [3, 4]),
    ({"author": {"$in": [OID[0], OID[3]]}}, [1, 4]),
    ({"tags": "a"}, [1, 4]),
    ({"tags": ["b"]}, [2]),
    ({"tags": {"$in": ["b"]}}, [1, 2]),
    ({"tags": {"$gt": "a"}}, [1, 2]),
    ({"sub.k": 2}, [5]),
    ({"sub.k": {"$exists": True}}, [5]),
    ({"flag": True}, [1]),
    ({"flag": 1}, [3]),
    ({"$or": [{"country": "AU"}, {"n": {"$lt": 0}}]}, [1, 5]),
    ({"$or": [{"username": "bob"}, {"tags": "a"}], "n": {"$gt": 0}}, [1, 2]),
    ({"_id": 3}, [3]),
    ({"_id": {"$in": [2, 4, 99]}}, [2, 4]),
    ({"_id": {"$gt": 3}}, [4, 5]),
    ({"_id": {"$gt": 2}, "country": {"$exists": True}}, [4, 5]),
]

INDEXES = [
    [("username", 1)],
    [("event_type", 1), ("context.course_id", 1)],
    [("context.course_id", 1)],
    [("context.user_id", 1)],
    [("country", 1)],
    [("n", -1)],
    [("time_date", 1)],
    [("author", 1)],
    [("tags", 1)],
    [("sub.k", 1)],
    [("flag", 1)],
]


@pytest.mark.parametrize("indexed", [False, True], ids=["unindexed", "indexed"])
@pytest.mark.parametrize(("filt", "expected"), FILTER_CASES, ids=[str(c[0]) for c in FILTER_CASES])
def test_filter_selects_what_mongodb_selects(
    store: DocumentStore, db: str, filt: dict, expected: list, indexed: bool
) -> None:
    if indexed:
        for keys in INDEXES:
            store.create_index(db, "clickstream", keys)
    store.insert_many(db, "clickstream", events())
    assert ids(store.find(db, "clickstream", filt)) == expected
    assert store.count(db, "clickstream", filt) == len(expected)


@pytest.mark.parametrize(
    "filt",
    [
        {"a": {"$regex": "x"}},
        {"$where": "1"},
        {"a": {"$gt": 1, "b": 2}},
        {"$or": []},
        {"a": {"$in": 3}},
        {"a": {"$ne": 1}},
        {"$and": [{"a": 1}]},
    ],
)
def test_unsupported_filter_raises_terminal_error(store: DocumentStore, db: str, filt: dict) -> None:
    with pytest.raises(TerminalError):
        list(store.find(db, "c", filt))


def test_reading_a_missing_database_or_collection_finds_nothing(store: DocumentStore, db: str) -> None:
    assert list(store.find(db, "nothing")) == []
    assert store.find_one(db, "nothing") is None
    assert store.count(db, "nothing", {"a": 1}) == 0
    assert index_names(store, db, "nothing") == []
    assert list_collections(store, db) == []


def test_reads_during_an_unfinished_find_see_new_writes(store: DocumentStore, db: str) -> None:
    store.insert_many(db, "c", [{"_id": i} for i in range(1000)])
    stream = store.find(db, "c")
    next(stream)
    store.insert_many(db, "c", [{"_id": "new"}])
    assert store.count(db, "c") == 1001
    assert store.find_one(db, "c", {"_id": "new"}) == {"_id": "new"}
    assert sum(1 for _ in stream) >= 999


def test_threads_writing_one_database_at_once_lose_nothing(store: DocumentStore, db: str) -> None:
    def load(worker: int) -> InsertResult:
        total = InsertResult(0, 0)
        for batch in range(5):
            docs = [{"_id": f"{worker}-{batch}-{i}", "w": worker} for i in range(200)]
            result = store.insert_many(db, "c", docs)
            total = InsertResult(total.inserted + result.inserted, total.duplicates + result.duplicates)
        return total

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(load, range(4)))
    assert results == [InsertResult(1000, 0)] * 4
    assert store.count(db, "c") == 4000
    assert sorted(d["w"] for d in store.find(db, "c", {"w": 3})) == [3] * 1000


def test_grouped_writes_keep_every_call_and_a_failed_call_leaves_nothing(
    sqlite_store: SqliteDocumentStore,
) -> None:
    sqlite_store.create_index("g", "c", [("k", 1)], unique=True)
    with sqlite_store.grouped_writes("g"):
        assert sqlite_store.insert_many("g", "c", [{"_id": i, "k": i} for i in range(100)]).inserted == 100
        with pytest.raises(TerminalError):  # a unique-index violation: the whole call fails
            sqlite_store.insert_many("g", "c", [{"_id": "a", "k": "a"}, {"_id": "b", "k": 5}])
        assert sqlite_store.insert_many("g", "c", [{"_id": 100, "k": 100}]).inserted == 1
        assert sqlite_store.update_fields("g", "c", [(100, {"seen": True})]) == 1
    assert sqlite_store.count("g", "c") == 101, "the calls before and after the failed one are kept"
    assert sqlite_store.find_one("g", "c", {"_id": "a"}) is None
    assert sqlite_store.find_one("g", "c", {"_id": 100}) == {"_id": 100, "k": 100, "seen": True}


def test_a_write_of_another_thread_during_grouped_writes_commits_and_keeps_both(
    sqlite_store: SqliteDocumentStore,
) -> None:
    with sqlite_store.grouped_writes("g"):
        sqlite_store.insert_many("g", "c", [{"_id": i} for i in range(10)])
        with ThreadPoolExecutor(max_workers=1) as pool:  # ends the group's open transaction first
            assert pool.submit(sqlite_store.insert_many, "g", "c", [{"_id": "other"}]).result().inserted == 1
        other = SqliteDocumentStore(sqlite_store.root)  # another process's view: the group committed
        try:
            assert other.count("g", "c") == 11
        finally:
            other.close()
        sqlite_store.insert_many("g", "c", [{"_id": 10}])
    assert sqlite_store.count("g", "c") == 12


class CommitFailsOnce:
    """The store's real writer connection, whose next COMMIT fails as on a full disk (armed by
    `fail`): a fault injected in front of the real database, not a stand-in for it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.fail = False

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if self.fail and sql == "COMMIT":
            self.fail = False
            raise sqlite3.OperationalError("database or disk is full")
        return self.conn.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self.conn, name)


def test_a_group_lost_when_another_threads_write_commits_it_fails_its_owner_too(
    sqlite_store: SqliteDocumentStore,
) -> None:
    sqlite_store.insert_many("g", "c", [{"_id": "before"}])
    handle = sqlite_store._handles["g"]
    real = handle.writer
    handle.writer = failing = CommitFailsOnce(real)  # type: ignore[assignment]
    try:
        with pytest.raises(TerminalError, match="lost"), sqlite_store.grouped_writes("g"):
            sqlite_store.insert_many("g", "c", [{"_id": i} for i in range(10)])
            failing.fail = True
            with (
                ThreadPoolExecutor(max_workers=1) as pool,
                pytest.raises(TerminalError, match="disk is full"),
            ):
                pool.submit(sqlite_store.insert_many, "g", "c", [{"_id": "other"}]).result()
            sqlite_store.insert_many("g", "c", [{"_id": 10}])  # the owner learns its writes were lost
    finally:
        handle.writer = real
    assert sorted(d["_id"] for d in sqlite_store.find("g", "c")) == ["before"]


def test_a_new_embedded_database_has_large_pages_and_an_old_one_keeps_its_own(
    sqlite_store: SqliteDocumentStore, state_dir: Path
) -> None:
    """New files get 32 KiB pages (bulk loads write 8 times fewer log frames); a file made with
    SQLite's 4 KiB pages before still opens, reads and writes, and checkpoints at the same log size."""
    sqlite_store.insert_many("fresh", "c", [{"_id": 1, "a": "x"}])
    old_path = sqlite_store.path_for("old")
    old_path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(old_path) as made_before:
        made_before.execute("PRAGMA journal_mode = WAL")  # what an older version did: 4 KiB pages
    made_before.close()
    sqlite_store.insert_many("old", "c", [{"_id": 1, "a": "y"}])
    assert [d["a"] for d in sqlite_store.find("old", "c")] == ["y"]
    sizes = {}
    for name in ("fresh", "old"):
        with sqlite3.connect(sqlite_store.path_for(name)) as conn:
            sizes[name] = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.close()
        writer = sqlite_store._open(name)
        assert writer is not None
        with writer.lock:
            pages = writer.writer.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        assert pages * sizes[name] == sqlite_module._CHECKPOINT_BYTES
    assert sizes == {"fresh": 32768, "old": 4096}


def test_grouped_writes_commit_as_they_add_up_and_at_the_end(
    sqlite_store: SqliteDocumentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "_GROUP_BYTES", 2000)
    other = SqliteDocumentStore(sqlite_store.root)
    try:
        with sqlite_store.grouped_writes("g"):
            sqlite_store.insert_many("g", "c", [{"_id": i, "pad": "x" * 100} for i in range(5)])
            assert other.count("g", "c") == 0, "not committed yet: 600 bytes of 2000"
            sqlite_store.insert_many("g", "c", [{"_id": i, "pad": "x" * 100} for i in range(5, 20)])
            assert other.count("g", "c") == 20, "committed once 2000 bytes were written"
            sqlite_store.insert_many("g", "c", [{"_id": 20}])
        assert other.count("g", "c") == 21, "committed at the end of the block"
        monkeypatch.setattr(sqlite_module, "_GROUP_CALLS", 3)
        with sqlite_store.grouped_writes("g"):
            for n in range(3):
                assert other.count("g", "c") == 21
                sqlite_store.insert_many("g", "c", [{"_id": f"small{n}"}])
            assert other.count("g", "c") == 24, "committed after three calls, however small"
    finally:
        other.close()


def test_grouped_commits_are_checkpointed_by_a_thread_of_their_own(
    sqlite_store: SqliteDocumentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the writer's own checkpoints out of reach, the pages a grouped commit wrote to the log
    still reach the database file (the background checkpoint), and closing the store ends its
    thread."""
    monkeypatch.setattr(sqlite_module, "_CHECKPOINT_BYTES", 1 << 40)
    path = sqlite_store.path_for("ck")
    docs = [{"_id": i, "pad": "x" * 1000} for i in range(2000)]
    with sqlite_store.grouped_writes("ck"):
        sqlite_store.insert_many("ck", "c", docs[:1000])
        sqlite_store.insert_many("ck", "c", docs[1000:])
    deadline = time.monotonic() + 30
    while path.stat().st_size < 2_000_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.stat().st_size >= 2_000_000, "the log's pages were copied into the database file"
    assert any(t.name == "sqlite-checkpoint-ck" for t in threading.enumerate())
    sqlite_store.close()
    assert not any(t.name == "sqlite-checkpoint-ck" for t in threading.enumerate())
    assert sqlite_store.count("ck", "c") == 2000


def test_grouped_writes_go_on_without_a_checkpointing_thread(
    sqlite_store: SqliteDocumentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread that cannot be started (the process at its limit) fails no write: the writer's own
    checkpoints do the work, and it is not tried again at every commit."""
    tries = []

    def no_thread(self: object, path: Path, db: str) -> None:
        tries.append(db)
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(sqlite_module._Checkpointer, "__init__", no_thread)
    for n in range(3):
        with sqlite_store.grouped_writes("nothread"):
            sqlite_store.insert_many("nothread", "c", [{"_id": n}])
    assert sqlite_store.count("nothread", "c") == 3 and tries == ["nothread"]


# Random documents and filters, answered by MongoDB (FerretDB) and by SQLite with and without
# indexes: every answer must agree. Lists hold no lists (FerretDB refuses them).
SCALARS = [None, True, False, 0, 1, 2, 1.5, -3, "a", "b", "ab", "", OID[0], OID[3], datetime(2014, 1, 1)]


def random_value(rnd: random.Random, depth: int = 0, in_list: bool = False) -> object:
    roll = rnd.random()
    if depth < 2 and roll < 0.15:
        return {k: random_value(rnd, depth + 1) for k in rnd.sample(["x", "y", "z"], rnd.randint(0, 2))}
    if depth < 2 and roll < 0.3 and not in_list:
        return [random_value(rnd, depth + 1, True) for _ in range(rnd.randint(0, 3))]
    return rnd.choice(SCALARS)


def random_filter(rnd: random.Random) -> dict:
    def condition() -> dict:
        path = rnd.choice(["a", "b", "c", "a.x", "b.y", "a.0", "d", "e.x", "e"])
        op = rnd.choice(["", "$in", "$exists", "$gt", "$lt"])
        if op == "$in":
            return {path: {op: rnd.sample(SCALARS, rnd.randint(1, 3))}}
        if op == "$exists":
            return {path: {op: rnd.random() < 0.5}}
        return {path: {op: rnd.choice(SCALARS)} if op else rnd.choice(SCALARS)}

    roll = rnd.random()
    if roll < 0.3:
        return {"$or": [condition(), condition()]}
    return {**condition(), **condition()}


@pytest.mark.mongo
def test_sqlite_answers_random_queries_exactly_as_mongodb(
    state_dir: Path, mongo_url: str, unique_name: str
) -> None:
    rnd = random.Random(20140301)
    docs = [
        {"_id": i, **{f: random_value(rnd) for f in ("a", "b", "c") if rnd.random() < 0.8}} for i in range(80)
    ]
    for doc in docs:  # fields that never hold lists: there SQLite answers from SQL alone
        if rnd.random() < 0.9:
            doc.update({"d": rnd.choice(SCALARS), "e": {"x": rnd.choice(SCALARS)}})
    plain, indexed = SqliteDocumentStore(state_dir / "plain"), SqliteDocumentStore(state_dir / "indexed")
    reference = MongoDocumentStore(mongo_url)
    try:
        for store in (plain, indexed, reference):
            store.insert_many(unique_name, "c", [dict(d) for d in docs])
        for keys in ([("a", 1)], [("b", -1)], [("a.x", 1), ("b", 1)], [("d", 1)], [("e.x", -1)]):
            indexed.create_index(unique_name, "c", keys)
        for _ in range(400):
            filt = random_filter(rnd)
            expected = ids(reference.find(unique_name, "c", filt))
            for store in (plain, indexed):
                assert ids(store.find(unique_name, "c", filt)) == expected, filt
                assert store.count(unique_name, "c", filt) == len(expected), filt
    finally:
        drop_database(reference, unique_name)
        for store in (plain, indexed, reference):
            store.close()


# --- limit, projection -----------------------------------------------------------


def test_limit_applies_after_the_filter(store: DocumentStore, db: str) -> None:
    store.insert_many(db, "c", events())
    assert len(list(store.find(db, "c", {"country": {"$exists": True}}, limit=3))) == 3
    assert ids(store.find(db, "c", {"tags": "a"}, limit=5)) == [1, 4]


def test_projection_includes_or_excludes_fields_and_dotted_paths(store: DocumentStore, db: str) -> None:
    store.insert_many(db, "c", events())
    assert store.find_one(db, "c", {"_id": 1}, {"username": 1, "_id": 0}) == {"username": "ann"}
    assert store.find_one(db, "c", {"_id": 1}, {"context.course_id": 1}) == {
        "_id": 1,
        "context": {"course_id": COURSE},
    }
    assert store.find_one(db, "c", {"_id": 5}, {"sub.k": 1, "_id": 0}) == {"sub": [{"k": 1}, {"k": 2}]}
    excluded = store.find_one(db, "c", {"_id": 2}, {"context": 0, "tags": 0, "author": 0})
    assert excluded == {
        "_id": 2,
        "username": "bob",
        "event_type": "edx.course.enrollment.activated",
        "time_date": datetime(2014, 3, 2, 10, 0),
        "country": "",
        "n": 2.5,
        "flag": False,
    }
    without_user = store.find_one(db, "c", {"_id": 3}, {"context.user_id": 0, "_id": 0})
    assert without_user is not None and without_user["context"] == {"course_id": COURSE}


# --- updates and deletes --------------------------------------------------------------------------


def test_update_fields_sets_fields_by_id_and_counts_matches(store: DocumentStore, db: str) -> None:
    store.insert_many(db, "c", events())
    brisbane = timezone(timedelta(hours=10))
    updated = store.update_fields(
        db,
        "c",
        [
            (1, {"country": "NZ", "geo.city": "Auckland"}),
            (99, {"country": "XX"}),
            (3, {"time_date": datetime(2014, 3, 3, 20, tzinfo=brisbane), "context.user_id": 31}),
        ],
    )
    assert updated == 2
    one = store.find_one(db, "c", {"_id": 1})
    assert one is not None and one["country"] == "NZ" and one["geo"] == {"city": "Auckland"}
    three = store.find_one(db, "c", {"_id": 3})
    assert three is not None and three["time_date"] == datetime(2014, 3, 3, 10)
    assert three["context"] == {"course_id": COURSE, "user_id": 31}
    assert store.count(db, "c", {"country": "XX"}) == 0
    assert store.update_fields(db, "c", []) == 0


def test_update_fields_cannot_change_id(store: DocumentStore, db: str) -> None:
    store.insert_many(db, "c", events())
    with pytest.raises(TerminalError):
        store.update_fields(db, "c", [(1, {"_id": 7})])


def test_update_fields_through_a_non_document_raises_terminal_error(store: DocumentStore, db: str) -> None:
    store.insert_many(db, "c", [{"_id": 1, "n": 5}])
    with pytest.raises(TerminalError):
        store.update_fields(db, "c", [(1, {"n.x": 1})])
    assert store.find_one(db, "c") == {"_id": 1, "n": 5}


def test_backfill_updates_documents_while_streaming_them(store: DocumentStore, db: str) -> None:
    store.create_index(db, "c", [("country", 1)])
    store.insert_many(db, "c", [{"_id": f"e{i}", "ip": f"10.0.0.{i % 250}"} for i in range(1200)])
    batch = []
    for doc in store.find(db, "c", {"country": {"$exists": False}}):
        batch.append((doc["_id"], {"country": "AU"}))
        if len(batch) == 100:
            assert store.update_fields(db, "c", batch) == 100
            batch = []
    assert batch == []
    assert store.count(db, "c", {"country": "AU"}) == 1200
    assert store.count(db, "c", {"country": {"$exists": False}}) == 0


def test_one_update_call_may_carry_hundreds_of_documents(store: DocumentStore, db: str) -> None:
    # FerretDB 1.24 deadlocks on an update command of ~100 statements; the store splits them.
    store.insert_many(db, "c", [{"_id": i} for i in range(450)])
    assert store.update_fields(db, "c", [(i, {"n": i}) for i in range(450)]) == 450
    assert store.count(db, "c", {"n": {"$gt": -1}}) == 450


def test_update_making_an_indexed_field_a_list_keeps_queries_right(store: DocumentStore, db: str) -> None:
    store.create_index(db, "c", [("tags", 1)])
    store.insert_many(db, "c", [{"_id": 1, "tags": "a"}, {"_id": 2, "tags": "b"}])
    assert ids(store.find(db, "c", {"tags": "a"})) == [1]
    store.update_fields(db, "c", [(2, {"tags": ["a", "c"]})])
    assert ids(store.find(db, "c", {"tags": "a"})) == [1, 2]
    assert store.count(db, "c", {"tags": "c"}) == 1


def test_encoded_documents_with_a_list_on_an_indexed_path_are_found_by_element(
    sqlite_store: SqliteDocumentStore,
) -> None:
    from stores.documents.base import encode, id_key

    db = "encoded"
    sqlite_store.create_index(db, "c", [("context.course_id", 1)])
    docs = [{"_id": 1, "context": {"course_id": "a"}}, {"_id": 2, "context": {"course_id": ["a", "b"]}}]
    maybe = sqlite_store.may_hold_lists(db, "c")
    assert [maybe(d) for d in docs] == [False, True], "the store knows which paths it indexes"
    rows = [(id_key(d["_id"]), encode(d)) for d in docs]
    assert sqlite_store.insert_encoded(db, "c", rows, [d for d in docs if maybe(d)]) == InsertResult(2, 0)
    assert ids(sqlite_store.find(db, "c", {"context.course_id": "a"})) == [1, 2]
    assert ids(sqlite_store.find(db, "c", {"context.course_id": "b"})) == [2]
    again = sqlite_store.insert_encoded(db, "c", [rows[1], (id_key(3), encode({"_id": 3}))])
    assert again == InsertResult(1, 1, (0,)), "the positions of the ids already stored are reported"


def test_encoded_batches_larger_than_one_insert_statement_report_every_duplicate(
    sqlite_store: SqliteDocumentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stores.documents import sqlite as sqlite_module
    from stores.documents.base import encode, id_key

    monkeypatch.setattr(sqlite_module, "_CHUNK_ROWS", 3)  # several statements per batch
    db = "chunks"
    first = [(id_key(n), encode({"_id": n, "n": n})) for n in range(7)]
    assert sqlite_store.insert_encoded(db, "c", first) == InsertResult(7, 0)
    # stored ids at positions 1, 4 and 8 (in other statements), and a repeat within the batch (6)
    again = [(id_key(n), encode({"_id": n, "n": n})) for n in (10, 3, 11, 12, 5, 13, 10, 14, 0, 15)]
    assert sqlite_store.insert_encoded(db, "c", again) == InsertResult(6, 4, (1, 4, 6, 8))
    assert sorted(ids(sqlite_store.find(db, "c"))) == [*range(7), 10, 11, 12, 13, 14, 15]


def test_fields_the_loader_sets_itself_are_not_checked_for_lists(sqlite_store: SqliteDocumentStore) -> None:
    from stores.documents.base import never_lists

    db = "own"
    sqlite_store.create_index(db, "c", [("source_file", 1)])
    assert sqlite_store.may_hold_lists(db, "c", frozenset({"source_file"})) is never_lists
    sqlite_store.create_index(db, "c", [("context.course_id", 1)])
    maybe = sqlite_store.may_hold_lists(db, "c", frozenset({"source_file"}))
    assert maybe({"source_file": ["x"], "context": {"course_id": "a"}}) is False
    assert maybe({"context": {"course_id": ["a", "b"]}}) is True


def test_delete_many_deletes_matches_and_counts_them(store: DocumentStore, db: str) -> None:
    store.insert_many(db, "c", events())
    assert store.delete_many(db, "c", {"tags": "a"}) == 2
    assert store.delete_many(db, "c", {"country": "AU"}) == 0
    assert ids(store.find(db, "c")) == [2, 3, 5]
    assert store.delete_many(db, "c", {}) == 3
    assert store.count(db, "c") == 0


# --- indexes and collections --------------------------------------------------------------------


def test_created_indexes_are_listed_by_name(store: DocumentStore, db: str) -> None:
    assert store.create_index(db, "c", [("country", 1)]) == "country_1"
    name = store.create_index(db, "c", [("event_type", 1), ("context.course_id", 1)])
    assert name == "event_type_1_context.course_id_1"
    assert store.create_index(db, "c", [("time_date", -1)], name="by_time") == "by_time"
    assert store.create_index(db, "c", [("country", 1)]) == "country_1"  # again: no-op
    assert sorted(index_names(store, db, "c")) == sorted(["_id_", "country_1", name, "by_time"])


def test_unique_index_rejects_a_duplicate_value(store: DocumentStore, db: str) -> None:
    store.create_index(db, "users", [("username", 1)], unique=True)
    store.insert_many(db, "users", [{"_id": 1, "username": "ann"}])
    with pytest.raises(TerminalError, match="unique"):
        store.insert_many(db, "users", [{"_id": 2, "username": "ann"}])
    assert store.insert_many(db, "users", [{"_id": 1, "username": "ann"}]) == InsertResult(0, 1, (0,))
    assert ids(store.find(db, "users")) == [1]


def test_unique_index_over_duplicate_values_is_refused(store: DocumentStore, db: str) -> None:
    store.insert_many(db, "users", [{"_id": 1, "u": "x"}, {"_id": 2, "u": "x"}])
    with pytest.raises(TerminalError):
        store.create_index(db, "users", [("u", 1)], unique=True)


def test_replace_collection_leaves_exactly_the_source_under_the_target_name(
    store: DocumentStore, db: str
) -> None:
    store.insert_many(db, "forum", [{"_id": i, "old": True} for i in range(5)])
    store.create_index(db, "forum", [("old", 1)])
    store.insert_many(db, "forum_loading", [{"_id": i, "body": f"post {i}"} for i in range(3, 6)])
    store.create_index(db, "forum_loading", [("body", 1)])
    store.replace_collection(db, "forum_loading", "forum")
    assert list_collections(store, db) == ["forum"]
    assert sorted(store.find(db, "forum"), key=lambda d: d["_id"]) == [
        {"_id": i, "body": f"post {i}"} for i in range(3, 6)
    ]
    assert sorted(index_names(store, db, "forum")) == ["_id_", "body_1"]
    assert store.count(db, "forum", {"body": "post 4"}) == 1


@pytest.mark.parametrize("old_target", [True, False], ids=["over_old", "fresh"])
def test_replace_collection_works_for_forum_names_with_dots(
    store: DocumentStore, db: str, old_target: bool
) -> None:
    forum = "UQx-PSYC1030.1x-4T2016-prod"
    if old_target:
        store.insert_many(db, forum, [{"_id": "stale"}])
    store.insert_many(db, f"{forum}__load", [{"_id": i, "votes": {"up_count": i}} for i in range(7)])
    store.create_index(db, f"{forum}__load", [("votes.up_count", -1)], unique=True)
    store.replace_collection(db, f"{forum}__load", forum)
    assert list_collections(store, db) == [forum]
    assert ids(store.find(db, forum)) == list(range(7))
    assert sorted(index_names(store, db, forum)) == ["_id_", "votes.up_count_-1"]
    with pytest.raises(TerminalError, match="unique"):
        store.insert_many(db, forum, [{"_id": 99, "votes": {"up_count": 3}}])


def test_replace_collection_without_an_old_target_renames(store: DocumentStore, db: str) -> None:
    store.insert_many(db, "forum_loading", [{"_id": 1}])
    store.replace_collection(db, "forum_loading", "forum")
    assert list_collections(store, db) == ["forum"]


def test_replace_collection_from_a_missing_source_keeps_the_target(store: DocumentStore, db: str) -> None:
    store.insert_many(db, "forum", [{"_id": 1}])
    with pytest.raises(TerminalError, match="does not exist"):
        store.replace_collection(db, "forum_loading", "forum")
    assert store.count(db, "forum") == 1


def test_drop_collection_and_database(store: DocumentStore, db: str) -> None:
    store.insert_many(db, "a", [{"_id": 1}])
    store.insert_many(db, "b", [{"_id": 1}])
    assert list_collections(store, db) == ["a", "b"]
    assert db in list_databases(store)
    store.drop_collection(db, "a")
    store.drop_collection(db, "never-there")
    assert list_collections(store, db) == ["b"]
    drop_database(store, db)
    assert list_collections(store, db) == []
    assert db not in list_databases(store)


def test_store_is_a_context_manager_and_reopens_after_close(store: DocumentStore, db: str) -> None:
    with store as same:
        same.insert_many(db, "c", [{"_id": 1}])
    assert store.count(db, "c") == 1


# --- names and configuration ----------------------------------------------------------------------

HOSTILE = ["a;b", 'x"y', "../x", "a$b", "a" * 200, "", ".hidden", "-x", "a\x00b", "a..b", "a b"]


@pytest.mark.parametrize("name", HOSTILE, ids=repr)
def test_hostile_collection_name_raises_unsafe_name_error(store: DocumentStore, db: str, name: str) -> None:
    with pytest.raises(UnsafeNameError):
        store.insert_many(db, name, [{"_id": 1}])
    with pytest.raises(UnsafeNameError):
        list(store.find(db, name))
    with pytest.raises(UnsafeNameError):
        store.replace_collection(db, name, "c")


@pytest.mark.parametrize("name", [*HOSTILE, "has.dot"], ids=repr)
def test_hostile_database_name_raises_unsafe_name_error(store: DocumentStore, name: str) -> None:
    with pytest.raises(UnsafeNameError):
        store.insert_many(name, "c", [{"_id": 1}])
    with pytest.raises(UnsafeNameError):
        store.drop_collection(name, "c")


def test_real_file_names_are_accepted(store: DocumentStore, db: str) -> None:
    for coll in ["UQx-BIOIMG101x-1T2014-prod", "clickstream", "UQx-PSYC1030.1x-4T2016-prod"]:
        store.insert_many(db, coll, [{"_id": 1}])
    assert len(list_collections(store, db)) == 3


def test_unsafe_index_field_raises_unsafe_name_error(store: DocumentStore, db: str) -> None:
    with pytest.raises(UnsafeNameError):
        store.create_index(db, "c", [("a'); DROP TABLE x; --", 1)])


@pytest.mark.parametrize(
    "url", ["mysql://x", "", "SQLITE", "mongodb:/h", "mongo://u:secret@h", "mongodb://u:secret@h:99999"]
)
def test_unknown_store_url_raises_config_error(state_dir: Path, url: str) -> None:
    with pytest.raises(ConfigError) as raised:
        open_document_store(url, state_dir)
    assert "secret" not in str(raised.value)


def test_sqlite_url_puts_one_file_per_database_under_state_dir(state_dir: Path) -> None:
    with open_document_store("sqlite", state_dir) as opened:
        assert isinstance(opened, SqliteDocumentStore)
        opened.insert_many("logs", "clickstream", [{"_id": 1}])
        opened.insert_many("discussion_forum", "UQx-BIOIMG101x-1T2014-prod", [{"_id": 1}])
    assert (state_dir / "documents" / "logs.sqlite").is_file()
    assert (state_dir / "documents" / "discussion_forum.sqlite").is_file()
    tables = sqlite3.connect(state_dir / "documents" / "logs.sqlite").execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'"
    )
    assert "clickstream" in {name for (name,) in tables}


@pytest.mark.mongo
def test_mongodb_url_opens_the_pymongo_backend(state_dir: Path, mongo_url: str) -> None:
    with open_document_store(mongo_url, state_dir) as opened:
        assert isinstance(opened, MongoDocumentStore)


# --- SQLite specifics ----------------------------------------------------------------------------


def test_sqlite_equality_on_indexed_fields_uses_the_index(sqlite_store: SqliteDocumentStore) -> None:
    sqlite_store.insert_many("logs", "clickstream", events())
    sqlite_store.create_index("logs", "clickstream", [("context.course_id", 1)])
    sqlite_store.create_index("logs", "clickstream", [("event_type", 1), ("context.course_id", 1)])
    sqlite_store.create_index("logs", "clickstream", [("time_date", 1)])
    plans = {
        "course": sqlite_store.query_plan("logs", "clickstream", {"context.course_id": COURSE}),
        "both": sqlite_store.query_plan(
            "logs", "clickstream", {"event_type": "play_video", "context.course_id": COURSE}
        ),
        "time": sqlite_store.query_plan("logs", "clickstream", {"time_date": {"$gt": datetime(2014, 3, 2)}}),
        "in": sqlite_store.query_plan(
            "logs", "clickstream", {"context.course_id": {"$in": [COURSE, OTHER_COURSE]}}
        ),
    }
    for name, plan in plans.items():
        assert any("USING INDEX" in step for step in plan), (name, plan)
    assert not any("USING INDEX" in s for s in sqlite_store.query_plan("logs", "clickstream", {"x": 1}))


def test_sqlite_non_finite_floats_round_trip(sqlite_store: SqliteDocumentStore) -> None:
    # FerretDB 1.24 refuses NaN and infinity (MongoDB stores them), so this is SQLite only.
    sqlite_store.insert_many("d", "c", [{"_id": 1, "nan": math.nan, "inf": math.inf, "ninf": -math.inf}])
    got = sqlite_store.find_one("d", "c")
    assert got is not None and math.isnan(got["nan"]) and got["inf"] == math.inf and got["ninf"] == -math.inf


def test_sqlite_locked_database_raises_transient_error(state_dir: Path) -> None:
    with SqliteDocumentStore(state_dir / "documents", busy_timeout=0.1) as opened:
        opened.insert_many("logs", "c", [{"_id": 1}])
        other = sqlite3.connect(opened.path_for("logs"), isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(TransientError, match=r"logs\.c"):
                opened.insert_many("logs", "c", [{"_id": 2}])
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert opened.insert_many("logs", "c", [{"_id": 2}]) == InsertResult(1, 0)


def test_sqlite_reads_of_a_missing_database_create_no_file(sqlite_store: SqliteDocumentStore) -> None:
    assert list(sqlite_store.find("ghost", "c")) == []
    assert not sqlite_store.path_for("ghost").exists()


def test_mongo_unreachable_server_raises_transient_error() -> None:
    unreachable = MongoDocumentStore("mongodb://127.0.0.1:9/", server_selection_timeout_ms=200)
    with unreachable, pytest.raises(TransientError, match="unavailable"):
        unreachable.count("logs", "clickstream")
