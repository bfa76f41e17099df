"""Clickstream, TimeFinder and IPToCountry through the real daemon loop, on the embedded document
store and on the MongoDB-wire server (FerretDB)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from datetime import datetime
from pathlib import Path

import blake3
import netaddr
import pytest
from bson import ObjectId
from mmdb_writer import MMDBWriter

from core import states
from core.daemon import Daemon
from services.clickstream import events as events_module
from services.clickstream.events import parse
from services.clickstream.service import log_date
from stores.documents import SqliteDocumentStore, open_document_store
from stores.sql import open_sql_store
from tests.documents import drop_database
from tests.native import eventscan_module
from tests.packages import make_package, settings_for

COURSE = "course-v1:UQx+PSYC1030.1x+4T2016"


def event(n: int, **fields) -> dict:
    base = {
        "username": f"user{n % 7}",
        "event_type": "play_video" if n % 3 == 0 else "seq_goto",
        "event_source": "browser",
        "event": json.dumps({"id": f"v{n}", "currentTime": n}),
        "context": {"course_id": COURSE, "user_id": 100 + n % 7, "org_id": "UQx", "path": "/event"},
        "time": f"2015-05-30T{n % 24:02d}:{n % 60:02d}:01.{n:06d}+00:00",
        "ip": "1.2.3.4",
        "agent": "Mozilla/5.0",
        "host": "courses.edx.org",
        "page": None,
    }
    base.update(fields)
    return base


def log_text(events) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def small_geoip(path: Path) -> Path:
    writer = MMDBWriter(ip_version=6, database_type="GeoIP2-Country", ipv4_compatible=True)
    writer.insert_network(netaddr.IPSet(["1.2.3.0/24"]), {"country": {"iso_code": "NZ"}})
    writer.insert_network(netaddr.IPSet(["2a00:1450::/32"]), {"country": {"iso_code": "FR"}})
    writer.to_db_file(str(path))
    return path


def geolite2_city() -> Path:
    import _maxminddb_geolite2

    return Path(_maxminddb_geolite2.__file__).parent / "GeoLite2-City.mmdb"


@pytest.fixture(params=["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)])
def env(request, tmp_path, unique_name):
    mongo = "sqlite" if request.param == "sqlite" else request.getfixturevalue("mongo_url")
    data = make_package(tmp_path / "data")
    logs = (data / "clickstream_logs" / "latest").resolve()

    class Env:
        def __init__(self):
            self.data, self.logs, self.state = data, logs, tmp_path / "var"
            self.docs = open_document_store(mongo, self.state)
            self.db = f"{unique_name}logs"

        def run(self, sql_url="sqlite", **extra):
            extra.setdefault("CLICKSTREAM_HOLD_NEWEST", "0")
            settings = settings_for(
                data,
                self.state,
                sql_url,
                MONGO_URL=mongo,
                DOCUMENT_DB_PREFIX=unique_name,
                TRACKING_DATABASE=f"api_{unique_name}",
                **extra,
            )
            daemon = Daemon(settings, foreground=False)
            status = daemon.run(once=True)
            self.scheduler = daemon.scheduler
            return status

        def rows(self, service="Clickstream"):
            return {os.path.basename(r.path): r for r in self.scheduler.queue.rows(service=service)}

        def events(self, filter=None):
            return sorted(self.docs.find(self.db, "clickstream", filter or {}), key=lambda d: str(d["_id"]))

        def days(self, sql_url="sqlite"):
            store = open_sql_store(sql_url, self.state)
            return sorted(
                tuple(row)
                for row in store.query(
                    "Person_Course",
                    "SELECT course_id, user_id, username, day, nevents, "
                    "nplay_video, nseq_goto, countries FROM person_course_day WHERE source_file LIKE ?",
                    (f"{self.data}%",),
                )
            )

    environment = Env()
    yield environment
    drop_database(environment.docs, environment.db)
    environment.docs.close()


def test_each_line_becomes_a_document_with_time_country_and_source(env, tmp_path):
    (env.logs / "uqx-edx-events-2015-05-30.log").write_bytes(log_text([event(n) for n in range(30)]))
    assert env.run(GEOIP_DATABASE=str(small_geoip(tmp_path / "c.mmdb"))) == 0
    docs = env.events()
    assert len(docs) == 30
    first = env.events({"source_line": 1})[0]
    assert first["time_date"] == datetime(2015, 5, 30, 0, 0, 1)
    assert first["country"] == "NZ" and isinstance(first["event"], str), "event stays a string"
    assert first["source_file"].endswith("uqx-edx-events-2015-05-30.log")
    assert env.rows()["uqx-edx-events-2015-05-30.log"].rows_loaded == 30
    assert (
        env.docs.count(env.db, "clickstream", {"context.course_id": COURSE, "event_type": "play_video"}) == 10
    )


@pytest.mark.mongo
def test_on_mongodb_the_collection_gets_the_contracts_indexes_and_source_file_and_keeps_its_own(env, request):
    """The data contract's three indexes and `{source_file}` (a new version of a file deletes by
    it); no `{time_date}` or `{username}`, but one a dashboard created is left in place."""
    if isinstance(env.docs, SqliteDocumentStore):
        pytest.skip("the embedded store has its own index set (test_document_store)")
    from pymongo import MongoClient

    (env.logs / "uqx-edx-events-2015-05-30.log").write_bytes(log_text([event(n) for n in range(3)]))
    assert env.run() == 0
    client: MongoClient = MongoClient(request.getfixturevalue("mongo_url"))
    try:
        collection = client[env.db]["clickstream"]

        def keys() -> set[tuple[tuple[str, int], ...]]:
            return {tuple((k, int(v)) for k, v in i["key"].items()) for i in collection.list_indexes()}

        contract = {
            (("_id", 1),),
            (("country", 1),),
            (("event_type", 1), ("context.course_id", 1)),
            (("context.course_id", 1),),
            (("source_file", 1),),
        }
        assert keys() == contract
        collection.create_index([("time_date", 1)])  # a dashboard's own, or an older version's
        (env.logs / "uqx-edx-events-2015-05-31.log").write_bytes(log_text([event(n) for n in range(3)]))
        assert env.run() == 0
        assert keys() == contract | {(("time_date", 1),)}
    finally:
        client.close()


def test_every_time_format_of_the_logs_is_parsed(env):
    times = {
        "2014-05-02T16:01:49.512248+00:00": datetime(2014, 5, 2, 16, 1, 49, 512000),
        "2014-12-09T03:57:24+00:00": datetime(2014, 12, 9, 3, 57, 24),
        "2013-06-09T06:29:13.583880": datetime(2013, 6, 9, 6, 29, 13, 583000),
        "2014-01-01T10:00:00Z": datetime(2014, 1, 1, 10, 0, 0),
        "2014-01-01T10:00:00.250+10:00": datetime(2014, 1, 1, 0, 0, 0, 250000),
    }
    lines = [event(i, time=t) for i, t in enumerate(times)]
    (env.logs / "uqx-edx-events-2015-05-30.log").write_bytes(log_text(lines))
    assert env.run() == 0
    got = {d["time"]: d["time_date"] for d in env.events()}
    assert got == times


def test_keys_with_dollar_or_dot_are_mapped(env):
    lines = [event(1, event={"$set": 1, "a.b": {"c.d": 2}}, **{"x.y": "z"})]
    (env.logs / "uqx-edx-events-2015-05-30.log").write_bytes(log_text(lines))
    assert env.run() == 0
    (doc,) = env.events()
    assert doc["event"] == {"_set": 1, "a-b": {"c-d": 2}} and doc["x-y"] == "z"


def test_keys_with_dollar_or_dot_in_lists_are_mapped_after_any_element(env):
    """A dict after a number or a string in a list is mapped too: a MongoDB-wire server that
    refuses such keys (FerretDB) would otherwise fail the whole file on one line."""
    lines = [event(1, event={"answers": [1, {"a.b": 2}], "tags": ["x", {"$c": 3}]})]
    (env.logs / "uqx-edx-events-2015-05-30.log").write_bytes(log_text(lines))
    assert env.run() == 0
    (doc,) = env.events()
    assert doc["event"] == {"answers": [1, {"a-b": 2}], "tags": ["x", {"_c": 3}]}


def test_keys_in_lists_of_lists_are_mapped():
    """(FerretDB stores no list in a list, so this one is checked on the parser alone.)"""
    parsed, reason = parse(b'{"grid": [[{"$c": 3}], [1, [{"d.e": 4}]]]}')
    assert reason == "" and parsed == {"grid": [[{"_c": 3}], [1, [{"d-e": 4}]]]}


def test_bad_lines_are_rejected_with_their_line_numbers_and_the_rest_loads(env):
    good = [json.dumps(event(n)).encode() for n in range(6)]
    truncated = json.dumps(event(99, event="x" * 3000)).encode()[:2043]
    lines = [
        b"# a comment",
        good[0],
        b"",
        b"<html>502</html>",
        good[1],
        truncated,
        good[2],
        good[3].replace(b"Mozilla", b"Mo\xffzilla"),
        b"[1, 2]",
        b"Sep  9 00:00:48 localhost " + good[4],
        good[5],
    ]
    (env.logs / "uqx-edx-events-2015-05-30.log").write_bytes(b"\n".join(lines) + b"\n")
    assert env.run() == 0
    row = env.rows()["uqx-edx-events-2015-05-30.log"]
    assert (row.state, row.rows_loaded, row.rows_rejected) == (states.DONE, 5, 6)
    text = next((env.state / "rejects" / "Clickstream").glob("*.tsv")).read_text()
    for expected in (
        "1\tcomment line",
        "3\tblank line",
        "4\tnot JSON",
        "6\ttruncated line (2043 bytes)",
        "8\tinvalid UTF-8",
        "9\tnot a JSON object",
    ):
        assert expected in text


def test_gzip_and_plain_logs_load_alike_and_a_truncated_gzip_keeps_what_was_read(env):
    events = [event(n) for n in range(2000)]
    (env.logs / "uqx-edx-events-2015-05-28.log").write_bytes(log_text(events[:1000]))
    (env.logs / "uqx-edx-events-2015-05-29.log.gz").write_bytes(gzip.compress(log_text(events[1000:])))
    whole = gzip.compress(log_text([event(n, username="late") for n in range(3000, 6000)]))
    (env.logs / "uqx-edx-events-2015-05-30.log.gz").write_bytes(whole[: len(whole) // 2])
    assert env.run() == 1, "the truncated file fails the run"
    rows = env.rows()
    assert rows["uqx-edx-events-2015-05-28.log"].rows_loaded == 1000
    assert rows["uqx-edx-events-2015-05-29.log.gz"].rows_loaded == 1000
    cut = rows["uqx-edx-events-2015-05-30.log.gz"]
    assert cut.state == states.FAILED and "truncated" in cut.error and "kept" in cut.error
    kept = env.docs.count(env.db, "clickstream", {"username": "late"})
    assert 0 < kept < 3000 and kept == cut.rows_loaded


def test_same_file_under_two_names_is_loaded_once(env):
    content = log_text([event(n) for n in range(50)])
    (env.logs / "uqx-edx-events-2015-05-30.log").write_bytes(content)
    (env.logs / "uqx-prod-events-2015-05-30.log.gz").write_bytes(gzip.compress(content))
    assert env.run() == 0
    rows = env.rows()
    states_seen = sorted(r.state for r in rows.values())
    assert states_seen == [states.DONE, states.DUPLICATE]
    assert len(env.events()) == 50
    assert sum(d[4] for d in env.days()) == 50, "aggregates counted once"


def test_a_changed_file_replaces_its_previous_events_and_aggregates(env):
    path = env.logs / "uqx-edx-events-2015-05-30.log"
    path.write_bytes(log_text([event(n) for n in range(40)]))
    assert env.run() == 0
    before = env.days()
    path.write_bytes(log_text([event(n) for n in range(20, 30)]))
    assert env.run() == 0
    assert len(env.events()) == 10
    assert sum(d[4] for d in env.days()) == 10 and before != env.days()
    again = env.days()
    assert env.run() == 0 and env.days() == again, "delivering it again changes nothing"


def test_newest_dated_log_is_held_back_while_it_may_still_grow(env):
    for day in ("2015-05-29", "2015-05-30"):
        (env.logs / f"uqx-edx-events-{day}.log").write_bytes(
            log_text([event(1, time=f"{day}T01:00:00+00:00")])
        )
    assert env.run(CLICKSTREAM_HOLD_NEWEST="1") == 0
    assert list(env.rows()) == ["uqx-edx-events-2015-05-29.log"]
    assert str(log_date("universityx-edge-2014-07-25.log.gz")) == "2014-07-25"


def test_geolite2_city_gives_country_and_australian_state_and_skips_private_addresses(env):
    ips = [
        "203.2.218.214",
        "8.8.8.8",
        "2001:4860:4860::8888",
        "10.0.0.5",
        "192.168.1.20",
        "",
        "::1",
        "127.0.0.1",
    ]
    (env.logs / "uqx-edx-events-2015-05-30.log").write_bytes(
        log_text([event(i, ip=ip) for i, ip in enumerate(ips)])
    )
    assert env.run(GEOIP_DATABASE=str(geolite2_city())) == 0
    got = {d["ip"]: (d.get("country"), d.get("subdivision")) for d in env.events()}
    assert got == {
        "203.2.218.214": ("AU", "NSW"),
        "8.8.8.8": ("US", None),
        "2001:4860:4860::8888": ("US", None),
        "10.0.0.5": (None, None),
        "192.168.1.20": (None, None),
        "": ("", None),
        "::1": ("", None),
        "127.0.0.1": (None, None),
    }
    assert env.scheduler.states["Clickstream"].extra["country"].startswith("on")


def test_backfills_read_the_collection_once_whatever_the_number_of_batches(env, tmp_path, monkeypatch):
    """A new GeoIP database makes every event due for IPToCountry: one query per batch read the
    collection again from its start each time (quadratic in its size); now one pass, its updates
    written in batches as it goes."""
    import services.ip_to_country.service as ip_to_country
    import services.time_finder.service as time_finder

    ips = ["1.2.3.4", "8.8.8.8", "2a00:1450::1", "", "10.0.0.1"]
    (env.logs / "uqx-edx-events-2015-05-30.log").write_bytes(
        log_text([event(n, ip=ips[n % len(ips)]) for n in range(23)])
    )
    assert env.run() == 0  # no GeoIP: no look-up
    docs = env.events()
    env.docs.delete_many(env.db, "clickstream", {})
    for doc in docs:  # as an older version stored them: no time_date either
        doc.pop("time_date")
    env.docs.insert_many(env.db, "clickstream", docs)
    monkeypatch.setattr(time_finder, "BATCH", 5)
    monkeypatch.setattr(ip_to_country, "BATCH", 5)
    passes: list[str] = []
    store_class = type(env.docs)
    find = store_class.find

    def counted_find(self, db, coll, filter=None, projection=None, limit=0):
        if coll == "clickstream" and limit != 1 and any(k in str(filter) for k in ("time_date", "geoip")):
            passes.append("time_date" if "time_date" in str(filter) else "geoip")
        return find(self, db, coll, filter, projection, limit)

    monkeypatch.setattr(store_class, "find", counted_find)
    assert env.run(GEOIP_DATABASE=str(small_geoip(tmp_path / "c.mmdb"))) == 0
    assert sorted(passes) == ["geoip", "time_date"]
    events = env.events()
    assert len(events) == 23
    assert all(isinstance(d["time_date"], datetime) for d in events)
    assert len({d["geoip"] for d in events}) == 1
    assert {d["ip"]: d.get("country") for d in events} == {
        "1.2.3.4": "NZ",
        "8.8.8.8": None,
        "2a00:1450::1": "FR",
        "": "",
        "10.0.0.1": None,
    }
    runs = [r for r in env.scheduler.queue.rows() if r.type == "save_run"]
    assert {r.service_name for r in runs} >= {"TimeFinder", "IPToCountry"}


def test_backfill_services_add_time_and_country_to_events_loaded_without_them(env, tmp_path):
    (env.logs / "uqx-edx-events-2015-05-30.log").write_bytes(
        log_text([event(1), event(2, ip="2a00:1450::1"), event(3, ip="8.8.8.8")])
    )
    assert env.run() == 0, "no GeoIP configured: ingestion still works"
    assert env.scheduler.states["Clickstream"].extra["country"].startswith("off")
    assert not env.events({"country": {"$exists": True}})
    env.docs.update_fields(env.db, "clickstream", [(d["_id"], {}) for d in env.events()])
    # Documents loaded by an older version, without time_date.
    for doc in env.events({"source_line": 1}):
        env.docs.delete_many(env.db, "clickstream", {"_id": doc["_id"]})
        doc.pop("time_date")
        env.docs.insert_many(env.db, "clickstream", [doc])
    assert env.run(GEOIP_DATABASE=str(small_geoip(tmp_path / "c.mmdb"))) == 0
    got = {d["ip"]: d.get("country") for d in env.events()}
    assert got == {"1.2.3.4": "NZ", "2a00:1450::1": "FR", "8.8.8.8": None}
    assert all(isinstance(d["time_date"], datetime) for d in env.events())
    runs = [r for r in env.scheduler.queue.rows() if r.type == "save_run"]
    assert {r.service_name for r in runs} >= {"TimeFinder", "IPToCountry"}
    count = len(runs)
    assert env.run(GEOIP_DATABASE=str(tmp_path / "c.mmdb")) == 0
    assert len([r for r in env.scheduler.queue.rows() if r.type == "save_run"]) == count, "nothing left to do"


@pytest.mark.mysql
def test_per_day_aggregates_commit_with_the_file_on_mariadb(env, mysql_url, unique_name):
    (env.logs / "uqx-edx-events-2015-05-30.log").write_bytes(log_text([event(n) for n in range(21)]))
    store = open_sql_store(mysql_url, env.state)
    try:
        assert env.run(sql_url=mysql_url) == 0
        rows = store.query(
            "Person_Course",
            "SELECT SUM(nevents), SUM(nplay_video) FROM person_course_day WHERE source_file LIKE ?",
            (f"{env.data}%uqx-edx-events-2015-05-30.log",),  # this test's file only: the table is shared
        )
        assert [tuple(int(v) for v in r) for r in rows] == [(21, 7)]
    finally:
        with store.transaction("Person_Course") as cur:
            cur.execute(
                "DELETE FROM person_course_day WHERE source_file LIKE ?", (f"%{env.data.parent.name}%",)
            )
        store.drop_database(f"api_{unique_name}")


def test_a_log_with_a_hostile_name_is_taken_by_no_service_and_reported(env, caplog):
    (env.logs / "x'; DROP TABLE ingestor; --2015-05-30.log").write_bytes(log_text([event(1)]))
    assert env.run() == 0
    assert not env.rows()
    assert "is taken by no service" in caplog.text and env.scheduler.unclaimed == 1


def test_time_parsing_matches_a_full_timezone_conversion():
    from datetime import UTC

    from utils.timeparse import parse_event_time

    for text in (
        "2014-05-02T16:01:49.512248+00:00",
        "2014-12-09T03:57:24+00:00",
        "2014-12-09T03:57:24.5+00:00",
    ):
        expected = datetime.fromisoformat(text).astimezone(UTC).replace(tzinfo=None)
        assert parse_event_time(text) == expected
    assert parse_event_time("2014-13-09T03:57:24+00:00") is None


def user_event(user: int, day: str = "2015-05-30") -> dict:
    return event(
        user,
        username=f"u{user}",
        context={"course_id": COURSE, "user_id": user},
        time=f"{day}T01:0{user}:00+00:00",
    )


def test_a_changed_log_keeps_the_events_other_done_files_still_hold(env):
    changed_log_keeps_what_other_files_hold(env, "sqlite")


@pytest.mark.mysql
def test_a_changed_log_keeps_the_events_other_done_files_still_hold_on_mariadb(env, mysql_url, unique_name):
    store = open_sql_store(mysql_url, env.state)
    try:
        changed_log_keeps_what_other_files_hold(env, mysql_url)
    finally:
        with store.transaction("Person_Course") as cur:
            cur.execute("DELETE FROM person_course_day WHERE source_file LIKE ?", (f"{env.data}%",))
        store.drop_database(f"api_{unique_name}")


def changed_log_keeps_what_other_files_hold(env, sql_url):
    """The issue's scenario: a.log (u1-u6) with two copies, b.log (u3, u4, u7); a.log rewritten."""
    a = env.logs / "uqx-edx-events-2015-05-30.log"
    a.write_bytes(log_text([user_event(u) for u in range(1, 7)]))
    (env.logs / "uqx-edx-events-2015-05-30.log.gz").write_bytes(gzip.compress(a.read_bytes()))
    (env.logs / "uqx-prod-events-2015-05-30.log").write_bytes(a.read_bytes())
    (env.logs / "uqx-edx-events-2015-05-31.log").write_bytes(log_text([user_event(u) for u in (3, 4, 7)]))
    assert env.run(sql_url=sql_url) == 0
    assert sorted(r.state for r in env.rows().values()).count(states.DUPLICATE) == 2
    assert len(env.events()) == 7 and sum(d[4] for d in env.days(sql_url)) == 7, "each event counted once"
    a.write_bytes(log_text([user_event(u) for u in (1, 2, 5, 6)]))
    assert env.run(sql_url=sql_url) == 0
    assert sorted(d["username"] for d in env.events()) == [f"u{u}" for u in range(1, 8)]
    assert sum(d[4] for d in env.days(sql_url)) == 7, "the per-day rows sum to the distinct stored events"
    assert all(r.state in (states.DONE, states.DUPLICATE) for r in env.rows().values())
    again = env.days(sql_url)
    assert env.run(sql_url=sql_url) == 0 and env.days(sql_url) == again, (
        "a run with nothing new changes nothing"
    )


