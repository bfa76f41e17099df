"""Benchmark of the PersonCourse rebuild: a course of 100,000 learners with its dumps and per-day
clickstream aggregates worth 10,000,000 events (generated as aggregate rows, not as events).

    $PY -m bench.bench_person_course [--users 100000] [--events 10000000] [--studentmodule-rows 1000000]
        [--backends sqlite,mysql] [--mysql-url mysql://...] [--work-dir /tmp/...]

Steps, per backend: the dumps (bench/generate.py, plus a certificates dump written here) are ingested
by the real daemon (`run --once`, DatabaseState only); a `course_axis` of 12 chapters is loaded; then
`person_course_day` rows worth a quarter of the events are inserted (one row per active learner-day,
one source file per day, with its `clickstream_file_courses` token) and a full rebuild is timed in a
fresh child process (wall time and peak RSS); then the rest of the events, and a full rebuild again
(the peak RSS of the two shows whether memory follows the events); then one new day of logs (an
incremental run: the course's signature changed) and a run with nothing new. Results: a Markdown
table on stdout and `<work-dir>/results.json`. The MariaDB databases it creates are dropped after.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.generate import DEFAULT_COURSE, generate_package
from services.clickstream import aggregates, course_events

REPO = Path(__file__).resolve().parent.parent
KEY = "bench_person_course"
DAYS = 60
CERT_HEADER = "id\tuser_id\tdownload_url\tname\tgrade\tcourse_id\tdistinction\tstatus\tcreated_date\tmodified_date\tmode\n"


def _settings_overrides(work: Path, backend: str, url: str, token: str) -> dict[str, str]:
    return {
        "DATA_PATHS": str(work / "data"),
        "STATE_DIR": str(work / f"state-{backend}"),
        "SQL_URL": "sqlite" if backend == "sqlite" else url,
        "COURSES_FILE": str(work / "courses.py"),
        "TRACKING_DATABASE": f"api_bench{token}",
        "API_ENABLED": "0",
        "SERVICES": "DatabaseState",
    }


def _write_courses(work: Path) -> None:
    c = DEFAULT_COURSE
    entry = {
        "dbname": c.file_prefix.replace("-", "_").replace(".", ""),
        "mongoname": c.course_id,
        "discussiontable": f"{c.file_prefix}-prod",
        "csjson": "",
    }
    (work / "courses.py").write_text(f"EDX_DATABASES = {{{KEY!r}: {entry!r}}}\n")


def _write_certificates(dated: Path, users: int, seed: int) -> None:
    rng = random.Random(seed)
    c = DEFAULT_COURSE
    with (dated / f"{c.file_prefix}-certificates_generatedcertificate-prod-analytics.sql").open("w") as out:
        out.write(CERT_HEADER)
        for i in range(users // 10):
            grade = f"{rng.uniform(0.5, 1):.2f}"
            status = "downloadable" if rng.random() < 0.8 else "notpassing"
            out.write(
                f"{i + 1}\t{{user}}\t\t\t{grade}\t{c.course_id}\t0\t{status}\t2024-01-01 00:00:00\t"
                f"2024-01-01 00:00:00\thonor\n".replace("{user}", str(-1 - i))
            )


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the child: one PersonCourse run -----------------------------------------------------------


def child(spec: dict[str, Any]) -> dict[str, Any]:
    from base_service import Context
    from core.courses import load_courses
    from core.settings import load_settings
    from services.person_course.service import PersonCourseService
    from stores.sql import open_sql_store

    overrides = dict(spec["overrides"])
    overrides.pop("SERVICES")
    settings = load_settings(config_file=None, environ={}, overrides=overrides, base_dir=Path(spec["work"]))
    sql = open_sql_store(settings.SQL_URL, settings.STATE_DIR)
    courses = load_courses(settings.COURSES_FILE)
    ctx = Context(
        settings=settings,
        sql=sql,
        documents=lambda: None,  # type: ignore[arg-type,return-value]
        courses=lambda: courses,
        log=logging.getLogger("ingestor.PersonCourse"),
    )
    service = PersonCourseService()
    service.start(ctx)
    before = _peak_rss_mib()
    started = time.perf_counter()
    service.run(ctx)
    wall = time.perf_counter() - started
    return {
        "wall_seconds": wall,
        "peak_rss_mib": _peak_rss_mib(),
        "rss_before_mib": before,
        **service.last_run,
    }


def _run_child(work: Path, overrides: dict[str, str]) -> dict[str, Any]:
    spec = json.dumps({"work": str(work), "overrides": overrides})
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_person_course", "--child", spec],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the parent ---------------------------------------------------------------------------------


def _ingest_dumps(work: Path, overrides: dict[str, str]) -> float:
    from core.daemon import Daemon
    from core.settings import load_settings

    settings = load_settings(config_file=None, environ={}, overrides=overrides, base_dir=work)
    started = time.perf_counter()
    Daemon(settings, foreground=False).run(once=True)
    return time.perf_counter() - started


def _load_axis(store: Any, dbname: str, course_id: str) -> None:
    """A course_axis of 12 chapters x 2 sequentials x 2 verticals x 3 leaves."""
    rows: list[list[Any]] = [
        [course_id, 0, "course", "course", "Bench", None, None, 0, None, "2023-09-04 00:00:00", None, "/"]
    ]
    for ch in range(12):
        rows.append(
            [
                course_id,
                len(rows),
                "chapter",
                f"ch{ch}",
                f"Week {ch}",
                f"ch{ch}",
                "course",
                0,
                None,
                None,
                None,
                f"/ch{ch}",
            ]
        )
        for sq in range(2):
            s = f"ch{ch}s{sq}"
            rows.append(
                [
                    course_id,
                    len(rows),
                    "sequential",
                    s,
                    s,
                    f"ch{ch}",
                    f"ch{ch}",
                    0,
                    None,
                    None,
                    None,
                    f"/ch{ch}/{s}",
                ]
            )
            for vt in range(2):
                v = f"{s}v{vt}"
                rows.append(
                    [
                        course_id,
                        len(rows),
                        "vertical",
                        v,
                        v,
                        f"ch{ch}",
                        s,
                        0,
                        None,
                        None,
                        None,
                        f"/ch{ch}/{s}/{v}",
                    ]
                )
                for n, tag in enumerate(("video", "problem", "html")):
                    leaf = f"{v}{tag}{n}"
                    weight = 1.0 if tag == "problem" else None
                    rows.append([course_id, len(rows), tag, leaf, leaf, f"ch{ch}", v, 0, None, None, weight, f"/ch{ch}/{s}/{v}/{leaf}"])  # fmt: skip
    with store.transaction(dbname) as cur:
        cur.execute("DROP TABLE IF EXISTS course_axis")
        cur.execute(
            "CREATE TABLE course_axis (course_id TEXT, idx INTEGER, category TEXT, url_name TEXT, "
            "display_name TEXT, chapter TEXT, parent TEXT, graded INTEGER, due DATETIME, start DATETIME, "
            "weight DOUBLE, path TEXT)"
        )
        cur.executemany(f"INSERT INTO course_axis VALUES ({', '.join('?' for _ in rows[0])})", rows)


def _add_days(store: Any, course_id: str, users: list[int], days: range, events: int, seed: int) -> int:
    """person_course_day rows for `days`, about `events` events in all; returns the rows written."""
    rng = random.Random(seed)
    per_day = events // len(days)
    active = max(1, min(len(users), per_day // 10))  # learners active per day (~10 events each)
    written = 0
    start = date(2023, 9, 4)
    countries = ("AU", "US", "IN", "GB", "CN", "BR", "")
    for d in days:
        day = start + timedelta(days=d)
        source = f"/bench/logs/bench-events-{day.isoformat()}.log"
        rows = []
        remaining = per_day
        for i, user in enumerate(rng.sample(users, active)):
            n = remaining // (active - i)
            remaining -= n
            t = datetime(day.year, day.month, day.day, 8) + timedelta(seconds=rng.randrange(40000))
            rows.append(
                (course_id, user, f"u{user}", day, n, n // 10, n // 8, n // 40, n // 6, n // 50,
                 t.strftime("%Y-%m-%d %H:%M:%S"), (t + timedelta(minutes=30)).strftime("%Y-%m-%d %H:%M:%S"),
                 countries[user % 7], f"10.0.{user % 250}.{d}", source)
            )  # fmt: skip
        names = ", ".join(name for name, _ in aggregates.COLUMNS)
        marks = ", ".join("?" for _ in aggregates.COLUMNS)
        with store.transaction("Person_Course") as cur:
            cur.execute(f"DELETE FROM {aggregates.TABLE} WHERE source_file = ?", (source,))
            for at in range(0, len(rows), 5000):
                cur.executemany(
                    f"INSERT INTO {aggregates.TABLE} ({names}) VALUES ({marks})", rows[at : at + 5000]
                )
            cur.execute(f"DELETE FROM {course_events.FILES_TABLE} WHERE source_file = ?", (source,))
            cur.execute(
                f"INSERT INTO {course_events.FILES_TABLE} (source_file, course_id, nevents, token) VALUES (?, ?, ?, ?)",
                (source, course_id, per_day, uuid.uuid4().hex),
            )
        written += len(rows)
    return written


def bench_backend(work: Path, backend: str, url: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    from services.clickstream import derived_counts
    from services.discussion_forums.service import counts_table_ddl
    from stores.sql import open_sql_store

    token = uuid.uuid4().hex[:8]
    overrides = _settings_overrides(work, backend, url, token)
    store = open_sql_store(overrides["SQL_URL"], Path(overrides["STATE_DIR"]))
    course = DEFAULT_COURSE
    dbname = course.file_prefix.replace("-", "_")
    results = []
    try:
        ingest = _ingest_dumps(work, overrides)
        users = [int(r[0]) for r in store.query(dbname, "SELECT id FROM auth_user ORDER BY id")]
        _fix_certificates(store, dbname, users)
        _load_axis(store, dbname, course.course_id)
        with store.transaction("Person_Course") as cur:
            for statement in aggregates.create_statements(store.dialect) + derived_counts.create_statements(
                store.dialect
            ):
                cur.execute(statement)
            cur.execute(counts_table_ddl(store.dialect))
            cur.execute(f"DELETE FROM {aggregates.TABLE} WHERE course_id = ?", (course.course_id,))
            cur.execute(f"DELETE FROM {course_events.FILES_TABLE} WHERE course_id = ?", (course.course_id,))
        quarter = args.events // 4
        started = time.perf_counter()
        rows = _add_days(store, course.course_id, users, range(0, DAYS // 4), quarter, 1)
        aggregate_seconds = time.perf_counter() - started
        common = {"backend": backend, "learners": len(users), "dump_ingest_seconds": round(ingest, 1)}
        full = _run_child(work, overrides)
        results.append({**common, "run": "full rebuild", "events": quarter, "day_rows": rows, **full})
        rows += _add_days(store, course.course_id, users, range(DAYS // 4, DAYS), args.events - quarter, 2)
        _reset_state(store)
        full = _run_child(work, overrides)
        results.append({**common, "run": "full rebuild", "events": args.events, "day_rows": rows, **full})
        per_day = args.events // DAYS
        rows += _add_days(store, course.course_id, users, range(DAYS, DAYS + 1), per_day, 3)
        inc = _run_child(work, overrides)
        results.append(
            {
                **common,
                "run": "incremental (one new day)",
                "events": args.events + per_day,
                "day_rows": rows,
                **inc,
            }
        )
        noop = _run_child(work, overrides)
        results.append(
            {**common, "run": "nothing new", "events": args.events + per_day, "day_rows": rows, **noop}
        )
        for r in results:
            r["aggregate_insert_seconds_quarter"] = round(aggregate_seconds, 1)
    finally:
        if backend == "mysql":
            store.drop_database(dbname)
            store.drop_database(overrides["TRACKING_DATABASE"])
            with store.transaction("Person_Course") as cur:
                for table in (aggregates.TABLE, course_events.FILES_TABLE):
                    cur.execute(f"DELETE FROM {table} WHERE course_id = ?", (course.course_id,))
                cur.execute(f"DROP TABLE IF EXISTS personcourse_{KEY}")
                cur.execute("DELETE FROM courseprofile WHERE course = ?", (KEY,))
                cur.execute("DELETE FROM course_daily WHERE course = ?", (KEY,))
                cur.execute("DELETE FROM derived_course_state WHERE course = ?", (KEY,))
    return results


def _fix_certificates(store: Any, dbname: str, users: list[int]) -> None:
    """Give the certificates (written before the ids were known) the ids of the first learners."""
    rows = [(user, i + 1) for i, user in enumerate(users[: len(users) // 10])]
    with store.transaction(dbname) as cur:
        cur.executemany("UPDATE certificates_generatedcertificate SET user_id = ? WHERE id = ?", rows)


def _reset_state(store: Any) -> None:
    with store.transaction("Person_Course") as cur:
        cur.execute("DELETE FROM derived_course_state WHERE course = ?", (KEY,))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--studentmodule-rows", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,mysql")
    parser.add_argument("--mysql-url", default="mysql://ingestor:ingestor@127.0.0.1:3306")
    parser.add_argument("--work-dir", type=Path)
    args = parser.parse_args(argv)
    if args.child:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        print(json.dumps(child(json.loads(args.child))))
        return 0
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="ingestor-bench-pc-"))
    work.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    dated = generate_package(work / "data", args.studentmodule_rows, users=args.users)
    _write_certificates(dated, args.users, 7)
    (work / "data" / "clickstream_logs").mkdir(exist_ok=True)
    _write_courses(work)
    results = []
    for backend in args.backends.split(","):
        results += bench_backend(work, backend, args.mysql_url, args)
    (work / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print("| backend | run | learners | events (as aggregates) | learner-day rows | wall s | peak RSS MiB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['backend']} | {r['run']} | {r['learners']:,} | {r['events']:,} | {r['day_rows']:,} | "
            f"{r['wall_seconds']:.1f} | {r['peak_rss_mib']:.1f} |"
        )
    for backend in args.backends.split(","):
        first = next(r for r in results if r["backend"] == backend)
        print(
            f"{backend}: dumps ingested in {first['dump_ingest_seconds']} s; {first['aggregate_insert_seconds_quarter']} s to insert a quarter of the aggregate rows"
        )
    shutil.rmtree(work / "data", ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
