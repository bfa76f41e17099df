"""Deliveries: edX's encrypted weekly zip and daily logs, decrypted with real GnuPG and ingested.

The keys are made once per session with `gpg --quick-gen-key` in temporary homes (one without a
passphrase, one with a passphrase file, one "other university" for the wrong-key case); the
deliveries are built in edX's layout from the sample package (services/deliveries/build.py).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from core import registry, states
from core.daemon import Daemon
from core.queue import TrackingQueue
from core.scheduler import Scheduler
from services.database_state.filenames import parse_dump_name
from services.deliveries.build import build_daily, build_weekly, encrypt_file
from stores.sql import open_sql_store
from tests.conftest import REPO, SAMPLE_DATA, Keys
from tests.documents import drop_database, list_collections, list_databases
from tests.packages import settings_for

SAMPLE_MANIFEST = json.loads((SAMPLE_DATA / "manifest.json").read_text())
SQL_COUNTS = {
    os.path.basename(k): v["rows"] for k, v in SAMPLE_MANIFEST["counts"].items() if k.endswith(".sql")
}
ZIP = "uqx-2015-06-07.zip"
FOLDER = "uqx-2015-06-07"
AUTH_USER = "UQx-X-1T-auth_user-prod-analytics.sql"


@pytest.fixture(scope="session")
def sample_delivery(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample package as edX delivers it: the weekly zip and the four daily logs."""
    out = tmp_path_factory.mktemp("delivery")
    build_weekly(SAMPLE_DATA, out, keys.plain_uid, keys.plain)
    build_daily(SAMPLE_DATA, out, keys.plain_uid, keys.plain)
    return out


def _incoming(tmp_path: Path, delivery: Path, name: str = "incoming") -> Path:
    incoming = tmp_path / name
    shutil.copytree(delivery, incoming)
    return incoming


def run_once(tmp_path: Path, incoming: Path, keys: Keys, **extra: str) -> tuple[int, Scheduler]:
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    options = {"INCOMING_PATHS": str(incoming), "GNUPG_HOME": keys.plain, **extra}
    sql = options.pop("SQL_URL", "sqlite")
    settings = settings_for(data, tmp_path / "var", sql, **options)
    daemon = Daemon(settings, foreground=False)
    return daemon.run(once=True), daemon.scheduler


def deliveries(scheduler: Scheduler) -> dict[str, Any]:
    return {os.path.basename(r.meta): r for r in scheduler.queue.rows(service="Deliveries")}


def _normal(value: Any) -> Any:
    """A stored value with the run's own paths reduced to the delivered file's name (.gz or not)."""
    if isinstance(value, str) and value.startswith("/"):
        return os.path.basename(value).removesuffix(".gz")
    if isinstance(value, dict):
        return {k: (_normal(v) if k in ("source_file", "source") else v) for k, v in value.items()}
    return value


def snapshot(state: Path) -> dict[str, Any]:
    """Everything a run stored (embedded stores and www/), with paths reduced to file names."""
    from stores.documents import open_document_store

    sql = open_sql_store("sqlite", state)
    found: dict[str, Any] = {}
    for database in sql.list_databases():
        if database == "api":
            continue
        for table in sql.list_tables(database):
            rows = sql.query(database, f"SELECT * FROM {sql.quote(table)}")
            found[f"sql {database}.{table}"] = sorted(repr(tuple(_normal(v) for v in row)) for row in rows)
    docs = open_document_store("sqlite", state)
    for database in list_databases(docs):
        for collection in list_collections(docs, database):
            found[f"documents {database}.{collection}"] = sorted(
                repr(sorted(_normal(d).items())) for d in docs.find(database, collection)
            )
    docs.close()
    for path in sorted((state / "www").rglob("*")):
        if path.is_file():
            found[f"www {path.relative_to(state / 'www')}"] = path.read_bytes()
    return found


# -- the whole path -------------------------------------------------------------------------------