def test_a_re_pointed_latest_repeating_a_day_with_one_more_event_counts_it_once(env):
    five = [event(n, username="u1", context={"course_id": COURSE, "user_id": 1}) for n in range(5)]
    (env.logs / "uqx-edx-events-2015-05-30.log").write_bytes(log_text(five))
    assert env.run() == 0
    make_package(env.data, log_date="2015-06-08")
    newer = (env.data / "clickstream_logs" / "latest").resolve()
    six = [*five, event(5, username="u1", context={"course_id": COURSE, "user_id": 1})]
    (newer / "uqx-edx-events-2015-05-30.log").write_bytes(log_text(six))
    assert env.run() == 0
    assert len(env.events()) == 6
    per_user_day: dict = {}
    for course, user_id, _, day, nevents, *_ in env.days():
        per_user_day[(course, user_id, day)] = per_user_day.get((course, user_id, day), 0) + nevents
    assert list(per_user_day.values()) == [6], "the rows of the two deliveries sum to 6"


def test_a_retry_after_a_crash_counts_what_its_first_attempt_stored(env):
    path = env.logs / "uqx-edx-events-2015-05-30.log"
    events = [event(n) for n in range(30)]
    path.write_bytes(log_text(events))
    assert env.run() == 0
    whole = env.days()
    # What a crashed first attempt leaves: the first ten events stored, the file not done.
    env.docs.delete_many(env.db, "clickstream", {"source_line": {"$gt": 10}})
    queue = env.scheduler.queue
    with queue.store.transaction(queue.database) as cur:
        cur.execute("UPDATE ingestor SET state='queued', completed=0, attempts=0 WHERE type='file'")
    assert env.run() == 0
    assert len(env.events()) == 30 and env.days() == whole


