"""One measurement of bench_clickstream, run in a fresh process (so its memory is its own).

    python -m bench.clickstream_child '{"mode": "ingest", "file": ..., "run_dir": ..., ...}'

Modes:

* `read`: decompress and split the file into lines with `utils.lines.iter_line_blocks`, nothing more;
* `ceiling`: the same, and `json.loads` of every line (the service's JSON library, stdlib `json`):
  the least any loader of these events has to do;
* `ceiling-gzip`: `gzip.open` and `json.loads` of each line, for reference;
* `reference`: `gzip.open` and `orjson.loads` of each line: the bare parse the issue measures
  the ingest against (the fastest JSON parser available, nothing kept);
* `server-version`, `drop`: asks the MongoDB-wire server its version, or drops `databases` (so that
  the benchmark's own process never loads pymongo and stays small: see `_vm_hwm_kib`);
* `ingest`: the daemon as it runs in production, one `run(once=True)` with `SERVICES=Clickstream`:
  `Settings` from `load_settings` (a state directory in `run_dir`, the log hard-linked into
  `<run_dir>/data/clickstream_logs/<date>/` with a `latest` link, `CLICKSTREAM_HOLD_NEWEST=0`,
  `DOCUMENT_DB_PREFIX`, `MONGO_URL`, `GEOIP_DATABASE` from the spec), then
  `Daemon(settings, foreground=False).run(once=True)`. Besides the whole run it times
  `ClickstreamService.ingest` (the file's pass, without the daemon's start-up and the completion
  transaction), the document store's writes within it (`insert_many`, `insert_encoded`: on the
  service's writer thread, if it has one, so they overlap the parsing; on MongoDB, whose inserts
  are pipelined, the writer thread's time handing batches over and waiting for them) and how long the reading
  thread waited to hand a batch to that writer. With `"indexes": false` the service creates none of
  its secondary indexes (to measure their cost), with `"serial": true` the reading thread waits
  for each batch to be written before it reads on (so the store's time and the reading side's are
  apart), with `"discard": true` the store's writes do
  nothing (the reading side's own speed); with `"profile"` the run is cProfile'd and the
  statistics dumped there, the writer thread's in `<profile>.thread-N`.

Prints one JSON line: wall and CPU time, peak RSS (`getrusage(RUSAGE_SELF).ru_maxrss`) before the
measured part and at the end, and what was read or loaded.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import wait
from pathlib import Path
from typing import Any

from utils.lines import iter_line_blocks


def _peak_rss_kib() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux


def _status_kib(*names: str) -> dict[str, int]:
    """Fields of /proc/self/status, in KiB (empty where there is no /proc)."""
    found = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                name, _, value = line.partition(":")
                if name in names:
                    found[name] = int(value.split()[0])
    except OSError:
        pass
    return found


def _vm_hwm_kib() -> int | None:
    """The peak RSS of this process's own memory (`VmHWM`), which exec resets. `ru_maxrss` does
    not start from zero: it keeps the spawning process's peak (Linux), hence the check."""
    return _status_kib("VmHWM").get("VmHWM")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _read(path: Path) -> dict[str, Any]:
    lines = 0
    size = 0
    for _, block in iter_line_blocks(path):
        lines += len(block)
        size += sum(map(len, block))
    return {"lines": lines, "bytes": size}


def _ceiling(path: Path) -> dict[str, Any]:
    loads = json.loads
    lines = bad = 0
    for _, block in iter_line_blocks(path):
        lines += len(block)
        for raw in block:
            try:
                loads(raw)
            except ValueError:  # JSONDecodeError and UnicodeDecodeError
                bad += 1
    return {"lines": lines, "bad": bad}


def _ceiling_gzip(path: Path) -> dict[str, Any]:
    loads = json.loads
    lines = bad = 0
    with gzip.open(path, "rb") as stream:
        for raw in stream:
            lines += 1
            try:
                loads(raw)
            except ValueError:
                bad += 1
    return {"lines": lines, "bad": bad}


def _reference(path: Path) -> dict[str, Any]:
    import orjson

    loads = orjson.loads
    lines = bad = 0
    with gzip.open(path, "rb") as stream:
        for raw in stream:
            lines += 1
            try:
                loads(raw)
            except orjson.JSONDecodeError:
                bad += 1
    return {"lines": lines, "bad": bad}


