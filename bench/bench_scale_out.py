"""Where the time of several daemons on one queue goes, against one daemon.

Runs the package of tests/test_scale_out.py (nine 1,500-event logs and three dumps) with 1 and with N
daemons (`run --once`, started together) on the MariaDB and FerretDB test servers, and reports for
each run: the wall time, when each daemon logged its first line, claimed its first file and finished
its last, the files each ingested, the CPU seconds of the daemons (their rusage) and of the two
servers (/proc), and the idle gaps in each daemon's log (time between two lines with nothing logged).

    PY=/root/.cache/optimus-ingestor/venv/bin/python
    $PY -m bench.bench_scale_out --mysql-url mysql://ingestor:ingestor@127.0.0.1:3313 \\
        --mongo-url mongodb://127.0.0.1:27023/ --daemons 3 --repeat 3
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from stores.documents import open_document_store  # noqa: E402
from stores.sql import open_sql_store  # noqa: E402
from tests.documents import drop_database  # noqa: E402
from tests.test_scale_out import make_scale_package  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+) (\S+): (.*)$")


def server_pids(mysql_port: int, mongo_port: int) -> dict[str, int]:
    """The MariaDB and FerretDB processes listening on the given ports (by their command lines)."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "mariadbd" in cmd or "mysqld" in cmd:
            if f"--port={mysql_port}" in cmd:
                found["mariadb"] = int(entry.name)
        elif "ferretdb" in cmd and f":{mongo_port}" in cmd:
            found["ferretdb"] = int(entry.name)
    return found


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def parse_log(path: Path) -> list[tuple[float, str]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        m = LINE.match(line)
        if m:
            stamp = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            out.append((stamp, m.group(4)))
    return out


def run(count: int, data: Path, state: Path, settings: dict[str, str]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGESTOR_")}
    procs = []
    state.mkdir(parents=True, exist_ok=True)
    began_wall = time.time()
    began = time.monotonic()
    for n in range(count):
        own = {
            **settings,
            "DATA_PATHS": str(data),
            "STATE_DIR": str(state / f"d{n}"),
            "WORKER_NAME": f"host{n}",
            "HEARTBEAT_SECONDS": "1",
            "API_ENABLED": "0",
        }
        err = (state / f"d{n}.stderr").open("wb")
        procs.append(
            subprocess.Popen(
                [sys.executable, str(REPO / "ingestor.py"), "run", "--once"],
                env={**env, **{f"INGESTOR_{k}": v for k, v in own.items()}},
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        )
    daemon_cpu = []
    ended = []
    for proc in procs:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        ended.append(time.time() - began_wall)
        daemon_cpu.append(usage.ru_utime + usage.ru_stime)
        if proc.returncode != 0:
            raise SystemExit(f"daemon exited {proc.returncode}")
    wall = time.monotonic() - began
    per_daemon: list[dict[str, Any]] = []
    for n in range(count):
        lines = parse_log(state / f"d{n}" / "logs" / "ingestor.log")
        first = lines[0][0] - began_wall if lines else None
        claims = [t - began_wall for t, msg in lines if msg.startswith("ingesting ")]
        dones = [t - began_wall for t, msg in lines if msg.startswith("done ")]
        gaps = sorted(
            ((b[0] - a[0], a[0] - began_wall, a[1][:60]) for a, b in itertools.pairwise(lines)),
            reverse=True,
        )[:3]
        per_daemon.append(
            {
                "first_line": first,
                "first_claim": claims[0] if claims else None,
                "last_done": dones[-1] if dones else None,
                "exit": ended[n],
                "files": len(claims),
                "cpu": daemon_cpu[n],
                "gaps": gaps,
            }
        )
    return {"wall": wall, "daemons": per_daemon, "daemon_cpu": sum(daemon_cpu)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mysql-url", default=os.environ.get("INGESTOR_TEST_MYSQL_URL"))
    parser.add_argument("--mongo-url", default=os.environ.get("INGESTOR_TEST_MONGO_URL"))
    parser.add_argument("--daemons", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the state directories (logs)")
    args = parser.parse_args()
    from urllib.parse import urlparse

    servers = server_pids(urlparse(args.mysql_url).port or 3306, urlparse(args.mongo_url).port or 27017)
    root = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    name = uuid.uuid4().hex[:8]
    course = f"UQx-B{name}-1T"
    data = make_scale_package(root / "data", course)
    store = open_sql_store(args.mysql_url, root)
    docs = open_document_store(args.mongo_url, root)
    try:
        for rep in range(args.repeat):
            for count in (1, args.daemons):
                prefix = f"b{name}r{rep}n{count}"
                settings = {
                    "SQL_URL": args.mysql_url,
                    "MONGO_URL": args.mongo_url,
                    "CLICKSTREAM_HOLD_NEWEST": "0",
                    "LEASE_SECONDS": "60",
                    "TRACKING_DATABASE": f"api_{prefix}",
                    "DOCUMENT_DB_PREFIX": prefix,
                }
                before = {k: cpu_seconds(p) for k, p in servers.items()}
                result = run(count, data, root / prefix, settings)
                spent = {k: cpu_seconds(p) - before[k] for k, p in servers.items()}
                load = os.getloadavg()[0]
                print(
                    f"run {rep} daemons={count}: wall {result['wall']:.1f}s, daemons' CPU "
                    f"{result['daemon_cpu']:.1f}s, "
                    + ", ".join(f"{k} CPU {v:.1f}s" for k, v in spent.items())
                    + f", load {load:.1f}"
                )
                for n, d in enumerate(result["daemons"]):
                    print(
                        f"  d{n}: first line {d['first_line']:.2f}s, first claim {d['first_claim'] or 0:.2f}s, "
                        f"last done {d['last_done'] or 0:.2f}s, exit {d['exit']:.2f}s, {d['files']} files, "
                        f"CPU {d['cpu']:.1f}s"
                    )
                    for gap, at, msg in d["gaps"]:
                        print(f"      gap {gap:.2f}s after {at:.2f}s: {msg}")
                store.drop_database(f"api_{prefix}")
                drop_database(docs, f"{prefix}logs")
    finally:
        store.drop_database(course.replace("-", "_"))
        if "person_course_day" in store.list_tables("Person_Course"):
            store.query(
                "Person_Course", "DELETE FROM person_course_day WHERE source_file LIKE ?", (f"{data}%",)
            )
        docs.close()
        if not args.keep:
            subprocess.run(["rm", "-rf", str(root)], check=False)
        else:
            print(f"kept {root}")


if __name__ == "__main__":
    main()