@pytest.mark.parametrize("batch", ["20000", "1"])
def test_identical_lines_of_one_file_are_stored_and_counted_once(env, batch):
    """With batches of one line, the repeat is in a later batch of the same uncommitted group of
    writes (embedded store): it is still found, and not counted."""
    line = event(1)
    (env.logs / "uqx-edx-events-2015-05-30.log").write_bytes(log_text([line, event(2), line]))
    assert env.run(CLICKSTREAM_BATCH=batch) == 0
    assert len(env.events()) == 2 and sum(d[4] for d in env.days()) == 2


def test_lines_the_store_or_the_aggregates_cannot_hold_are_rejected_and_the_rest_loads(env):
    deep = b'{"event_type": "deep", "username": "u1", "x": ' + b"[" * 989 + b"]" * 989 + b"}"  # 990 levels
    lines = [
        json.dumps(event(1)).encode(),
        json.dumps(event(2, time="0001-01-01T00:00:00+05:00")).encode(),
        deep,
        json.dumps(event(3, **{"a.b": "\ud800"})).encode(),
        json.dumps(event(4, username="\ud800")).encode(),
        json.dumps(event(5, context={"course_id": COURSE, "user_id": 10**30})).encode(),
        json.dumps(event(6, context={"course_id": COURSE, "user_id": str(10**30)})).encode(),
        json.dumps(event(7, username="x" * 300)).encode(),
        json.dumps(event(8, time="0999-01-01T00:00:00+00:00")).encode(),
        json.dumps(event(9, username="\ud83d\ude00")).encode(),
    ]
    (env.logs / "uqx-edx-events-2015-05-30.log").write_bytes(b"\n".join(lines) + b"\n")
    assert env.run() == 0
    row = env.rows()["uqx-edx-events-2015-05-30.log"]
    assert (row.state, row.rows_loaded, row.rows_rejected) == (states.DONE, 2, 8)
    assert sorted(d["username"] for d in env.events()) == ["user1", "\U0001f600"]
    assert sum(d[4] for d in env.days()) == 2
    text = next((env.state / "rejects" / "Clickstream").glob("*.tsv")).read_text()
    for expected in (
        "2\ttime '0001-01-01T00:00:00+05:00' is out of range once made UTC",
        "3\tnested deeper than 100 levels",
        "4\tinvalid Unicode (lone surrogate)",
        "5\tinvalid Unicode (lone surrogate)",
        "6\tinteger 1000000000000000000000000000000 does not fit in 64 bits",
        "7\tcontext.user_id 1000000000000000000000000000000 does not fit in 64 bits",
        "8\tusername longer than 255 characters",
        "9\ttime 0999-01-01T00:00:00 is before the year 1000",
    ):
        assert expected in text


