"""The DiscussionForums service through the real daemon loop (`run --once`), on both document
backends (embedded SQLite and the MongoDB-wire server), plus its reader's rules on their own."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pytest
from bson import ObjectId

from core import states
from core.courses import load_courses
from core.daemon import Daemon
from core.errors import BadDataError, Interrupted
from core.rejects import Rejects
from services.discussion_forums.forum import BadLine, parse_line
from services.discussion_forums.service import COUNTS_TABLE, PERSON_COURSE, DiscussionForumsService
from stores.documents import DocumentStore, open_document_store
from stores.sql import open_sql_store
from tests.conftest import REPO, SAMPLE_DATA
from tests.documents import drop_database, index_names, list_collections
from tests.packages import dump_dir, make_package, settings_for

FORUM = "UQx-BIOIMG101x-1T2014-prod"
COURSE_ID = "UQx/BIOIMG101x/1T2014"
DOTTED = "UQx-PSYC1030.1x-4T2016-prod"  # most real forum names have a '.' (course "PSYC1030.1x")
THREAD, RESPONSE, REPLY, OTHER = (ObjectId(f"552a6f0a69429bccb002620{i}") for i in range(1, 5))
MOMENT = datetime(2013, 11, 21, 19, 30, 0, 123000)


def oid(value: ObjectId) -> dict[str, str]:
    return {"$oid": str(value)}


def post(_id: ObjectId, kind: str, author: str, up: int = 0, **fields: Any) -> dict[str, Any]:
    """One forum document as mongoexport writes it (Extended JSON values given by the caller)."""
    doc: dict[str, Any] = {
        "_id": oid(_id),
        "_type": kind,
        "author_id": author,
        "course_id": COURSE_ID,
        "body": f"post {_id}",
        "created_at": {"$date": "2015-04-12T13:11:38.048Z"},
        "votes": {"up": [], "down": [], "up_count": up, "down_count": 0, "count": up, "point": up},
    }
    doc.update(fields)
    return doc


def lines(*docs: dict[str, Any] | str | bytes) -> bytes:
    out = []
    for doc in docs:
        if isinstance(doc, bytes):
            out.append(doc)
        else:
            out.append((doc if isinstance(doc, str) else json.dumps(doc)).encode())
    return b"\n".join(out) + b"\n"


def small_forum() -> list[dict[str, Any]]:
    """A thread, a response (no parent_ids at all: it gets []), a reply without parent_ids, one more."""
    return [
        post(THREAD, "CommentThread", "10", up=2, commentable_id="course", title="Welcome"),
        post(RESPONSE, "Comment", "11", up=3, comment_thread_id=oid(THREAD)),
        post(REPLY, "Comment", "10", comment_thread_id=oid(THREAD), parent_id=oid(RESPONSE)),
        post(OTHER, "CommentThread", "12", commentable_id="i4x-UQx-PSYC-discussion-week1"),
    ]


def write_courses(path: Path, *forums: str) -> Path:
    """A courses.py whose courses have these discussiontables."""
    entries = {
        f"course{i}": {
            "dbname": f"UQx_C{i}_1T2016",
            "mongoname": COURSE_ID,
            "discussiontable": forum,
            "csjson": "",
        }
        for i, forum in enumerate(forums)
    }
    path.write_text(f"EDX_DATABASES = {entries!r}\n")
    return path


class ForumEnv:
    """A data package, a state dir, and the daemon run on it with this test's databases."""

    def __init__(self, root: Path, mongo: str, sql: str, unique: str) -> None:
        self.root, self.mongo, self.sql, self.unique = root, mongo, sql, unique
        self.data = make_package(root / "data")
        self.state = root / "var"
        self.prefix = f"{unique}_"
        self.db = f"{self.prefix}discussion_forum"
        self.forum = FORUM
        self.courses = write_courses(root / "courses.py", FORUM)
        self.store: DocumentStore = open_document_store(mongo, self.state)
        self.daemon: Daemon | None = None

    def settings(self, **extra: str) -> Any:
        values = {
            "MONGO_URL": self.mongo,
            "DOCUMENT_DB_PREFIX": self.prefix,
            "TRACKING_DATABASE": f"api_{self.unique}",
            "SERVICES": "DiscussionForums",
            "COURSES_FILE": str(self.courses),
            **extra,
        }
        return settings_for(self.data, self.state, self.sql, **values)

    def write(self, name: str, content: bytes) -> Path:
        path = dump_dir(self.data) / name
        path.write_bytes(content)
        return path

    def run(self, **extra: str) -> int:
        self.daemon = Daemon(self.settings(**extra), foreground=False)
        return self.daemon.run(once=True)

    def rows(self) -> dict[str, Any]:
        assert self.daemon is not None
        return {os.path.basename(r.meta): r for r in self.daemon.scheduler.queue.rows()}

    def docs(self, coll: str = FORUM, db: str | None = None) -> list[dict[str, Any]]:
        return sorted(self.store.find(db or self.db, coll), key=lambda d: d["_id"])

    def counts(self, forum: str | None = None) -> list[tuple[Any, ...]]:
        sql = open_sql_store(self.sql, self.state)
        return [
            tuple(r)
            for r in sql.query(
                PERSON_COURSE,
                "SELECT course_id, author_id, nposts, nthreads, ncomments, nvotes_received, source "
                f"FROM {COUNTS_TABLE} WHERE discussiontable = ? ORDER BY author_id",
                (forum or self.forum,),
            )
        ]

    def rejects_text(self) -> str:
        found = sorted((self.state / "rejects" / "DiscussionForums").glob("*.rejects.tsv"))
        return "".join(p.read_text() for p in found)

    def cleanup(self) -> None:
        drop_database(self.store, self.db)
        drop_database(self.store, f"{self.unique}x_discussion_forum")
        self.store.close()
        if self.sql != "sqlite":
            sql = open_sql_store(self.sql, self.state)
            sql.drop_database(f"api_{self.unique}")
            if PERSON_COURSE in sql.list_databases():
                with sql.transaction(PERSON_COURSE) as cur:
                    cur.execute(f"DELETE FROM {COUNTS_TABLE} WHERE discussiontable = ?", (self.forum,))


