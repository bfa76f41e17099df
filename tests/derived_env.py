"""A copy of the sample package run through the daemon, for the derived services' tests.

On MariaDB the sample's course databases and its rows in `Person_Course` are shared with the other
sample tests, so the MariaDB cases are marked `serial` (run alone).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import netaddr
from mmdb_writer import MMDBWriter

from core.courses import load_courses
from core.daemon import Daemon
from services.clickstream import aggregates, course_events, enrolments
from services.discussion_forums.service import COUNTS_TABLE
from services.person_course import daily, inputs
from stores.documents import open_document_store
from stores.sql import open_sql_store
from stores.sql.base import SqlStore
from tests.conftest import REPO, SAMPLE_DATA
from tests.documents import drop_database
from tests.packages import settings_for

COURSES = load_courses(REPO / "courses.py").courses
# Invented countries for the sample's addresses (documentation and public ranges).
GEOIP = (
    ("192.0.2.0/24", "AU"),
    ("198.51.100.0/24", "NZ"),
    ("203.0.113.0/24", "GB"),
    ("1.1.1.0/24", "US"),
    ("8.8.8.0/24", "US"),
    ("2001:4860::/32", "US"),
    ("203.2.218.0/24", "AU"),
    ("2001:db8::/32", "DE"),
)


def sample_geoip(path: Path) -> Path:
    writer = MMDBWriter(ip_version=6, database_type="GeoIP2-Country", ipv4_compatible=True)
    for network, country in GEOIP:
        writer.insert_network(netaddr.IPSet([network]), {"country": {"iso_code": country}})
    writer.to_db_file(str(path))
    return path


class DerivedEnv:
    """The sample package copied to `tmp`, ingested with the newest log too, derived tables built."""

    def __init__(self, tmp: Path, sql_url: str, mongo_url: str, name: str) -> None:
        self.data = tmp / "data"
        shutil.copytree(SAMPLE_DATA, self.data, symlinks=True)
        self.state = tmp / "var"
        self.sql_url, self.mongo_url, self.name = sql_url, mongo_url, name
        self.geoip = sample_geoip(tmp / "sample.mmdb")
        self.store: SqlStore = open_sql_store(sql_url, self.state)
        if self.store.dialect == "mysql":
            self.clean()
        self.daemon: Daemon | None = None

    def run(self, **extra: str) -> int:
        settings = settings_for(
            self.data,
            self.state,
            self.sql_url,
            MONGO_URL=self.mongo_url,
            DOCUMENT_DB_PREFIX=self.name,
            TRACKING_DATABASE=f"api_{self.name}",
            COURSES_FILE=str(REPO / "courses.py"),
            CLICKSTREAM_HOLD_NEWEST="0",
            GEOIP_DATABASE=str(self.geoip),
            **extra,
        )
        self.daemon = Daemon(settings, foreground=False)
        return self.daemon.run(once=True)

    @property
    def dumps(self) -> Path:
        return (self.data / "database_state" / "latest").resolve()

    @property
    def logs(self) -> Path:
        return (self.data / "clickstream_logs" / "latest").resolve()

    def service(self, name: str) -> Any:
        assert self.daemon is not None
        return self.daemon.scheduler.by_name[name]

    def context(self, name: str) -> Any:
        assert self.daemon is not None
        return self.daemon.scheduler.context(self.service(name))

    def query(self, database: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.store.query(database, sql, params)

    def clean(self) -> None:
        """Remove what the sample's courses left in the shared MariaDB databases."""
        store = self.store
        for course in COURSES.values():
            store.drop_database(course.dbname)
        store.drop_database(f"api_{self.name}")
        for table in (aggregates.TABLE, course_events.TABLE, course_events.FILES_TABLE, enrolments.TABLE):
            if table in store.list_tables("Person_Course"):
                ids = [c.mongoname for c in COURSES.values()]
                marks = ", ".join("?" for _ in ids)
                with store.transaction("Person_Course") as cur:
                    cur.execute(f"DELETE FROM {table} WHERE course_id IN ({marks})", ids)
        present = store.list_tables("Person_Course")
        with store.transaction("Person_Course") as cur:
            if COUNTS_TABLE in present:
                tables = [c.discussiontable for c in COURSES.values()]
                cur.execute(f"DELETE FROM {COUNTS_TABLE} WHERE discussiontable IN (?, ?, ?)", tables)
            for table in (inputs.STATE_TABLE, "courseprofile", daily.DAILY, daily.COUNTRIES):
                if table in present:
                    cur.execute(f"DELETE FROM {table} WHERE course IN (?, ?, ?)", list(COURSES))
            for key in COURSES:
                cur.execute(f"DROP TABLE IF EXISTS {store.quote('personcourse_' + key)}")
        with store.transaction("Course_Event") as cur:
            for key in COURSES:
                cur.execute(f"DROP TABLE IF EXISTS {store.quote('courseevent_' + key)}")

    def close(self) -> None:
        if self.store.dialect == "mysql":
            self.clean()
        if self.mongo_url != "sqlite":
            docs = open_document_store(self.mongo_url, self.state)
            for database in ("logs", "discussion_forum"):
                drop_database(docs, f"{self.name}{database}")
            docs.close()