@pytest.mark.mongo
def test_on_mongodb_a_line_bson_cannot_hold_is_rejected_alone(env, monkeypatch):
    """The parser rejects what BSON cannot hold; were one let through (here, by turning that check
    off), its encoding for the batch fails that line alone, kept as a reject, the file done."""
    if env.docs.accepts_encoded:
        pytest.skip("the MongoDB store's batches")
    eventscan_module()  # the module's batch (a list of dicts would fail the file at the send)
    monkeypatch.setattr(events_module, "_unstorable", lambda *args: "")
    lines = [event(1), event(2, username="\ud800"), event(3)]
    (env.logs / "uqx-edx-events-2015-05-30.log").write_bytes(log_text(lines))
    assert env.run() == 0
    row = env.rows()["uqx-edx-events-2015-05-30.log"]
    assert (row.state, row.rows_loaded, row.rows_rejected) == (states.DONE, 2, 1)
    assert sorted(d["username"] for d in env.events()) == ["user1", "user3"]
    text = next((env.state / "rejects" / "Clickstream").glob("*.tsv")).read_text()
    assert "\n2\tnot storable: " in "\n" + text


@pytest.mark.mysql
def test_a_user_id_too_big_for_bigint_is_rejected_and_the_file_done_on_mariadb(env, mysql_url, unique_name):
    lines = [
        event(1),
        event(2, context={"course_id": COURSE, "user_id": str(10**30)}),
        event(3, username="\ud800"),
    ]
    (env.logs / "uqx-edx-events-2015-05-30.log").write_bytes(log_text(lines))
    store = open_sql_store(mysql_url, env.state)
    try:
        assert env.run(sql_url=mysql_url) == 0
        assert [int(d[4]) for d in env.days(mysql_url)] == [1]
    finally:
        with store.transaction("Person_Course") as cur:
            cur.execute("DELETE FROM person_course_day WHERE source_file LIKE ?", (f"{env.data}%",))
        store.drop_database(f"api_{unique_name}")


