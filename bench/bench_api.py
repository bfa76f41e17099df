"""Load benchmark of the status API: requests per second and p50/p99 latency of `/status`,
`/api/v1/services` and `/metrics` with 100 and with 10,000 tracked files, while the daemon ingests.

A real daemon (`ingestor.py run`, SQLite tracking table) ingests a generated tracking log the whole
time; the tracking table is seeded beforehand with N finished files. The client is bounded: a few
threads on loopback, each with one keep-alive connection, a fixed number of requests per endpoint.

    python bench/bench_api.py [--files 100 10000] [--requests 600] [--threads 4]
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core import states  # noqa: E402
from core.queue import TrackingQueue, path_key, utcnow  # noqa: E402
from stores.sql import open_sql_store  # noqa: E402

ENDPOINTS = ("/status", "/api/v1/services", "/metrics")
SERVICES = ("DatabaseState", "Clickstream", "DiscussionForums", "CourseStructure")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_log(path: Path, events: int) -> None:
    with gzip.open(path, "wb", compresslevel=1) as out:
        for n in range(events):
            event = {
                "username": f"u{n % 500}",
                "event_type": "play_video",
                "event_source": "browser",
                "event": json.dumps({"n": n}),
                "ip": f"10.0.{n % 250}.{n % 200}",
                "context": {"course_id": "course-v1:UQx+BENCH+1T", "user_id": n % 500, "path": "/event"},
                "time": f"2015-05-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:{n % 59:02d}+00:00",
                "agent": "Mozilla/5.0",
            }
            out.write(json.dumps(event).encode() + b"\n")


def seed(state: Path, files: int) -> None:
    """N finished files in the tracking table (mostly done, some failed and duplicate)."""
    queue = TrackingQueue(open_sql_store("sqlite", state))
    queue.ensure_schema()
    now = utcnow().strftime("%Y-%m-%d %H:%M:%S.%f")
    rows = []
    for i in range(files):
        state_name = states.FAILED if i % 20 == 0 else states.DUPLICATE if i % 20 == 1 else states.DONE
        path = f"/seed/database_state/2015-06-07/UQx-SEED{i}-1T-auth_user-prod-analytics.sql"
        rows.append(
            (
                SERVICES[i % len(SERVICES)],
                path,
                path_key(path),
                state_name,
                now,
                now,
                now,
                i % 1000,
                i % 7,
                "seeded failure" if state_name == states.FAILED else None,
            )
        )
    with queue.store.transaction(queue.database, immediate=True) as cur:
        cur.executemany(
            "INSERT INTO ingestor (service_name, type, meta, path_key, state, created, started_date, "
            "completed_date, started, completed, rows_loaded, rows_rejected, error) "
            "VALUES (?, 'file', ?, ?, ?, ?, ?, ?, 1, 1, ?, ?, ?)",
            rows,
        )


def hammer(port: int, path: str, requests: int, threads: int) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    errors = 0

    def worker(count: int) -> None:
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        for _ in range(count):
            start = time.perf_counter()
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - start)
            if response.status != 200:
                with lock:
                    errors += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker, args=(requests // threads,)) for _ in range(threads)]
    began = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "errors": errors,
    }


def run(
    files: int, requests: int, threads: int, events: int, idle: bool = False
) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        root = Path(tmp)
        data = root / "data"
        logs = data / "clickstream_logs" / "2015-06-01"
        logs.mkdir(parents=True)
        (data / "database_state" / "2015-06-07").mkdir(parents=True)
        for area, day in (("clickstream_logs", "2015-06-01"), ("database_state", "2015-06-07")):
            os.symlink(day, data / area / "latest")
        for n in range(0 if idle else 3):
            write_log(logs / f"uqx-edx-events-2015-05-{10 + n:02d}.log.gz", events)
        state = root / "var"
        seed(state / "sql", files)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("INGESTOR_")}
        env.update(
            {
                "INGESTOR_DATA_PATHS": str(data),
                "INGESTOR_STATE_DIR": str(state),
                "INGESTOR_API_PORT": str(port),
                "INGESTOR_SCAN_INTERVAL": "3600",
                "INGESTOR_CLICKSTREAM_HOLD_NEWEST": "0",
                "INGESTOR_SERVICES": "Clickstream:DatabaseState:DiscussionForums:CourseStructure",
            }
        )
        proc = subprocess.Popen(
            [sys.executable, str(REPO / "ingestor.py"), "run"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request("GET", "/api/v1/services")
                    body = json.loads(conn.getresponse().read())
                    if idle or any(s["running"] for s in body["services"]):
                        break
                except (OSError, ValueError, KeyError):
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the daemon did not start ingesting")
                time.sleep(0.2)
            results = {path: hammer(port, path, requests, threads) for path in ENDPOINTS}
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/v1/services")
            still = any(s["running"] for s in json.loads(conn.getresponse().read())["services"])
            results["_ingesting_at_end"] = {"value": float(still)}
            return results
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, nargs="+", default=[100, 10_000])
    parser.add_argument("--requests", type=int, default=600, help="per endpoint (default 600)")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--events", type=int, default=150_000, help="events per generated log (3 logs)")
    parser.add_argument(
        "--idle",
        action="store_true",
        help="nothing to ingest: the same requests to an idle daemon (what the machine alone costs)",
    )
    args = parser.parse_args()
    table = {}
    for files in args.files:
        table[files] = run(files, args.requests, args.threads, args.events, args.idle)
    print(f"{'files':>7} {'endpoint':<18} {'rps':>8} {'p50 ms':>8} {'p99 ms':>8} errors")
    for files, results in table.items():
        for path in ENDPOINTS:
            r = results[path]
            print(
                f"{files:>7} {path:<18} {r['rps']:>8.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['errors']:.0f}"
            )
        print(f"{files:>7} daemon still ingesting at the end: {bool(results['_ingesting_at_end']['value'])}")
    if len(table) >= 2:
        small, large = min(table), max(table)
        for path in ENDPOINTS:
            ratio = table[large][path]["p99_ms"] / table[small][path]["p99_ms"]
            print(f"p99 ratio {large}/{small} files, {path}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