@pytest.fixture(params=["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)])
def document_backend(request: pytest.FixtureRequest) -> str:
    """MONGO_URL of each document backend: embedded SQLite, and the MongoDB-wire server."""
    return "sqlite" if request.param == "sqlite" else str(request.getfixturevalue("mongo_url"))


@pytest.fixture
def env(tmp_path: Path, document_backend: str, unique_name: str) -> Iterator[ForumEnv]:
    environment = ForumEnv(tmp_path, document_backend, "sqlite", unique_name)
    yield environment
    environment.cleanup()


# --- what the readers get -----------------------------------------------------------------------


DATE_FORMS: dict[str, Any] = {
    "mongoexport 2.4 integer millis": 1385062200123,
    "3.x ISO with Z": "2013-11-21T19:30:00.123Z",
    "2.6 ISO with -0500": "2013-11-21T14:30:00.123-0500",
    "2.6 ISO with +1000": "2013-11-22T05:30:00.123+1000",
    "ISO with +10:00": "2013-11-22T05:30:00.123+10:00",
    "$numberLong": {"$numberLong": "1385062200123"},
    "ISO with microseconds (kept to the millisecond)": "2013-11-21T19:30:00.123999Z",
}


def test_every_date_form_reads_back_as_the_same_datetime(env):
    docs = [
        post(ObjectId(f"5323194a52f4b10c4f5665{i:02x}"), "CommentThread", "1", created_at={"$date": form})
        for i, form in enumerate(DATE_FORMS.values())
    ]
    whole_second = post(
        ObjectId("5323194a52f4b10c4f566600"),
        "CommentThread",
        "1",
        created_at={"$date": "2013-11-21T19:30:00Z"},
    )
    before_1970 = post(
        ObjectId("5323194a52f4b10c4f566601"),
        "CommentThread",
        "1",
        created_at={"$date": {"$numberLong": "-86399877"}},
        updated_at={"$date": -86399877},
    )
    env.write(f"{FORUM}.mongo", lines(*docs, whole_second, before_1970))
    assert env.run() == 0
    found = env.docs()
    assert len(found) == len(DATE_FORMS) + 2
    for name, doc in zip(DATE_FORMS, found[: len(DATE_FORMS)], strict=True):
        assert type(doc["created_at"]) is datetime, name
        assert doc["created_at"] == MOMENT, name
    assert found[-2]["created_at"] == datetime(2013, 11, 21, 19, 30)
    assert found[-1]["created_at"] == found[-1]["updated_at"] == datetime(1969, 12, 31, 0, 0, 0, 123000)


def test_ids_thread_structure_and_votes_have_real_types(env):
    env.write(f"{FORUM}.mongo", lines(*small_forum()))
    assert env.run() == 0
    thread, response, reply, _other = env.docs()
    assert isinstance(thread["_id"], ObjectId) and thread["_id"] == THREAD
    assert response["comment_thread_id"] == THREAD and isinstance(response["comment_thread_id"], ObjectId)
    assert response["parent_ids"] == [], "a response without parent_ids gets an empty list"
    assert reply["parent_id"] == RESPONSE
    assert reply["parent_ids"] == [RESPONSE], "a reply without parent_ids gets [parent_id]"
    assert "parent_ids" not in thread, "threads are left as they are"
    assert thread["votes"]["up_count"] == 2
    voted = sorted(env.store.find(env.db, FORUM, {"votes.up_count": {"$gt": 1}}), key=lambda d: d["_id"])
    assert [d["_id"] for d in voted] == [THREAD, RESPONSE]


def test_keys_with_dollar_or_dot_are_mapped_and_numbers_unwrapped(env):
    odd: dict[str, Any] = {
        "$flag": True,
        "meta.data": {"a.b": 1, "a-b": 2},
        "big": {"$numberLong": "9007199254740993"},
    }
    doc = post(THREAD, "CommentThread", "10", **odd)
    env.write(f"{FORUM}.mongo", lines(doc))
    assert env.run() == 0
    (found,) = env.docs()
    assert found["_flag"] is True
    assert found["meta-data"] == {"a-b_": 1, "a-b": 2}, "a mapped key never overwrites an existing one"
    assert found["big"] == 9007199254740993 and isinstance(found["big"], int)


def test_dashboards_reads_of_the_forum_work(env):
    env.write(f"{FORUM}.mongo", lines(*small_forum()))
    assert env.run() == 0
    comments = list(env.store.find(env.db, FORUM, {"_type": "Comment", "comment_thread_id": THREAD}))
    assert {c["_id"] for c in comments} == {RESPONSE, REPLY}
    assert all(type(c["created_at"]) is datetime for c in comments)
    assert env.store.count(env.db, FORUM, {"_type": "Comment", "parent_ids": {"$exists": False}}) == 0
    assert env.store.count(env.db, FORUM, {"_type": "Comment", "parent_ids": []}) == 1
    assert env.store.count(env.db, FORUM, {"author_id": "10"}) == 2
    threads = env.store.find(env.db, FORUM, {"_type": "CommentThread"}, {"commentable_id": 1})
    assert sorted(t["commentable_id"] for t in threads) == ["course", "i4x-UQx-PSYC-discussion-week1"]
    indexes = set(index_names(env.store, env.db, FORUM))
    assert {"author_id_1", "comment_thread_id_1", "_type_1", "commentable_id_1"} <= indexes


# --- snapshots, bad input, crashes --------------------------------------------------------------


def test_new_snapshot_replaces_the_forum_and_a_deleted_post_disappears(env):
    path = env.write(f"{FORUM}.mongo", lines(*small_forum()))
    assert env.run() == 0
    newer = small_forum()
    del newer[3]  # deleted on edX
    newer[0]["title"] = "Welcome (edited)"
    newer.append(post(ObjectId("552a6f0a69429bccb0026209"), "Comment", "13", comment_thread_id=oid(THREAD)))
    path.write_bytes(lines(*newer))
    os.utime(path, (1e9, 1e9))
    assert env.run() == 0
    found = env.docs()
    assert [d["_id"] for d in found] == [THREAD, RESPONSE, REPLY, ObjectId("552a6f0a69429bccb0026209")]
    assert found[0]["title"] == "Welcome (edited)"
    assert list_collections(env.store, env.db) == [FORUM], "no staging collection is left"
    assert env.rows()[f"{FORUM}.mongo"].rows_loaded == 4


def test_bad_lines_are_rejected_with_their_line_numbers_and_the_rest_loads(env):
    good = small_forum()
    content = lines(
        "2015-06-07T03:12:44.123+0000\tconnected to: 127.0.0.1",
        good[0],
        "",
        '["an", "array"]',
        {"_type": "Comment", "body": "no id"},
        post(ObjectId("552a6f0a69429bccb0026211"), "Comment", "1", x={"$regex": "^a", "$options": ""}),
        post(ObjectId("552a6f0a69429bccb0026212"), "Comment", "1", created_at={"$date": "garbage"}),
        json.dumps(good[1]).replace("post", "caf\xe9").encode("latin-1"),
        good[1],
        good[0],
        good[2],
        '{"_id": {"$oid": "not-an-object-id"}}',
    )
    env.write(f"{FORUM}.mongo", content)
    assert env.run() == 0
    row = env.rows()[f"{FORUM}.mongo"]
    assert (row.state, row.rows_loaded, row.rows_rejected) == (states.DONE, 3, 9)
    assert [d["_id"] for d in env.docs()] == [THREAD, RESPONSE, REPLY]
    text = env.rejects_text()
    for expected in (
        "1\tnot JSON",
        "3\tblank line",
        "4\tnot a JSON object but an array",
        "5\tno _id",
        "6\tunsupported extended JSON form {$regex, $options}",
        "7\tinvalid $date: 'garbage'",
        "8\tinvalid UTF-8",
        "10\tduplicate _id (first on line 2)",
        "12\tinvalid $oid",
    ):
        assert f"\n{expected}" in text, expected


def test_file_without_a_single_document_fails_and_keeps_the_previous_forum(env):
    path = env.write(f"{FORUM}.mongo", lines(*small_forum()))
    assert env.run() == 0
    path.write_bytes(b"<html>502 Bad Gateway</html>\n")
    os.utime(path, (1e9, 1e9))
    assert env.run() == 1
    row = env.rows()[f"{FORUM}.mongo"]
    assert row.state == states.FAILED and "not one of its 1 line(s)" in row.error and str(path) in row.error
    assert len(env.docs()) == 4, "readers keep the last good forum"
    assert list_collections(env.store, env.db) == [FORUM]


def test_empty_forum_file_gives_an_empty_indexed_collection(env):
    env.write(f"{FORUM}.mongo", b"")
    assert env.run() == 0
    assert list_collections(env.store, env.db) == [FORUM]
    assert env.docs() == []
    assert "author_id_1" in index_names(env.store, env.db, FORUM)


def test_interrupted_load_keeps_the_old_forum_and_a_rerun_equals_an_uninterrupted_load(env):
    path = env.write(f"{FORUM}.mongo", lines(*small_forum()[:2]))
    assert env.run() == 0
    newer = [
        post(ObjectId(f"5569ad4977a3bbfb97b2a4{i:02x}"), "Comment", str(i % 3), comment_thread_id=oid(THREAD))
        for i in range(7)
    ]
    path.write_bytes(lines(*small_forum(), *newer))

    # A load of the new version stopped after its first batch (as on SIGTERM, or a crash there).
    daemon = Daemon(env.settings(), foreground=False)
    service = DiscussionForumsService()
    service.batch_size = 3
    ctx = daemon.scheduler.context(service)
    calls = {"n": 0}

    def stop_after_first_batch() -> bool:
        calls["n"] += 1
        return calls["n"] >= 1

    ctx.should_stop = stop_after_first_batch
    try:
        with Rejects(env.state / "rejects-direct", path, 1) as rejects:
            ctx.rejects = rejects
            with pytest.raises(Interrupted):
                service.ingest(path, ctx)
    finally:
        daemon.documents().close()
    assert calls["n"] == 1
    assert [d["_id"] for d in env.docs()] == [THREAD, RESPONSE], "readers still see the old snapshot"
    # What a crash (no chance to clean up) would leave behind: a half-filled staging collection.
    env.store.insert_many(env.db, f"{FORUM}__load", [{"_id": "stale", "body": "from the crashed attempt"}])

    assert env.run() == 0
    resumed = env.docs()
    assert list_collections(env.store, env.db) == [FORUM], "no staging collection is left"
    uninterrupted = ForumEnv(env.root / "again", env.mongo, "sqlite", env.unique + "x")
    uninterrupted.data = env.data
    try:
        assert uninterrupted.run() == 0
        assert resumed == uninterrupted.docs()
    finally:
        uninterrupted.store.close()
    assert len(resumed) == 11 and all(d["_id"] != "stale" for d in resumed)


def test_forum_whose_name_has_a_dot_is_loaded_and_replaced(env):
    env.courses = write_courses(env.root / "courses.py", DOTTED)
    path = env.write(f"{DOTTED}.mongo", lines(*small_forum()))
    assert env.run() == 0
    path.write_bytes(lines(*small_forum()[:1]))
    os.utime(path, (1e9, 1e9))
    assert env.run() == 0
    assert [d["_id"] for d in env.docs(DOTTED)] == [THREAD]
    assert list_collections(env.store, env.db) == [DOTTED]


class RefusingStore:
    """The real store, except that it refuses (as MongoDB refuses a 17 MB document) any batch
    holding a document whose body is "refuse me"."""

    def __init__(self, inner: DocumentStore) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def insert_many(self, db: str, coll: str, docs: Any) -> Any:
        docs = list(docs)
        if any(d.get("body") == "refuse me" for d in docs):
            raise BadDataError(f"{db}.{coll}: cannot store document: too large")
        return self.inner.insert_many(db, coll, docs)


def test_document_the_store_refuses_is_rejected_alone_and_its_batch_loads(env):
    docs = small_forum()
    docs[1]["body"] = "refuse me"
    env.write(f"{FORUM}.mongo", lines(*docs))
    daemon = Daemon(env.settings(), foreground=False)
    daemon.scheduler.documents = lambda: cast(DocumentStore, RefusingStore(daemon.documents()))
    assert daemon.run(once=True) == 0
    env.daemon = daemon
    row = env.rows()[f"{FORUM}.mongo"]
    assert (row.state, row.rows_loaded, row.rows_rejected) == (states.DONE, 3, 1)
    assert [d["_id"] for d in env.docs()] == [THREAD, REPLY, OTHER]
    assert "\n2\tnot storable: " in env.rejects_text()
    assert [author for _, author, *_ in env.counts()] == ["10", "12"], "the refused post is not counted"


def test_posts_without_an_author_load_but_are_left_out_of_the_counts_with_a_warning(env):
    docs = small_forum()
    del docs[3]["author_id"]
    env.write(f"{FORUM}.mongo", lines(*docs))
    assert env.run() == 0
    row = env.rows()[f"{FORUM}.mongo"]
    assert row.state == states.DONE and row.rows_loaded == 4
    assert "1 document(s) without a usable author_id or course_id" in row.error
    assert [author for _, author, *_ in env.counts()] == ["10", "11"]


def test_hostile_file_name_fails_with_an_error_naming_it_and_others_load(env):
    env.write(f"{FORUM}.mongo", lines(*small_forum()))
    env.write("UQx-X-1T`;drop-prod.mongo", lines(*small_forum()))
    env.write(f"{'x' * 130}-prod.mongo", lines(*small_forum()))
    assert env.run() == 1
    rows = env.rows()
    assert rows[f"{FORUM}.mongo"].state == states.DONE
    for name in ("UQx-X-1T`;drop-prod.mongo", f"{'x' * 130}-prod.mongo"):
        assert rows[name].state == states.FAILED
        assert name in rows[name].error and "collection name" in rows[name].error
    assert list_collections(env.store, env.db) == [FORUM]


def test_forum_missing_from_the_course_registry_loads_with_a_warning(env):
    env.write("UQx-Unknown101x-1T2016-prod.mongo", lines(*small_forum()))
    assert env.run() == 0
    row = env.rows()["UQx-Unknown101x-1T2016-prod.mongo"]
    assert row.state == states.DONE and row.rows_loaded == 4
    assert "no course in the course registry has discussiontable 'UQx-Unknown101x-1T2016-prod'" in row.error
    assert "UQx-Unknown101x-1T2016-prod.mongo" in row.error


# --- per-author counts for person-course (SQL) --------------------------------------------------


@pytest.fixture
def sql_env(tmp_path: Path, sql_backend: str, unique_name: str) -> Iterator[ForumEnv]:
    """Documents on SQLite, the counts on each SQL backend; the forum name is unique to the test
    because Person_Course is one shared database on the MariaDB server."""
    environment = ForumEnv(tmp_path, "sqlite", sql_backend, unique_name)
    environment.forum = f"UQx-{unique_name}-1T2016-prod"
    environment.courses = write_courses(tmp_path / "courses.py", environment.forum)
    sql = open_sql_store(sql_backend, environment.state)
    had_database = PERSON_COURSE in sql.list_databases()
    had_table = had_database and COUNTS_TABLE in sql.list_tables(PERSON_COURSE)
    yield environment
    environment.cleanup()
    if sql.dialect != "mysql":
        return
    # Leave the shared server as it was: what this test created, and nobody has used since, goes.
    if not had_table and not sql.query(PERSON_COURSE, f"SELECT 1 FROM {COUNTS_TABLE} LIMIT 1"):
        with sql.transaction(PERSON_COURSE) as cur:
            cur.execute(f"DROP TABLE {COUNTS_TABLE}")
    if not had_database and not sql.list_tables(PERSON_COURSE):
        sql.drop_database(PERSON_COURSE)


def test_per_author_counts_are_written_with_the_file_and_replaced_by_a_new_version(sql_env):
    forum = sql_env.forum
    path = sql_env.write(f"{forum}.mongo", lines(*small_forum()))
    assert sql_env.run() == 0
    source = str(path.resolve())
    assert sql_env.counts(forum) == [
        (COURSE_ID, "10", 2, 1, 1, 2, source),
        (COURSE_ID, "11", 1, 0, 1, 3, source),
        (COURSE_ID, "12", 1, 1, 0, 0, source),
    ]
    newer = small_forum()[:2]
    newer[1]["votes"]["up_count"] = {"$numberLong": "5"}
    path.write_bytes(lines(*newer))
    os.utime(path, (1e9, 1e9))
    assert sql_env.run() == 0
    assert sql_env.counts(forum) == [
        (COURSE_ID, "10", 1, 1, 0, 2, source),
        (COURSE_ID, "11", 1, 0, 1, 5, source),
    ], "the new version's counts replace the old ones (author 12's posts are gone)"


# --- the sample package -------------------------------------------------------------------------


MANIFEST = json.loads((SAMPLE_DATA / "manifest.json").read_text())


def test_sample_package_forums_load_with_the_manifest_counts(env):
    env.data = SAMPLE_DATA
    env.courses = REPO / "courses.py"
    assert env.run() == 0
    rows = env.rows()
    expected = {
        os.path.basename(k): v["documents"] for k, v in MANIFEST["counts"].items() if k.endswith(".mongo")
    }
    bad: dict[str, list[int]] = {}
    for item in MANIFEST["bad_input"]:
        if item["file"].endswith(".mongo"):
            bad.setdefault(os.path.basename(item["file"]), []).append(item["line"])
    assert set(rows) == set(expected) and len(expected) == 3
    for name, count in expected.items():
        row = rows[name]
        assert (row.state, row.rows_loaded, row.rows_rejected) == (states.DONE, count, len(bad.get(name, [])))
        assert row.error is None, "the registry knows every sample forum"
        assert env.store.count(env.db, name[: -len(".mongo")]) == count
    text = env.rejects_text()
    assert "\n1\tnot JSON" in text and "\n8\tno _id" in text
    assert sorted(list_collections(env.store, env.db)) == sorted(n[: -len(".mongo")] for n in expected)

    # What person-course's nforum_posts needs: every document of an author, per course.
    for course in load_courses(REPO / "courses.py").courses.values():
        per_author: dict[str, int] = {}
        for doc in env.docs(course.discussiontable):
            per_author[doc["author_id"]] = per_author.get(doc["author_id"], 0) + 1
        counts = env.counts(course.discussiontable)
        assert {author: n for _, author, n, *_ in counts} == per_author, course.key
        assert {course_id for course_id, *_ in counts} == {course.mongoname}, course.key


# --- the reader's rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"_id": 1, "d": {"$date": "2013-11-21T19:30:00.123"}}', "invalid $date"),
        (b'{"_id": 1, "d": {"$date": "20131121T193000Z"}}', "invalid $date"),
        (b'{"_id": 1, "d": {"$date": 1.5}}', "invalid $date"),
        (b'{"_id": 1, "d": {"$date": {"$numberLong": "x"}}}', "invalid $numberLong"),
        (b'{"_id": 1, "b": {"$binary": "AA==", "$type": "00"}}', "unsupported extended JSON form"),
        (b'{"_id": 1, "n": 123456789012345678901}', "does not fit in 64 bits"),
        (b'{"_id": 1, "s": "\\ud800"}', "lone surrogate"),
        (b'{"_id": 1, "\\u0000k": 1}', "NUL character"),
        (b'{"_id": [1]}', "_id is an array"),
        (b'{"_id": 1, "_type": "Comment", "parent_ids": "x"}', "parent_ids is a string"),
        (b"[" * 100000, "nested too deeply"),
    ],
)
def test_reader_refuses_what_cannot_be_stored_the_same_on_both_backends(line, reason):
    with pytest.raises(BadLine) as refused:
        parse_line(line, 2)
    assert reason in refused.value.reason