def test_a_line_longer_than_the_limit_is_rejected_in_bounded_memory(env):
    huge = json.dumps(event(1, event="x" * 300_000)).encode()
    lines = [json.dumps(event(2)).encode(), huge, json.dumps(event(3)).encode()]
    (env.logs / "uqx-edx-events-2015-05-30.log.gz").write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    (env.logs / "uqx-edx-events-2015-05-31.log").write_bytes(huge)
    assert env.run(MAX_LINE_BYTES="100000") == 0
    rows = env.rows()
    assert (
        rows["uqx-edx-events-2015-05-30.log.gz"].rows_loaded,
        rows["uqx-edx-events-2015-05-30.log.gz"].rows_rejected,
    ) == (2, 1)
    assert rows["uqx-edx-events-2015-05-31.log"].rows_rejected == 1
    assert sorted(d["source_line"] for d in env.events()) == [1, 3]
    text = "".join(p.read_text() for p in (env.state / "rejects" / "Clickstream").glob("*.tsv"))
    assert f"2\tline too long ({len(huge)} bytes > MAX_LINE_BYTES 100000)" in text
    assert f"1\tline too long ({len(huge)} bytes > MAX_LINE_BYTES 100000)" in text


def test_a_log_removed_from_disk_keeps_its_events_and_delivered_again_counts_nothing_twice(env):
    """Deliveries rotate: a log that vanishes from `latest` keeps what it stored (another done file
    may hold the same events), and the same events delivered again later are not counted again."""
    a = env.logs / "uqx-edx-events-2015-05-30.log"
    a.write_bytes(log_text([user_event(u) for u in range(1, 7)]))
    b = env.logs / "uqx-edx-events-2015-05-31.log"
    b.write_bytes(log_text([user_event(u) for u in (3, 4, 7)]))
    assert env.run() == 0
    first = env.days()
    a_bytes = a.read_bytes()
    a.unlink()
    assert env.run() == 0
    assert len(env.events()) == 7 and env.days() == first, "nothing deleted with the file"
    assert {r.state for r in env.rows().values()} == {states.DONE}
    # The next delivery holds a.log again, byte for byte, and b.log with one event more.
    make_package(env.data, log_date="2015-06-08")
    newer = (env.data / "clickstream_logs" / "latest").resolve()
    (newer / a.name).write_bytes(a_bytes)
    (newer / b.name).write_bytes(log_text([user_event(u) for u in (3, 4, 7, 8)]))
    assert env.run() == 0
    assert sorted(d["username"] for d in env.events()) == [f"u{u}" for u in range(1, 9)]
    per_user_day: dict = {}
    for course, user_id, _, day, nevents, *_ in env.days():
        per_user_day[(course, user_id, day)] = per_user_day.get((course, user_id, day), 0) + nevents
    assert sorted(per_user_day.values()) == [1] * 8, "each stored event counted once, whatever the files"
    rows = {r.path: r for r in env.scheduler.queue.rows(service="Clickstream")}
    assert rows[str(newer / a.name)].state == states.DUPLICATE, "a delivered again is a's duplicate"


