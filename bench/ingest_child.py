"""One measured ingest, run in a fresh process by bench_database_state (so its memory is its own).

    python -m bench.ingest_child '{"file": ..., "state_dir": ..., "sql_url": ..., "profile": null}'

Builds `Settings` and the SQL store the way the daemon does (`load_settings`, `open_sql_store`), a
`Context` and a `Rejects` the way the scheduler does, calls `DatabaseStateService().ingest` and
prints one JSON line: wall and CPU time of the ingest, the time spent inside `SqlStore.load_table`
(the rest is the service's own pass over the file), peak RSS of this process before and after, and
what the ingest reported. With `profile` set to a path, the ingest runs under cProfile and the
statistics are dumped there.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from base_service import Context
from core.rejects import Rejects
from core.settings import load_settings
from services.database_state.service import DatabaseStateService
from stores.sql import LoadSpec, open_sql_store


def _no_documents() -> NoReturn:
    raise RuntimeError("DatabaseState does not use the document store")


def _no_courses() -> NoReturn:
    raise RuntimeError("DatabaseState does not use the course registry")


def _peak_rss_kib() -> int:
    # Linux reports ru_maxrss in KiB.
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(spec: dict[str, Any]) -> dict[str, Any]:
    path = Path(spec["file"])
    state_dir = Path(spec["state_dir"])
    settings = load_settings(
        environ={},
        overrides={"STATE_DIR": str(state_dir), "SQL_URL": spec["sql_url"], "DATA_PATHS": str(path.parent)},
        base_dir=state_dir,
    )
    sql = open_sql_store(settings.SQL_URL, settings.STATE_DIR)
    service = DatabaseStateService()
    store_seconds = [0.0]
    load_table = sql.load_table

    def timed_load_table(database: str, table: str, load: LoadSpec) -> int:
        started = time.perf_counter()
        try:
            return load_table(database, table, load)
        finally:
            store_seconds[0] += time.perf_counter() - started

    setattr(sql, "load_table", timed_load_table)  # noqa: B010 - wraps the instance's method, not the class
    ctx = Context(
        settings=settings,
        sql=sql,
        documents=_no_documents,
        courses=_no_courses,
        log=logging.getLogger(f"ingestor.{service.name}"),
    )
    rejects = Rejects(settings.rejects_dir / service.name, path, 1)
    ctx.rejects = rejects
    rss_before = _peak_rss_kib()
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    with rejects:
        if spec.get("profile"):
            import cProfile

            profiler = cProfile.Profile()
            result = profiler.runcall(service.ingest, path, ctx)
            profiler.dump_stats(spec["profile"])
        else:
            result = service.ingest(path, ctx)
    wall = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_before
    sql.close()
    return {
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "store_seconds": store_seconds[0],
        "peak_rss_kib": _peak_rss_kib(),
        "rss_before_kib": rss_before,
        "rows_loaded": result.rows_loaded,
        "rows_rejected": result.rows_rejected,
        "warnings": result.warnings,
    }


def main(argv: list[str]) -> int:
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    print(json.dumps(run(json.loads(argv[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