def test_weekly_zip_and_daily_logs_end_up_ingested_as_the_unencrypted_sample(tmp_path, keys, sample_delivery):
    reference = settings_for(SAMPLE_DATA, tmp_path / "ref" / "var", CLICKSTREAM_HOLD_NEWEST="0")
    Daemon(reference, foreground=False).run(once=True)

    status, scheduler = run_once(tmp_path, _incoming(tmp_path, sample_delivery), keys)

    assert status == 1, "the sample's .sql.failed export is still a failed file"
    data = tmp_path / "data"
    assert os.readlink(data / "database_state" / "latest") == "2015-06-07"
    assert os.readlink(data / "clickstream_logs" / "latest") == "events"
    dump = data / "database_state" / "2015-06-07"
    assert (dump / "UQx-DEMO101x-2T2015-course-prod-edge-analytics.xml.tar.gz").is_file(), "kept gzipped"
    assert (dump / "UQx-PSYC1030.1x-4T2016-student_languageproficiency-prod-analytics.sql.failed").is_file()
    for name in SQL_COUNTS:
        assert (dump / name).read_bytes() == (
            SAMPLE_DATA / "database_state" / "2015-06-07" / name
        ).read_bytes()
    logs = sorted(p.name for p in (data / "clickstream_logs" / "events").glob("*.log.gz"))
    assert logs == [
        "uqx-edge-events-2015-05-31.log.gz",
        "uqx-edx-events-2015-05-30.log.gz",
        "uqx-edx-events-2015-05-31.log.gz",
        "uqx-edx-events-2015-06-01.log.gz",
    ]
    rows = deliveries(scheduler)
    assert {name: r.state for name, r in rows.items()} == {
        ZIP: states.DONE,
        **{f"{name}.gpg": states.DONE for name in logs},
    }
    clicks = [r for r in scheduler.queue.rows(service="Clickstream")]
    assert [r.state for r in clicks] == [states.DONE] * 4, "the newest delivered log is not held back"
    got, expected = snapshot(tmp_path / "var"), snapshot(tmp_path / "ref" / "var")
    assert sorted(got) == sorted(expected)
    for key in expected:
        assert got[key] == expected[key], key
    assert all(p.exists() for p in (tmp_path / "incoming").iterdir()), "DELIVERIES_KEEP_ORIGINALS is on"
    extra = scheduler.states["Deliveries"].extra
    assert extra["deliveries"][ZIP]["state"] == "unpacked"  # type: ignore[index]


@pytest.mark.mysql
@pytest.mark.mongo
def test_delivery_is_ingested_on_mariadb_and_ferretdb(
    tmp_path, keys, sample_delivery, mysql_url, mongo_url, unique_name
):
    from stores.documents import open_document_store

    tracking = f"api_{unique_name}"
    status, scheduler = run_once(
        tmp_path,
        _incoming(tmp_path, sample_delivery),
        keys,
        SQL_URL=mysql_url,
        MONGO_URL=mongo_url,
        TRACKING_DATABASE=tracking,
        DOCUMENT_DB_PREFIX=unique_name,
    )
    store = open_sql_store(mysql_url, tmp_path / "var")
    docs = open_document_store(mongo_url, tmp_path / "var")
    try:
        assert status == 1
        assert {r.state for r in deliveries(scheduler).values()} == {states.DONE}
        for name, count in SQL_COUNTS.items():
            dump = parse_dump_name(name)
            assert store.query(dump.database, f"SELECT COUNT(*) FROM {store.quote(dump.table)}") == [(count,)]
        events = sum(v["events"] for k, v in SAMPLE_MANIFEST["counts"].items() if k.startswith("clickstream"))
        assert docs.count(f"{unique_name}logs", "clickstream") in (events, events + 1)
    finally:
        for database in {parse_dump_name(n).database for n in SQL_COUNTS} | {tracking}:
            store.drop_database(database)
        with store.transaction("Person_Course") as cur:
            cur.execute("DELETE FROM person_course_day WHERE source_file LIKE ?", (f"{tmp_path}%",))
            cur.execute("DELETE FROM forum_author_counts WHERE source LIKE ?", (f"{tmp_path}%",))
        for database in list_databases(docs):
            if database.startswith(unique_name):
                drop_database(docs, database)
        docs.close()


def test_deliveries_is_first_in_dependency_order():
    services = registry.select(registry.discover(), (), ())
    assert services[0].name == "Deliveries"