def test_the_content_hash_is_blake3_of_the_decompressed_lines_and_a_gzipped_copy_is_a_duplicate(env):
    """What a user checks with `b3sum` on the log (the text, or the `.log.gz` unzipped): the
    tracking row's `content_hash`; and a gzipped copy under another name is a duplicate."""
    text = log_text([user_event(u) for u in range(1, 4)])
    plain = env.logs / "uqx-edx-events-2015-05-30.log"
    plain.write_bytes(text)
    copy = env.logs / "uqx-edge-events-2015-05-30.log.gz"
    copy.write_bytes(gzip.compress(text))
    assert env.run() == 0
    rows = env.rows()
    want = blake3.blake3(text).hexdigest()
    assert {rows[plain.name].content_hash, rows[copy.name].content_hash} == {want}
    assert sorted([rows[plain.name].state, rows[copy.name].state]) == sorted([states.DONE, states.DUPLICATE])
    assert len(env.events()) == 3


def test_a_copy_of_a_file_done_with_the_former_digest_stores_and_counts_nothing_twice(env):
    """Files done before 246c8d0 carry a BLAKE2b `content_hash`: a copy of one, under another name,
    is not found as its duplicate. It is done as a file of its own that owns none of its events:
    nothing is stored again, and the per-day counts are the first file's alone."""
    text = log_text([user_event(u) for u in range(1, 5)])
    first = env.logs / "uqx-edx-events-2015-05-30.log"
    first.write_bytes(text)
    assert env.run() == 0
    queue = env.scheduler.queue
    with queue.store.transaction(queue.database) as cur:  # the row as the former version left it
        cur.execute(
            "UPDATE ingestor SET content_hash=? WHERE path=?",
            (hashlib.blake2b(text, digest_size=32).hexdigest(), str(first)),
        )
    days, events = env.days(), env.events()
    copy = env.logs / "uqx-edge-events-2015-05-30.log.gz"
    copy.write_bytes(gzip.compress(text))
    assert env.run() == 0
    row = env.rows()[copy.name]
    assert row.state == states.DONE and row.content_hash == blake3.blake3(text).hexdigest()
    assert env.events() == events and env.days() == days