def _place(spec: dict[str, Any], run_dir: Path) -> Path:
    """The log in `<run_dir>/data/clickstream_logs/<date>/` (a hard link) with a `latest` link."""
    source = Path(spec["file"])
    area = run_dir / "data" / "clickstream_logs"
    dated = area / spec["date"]
    dated.mkdir(parents=True, exist_ok=True)
    target = dated / source.name
    if not target.exists():
        try:
            os.link(source, target)
        except OSError:
            import shutil

            shutil.copyfile(source, target)
    for root in (area, run_dir / "data" / "database_state"):  # both areas, as a real package has
        (root / spec["date"]).mkdir(parents=True, exist_ok=True)
        latest = root / "latest"
        if not latest.is_symlink():
            latest.symlink_to(spec["date"])
    return target


def _timed(owner: Any, name: str, total: list[float]) -> None:
    """Wrap `owner.name` (a class's method) to add its wall time to `total[0]`."""
    original: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            total[0] += time.perf_counter() - started

    setattr(owner, name, wrapper)


def _discard(self: Any, db: str, coll: str, docs: Any, *more: Any) -> Any:
    from stores.documents.base import InsertResult

    rows = list(docs)
    return InsertResult(len(rows), 0)


def _profile_thread(owner: Any, name: str, profile: str) -> None:
    """cProfile a thread's body too (cProfile sees only its own thread): `<profile>.thread-N`."""
    import cProfile

    original: Callable[..., Any] = getattr(owner, name)
    count = [0]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        profiler = cProfile.Profile()
        try:
            return profiler.runcall(original, *args, **kwargs)
        finally:
            profiler.dump_stats(f"{profile}.thread-{count[0]}")

    setattr(owner, name, wrapper)


def _ingest(spec: dict[str, Any]) -> tuple[dict[str, Any], Callable[[], dict[str, Any]]]:
    """Set up the daemon; returns (facts known before, the measured call's body)."""
    from core.daemon import Daemon
    from core.settings import load_settings
    from services.clickstream import service as clickstream
    from stores.documents import DocumentStore, MongoDocumentStore, SqliteDocumentStore

    run_dir = Path(spec["run_dir"])
    placed = _place(spec, run_dir)
    overrides = {
        "DATA_PATHS": str(run_dir / "data"),
        "STATE_DIR": str(run_dir / "state"),
        "SQL_URL": "sqlite",
        "MONGO_URL": spec["mongo_url"],
        "SERVICES": "Clickstream",
        "API_ENABLED": "0",
        "DOCUMENT_DB_PREFIX": spec["prefix"],
        "CLICKSTREAM_HOLD_NEWEST": "0",
        "GEOIP_DATABASE": spec.get("geoip") or "",
    }
    settings = load_settings(config_file=None, environ={}, overrides=overrides, base_dir=run_dir)
    if not spec.get("indexes", True):
        clickstream.INDEXES = ()
    ingest_seconds = [0.0]
    insert_seconds = [0.0]
    wait_seconds = [0.0]
    _timed(clickstream.ClickstreamService, "ingest", ingest_seconds)
    store_class = SqliteDocumentStore if spec["mongo_url"] == "sqlite" else MongoDocumentStore
    for method in ("insert_many", "insert_encoded"):  # the latter: documents the service encoded
        if method in vars(store_class):
            if spec.get("discard"):  # a store that writes nothing: the reading side's own speed
                setattr(store_class, method, _discard)
            _timed(store_class, method, insert_seconds)
    if "pipelined_inserts" in vars(store_class):  # MongoDB: batches handed over while others are stored
        if spec.get("discard"):  # one at a time, through the discarding `insert_many`
            store_class.pipelined_inserts = DocumentStore.pipelined_inserts  # type: ignore[method-assign]
        else:  # the writer thread's time handing a batch over and waiting for it to be stored
            _timed(clickstream._Loader, "_store_batch", insert_seconds)
            _timed(clickstream._Loader, "_stored_batch", insert_seconds)
    writer = getattr(clickstream, "_Writer", None)  # batches written on a thread of their own
    if writer is not None and spec.get("serial"):  # each batch written before the next is read
        _serialize(writer, insert_seconds)
    if writer is not None:
        _timed(writer, "put", wait_seconds)  # the reading thread waiting for the writer
        if spec.get("profile"):
            _profile_thread(writer, "_run", spec["profile"])

    def body() -> dict[str, Any]:
        daemon = Daemon(settings, foreground=False)
        status = daemon.run(once=True)
        return {
            "status": status,
            "ingest_seconds": ingest_seconds[0],
            "insert_seconds": insert_seconds[0],
            "writer_wait_seconds": wait_seconds[0] if writer is not None else None,
            "daemon": daemon,
        }

    return {"placed": str(placed), "settings": settings}, body


