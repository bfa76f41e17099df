"""Benchmark of the DatabaseState ingest of a large `courseware_studentmodule` dump.

    python -m bench.bench_database_state [--rows 1000000] [--backends sqlite,mysql]
        [--mysql-url mysql://ingestor:ingestor@127.0.0.1:3306] [--work-dir /tmp/...] [--profile]

Generates (bench/generate.py) a studentmodule file of `--rows` rows and one of a quarter of that, then
for each backend and size ingests the file with `DatabaseStateService().ingest` in a fresh child
process (bench/ingest_child.py) and reports wall time, rows per second and the child's peak RSS. On
the same full-size file it also times the original's method, the plain `mariadb`/`mysql` client's
`LOAD DATA LOCAL INFILE` into a pre-created table, and prints the ratio ours/plain. Results are
printed as Markdown and written to `<work-dir>/results.json`; scratch databases are dropped and
the generated files removed at the end (`--keep-files` keeps the files).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from bench.generate import Course, write_studentmodule

REPO = Path(__file__).resolve().parent.parent
TABLE = "courseware_studentmodule"
PLAIN_COLUMNS = (
    "`id` BIGINT, `module_type` TEXT, `module_id` TEXT, `student_id` BIGINT, `state` LONGTEXT, "
    "`grade` DOUBLE, `created` DATETIME, `modified` DATETIME, `max_grade` DOUBLE, `done` TEXT, "
    "`course_id` TEXT"
)
DEFAULT_MYSQL_URL = "mysql://ingestor:ingestor@127.0.0.1:3306"


@dataclass
class Measurement:
    """One ingest (ours, in a child process) or one plain-client load."""

    method: str  # "sqlite", "mysql" or "plain client"
    size: str  # "full" or "quarter"
    mode: str  # "quiet" or "busy" (the other core kept busy by a spinning process)
    rows: int
    wall_seconds: float
    peak_rss_mib: float | None = None
    rss_before_mib: float | None = None
    cpu_seconds: float | None = None
    store_seconds: float | None = None
    rows_loaded: int = 0
    rows_rejected: int = 0
    server_warnings: int | None = None
    server_cpu_seconds: float | None = None
    runs: list[float] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.wall_seconds if self.wall_seconds else 0.0


@dataclass(frozen=True)
class MysqlTarget:
    host: str
    port: int
    user: str
    password: str

    @classmethod
    def from_url(cls, url: str) -> MysqlTarget:
        parsed = urlparse(url)
        if parsed.scheme != "mysql" or not parsed.hostname:
            raise SystemExit(f"--mysql-url: expected mysql://user:password@host:port, got {url!r}")
        return cls(
            parsed.hostname,
            parsed.port or 3306,
            unquote(parsed.username or ""),
            unquote(parsed.password or ""),
        )


class Client:
    """The plain `mariadb` (or `mysql`) command-line client, password passed in the environment."""

    def __init__(self, target: MysqlTarget) -> None:
        binary = shutil.which("mariadb") or shutil.which("mysql")
        if binary is None:
            raise SystemExit("neither the mariadb nor the mysql command-line client is installed")
        self.binary = binary
        self.target = target
        self.env = dict(os.environ, MYSQL_PWD=target.password)

    def command(self, sql: str, database: str | None = None, local_infile: bool = False) -> list[str]:
        t = self.target
        cmd = [self.binary, "--protocol=TCP", "-h", t.host, "-P", str(t.port), "-u", t.user]
        cmd += ["--batch", "--skip-column-names"]
        if local_infile:
            cmd.append("--local-infile=1")
        if database:
            cmd += ["-D", database]
        return [*cmd, "-e", sql]

    def run(self, sql: str, database: str | None = None, local_infile: bool = False) -> str:
        done = subprocess.run(
            self.command(sql, database, local_infile),
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{self.binary} failed ({done.returncode}) on {sql[:200]!r}: {done.stderr.strip()}"
            )
        return done.stdout


class ServerCpu:
    """CPU time (user + system) of the MySQL server's process, when it runs on this machine and its
    pid file is readable (else None): what a load costs the server, whatever else the machine does."""

    def __init__(self, client: Client | None) -> None:
        self.stat: Path | None = None
        if client is None:
            return
        try:
            pid = int(Path(client.run("SELECT @@pid_file").strip()).read_text().split()[0])
        except (OSError, ValueError, RuntimeError):
            return
        stat = Path(f"/proc/{pid}/stat")
        self.stat = stat if stat.exists() else None

    def seconds(self) -> float | None:
        if self.stat is None:
            return None
        try:
            fields = self.stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sql_string(text: str) -> str:
    """A single-quoted SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def plain_load(client: Client, path: Path, database: str) -> dict[str, Any]:
    """The original's method: the plain client's LOAD DATA LOCAL INFILE into a pre-created table
    of a freshly created scratch database (dropped afterwards)."""
    load = (
        f"LOAD DATA LOCAL INFILE {sql_string(str(path))} INTO TABLE `{TABLE}` "
        "FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' IGNORE 1 LINES; SHOW COUNT(*) WARNINGS"
    )
    client.run(
        f"DROP DATABASE IF EXISTS `{database}`; CREATE DATABASE `{database}` CHARACTER SET utf8mb4; "
        f"CREATE TABLE `{database}`.`{TABLE}` ({PLAIN_COLUMNS}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    )
    try:
        started = time.perf_counter()
        out = client.run(load, database, local_infile=True)
        wall = time.perf_counter() - started
        warnings = int(out.split()[-1]) if out.split() else None
        loaded = int(client.run(f"SELECT COUNT(*) FROM `{TABLE}`", database).split()[0])
    finally:
        client.run(f"DROP DATABASE IF EXISTS `{database}`")
    return {"wall_seconds": wall, "rows_loaded": loaded, "server_warnings": warnings}


class Spinner:
    """Keeps one core busy (a process spinning in a loop) while it is entered; off if not `on`."""

    def __init__(self, on: bool) -> None:
        self.on = on
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Spinner:
        if self.on:
            self.process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(0.2)  # running before the measured step starts
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def ingest_child(file: Path, state_dir: Path, sql_url: str, profile: Path | None = None) -> dict[str, Any]:
    """Run one ingest in a fresh Python process and return what it measured."""
    spec = {
        "file": str(file),
        "state_dir": str(state_dir),
        "sql_url": sql_url,
        "profile": profile and str(profile),
    }
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env = {k: v for k, v in env.items() if not k.startswith("INGESTOR_")}
    done = subprocess.run(
        [sys.executable, "-m", "bench.ingest_child", json.dumps(spec)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ingest of {file} ({sql_url.split('@')[-1]}) failed:\n{done.stderr[-4000:]}")
    if done.stderr.strip():
        print(done.stderr.strip(), file=sys.stderr)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def database_of(file: Path) -> str:
    return file.name.split("-courseware_studentmodule-")[0].replace("-", "_").replace(".", "")


def ingest_once(
    backend: str, file: Path, state_dir: Path, mysql_url: str, client: Client | None
) -> dict[str, Any]:
    """One ingest of `file` in a fresh child process; its state and database removed afterwards."""
    try:
        return ingest_child(file, state_dir, "sqlite" if backend == "sqlite" else mysql_url)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
        if backend == "mysql" and client is not None:
            client.run(f"DROP DATABASE IF EXISTS `{database_of(file)}`")


def summarise(method: str, size: str, mode: str, rows: int, results: list[dict[str, Any]]) -> Measurement:
    """The median run (by wall time) of one measurement, with the highest peak RSS of all runs."""
    walls = [r["wall_seconds"] for r in results]
    median = results[walls.index(statistics.median_low(walls))]
    return Measurement(
        method,
        size,
        mode,
        rows,
        median["wall_seconds"],
        peak_rss_mib=max(r["peak_rss_kib"] for r in results) / 1024 if "peak_rss_kib" in median else None,
        rss_before_mib=median["rss_before_kib"] / 1024 if "rss_before_kib" in median else None,
        cpu_seconds=median.get("cpu_seconds"),
        store_seconds=median.get("store_seconds"),
        rows_loaded=median["rows_loaded"],
        rows_rejected=median.get("rows_rejected", 0),
        server_warnings=median.get("server_warnings"),
        server_cpu_seconds=median.get("server_cpu_seconds"),
        runs=walls,
    )


def profile_ours(backend: str, file: Path, work: Path, mysql_url: str, client: Client | None) -> Path:
    """A cProfile'd ingest; writes `profile-<backend>.pstats` and a text summary beside it."""
    import pstats

    database = database_of(file)
    stats_path = work / f"profile-{backend}.pstats"
    state_dir = work / f"state-{backend}-profile"
    try:
        ingest_child(file, state_dir, "sqlite" if backend == "sqlite" else mysql_url, stats_path)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
        if backend == "mysql" and client is not None:
            client.run(f"DROP DATABASE IF EXISTS `{database}`")
    text_path = stats_path.with_suffix(".txt")
    with text_path.open("w") as out:
        stats = pstats.Stats(str(stats_path), stream=out)
        stats.strip_dirs().sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(30)
    return text_path


def _mib(value: float | None) -> str:
    return "" if value is None else f"{value:,.1f}"


def _ratio(ours: Measurement, plain: Measurement | None) -> str:
    return f"{ours.wall_seconds / plain.wall_seconds:.2f}" if plain else ""


def markdown(
    rows: int,
    file_bytes: int,
    ours: list[Measurement],
    plain: list[Measurement],
    pair_ratios: dict[str, list[float]],
    cores: int,
) -> str:
    base = {(p.size, p.mode): p for p in plain}
    lines = [
        f"`courseware_studentmodule`, {rows:,} rows ({file_bytes / 2**20:,.0f} MiB), {cores} cores; "
        "busy: the other core kept busy by a spinning process",
        "",
        "| method | mode | rows | wall s | rows/s | peak RSS MiB | RSS before ingest MiB | CPU s (child) "
        "| server CPU s | in load_table s | ours/plain | median of paired ratios |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in [*ours, *plain]:
        is_plain = m.method == "plain client"
        ratio = "" if is_plain else _ratio(m, base.get((m.size, m.mode)))
        pairs = pair_ratios.get(f"{m.method}/{m.size}/{m.mode}", [])
        paired = f"{statistics.median(pairs):.2f}" if pairs else ""
        name = "plain `mariadb` LOAD DATA" if is_plain else m.method
        cpu = "" if m.cpu_seconds is None else f"{m.cpu_seconds:,.1f}"
        store = "" if m.store_seconds is None else f"{m.store_seconds:,.1f}"
        lines.append(
            f"| {name} | {m.mode} | {m.rows:,} | {m.wall_seconds:,.1f} | {m.rows_per_second:,.0f} "
            f"| {_mib(m.peak_rss_mib)} | {_mib(m.rss_before_mib)} | {cpu} | {_mib(m.server_cpu_seconds)} "
            f"| {store} | {ratio} | {paired} |"
        )
    for p in plain:
        lines.append(
            f"\nPlain client at {p.rows:,} rows ({p.mode}): {p.rows_loaded:,} rows loaded with "
            f"{p.server_warnings} server warnings (each a `NULL` in a DOUBLE column stored as 0; "
            "fractional seconds are cut silently)."
        )
    lines += [
        "",
        "Peak RSS of the ingest process as the file grows:",
        "",
        f"| backend | peak RSS MiB at {rows // 4:,} rows | peak RSS MiB at {rows:,} rows |",
        "|---|---:|---:|",
    ]
    for backend in dict.fromkeys(m.method for m in ours):
        q = [m.peak_rss_mib or 0 for m in ours if m.method == backend and m.size == "quarter"]
        f = [m.peak_rss_mib or 0 for m in ours if m.method == backend and m.size == "full"]
        lines.append(f"| {backend} | {_mib(max(q) if q else None)} | {_mib(max(f) if f else None)} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_database_state", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,mysql", help="comma-separated: sqlite, mysql")
    parser.add_argument("--mysql-url", default=DEFAULT_MYSQL_URL)
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a new directory under /tmp")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--repeat", type=int, default=1, help="ingests per measurement; the median is reported"
    )
    parser.add_argument("--no-plain", action="store_true", help="skip the plain-client LOAD DATA comparison")
    parser.add_argument("--no-quarter", action="store_true", help="skip the quarter-size runs")
    parser.add_argument(
        "--profile", action="store_true", help="also one cProfile'd full-size ingest per backend"
    )
    parser.add_argument("--keep-files", action="store_true", help="keep the generated .sql files")
    parser.add_argument(
        "--busy-core",
        action="store_true",
        help="also measure everything (ours and the plain client) with the other core kept busy",
    )
    args = parser.parse_args(argv)

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"sqlite", "mysql"}
    if unknown or not backends:
        parser.error(f"--backends: expected sqlite and/or mysql, got {args.backends!r}")
    if args.rows < 4 or args.repeat < 1:
        parser.error("--rows must be at least 4 and --repeat at least 1")
    work = (args.work_dir or Path(tempfile.mkdtemp(prefix="ingestor-bench-", dir="/tmp"))).resolve()
    if work == REPO or REPO in work.parents:
        parser.error(f"--work-dir {work} is inside the repository; use a directory under /tmp")
    work.mkdir(parents=True, exist_ok=True)

    needs_server = "mysql" in backends or not args.no_plain
    client = Client(MysqlTarget.from_url(args.mysql_url)) if needs_server else None
    server_version = client.run("SELECT VERSION()").strip() if client else None
    token = uuid.uuid4().hex[:8]
    sizes = [("full", args.rows)] + ([] if args.no_quarter else [("quarter", args.rows // 4)])
    files: dict[str, Path] = {}
    file_bytes: dict[str, int] = {}
    generate_seconds: dict[str, float] = {}
    for size, rows in sizes:
        course = Course("BenchX", f"{size.capitalize()}{token}", "1T2024")
        files[size] = work / f"{course.file_prefix}-{TABLE}-prod-analytics.sql"
        started = time.perf_counter()
        write_studentmodule(files[size], rows, args.seed, course=course)
        generate_seconds[size] = time.perf_counter() - started
        file_bytes[size] = files[size].stat().st_size
        print(f"generated {files[size]} ({rows:,} rows, {file_bytes[size] / 2**20:,.0f} MiB) "
              f"in {generate_seconds[size]:.1f} s", flush=True)  # fmt: skip

    modes = ["quiet", "busy"] if args.busy_core else ["quiet"]
    server_cpu = ServerCpu(client)
    runs: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    pair_ratios: dict[str, list[float]] = {}
    profiles: dict[str, str] = {}
    plain_db = f"bench_plain_{token}"
    with_plain = client is not None and not args.no_plain
    try:
        for size, _ in sizes:
            for attempt in range(args.repeat):
                for mode in modes:
                    with Spinner(mode == "busy"):
                        done: dict[str, dict[str, Any]] = {}
                        # Alternate the order, so that a drift of the machine's load favours neither.
                        order = (
                            [*backends, "plain client"] if attempt % 2 == 0 else ["plain client", *backends]
                        )
                        for method in order:
                            server_before = server_cpu.seconds()
                            if method == "plain client":
                                if not with_plain:
                                    continue
                                assert client is not None
                                done[method] = plain_load(client, files[size], plain_db)
                            else:
                                state_dir = work / f"state-{method}-{size}-{mode}-{attempt}"
                                done[method] = ingest_once(
                                    method, files[size], state_dir, args.mysql_url, client
                                )
                            server_after = server_cpu.seconds()
                            if server_before is not None and server_after is not None:
                                done[method]["server_cpu_seconds"] = server_after - server_before
                            runs.setdefault((method, size, mode), []).append(done[method])
                            print(f"{method:>12} {size:>7} {mode:>5} #{attempt + 1}: "
                                  f"{done[method]['wall_seconds']:8.2f} s", flush=True)  # fmt: skip
                    for backend in backends:
                        if "plain client" in done:
                            ratio = done[backend]["wall_seconds"] / done["plain client"]["wall_seconds"]
                            pair_ratios.setdefault(f"{backend}/{size}/{mode}", []).append(ratio)
        if args.profile:
            for backend in backends:
                profiles[backend] = str(profile_ours(backend, files["full"], work, args.mysql_url, client))
                print(f"profile of {backend}: {profiles[backend]}", flush=True)
    finally:
        if client is not None:
            client.run(f"DROP DATABASE IF EXISTS `{plain_db}`")
        if not args.keep_files:
            for path in files.values():
                path.unlink(missing_ok=True)

    rows_of = dict(sizes)
    ours = [
        summarise(method, size, mode, rows_of[size], results)
        for (method, size, mode), results in runs.items()
        if method != "plain client"
    ]
    plain = [
        summarise(method, size, mode, rows_of[size], results)
        for (method, size, mode), results in runs.items()
        if method == "plain client"
    ]
    cores = os.cpu_count() or 1
    table = markdown(args.rows, file_bytes["full"], ours, plain, pair_ratios, cores)
    print()
    print(table)
    plain_of = {(p.size, p.mode): p for p in plain}
    results = {
        "rows": args.rows,
        "seed": args.seed,
        "repeat": args.repeat,
        "machine": {
            "cores": cores,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "server": server_version,
        },
        "file_bytes": file_bytes,
        "generate_seconds": generate_seconds,
        "ours": [dict(asdict(m), rows_per_second=m.rows_per_second) for m in ours],
        "plain": [dict(asdict(p), rows_per_second=p.rows_per_second) for p in plain],
        "busy_core": args.busy_core,
        "ratio_ours_over_plain": {
            f"{m.method}/{m.size}/{m.mode}": m.wall_seconds / plain_of[(m.size, m.mode)].wall_seconds
            for m in ours
            if (m.size, m.mode) in plain_of
        },
        "paired_ratios": pair_ratios,
        "load_average_at_end": os.getloadavg(),
        "profiles": profiles,
        "markdown": table,
    }
    (work / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults: {work / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