def test_values_a_fast_parser_could_read_otherwise_are_stored_as_json_reads_them(env):
    # orjson (used where it agrees with json) reads integers beyond 64 bits as floats and refuses
    # NaN and lone surrogates: what is stored and rejected must be what json's reading gives.
    # (NaN only on the embedded store: the MongoDB-wire test server drops a connection sending one.)
    nan = float("nan") if isinstance(env.docs, SqliteDocumentStore) else 0.5
    raw = [
        json.dumps(event(1, big=2**63 - 1, small=-(2**63), id_text="1234567890123456789012")),
        json.dumps(event(2, over=2**63)),  # rejected: beyond 64 bits
        json.dumps(event(3, over=2**64 + 1)),  # rejected (orjson alone would store 1.8446744073709552e19)
        json.dumps(event(4, ratio=nan, big_float=1e308, tiny=5e-324, third=1 / 3)),
        json.dumps(event(5, name="Zoë 東京 \U0001f600"), ensure_ascii=False),
        json.dumps(event(6, name="Zoë 東京 \U0001f600")),
        json.dumps(event(7)).replace('"host": "courses.edx.org"', '"host": "a", "host": "b"'),
        json.dumps(event(8, value=-0.0, exponent=1.5e3, negative_zero_int=0)).replace(
            '"negative_zero_int": 0', '"negative_zero_int": -0'
        ),
    ]
    (env.logs / "uqx-edx-events-2015-05-30.log").write_bytes("\n".join(raw).encode() + b"\n")
    assert env.run() == 0
    row = env.rows()["uqx-edx-events-2015-05-30.log"]
    assert (row.rows_loaded, row.rows_rejected) == (6, 2)
    text = next((env.state / "rejects" / "Clickstream").glob("*.tsv")).read_text()
    assert "2\tinteger 9223372036854775808 does not fit in 64 bits" in text
    assert "3\tinteger 18446744073709551617 does not fit in 64 bits" in text
    stored = {d["source_line"]: d for d in env.events()}
    for line in (1, 4, 5, 6, 7, 8):
        expected = json.loads(raw[line - 1])
        doc = {k: v for k, v in stored[line].items() if k in expected}
        assert list(doc) == list(expected), line
        for key, value in expected.items():
            if isinstance(value, float) and value != value:
                assert doc[key] != doc[key], (line, key)  # NaN stays NaN
            else:
                assert doc[key] == value and isinstance(doc[key], type(value)), (
                    line,
                    key,
                    doc[key],
                )  # Int64 on mongo
    assert stored[7]["host"] == "b"
    assert stored[1]["big"] == 2**63 - 1 and stored[1]["id_text"] == "1234567890123456789012"


