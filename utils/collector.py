"""The garbage collector's pace for a process that parses millions of small documents.

CPython runs a young-generation collection every 700 net container allocations. A tracking-log
ingest allocates some twenty dicts and lists per event, and every collection also walks the
batches in flight (tens of thousands of rows and counts that are not garbage): on the clickstream
path that was about 10 us of CPU per event, a fifth of the reading side (bench/README.md). The
documents hold no reference cycles, so refcounting frees them; collections only need to be rare.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000


def pace_for_bulk_loads() -> None:
    """Collect the young generation every YOUNG_THRESHOLD allocations instead of every 700 (the
    older generations keep their ratios). Cycles are still collected; a pause now handles at most
    that many young objects (a few milliseconds). Idempotent."""
    young, middle, old = gc.get_threshold()
    if young and young < YOUNG_THRESHOLD:
        gc.set_threshold(YOUNG_THRESHOLD, middle, old)