def _serialize(writer: Any, waited: list[float]) -> None:
    """Make the reading thread wait for each batch to be written (on the writer thread, so in the
    same grouped transactions as the threaded ingest): nothing overlaps, not even two batches in
    the store (a batch started is waited for before the writer goes on; the time is added to
    `waited`)."""
    init, put = writer.__init__, writer.put

    def serial_init(self: Any, start: Any, finish: Any, *args: Any) -> None:
        written = threading.Semaphore(0)

        def start_and_wait(item: Any) -> Any:
            stored = start(item)
            began = time.perf_counter()
            wait([stored])
            waited[0] += time.perf_counter() - began
            return stored

        def finish_then_signal(item: Any, stored: Any) -> None:
            try:
                finish(item, stored)
            finally:
                written.release()

        init(self, start_and_wait, finish_then_signal, *args)
        self.written = written

    def serial_put(self: Any, item: Any) -> None:
        put(self, item)
        while not self.written.acquire(timeout=0.5):  # a failed write may leave `item` untaken
            if self.error is not None:
                raise self.error

    writer.__init__, writer.put = serial_init, serial_put


def _after_ingest(result: dict[str, Any], settings: Any) -> dict[str, Any]:
    """What the run left: the tracking row, the documents, the aggregates (not timed)."""
    from services.clickstream import aggregates

    daemon = result.pop("daemon")
    rows = daemon.scheduler.queue.rows("Clickstream")
    documents = daemon.documents()
    try:
        stored = documents.count(settings.document_db("logs"), "clickstream")
    finally:
        documents.close()
    days = daemon.sql.query(aggregates.DATABASE, f"SELECT COUNT(*) FROM {aggregates.TABLE}")[0][0]
    daemon.sql.close()
    result.update(
        files=[{"state": r.state, "rows_loaded": r.rows_loaded, "rows_rejected": r.rows_rejected, "error": r.error}
               for r in rows],
        documents=stored,
        aggregate_rows=int(days),
        failed=daemon.scheduler.outcome()[0],
    )  # fmt: skip
    return result


def _server(spec: dict[str, Any]) -> dict[str, Any]:
    """`server-version` (and a check that the server answers) or `drop` of the listed databases."""
    from stores.documents import open_document_store
    from stores.documents.mongo import MongoDocumentStore

    store = open_document_store(spec["mongo_url"], Path(spec.get("run_dir") or "/tmp"))
    try:
        assert isinstance(store, MongoDocumentStore)
        if spec["mode"] == "drop":
            for database in spec["databases"]:
                store.client.drop_database(database)
            return {"dropped": spec["databases"]}
        store.client.list_database_names()
        return {"version": str(store.client.server_info().get("version", "?"))}
    finally:
        store.close()


def run(spec: dict[str, Any]) -> dict[str, Any]:
    mode = spec["mode"]
    if mode in ("server-version", "drop"):
        return _server(spec)
    path = Path(spec["file"])
    settings = None
    call: Callable[[], dict[str, Any]]
    if mode == "read":
        call = lambda: _read(path)  # noqa: E731
    elif mode == "ceiling":
        call = lambda: _ceiling(path)  # noqa: E731
    elif mode == "ceiling-gzip":
        call = lambda: _ceiling_gzip(path)  # noqa: E731
    elif mode == "reference":
        call = lambda: _reference(path)  # noqa: E731
    elif mode == "ingest":
        facts, call = _ingest(spec)
        settings = facts["settings"]
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    rss_before = _peak_rss_kib()
    hwm_before = _vm_hwm_kib()
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    if spec.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
        result = profiler.runcall(call)
        profiler.dump_stats(spec["profile"])
    else:
        result = call()
    wall = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_before
    peak = _peak_rss_kib()
    hwm = _vm_hwm_kib()
    now = _status_kib("VmRSS", "RssAnon", "RssFile", "RssShmem")  # at the end: what the RSS is made of
    if mode == "ingest":
        result = _after_ingest(result, settings)
    return {
        "mode": mode,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "peak_rss_kib": peak,
        "rss_before_kib": rss_before,
        "vm_hwm_kib": hwm,
        "vm_hwm_before_kib": hwm_before,
        "rss_at_end_kib": now,
        **result,
    }


def main(argv: list[str]) -> int:
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)  # the daemon's own INFO lines go to its log files only
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    print(json.dumps(run(json.loads(argv[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