def test_event_ids_start_with_the_event_time_and_untimed_ones_are_the_lines_digest(env):
    lines = [event(n) for n in range(20)] + [event(20, time="not a time")]
    (env.logs / "uqx-edx-events-2015-05-30.log").write_bytes(log_text(lines))
    assert env.run() == 0
    docs = env.events()
    assert len(docs) == 21
    for doc in docs:
        if doc["time_date"] is None:
            raw = json.dumps(lines[20]).encode()
            assert doc["_id"] == ObjectId(hashlib.blake2b(raw, digest_size=12).digest())
        else:
            made = doc["_id"].generation_time.replace(tzinfo=None)
            assert made == doc["time_date"].replace(microsecond=0), "the id's time is the event's"


def test_a_store_loaded_with_digest_ids_keeps_them_so_lines_delivered_again_are_not_stored_twice(env):
    """A collection loaded before time-first ids keeps the digest form (services/clickstream/ids.py)."""
    lines = [json.dumps(event(n)).encode() for n in range(10)]
    env.docs.insert_many(
        env.db,
        "clickstream",
        [
            {
                "_id": ObjectId(hashlib.blake2b(raw, digest_size=12).digest()),
                **json.loads(raw),
                "time_date": datetime.fromisoformat(json.loads(raw)["time"][:-6]),
                "source_file": "/an/older/delivery/uqx-edx-events-2015-05-30.log",
                "source_line": n + 1,
            }
            for n, raw in enumerate(lines)
        ],
    )
    more = [json.dumps(event(n, username="newcomer")).encode() for n in range(5)]
    (env.logs / "uqx-edx-events-2015-05-30.log").write_bytes(b"\n".join(lines + more) + b"\n")
    assert env.run() == 0
    docs = env.events()
    assert len(docs) == 15, "the ten lines stored before are not stored again"
    assert {d["_id"] for d in docs if d["username"] == "newcomer"} == {
        ObjectId(hashlib.blake2b(raw, digest_size=12).digest()) for raw in more
    }