# -- small deliveries made by hand ----------------------------------------------------------------


def _plain(tmp_path: Path, rows: int = 2) -> Path:
    path = tmp_path / "plain" / AUTH_USER
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [b"id\tusername\temail\tis_staff\tis_active\tlast_login\tdate_joined\n"]
    lines += [
        b"%d\tu%d\tu%d@example.org\t0\t1\tNULL\t2014-12-01 09:00:00\n" % (i, i, i) for i in range(1, rows + 1)
    ]
    path.write_bytes(b"".join(lines))
    return path


def make_zip(path: Path, members: list[tuple[str, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo(f"{FOLDER}/"), b"")
        for name, data in members:
            archive.writestr(name, data)
    return path


def encrypted(tmp_path: Path, plain: Path, home: str, uid: str) -> bytes:
    out = tmp_path / "enc" / f"{plain.name}.gpg"
    out.parent.mkdir(parents=True, exist_ok=True)
    encrypt_file(plain, out, uid, home)
    return out.read_bytes()


def test_key_with_a_passphrase_file_decrypts_and_without_the_file_fails_with_the_reason(tmp_path, keys):
    member = encrypted(tmp_path, _plain(tmp_path), keys.secret, keys.secret_uid)
    make_zip(tmp_path / "in" / ZIP, [(f"{FOLDER}/{AUTH_USER}.gpg", member)])

    status, scheduler = run_once(tmp_path / "a", tmp_path / "in", keys, GNUPG_HOME=keys.secret)
    row = deliveries(scheduler)[ZIP]
    assert (row.state, status) == (states.FAILED, 1)
    assert f"{AUTH_USER}.gpg: the secret key needs a passphrase: set GNUPG_PASSPHRASE_FILE" in (
        row.error or ""
    )

    wrong = tmp_path / "wrong-passphrase"
    wrong.write_text("not it\n")
    _, scheduler = run_once(
        tmp_path / "w", tmp_path / "in", keys, GNUPG_HOME=keys.secret, GNUPG_PASSPHRASE_FILE=str(wrong)
    )
    assert "the passphrase in GNUPG_PASSPHRASE_FILE is wrong" in (deliveries(scheduler)[ZIP].error or "")

    status, scheduler = run_once(
        tmp_path / "b", tmp_path / "in", keys, GNUPG_HOME=keys.secret, GNUPG_PASSPHRASE_FILE=keys.passfile
    )
    assert (status, deliveries(scheduler)[ZIP].state) == (0, states.DONE)
    store = open_sql_store("sqlite", tmp_path / "b" / "var")
    assert store.query("UQx_X_1T", "SELECT COUNT(*) FROM auth_user") == [(2,)]


def test_each_bad_member_is_reported_by_name_and_the_rest_is_published(tmp_path, keys):
    good = encrypted(tmp_path, _plain(tmp_path), keys.plain, keys.plain_uid)
    enroll = tmp_path / "plain" / "UQx-X-1T-student_courseenrollment-prod-analytics.sql"
    enroll.write_bytes(
        b"id\tuser_id\tcourse_id\tcreated\tis_active\tmode\n1\t1\tc\t2015-01-01 00:00:00\t1\thonor\n"
    )
    other = encrypted(tmp_path, enroll, keys.other, keys.other_uid)
    corrupt = bytearray(encrypted(tmp_path, enroll, keys.plain, keys.plain_uid))
    corrupt[len(corrupt) // 2] ^= 0xFF
    bomb = b"\0" * (1 << 20)  # deflates to a few kB: a ratio no OpenPGP file has
    members = [
        (f"{FOLDER}/{AUTH_USER}.gpg", good),
        (f"{FOLDER}/UQx-X-1T-student_courseenrollment-prod-analytics.sql.gpg", other),
        (f"{FOLDER}/UQx-X-1T-wiki_article-prod-analytics.sql.gpg", bytes(corrupt)),
        (f"{FOLDER}/../evil-auth_user-prod-analytics.sql.gpg", good),
        (f"{FOLDER}/notes.txt.gpg", good),
        (f"{FOLDER}/UQx-X-1T-courseware_studentmodule-prod-analytics.sql.gpg", bomb),
    ]
    make_zip(tmp_path / "in" / ZIP, members)

    status, scheduler = run_once(tmp_path, tmp_path / "in", keys)

    assert status == 1
    row = deliveries(scheduler)[ZIP]
    assert row.state == states.FAILED and (row.rows_loaded, row.rows_rejected) == (1, 5)
    error = row.error or ""
    for member, reason in (
        ("student_courseenrollment-prod-analytics.sql.gpg", "wrong key"),
        ("wiki_article-prod-analytics.sql.gpg", "corrupt"),
        ("../evil-auth_user-prod-analytics.sql.gpg", "unsafe path"),
        ("notes.txt.gpg", "not an edX file name"),
        ("courseware_studentmodule-prod-analytics.sql.gpg", "refused as a zip bomb"),
    ):
        assert f"{member}: {reason}" in error, (member, error)
    dump = tmp_path / "data" / "database_state" / "2015-06-07"
    assert sorted(p.name for p in dump.iterdir()) == [AUTH_USER], "the good member is published, alone"
    assert not (tmp_path / "data" / "database_state" / "evil-auth_user-prod-analytics.sql").exists()
    store = open_sql_store("sqlite", tmp_path / "var")
    assert store.query("UQx_X_1T", "SELECT COUNT(*) FROM auth_user") == [(2,)]
    extra = scheduler.states["Deliveries"].extra["deliveries"]
    assert extra[ZIP]["state"] == "failed" and "wrong key" in extra[ZIP]["detail"]  # type: ignore[index]

    report = subprocess.run(
        [sys.executable, "ingestor.py", "--set", f"STATE_DIR={tmp_path / 'var'}", "status", "--json"],
        cwd=REPO,
        capture_output=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("INGESTOR_")},
        timeout=60,
    )
    shown = json.loads(report.stdout)["deliveries"]
    assert [(os.path.basename(d["file"]), d["state"]) for d in shown] == [(ZIP, "failed")]
    assert "notes.txt.gpg: not an edX file name" in shown[0]["detail"]


def test_truncated_zip_fails_alone_and_the_daily_log_beside_it_still_loads(tmp_path, keys, sample_delivery):
    incoming = tmp_path / "in"
    incoming.mkdir()
    whole = (sample_delivery / ZIP).read_bytes()
    (incoming / ZIP).write_bytes(whole[: len(whole) // 2])
    shutil.copy(sample_delivery / "uqx-edx-events-2015-05-30.log.gz.gpg", incoming)

    status, scheduler = run_once(tmp_path, incoming, keys)

    rows = deliveries(scheduler)
    assert status == 1
    assert rows[ZIP].state == states.FAILED and "truncated or not a zip" in (rows[ZIP].error or "")
    assert rows["uqx-edx-events-2015-05-30.log.gz.gpg"].state == states.DONE
    assert not (tmp_path / "data" / "database_state").exists() or not any(
        (tmp_path / "data" / "database_state").iterdir()
    ), "nothing of the truncated zip is visible"
    assert [r.state for r in scheduler.queue.rows(service="Clickstream")] == [states.DONE]


def test_not_enough_space_fails_with_a_clear_message_and_publishes_nothing(tmp_path, keys, sample_delivery):
    incoming = tmp_path / "in"
    incoming.mkdir()
    shutil.copy(sample_delivery / ZIP, incoming)

    status, scheduler = run_once(tmp_path, incoming, keys, DELIVERIES_SPACE_LIMIT="20000")

    row = deliveries(scheduler)[ZIP]
    assert status == 1 and row.state == states.FAILED
    assert "not enough space" in (row.error or "") and "20000" in (row.error or "")
    area = tmp_path / "data" / "database_state"
    assert sorted(p.name for p in area.iterdir()) == [], "no staging directory, no latest"


def test_archive_declaring_absurd_sizes_is_refused_as_a_zip_bomb(tmp_path, keys):
    make_zip(tmp_path / "in" / ZIP, [(f"{FOLDER}/{AUTH_USER}.gpg", b"\0" * (40 << 20))])
    _, scheduler = run_once(tmp_path, tmp_path / "in", keys)
    row = deliveries(scheduler)[ZIP]
    assert row.state == states.FAILED and "zip bomb" in (row.error or "")
    assert not (tmp_path / "data" / "database_state" / "2015-06-07").exists()


# -- the same delivery twice, a corrected one, originals ------------------------------------------


def _stamps(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_same_zip_dropped_twice_is_not_unpacked_twice(tmp_path, keys, sample_delivery):
    incoming = tmp_path / "in"
    incoming.mkdir()
    shutil.copy(sample_delivery / ZIP, incoming)
    run_once(tmp_path, incoming, keys, SERVICES="Deliveries:DatabaseState")
    dump = tmp_path / "data" / "database_state" / "2015-06-07"
    before = _stamps(dump)

    os.utime(incoming / ZIP, (time.time() + 5, time.time() + 5))  # synced again: a new mtime
    (incoming / "again").mkdir()
    shutil.copy(sample_delivery / ZIP, incoming / "again" / ZIP)  # and dropped in a second place
    _, scheduler = run_once(tmp_path, incoming, keys, SERVICES="Deliveries:DatabaseState")

    assert _stamps(dump) == before, "nothing unpacked again"
    rows = {r.meta: r for r in scheduler.queue.rows(service="Deliveries")}
    first, second = rows[str(incoming / ZIP)], rows[str(incoming / "again" / ZIP)]
    assert first.state == states.DONE and "not unpacked again" in (first.error or "")
    assert first.rows_loaded == len(before), "the new version reports the files it holds, as the first did"
    assert second.state == states.DUPLICATE
    reloaded = [r for r in scheduler.queue.rows(service="DatabaseState") if r.state == states.QUEUED]
    assert not reloaded


def test_corrected_redelivery_of_the_same_date_replaces_the_previous_one(tmp_path, keys):
    incoming = tmp_path / "in"
    first = encrypted(tmp_path / "1", _plain(tmp_path / "1", rows=2), keys.plain, keys.plain_uid)
    make_zip(incoming / ZIP, [(f"{FOLDER}/{AUTH_USER}.gpg", first)])
    run_once(tmp_path, incoming, keys, SERVICES="Deliveries:DatabaseState")

    corrected = encrypted(tmp_path / "2", _plain(tmp_path / "2", rows=5), keys.plain, keys.plain_uid)
    make_zip(incoming / ZIP, [(f"{FOLDER}/{AUTH_USER}.gpg", corrected)])
    status, _ = run_once(tmp_path, incoming, keys, SERVICES="Deliveries:DatabaseState")

    assert status == 0
    dump = tmp_path / "data" / "database_state" / "2015-06-07"
    assert (dump / AUTH_USER).read_bytes() == (tmp_path / "2" / "plain" / AUTH_USER).read_bytes()
    assert not [p for p in dump.parent.iterdir() if p.name.startswith(".")], "no staging left"
    manifest = json.loads((tmp_path / "data" / ".deliveries" / f"{ZIP}.json").read_text())
    assert manifest["version"] == 2
    store = open_sql_store("sqlite", tmp_path / "var")
    assert store.query("UQx_X_1T", "SELECT COUNT(*) FROM auth_user") == [(5,)]


def test_originals_are_removed_after_publication_when_keep_originals_is_off(tmp_path, keys, sample_delivery):
    incoming = tmp_path / "in"
    incoming.mkdir()
    shutil.copy(sample_delivery / ZIP, incoming)
    shutil.copy(sample_delivery / "uqx-edx-events-2015-05-30.log.gz.gpg", incoming)
    _, scheduler = run_once(
        tmp_path, incoming, keys, DELIVERIES_KEEP_ORIGINALS="0", SERVICES="Deliveries:Clickstream"
    )
    assert list(incoming.iterdir()) == []
    assert {r.state for r in deliveries(scheduler).values()} == {states.DONE}
    assert [r.state for r in scheduler.queue.rows(service="Clickstream")] == [states.DONE]


# -- a real daemon killed in the middle of unpacking ----------------------------------------------


def _environ(tmp_path: Path, incoming: Path, keys: Keys, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGESTOR_")}
    settings = {
        "DATA_PATHS": str(tmp_path / "data"),
        "STATE_DIR": str(tmp_path / "var"),
        "INCOMING_PATHS": str(incoming),
        "GNUPG_HOME": keys.plain,
        "HEARTBEAT_SECONDS": "1",
        "LEASE_SECONDS": "30",
        "API_ENABLED": "0",
        "SERVICES": "Deliveries:DatabaseState",
        **extra,
    }
    env.update({f"INGESTOR_{k}": v for k, v in settings.items()})
    return env


@pytest.mark.slow
def test_sigkill_in_the_middle_of_unpacking_then_restart_gives_the_same_result(
    tmp_path, keys, sample_delivery
):
    import socket
    import urllib.request

    incoming = tmp_path / "in"
    incoming.mkdir()
    shutil.copy(sample_delivery / ZIP, incoming)
    (tmp_path / "data").mkdir()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = _environ(tmp_path, incoming, keys, API_ENABLED="1", API_PORT=str(port))
    staging = tmp_path / "data" / "database_state" / ".2015-06-07.unpacking"
    proc = subprocess.Popen(
        [sys.executable, "ingestor.py", "run", "--once"], env=env, cwd=REPO, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if staging.is_dir() and len(list(staging.iterdir())) >= 4:
                break
            time.sleep(0.02)
        else:
            raise AssertionError("the delivery was never seen half-way")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=10) as response:
            seen = json.loads(response.read())["response"]["Deliveries"]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert seen["deliveries"][ZIP]["state"] == "unpacking" and seen["status"] == "running"
    area = tmp_path / "data" / "database_state"
    assert not (area / "2015-06-07").exists() and not (area / "latest").exists(), (
        "nothing half-written visible"
    )

    env["INGESTOR_API_ENABLED"] = "0"
    restarted = subprocess.run(
        [sys.executable, "ingestor.py", "run", "--once"], env=env, cwd=REPO, capture_output=True, timeout=300
    )
    assert restarted.returncode == 1, "only the sample's .sql.failed export fails"
    assert not staging.exists()
    dump = area / "2015-06-07"
    plain = SAMPLE_DATA / "database_state" / "2015-06-07"
    for name in SQL_COUNTS:
        assert (dump / name).read_bytes() == (plain / name).read_bytes()
    queue = TrackingQueue(open_sql_store("sqlite", tmp_path / "var"))
    (row,) = queue.rows(service="Deliveries")
    assert row.state == states.DONE and row.attempts == 2
    loaded = {os.path.basename(r.meta): r.rows_loaded for r in queue.rows(service="DatabaseState")}
    assert {name: loaded[name] for name in SQL_COUNTS} == SQL_COUNTS


def test_daily_log_to_the_wrong_key_or_corrupt_fails_alone_and_nothing_is_placed(tmp_path, keys):
    log = tmp_path / "plain" / "uqx-edx-events-2015-06-02.log.gz"
    log.parent.mkdir(parents=True)
    log.write_bytes(gzip.compress(b'{"event_type": "x", "time": "2015-06-02T10:00:00Z"}\n', mtime=0))
    incoming = tmp_path / "in"
    incoming.mkdir()
    encrypt_file(log, incoming / f"{log.name}.gpg", keys.other_uid, keys.other)
    good = tmp_path / "good.gpg"
    encrypt_file(log, good, keys.plain_uid, keys.plain)
    corrupt = bytearray(good.read_bytes())
    corrupt[len(corrupt) // 2] ^= 0xFF
    (incoming / "uqx-edge-events-2015-06-02.log.gz.gpg").write_bytes(bytes(corrupt))

    status, scheduler = run_once(tmp_path, incoming, keys, SERVICES="Deliveries:Clickstream")

    rows = deliveries(scheduler)
    assert status == 1
    assert "wrong key" in (rows[f"{log.name}.gpg"].error or "")
    assert "corrupt" in (rows["uqx-edge-events-2015-06-02.log.gz.gpg"].error or "")
    placed = tmp_path / "data" / "clickstream_logs" / "events"
    assert not list(placed.glob("*.log.gz")) and not list(placed.glob(".*.partial"))
