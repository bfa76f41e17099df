"""Benchmark of the Clickstream ingest of a daily tracking log, against what parsing alone costs.

    python -m bench.bench_clickstream [--events 1000000] [--backends sqlite,mongo]
        [--mongo-url mongodb://127.0.0.1:27017/] [--mongo-events N] [--geoip PATH|none]
        [--work-dir /tmp/bench-clickstream] [--repeat 1] [--profile [--profile-events 100000]]
        [--busy-core]

Generates (bench/generate_logs.py) a `.log.gz` of `--events` events and one of a quarter of that
(kept in `<work-dir>/logs/` and reused while the generator and its parameters are the same), then
measures, each in a fresh child process (bench/clickstream_child.py) with its peak RSS:

* the reference: `gzip.open` and `orjson.loads` of every line (the bare parse, nothing kept), which
  the ingest's speed is compared with (ours/reference: the reference's wall time over ours, in the
  same run); beside it `iter_line_blocks` + `json.loads` (the former ceiling) and the decompression
  and line splitting alone;
* the daemon's Clickstream ingest of the file, `Daemon(settings, foreground=False).run(once=True)`
  with `SERVICES=Clickstream`, into the embedded store (`MONGO_URL=sqlite`) and into the
  MongoDB-wire server at `--mongo-url` (`--mongo-events` sets a smaller size for it: FerretDB is
  much slower at writes); the service's `ingest`, the store's writes (`insert_many`, `insert_encoded`)
  and the time the reading thread waits for the service's writer thread are timed as well.

`--busy-core` keeps one other core busy during every measurement (a child process spinning in a
loop, started before the first measurement and stopped after the last), as on a production host
that also serves the dashboards.

It prints a Markdown table (events/s, ratio to the reference, peak RSS at both sizes), writes
`<work-dir>/results.json` and drops the benchmark's document databases on the server. `--profile`
adds a cProfile'd SQLite ingest of `--profile-events` events (with and without the service's
secondary indexes; and timed runs without indexes, without GeoIP, and with a store that discards
the writes) and a summary of where the time goes, grouped by component
(`<work-dir>/profile-sqlite.txt`).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bench.generate_logs import DEFAULT_BAD_EVERY, DEFAULT_COURSES, DEFAULT_DATE, DEFAULT_USERS

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MONGO_URL = "mongodb://127.0.0.1:27017/"
DEFAULT_WORK = Path("/tmp/bench-clickstream")
CEILINGS = ("reference", "ceiling", "read")
LABELS = {
    "reference": "reference: `gzip.open` + `orjson.loads`",
    "ceiling": "ceiling: `iter_line_blocks` + `json.loads`",
    "ceiling-gzip": "`gzip.open` + `json.loads`",
    "read": "`iter_line_blocks` only (decompress and split lines)",
    "sqlite": "Clickstream -> sqlite (embedded)",
    "sqlite-serial": "the same, writes in line (`ingest` - store writes = the reading side alone)",
    "mongo": "Clickstream -> mongo (FerretDB)",
}


@dataclass
class Measurement:
    what: str  # reference, ceiling, ceiling-gzip, read, sqlite, mongo
    events: int
    wall_seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    rss_before_mib: float
    vm_hwm_mib: float | None = None  # the child's own peak (VmHWM): a check on the getrusage figure
    ingest_seconds: float | None = None
    insert_seconds: float | None = None  # in the store's insert_many/insert_encoded
    writer_wait_seconds: float | None = None  # the reading thread waiting for the writer thread
    server_cpu_seconds: float | None = None
    documents: int | None = None
    rejected: int | None = None
    aggregate_rows: int | None = None
    rss_at_end_kib: dict[str, int] = field(default_factory=dict)  # VmRSS, RssAnon, RssFile at the end
    runs: list[float] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        return self.events / self.wall_seconds if self.wall_seconds else 0.0


# -- files --------------------------------------------------------------------------------------


def log_file(work: Path, events: int, args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """The generated log of `events` events, reused when its parameters and the generator match."""
    generator = (REPO / "bench" / "generate_logs.py").read_bytes() + (
        REPO / "bench" / "generate.py"
    ).read_bytes()
    params = {
        "events": events,
        "seed": args.seed,
        "users": args.users,
        "courses": args.courses,
        "bad_every": args.bad_every,
        "date": args.date,
        "generator": hashlib.blake2b(generator, digest_size=8).hexdigest(),
    }
    directory = work / "logs" / str(events)
    path = directory / f"benchx-edx-events-{args.date}.log.gz"
    meta_path = directory / "meta.json"
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("params") == params:
            print(f"reusing {path} ({events:,} events, {path.stat().st_size / 2**20:,.1f} MiB)", flush=True)
            return path, meta
    # In a child process, so that this one stays small (see the RSS note in clickstream_child.py).
    directory.mkdir(parents=True, exist_ok=True)
    stats_path = directory / "stats.json"
    command = [sys.executable, "-m", "bench.generate_logs", str(path), "--events", str(events)]
    command += ["--seed", str(args.seed), "--users", str(args.users), "--courses", str(args.courses)]
    command += ["--bad-every", str(args.bad_every), "--date", args.date, "--stats-json", str(stats_path)]
    subprocess.run(command, cwd=REPO, env=_child_env(), check=True, stdout=subprocess.DEVNULL)
    stats = json.loads(stats_path.read_text())
    meta = {
        "params": params,
        **{
            k: stats[k]
            for k in ("lines", "bad_lines", "bytes_uncompressed", "bytes_compressed", "generate_seconds")
        },
        "by_type": stats["by_type"],
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    print(f"generated {path} ({events:,} events, {meta['bytes_uncompressed'] / 2**20:,.0f} MiB of text, "
          f"{meta['bytes_compressed'] / 2**20:,.1f} MiB gzip) in {meta['generate_seconds']:.1f} s", flush=True)  # fmt: skip
    return path, meta


# -- the MongoDB-wire server ----------------------------------------------------------------------


def server_pid(url: str) -> int | None:
    """The pid of the local process listening on the URL's port (for its CPU time), if found."""
    parsed = urlparse(url)
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    try:
        out = subprocess.run(
            ["ss", "-Hltnp", f"sport = :{parsed.port or 27017}"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return None
    found = re.search(r"pid=(\d+)", out)
    return int(found.group(1)) if found else None


def process_cpu(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drop_documents(url: str, databases: Sequence[str]) -> None:
    if databases:
        child({"mode": "drop", "mongo_url": url, "databases": list(databases)})


def check_server(url: str) -> str:
    try:
        return str(child({"mode": "server-version", "mongo_url": url})["version"])
    except RuntimeError as exc:
        raise SystemExit(
            f"--mongo-url {url}: no MongoDB-wire server answers ({str(exc)[-300:]}); start one with "
            "`bash scripts/start_ferretdb.sh` or leave mongo out of --backends"
        ) from exc


# -- a busy core ----------------------------------------------------------------------------------


def start_spinner() -> subprocess.Popen[bytes]:
    """A process that keeps one core busy until stopped (`--busy-core`)."""
    return subprocess.Popen([sys.executable, "-c", "while True:\n    pass"], stdin=subprocess.DEVNULL)


def stop_spinner(spinner: subprocess.Popen[bytes] | None) -> float | None:
    """Stop the spinner (this process started it) and return the CPU seconds it used."""
    if spinner is None:
        return None
    cpu = process_cpu(spinner.pid)
    spinner.kill()
    spinner.wait()
    return cpu


# -- children -------------------------------------------------------------------------------------


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGESTOR_")}
    env["PYTHONPATH"] = str(REPO)
    return env


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement in a fresh Python process and return what it reported."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.clickstream_child", json.dumps(spec)],
        cwd=REPO,
        env=_child_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{spec['mode']} of {spec.get('file', '')} failed:\n{done.stderr[-4000:]}")
    if done.stderr.strip():
        print(done.stderr.strip(), file=sys.stderr)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def measure_ceiling(mode: str, file: Path, events: int, repeat: int) -> Measurement:
    results = [child({"mode": mode, "file": str(file)}) for _ in range(repeat)]
    return _combine(mode, events, results)


class Ingests:
    """Runs the daemon's ingest in children; every run gets a fresh state and document database."""

    def __init__(self, args: argparse.Namespace, work: Path, geoip: str) -> None:
        self.args = args
        self.work = work
        self.geoip = geoip
        self.token = uuid.uuid4().hex[:8]
        self.count = 0
        self.dropped: list[str] = []
        self.mongo_databases: list[str] = []
        self.pid = server_pid(args.mongo_url)

    def once(
        self,
        backend: str,
        file: Path,
        *,
        indexes: bool = True,
        geoip: str | None = None,
        profile: Path | None = None,
        discard: bool = False,
        serial: bool = False,
    ) -> dict[str, Any]:
        self.count += 1
        prefix = f"bc{self.token}{self.count}"
        run_dir = self.work / f"run-{backend}-{self.count}"
        # A run dir left by a bench that was killed holds that run's state (a file still running
        # under a dead worker, the events it stored): the next run in it would resume that one
        # ("returned 1 abandoned file(s)") and measure less than a fresh ingest.
        shutil.rmtree(run_dir, ignore_errors=True)
        spec = {
            "mode": "ingest",
            "file": str(file),
            "run_dir": str(run_dir),
            "date": self.args.date,
            "mongo_url": "sqlite" if backend == "sqlite" else self.args.mongo_url,
            "prefix": prefix,
            "geoip": self.geoip if geoip is None else geoip,
            "indexes": indexes,
            "profile": profile and str(profile),
            "discard": discard,
            "serial": serial,
        }
        cpu_before = process_cpu(self.pid) if backend == "mongo" else None
        try:
            result = child(spec)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
            if backend == "mongo":
                self.mongo_databases.append(prefix + "logs")
                drop_documents(self.args.mongo_url, [prefix + "logs"])
                self.dropped.append(prefix + "logs")
        cpu_after = process_cpu(self.pid) if backend == "mongo" else None
        if cpu_before is not None and cpu_after is not None:
            result["server_cpu_seconds"] = cpu_after - cpu_before
        files = result.get("files") or [{}]
        if result.get("status") != 0 or files[0].get("state") != "done" or result.get("failed"):
            raise RuntimeError(f"ingest of {file} into {backend} did not complete: {result}")
        return result

    def measure(
        self, backend: str, file: Path, events: int, repeat: int, serial: bool = False
    ) -> Measurement:
        results = [self.once(backend, file, serial=serial) for _ in range(repeat)]
        for r in results:
            if r["documents"] != events:
                raise RuntimeError(f"{backend}: {r['documents']:,} documents stored, {events:,} expected")
        return _combine(backend + ("-serial" if serial else ""), events, results)


def _combine(what: str, events: int, results: list[dict[str, Any]]) -> Measurement:
    """The median run by wall time, with the highest peak RSS of all runs."""
    walls = [r["wall_seconds"] for r in results]
    median = results[walls.index(statistics.median_low(walls))]
    files = median.get("files") or [{}]
    return Measurement(
        what,
        events,
        median["wall_seconds"],
        median["cpu_seconds"],
        max(r["peak_rss_kib"] for r in results) / 1024,
        median["rss_before_kib"] / 1024,
        vm_hwm_mib=max(r["vm_hwm_kib"] or 0 for r in results) / 1024 or None,
        ingest_seconds=median.get("ingest_seconds"),
        insert_seconds=median.get("insert_seconds"),
        writer_wait_seconds=median.get("writer_wait_seconds"),
        server_cpu_seconds=median.get("server_cpu_seconds"),
        documents=median.get("documents"),
        rejected=files[0].get("rows_rejected"),
        aggregate_rows=median.get("aggregate_rows"),
        rss_at_end_kib=median.get("rss_at_end_kib") or {},
        runs=walls,
    )


# -- profile --------------------------------------------------------------------------------------

ENCODING = "document encoding (JSON text)"
PARSING = "our parse/mapping (events.py, service loop, time)"
IDS = "content ids and file digest (blake2b, ObjectId)"
# By file, in order: the first fragment found in a function's file names its group.
GROUPS: tuple[tuple[str, str], ...] = (
    ("utils/lines.py", "decompress + split lines"),
    ("json/decoder.py", "json decode"),
    ("json/encoder.py", ENCODING),
    ("stores/documents/base.py", ENCODING),
    ("stores/documents/sqlite.py", "document store, Python side (insert_*, _note_lists)"),
    ("stores/documents/mongo.py", "document store, Python side (pymongo, BSON)"),
    ("pymongo/", "document store, Python side (pymongo, BSON)"),
    ("bson/objectid.py", IDS),
    ("bson/", "document store, Python side (pymongo, BSON)"),
    ("services/clickstream/aggregates.py", "aggregates (DayCounts)"),
    ("utils/geoip.py", "geoip"),
    ("maxminddb", "geoip"),
    ("ipaddress.py", "geoip"),
    ("functools.py", "geoip"),
    ("services/clickstream/", PARSING),
    ("utils/timeparse.py", PARSING),
    ("python3.11/queue.py", "waiting on the batch queue"),
    ("python3.11/threading.py", "waiting on the batch queue"),
    ("core/", "daemon, queue, completion transaction"),
    ("stores/sql/", "daemon, queue, completion transaction"),
)
BUILTIN_GROUPS: tuple[tuple[str, str], ...] = (
    ("executemany", "SQLite executemany (insert + index maintenance)"),
    ("method 'execute' of 'sqlite3.Connection'", "SQLite execute (BEGIN/COMMIT: WAL writes, checkpoints)"),
    ("zlib", "decompress + split lines"),
    ("maxminddb", "geoip"),
    ("blake2b", IDS),
    ("_hashlib", IDS),
)
SPECIAL_FUNCTIONS = {"content_id": IDS, "_encoded": ENCODING, "_json_text": ENCODING}


def _group(key: tuple[str, int, str], stats: dict[Any, Any], depth: int = 0) -> str:
    filename, _, name = key
    if filename == "~":  # a built-in: by its name, else by the caller that spent most in it
        for fragment, group in BUILTIN_GROUPS:
            if fragment in name:
                return group
        callers = stats[key][4]
        if not callers or depth > 6:
            return "other"
        caller = max(callers, key=lambda c: callers[c][3] if isinstance(callers[c], tuple) else 0)
        return _group(caller, stats, depth + 1)
    if name in SPECIAL_FUNCTIONS and "clickstream" in filename:
        return SPECIAL_FUNCTIONS[name]
    for fragment, group in GROUPS:
        if fragment in filename:
            return group
    return "other"


@dataclass
class ProfileSummary:
    groups: dict[str, float]
    total: float
    top: list[tuple[str, float, int]]


def summarize_profile(paths: Sequence[Path]) -> ProfileSummary | None:
    """Own time (tottime) by group, and the top functions, of one thread's statistics files."""
    import pstats

    paths = [p for p in paths if p.exists()]
    if not paths:
        return None
    stats = pstats.Stats(*(str(p) for p in paths))
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    groups: dict[str, float] = {}
    top: list[tuple[str, float, int]] = []
    for key, (_, calls, tottime, _, _) in raw.items():
        group = _group(key, raw)
        groups[group] = groups.get(group, 0.0) + tottime
        filename, line, name = key
        where = name if filename == "~" else f"{_short(filename)}:{line}({name})"
        top.append((where, tottime, calls))
    top.sort(key=lambda t: -t[1])
    ordered = dict(sorted(groups.items(), key=lambda kv: -kv[1]))
    return ProfileSummary(ordered, sum(groups.values()), top[:25])


def _short(filename: str) -> str:
    for marker in ("site-packages/", "lib/python3.11/", str(REPO) + "/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def _threads(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".thread-*"))


def profile(ingests: Ingests, file: Path, events: int, work: Path) -> dict[str, Any]:
    """cProfile'd SQLite ingests (with and without the secondary indexes) and timed variants.

    cProfile sees one thread: the daemon's (which reads and parses) is profiled as a whole, the
    service's writer thread, if any, separately (clickstream_child.py); their times overlap.
    """
    out: dict[str, Any] = {"events": events}
    with_ix = work / "profile-sqlite.pstats"
    without_ix = work / "profile-sqlite-noindex.pstats"
    for stale in [with_ix, without_ix, *_threads(with_ix), *_threads(without_ix)]:
        stale.unlink(missing_ok=True)
    profiled = {
        "with": ingests.once("sqlite", file, profile=with_ix),
        "without": ingests.once("sqlite", file, indexes=False, profile=without_ix),
    }
    timed = {
        "as configured": ingests.once("sqlite", file),
        "without the service's secondary indexes": ingests.once("sqlite", file, indexes=False),
        "without GeoIP (GEOIP_DATABASE empty)": ingests.once("sqlite", file, geoip=""),
        "with a store that discards the writes (the reading side alone)": ingests.once(
            "sqlite", file, discard=True
        ),
    }
    keys = (
        "wall_seconds",
        "ingest_seconds",
        "insert_seconds",
        "writer_wait_seconds",
        "cpu_seconds",
        "peak_rss_kib",
    )
    out["timed"] = {name: {k: r.get(k) for k in keys} for name, r in timed.items()}
    out["profiled_wall_seconds"] = {name: r["wall_seconds"] for name, r in profiled.items()}
    parts = {
        "reader": summarize_profile([with_ix]),
        "writer": summarize_profile(_threads(with_ix)),
        "reader without indexes": summarize_profile([without_ix]),
        "writer without indexes": summarize_profile(_threads(without_ix)),
    }
    out["summaries"] = {name: asdict(p) if p else None for name, p in parts.items()}
    names = [n for n, p in parts.items() if p]
    groups = list(dict.fromkeys(g for n in names for g in parts[n].groups))  # type: ignore[union-attr]
    reader = parts["reader"]
    assert reader is not None
    lines = [
        f"cProfile of the SQLite ingest (whole daemon run) of {events:,} events: own time (tottime) by group, "
        f"s, per thread (the threads overlap; wall time under the profiler "
        f"{profiled['with']['wall_seconds']:.1f} s, {profiled['without']['wall_seconds']:.1f} s without indexes):",
        "",
        "| group | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for group in groups:
        cells = [f"{parts[n].groups.get(group, 0.0):.2f}" for n in names]  # type: ignore[union-attr]
        lines.append(f"| {group} | " + " | ".join(cells) + " |")
    lines.append("| total | " + " | ".join(f"{parts[n].total:.2f}" for n in names) + " |")  # type: ignore[union-attr]
    lines += [
        "",
        "Timed without the profiler (s: whole daemon run / `ingest` / store writes / reader waiting "
        "for the writer):",
        "",
    ]
    for name, r in timed.items():
        wait = r.get("writer_wait_seconds")
        lines.append(
            f"* {name}: {r['wall_seconds']:.2f} / {r['ingest_seconds']:.2f} / {r['insert_seconds']:.2f} / "
            f"{'-' if wait is None else f'{wait:.2f}'} ({events / r['wall_seconds']:,.0f} events/s)"
        )
    for name in ("reader", "writer"):
        part = parts[name]
        if part is None:
            continue
        lines += ["", f"Top functions by own time, {name} thread:", "", "| function | own s | calls |"]
        lines.append("|---|---:|---:|")
        lines += [f"| `{where}` | {seconds:.2f} | {calls:,} |" for where, seconds, calls in part.top]
    text = "\n".join(lines)
    (work / "profile-sqlite.txt").write_text(text + "\n")
    out["markdown"] = text
    return out


# -- report ---------------------------------------------------------------------------------------


def _f(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def _peak(m: Measurement) -> str:
    """getrusage's peak, and the child's own (VmHWM) where that is lower (see clickstream_child)."""
    if m.vm_hwm_mib is not None and m.peak_rss_mib > m.vm_hwm_mib + 2:
        return f"{m.peak_rss_mib:,.1f} (own: {m.vm_hwm_mib:,.1f})"
    return f"{m.peak_rss_mib:,.1f}"


def _split(m: Measurement) -> str:
    anon, file = m.rss_at_end_kib.get("RssAnon"), m.rss_at_end_kib.get("RssFile")
    return "" if anon is None or file is None else f"{anon / 1024:,.1f} + {file / 1024:,.1f}"


def markdown(
    measurements: list[Measurement], metas: dict[int, dict[str, Any]], cores: int, busy: bool = False
) -> str:
    references = {m.events: m for m in measurements if m.what == "reference"}
    lines = []
    for events, meta in sorted(metas.items(), reverse=True):
        lines.append(
            f"* {events:,} events: {meta['lines']:,} lines ({meta['bad_lines']} bad), "
            f"{meta['bytes_uncompressed'] / 2**20:,.0f} MiB of text, {meta['bytes_compressed'] / 2**20:,.1f} MiB gzip"
        )
    lines += [
        "",
        f"{cores} cores{', one kept busy by a spinning process' if busy else ''}. ours/reference: the"
        " reference's wall time over the measurement's (its speed as a fraction of the reference's),"
        " same file, same run.",
        "",
        "| measurement | events | wall s | events/s | ours/reference | `ingest` s | store writes s | reader waits s "
        "| CPU s (child) | server CPU s | peak RSS MiB | RSS before MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = {
        "reference": 0,
        "ceiling": 1,
        "ceiling-gzip": 2,
        "read": 3,
        "sqlite": 4,
        "sqlite-serial": 5,
        "mongo": 6,
    }
    for m in sorted(measurements, key=lambda m: (-m.events, order[m.what])):
        base = references.get(m.events)
        ratio = f"{base.wall_seconds / m.wall_seconds:.2f}" if base else ""
        lines.append(
            f"| {LABELS[m.what]} | {m.events:,} | {m.wall_seconds:,.1f} | {m.events_per_second:,.0f} | {ratio} "
            f"| {_f(m.ingest_seconds)} | {_f(m.insert_seconds)} | {_f(m.writer_wait_seconds)} | {_f(m.cpu_seconds)} "
            f"| {_f(m.server_cpu_seconds)} "
            f"| {_peak(m)} | {m.rss_before_mib:,.1f} |"
        )
    growth = []
    for what in ("reference", "sqlite", "mongo"):
        sizes = sorted({m.events for m in measurements if m.what == what})
        if len(sizes) >= 2:
            small, large = (
                next(m for m in measurements if m.what == what and m.events == n)
                for n in sizes[:: len(sizes) - 1]
            )
            growth.append(
                f"| {LABELS[what]} | {small.events:,} | {_peak(small)} | {_split(small)} "
                f"| {large.events:,} | {_peak(large)} | {_split(large)} |"
            )
    if growth:
        lines += [
            "",
            "Peak RSS as the file grows (and what the RSS is made of at the end of the run: anonymous"
            " memory + file-backed pages, such as the memory-mapped GeoIP database and the libraries):",
            "",
            "| measurement | events | peak RSS MiB | at end: anon + file MiB | events | peak RSS MiB "
            "| at end: anon + file MiB |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *growth,
        ]
    return "\n".join(lines)


def _code_version() -> dict[str, Any]:
    """The commit measured, and the files changed since (others may be editing the tree)."""

    def git(*command: str) -> str:
        done = subprocess.run(["git", *command], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "changed": git("--no-optional-locks", "status", "--porcelain").splitlines(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_clickstream", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,mongo", help="comma-separated: sqlite, mongo")
    parser.add_argument("--mongo-url", default=DEFAULT_MONGO_URL)
    parser.add_argument("--mongo-events", type=int, default=None, help="size for mongo (default: --events)")
    parser.add_argument(
        "--geoip", default=None, help="a .mmdb file, or none (default: the GeoLite2 City package)"
    )
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; the median is reported")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--users", type=int, default=DEFAULT_USERS)
    parser.add_argument("--courses", type=int, default=DEFAULT_COURSES)
    parser.add_argument("--bad-every", type=int, default=DEFAULT_BAD_EVERY)
    parser.add_argument("--date", default=DEFAULT_DATE)
    parser.add_argument("--no-quarter", action="store_true", help="skip the quarter-size runs")
    parser.add_argument("--profile", action="store_true", help="also profile a SQLite ingest")
    parser.add_argument(
        "--serial",
        action="store_true",
        help="also a SQLite ingest whose writes run in line, to time the store and the reading side apart",
    )
    parser.add_argument("--profile-events", type=int, default=100_000)
    parser.add_argument(
        "--only-profile", action="store_true", help="the profile only (SQLite), no other measurement"
    )
    parser.add_argument(
        "--busy-core",
        action="store_true",
        help="keep one other core busy (a spinning process) while measuring",
    )
    args = parser.parse_args(argv)

    if args.only_profile:
        args.profile = True
        args.backends = "sqlite"  # the profile is of the SQLite ingest
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or set(backends) - {"sqlite", "mongo"}:
        parser.error(f"--backends: expected sqlite and/or mongo, got {args.backends!r}")
    if args.events < 4 or args.repeat < 1 or (args.mongo_events is not None and args.mongo_events < 4):
        parser.error("--events and --mongo-events must be at least 4, --repeat at least 1")
    work = args.work_dir.resolve()
    if work == REPO or REPO in work.parents:
        parser.error(f"--work-dir {work} is inside the repository; use a directory under /tmp")
    work.mkdir(parents=True, exist_ok=True)
    if args.geoip is None:  # located without importing anything into this (small) process
        found = importlib.util.find_spec("_maxminddb_geolite2")
        if found is None or not found.origin:
            parser.error("the maxminddb-geolite2 package is not installed: pass --geoip PATH or none")
        geoip = str(Path(found.origin).parent / "GeoLite2-City.mmdb")
    else:
        geoip = "" if args.geoip.lower() == "none" else str(Path(args.geoip).resolve())
    server = check_server(args.mongo_url) if "mongo" in backends else None

    def sizes(full: int) -> list[int]:
        return [full] if args.no_quarter else [full, full // 4]

    plan: list[tuple[str, int]] = []  # (backend, events)
    if not args.only_profile:
        for backend in backends:
            full = args.mongo_events if backend == "mongo" and args.mongo_events else args.events
            plan += [(backend, n) for n in sizes(full)]
    needed = sorted({n for _, n in plan} | ({args.profile_events} if args.profile else set()), reverse=True)
    files: dict[int, Path] = {}
    metas: dict[int, dict[str, Any]] = {}
    for n in needed:
        files[n], metas[n] = log_file(work, n, args)

    for path in files.values():  # into the page cache: every measurement reads a warm file
        with path.open("rb") as stream:
            while stream.read(1 << 20):
                pass
    code_at_start = _code_version()
    measurements: list[Measurement] = []
    ingests = Ingests(args, work, geoip)
    profile_result: dict[str, Any] | None = None
    spinner = start_spinner() if args.busy_core else None
    try:
        for n in sorted({n for _, n in plan}, reverse=True):
            for mode in CEILINGS:
                m = measure_ceiling(mode, files[n], n, args.repeat)
                measurements.append(m)
                print(f"{mode:>13} {n:>9,}: {m.wall_seconds:8.1f} s {m.events_per_second:10,.0f} events/s "
                      f"peak RSS {m.peak_rss_mib:,.1f} MiB", flush=True)  # fmt: skip
        for backend, n in plan:
            m = ingests.measure(backend, files[n], n, args.repeat)
            measurements.append(m)
            ref = next(r for r in measurements if r.what == "reference" and r.events == n)
            print(f"{backend:>13} {n:>9,}: {m.wall_seconds:8.1f} s {m.events_per_second:10,.0f} events/s "
                  f"peak RSS {m.peak_rss_mib:,.1f} MiB (ingest {m.ingest_seconds:.1f} s, "
                  f"store writes {m.insert_seconds:.1f} s); ours/reference {ref.wall_seconds / m.wall_seconds:.2f}",
                  flush=True)  # fmt: skip
        if args.serial and "sqlite" in backends:
            n = args.events
            m = ingests.measure("sqlite", files[n], n, args.repeat, serial=True)
            measurements.append(m)
            writes, ingest = m.insert_seconds or 0.0, m.ingest_seconds or 0.0
            print(f"{'sqlite serial':>13} {n:>9,}: {m.wall_seconds:8.1f} s; store writes alone "
                  f"{writes:.1f} s, reading side alone {ingest - writes:.1f} s", flush=True)  # fmt: skip
        if args.profile:
            profile_result = profile(ingests, files[args.profile_events], args.profile_events, work)
            print(f"profile: {work / 'profile-sqlite.txt'}", flush=True)
    finally:
        spinner_cpu = stop_spinner(spinner)
        left = [db for db in ingests.mongo_databases if db not in ingests.dropped]
        if left:  # what a failed drop left behind
            drop_documents(args.mongo_url, left)

    parent_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for m in measurements:
        if m.vm_hwm_mib is not None and m.peak_rss_mib > m.vm_hwm_mib + 2:
            print(f"warning: {m.what} at {m.events:,}: getrusage peak {m.peak_rss_mib:.1f} MiB > the child's own "
                  f"VmHWM {m.vm_hwm_mib:.1f} MiB (inherited from this process, {parent_rss_mib:.1f} MiB)")  # fmt: skip
    cores = os.cpu_count() or 1
    table = markdown(
        measurements, {n: metas[n] for n in {m.events for m in measurements}}, cores, args.busy_core
    )
    if spinner_cpu is not None:
        table += f"\n\nThe spinning process used {spinner_cpu:,.1f} s of CPU over the run."
    print()
    print(table)
    if profile_result:
        print()
        print(profile_result["markdown"])
    references = {m.events: m.wall_seconds for m in measurements if m.what == "reference"}
    results = {
        "events": args.events,
        "mongo_events": args.mongo_events,
        "backends": backends,
        "repeat": args.repeat,
        "busy_core": args.busy_core,
        "spinner_cpu_seconds": spinner_cpu,
        "load_average_at_end": os.getloadavg(),
        "geoip": geoip,
        "machine": {
            "cores": cores,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "mongo_server": server,
            "benchmark_process_peak_rss_mib": parent_rss_mib,
        },
        "code": {"at_start": code_at_start, "at_end": _code_version()},
        "files": {str(n): {"path": str(files[n]), **metas[n]} for n in files},
        "measurements": [
            dict(
                asdict(m),
                events_per_second=m.events_per_second,
                ours_over_reference=(references[m.events] / m.wall_seconds)
                if m.events in references
                else None,
            )
            for m in measurements
        ],
        "dropped_databases": ingests.dropped,
        "profile": profile_result,
        "markdown": table,
    }
    (work / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults: {work / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
