"""Daily loads into a growing embedded store, with each `_id` form of the Clickstream loader.

    python -m bench.bench_store_growth [--days 5] [--events 1000000] [--work-dir /tmp/...]

A daemon loads one day of tracking logs after another into the same collection. With ids made of
the line's digest alone, each day's events go to random places of an `_id` index that holds every
day before it, so each commit rewrites pages all over it; with time-first ids
(`services/clickstream/ids.py`) they go to the day's own end of it. This loads `--days` days of
`--events` synthetic events each (about 1.1 KB, in random time order within their day, as the
Hadoop reducer writes the files) through the store as the loader does (`insert_encoded` in 8 MiB
batches inside `grouped_writes`, the collection's `source_file` index), once with each form into
a fresh store, and reports each day's load time and the bytes the process wrote (`/proc/self/io`).
Only the store's calls are timed, not the making of the lines. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from services.clickstream.ids import content_id
from services.clickstream.service import BATCH_BYTES, COLLECTION, OWN_INDEXES
from stores.documents.sqlite import SqliteDocumentStore

FIRST_DAY = datetime(2024, 1, 1)
DB = "growth_logs"
PAD = "x" * 900  # the rest of a typical event: page, agent, event payload


def day_batches(day: int, events: int, time_first: bool, seed: int) -> Iterator[list[tuple[str, str]]]:
    """(id key, stored text) rows of one day's events, in batches of at most BATCH_BYTES."""
    rng = random.Random(seed * 1_000_003 + day)
    start = FIRST_DAY + timedelta(days=day)
    batch: list[tuple[str, str]] = []
    size = 0
    for n in range(events):
        when = start + timedelta(microseconds=rng.randrange(86_400_000_000))
        line = json.dumps(
            {
                "username": f"user{rng.randrange(50_000)}",
                "time": when.isoformat() + "+00:00",
                "n": n,
                "pad": PAD,
            }
        )
        oid = content_id(line.encode(), when, time_first).hex()
        text = (
            f'{{"_id":{{"$oid":"{oid}"}},"time_date":{{"$date":"{when.isoformat(timespec="milliseconds")}Z"}},'
            f'"source_file":"/data/clickstream_logs/{start:%Y-%m-%d}/benchx-edx-events-{start:%Y-%m-%d}.log.gz",'
            f'"source_line":{n + 1},{line[1:]}'
        )
        batch.append(("o" + oid, text))
        size += len(text)
        if size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def written_bytes() -> int:
    fields = Path("/proc/self/io").read_text().split()
    return int(fields[fields.index("write_bytes:") + 1])


def load_days(root: Path, days: int, events: int, time_first: bool, seed: int) -> list[tuple[float, int]]:
    """(seconds, bytes written) of each day's load into one fresh store."""
    store = SqliteDocumentStore(root)
    try:
        for keys in OWN_INDEXES:
            store.create_index(DB, COLLECTION, list(keys))
        out = []
        for day in range(days):
            seconds, before = 0.0, written_bytes()
            with store.grouped_writes(DB):
                for batch in day_batches(day, events, time_first, seed):
                    began = time.perf_counter()
                    result = store.insert_encoded(DB, COLLECTION, batch)
                    seconds += time.perf_counter() - began
                    assert result.duplicates == 0, result
                began = time.perf_counter()
            seconds += time.perf_counter() - began  # the last group commit, at the block's end
            out.append((seconds, written_bytes() - before))
            print(f"  {'time-first' if time_first else 'digest'} day {day + 1}: {seconds:.1f} s", flush=True)
        return out
    finally:
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--events", type=int, default=1_000_000, help="events per day")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a new directory in /tmp")
    args = parser.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-store-growth-"))
    results = {}
    for time_first in (False, True):
        root = work / ("time-first" if time_first else "digest")
        shutil.rmtree(root, ignore_errors=True)
        try:
            results[time_first] = load_days(root, args.days, args.events, time_first, args.seed)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print(
        f"{args.events:,} events a day; store's calls only; written: bytes the process wrote (WAL and checkpoints)"
    )
    print()
    print(
        "| day | stored before | digest ids s | time-first ids s | time-first/digest | digest written GiB | time-first written GiB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for day in range(args.days):
        (d_s, d_b), (t_s, t_b) = results[False][day], results[True][day]
        print(
            f"| {day + 1} | {day * args.events:,} | {d_s:.1f} | {t_s:.1f} | {t_s / d_s:.2f} "
            f"| {d_b / 2**30:.2f} | {t_b / 2**30:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