def test_reader_skips_a_byte_order_mark_on_the_first_line_and_accepts_crlf():
    doc = parse_line(b'\xef\xbb\xbf{"_id": {"$oid": "5323194a52f4b10c4f5665e1"}}\r', 1)
    assert doc == {"_id": ObjectId("5323194a52f4b10c4f5665e1")}


def test_a_new_version_with_an_absurd_vote_count_is_done_with_that_line_rejected(sql_env):
    forum = sql_env.forum
    path = sql_env.write(f"{forum}.mongo", lines(*small_forum()))
    assert sql_env.run() == 0
    newer = small_forum()
    newer[1]["votes"]["up_count"] = 1e300
    path.write_bytes(lines(*newer))
    os.utime(path, (1e9, 1e9))
    assert sql_env.run() == 0
    row = sql_env.rows()[f"{forum}.mongo"]
    assert (row.state, row.rows_loaded, row.rows_rejected) == (states.DONE, 3, 1)
    assert "2\tvotes.up_count 1e+300 is not a count of up-votes" in sql_env.rejects_text()
    assert [d["_id"] for d in sql_env.docs(forum)] == [THREAD, REPLY, OTHER]
    assert [c[1] for c in sql_env.counts(forum)] == ["10", "12"], "the counts are the new version's"


def test_a_forum_line_longer_than_the_limit_is_rejected_and_the_rest_loads(env):
    long_post = post(ObjectId("552a6f0a69429bccb0026219"), "Comment", "1", body="x" * 200_000)
    env.write(f"{FORUM}.mongo", lines(small_forum()[0], long_post, small_forum()[1]))
    assert env.run(MAX_LINE_BYTES="100000") == 0
    row = env.rows()[f"{FORUM}.mongo"]
    assert (row.rows_loaded, row.rows_rejected) == (2, 1)
    assert "\n2\tline too long (" in env.rejects_text()
