"""TimeFinder: backfills `time_date` on tracking-log events stored without it.

The clickstream service sets `time_date` while ingesting, so this only finds documents loaded by an
older version or by other tools. It works in batches of ids (each batch's documents stop matching
once updated, so it always ends), and records each run as a `save_run` row.
"""

from __future__ import annotations

from base_service import SCAN_RECHECK_SECONDS, Context, Service
from services.clickstream.service import COLLECTION, LOGS
from utils.timeparse import TimeOutOfRange, parse_event_time

BATCH = 5000
MISSING = {"time_date": {"$exists": False}}


class TimeFinderService(Service):
    name = "TimeFinder"
    derived = True
    depends_on = ("Clickstream",)
    runs_on_new_input = False  # only when due(): events left to backfill
    due_recheck_seconds = SCAN_RECHECK_SECONDS  # due() reads every event

    def due(self, ctx: Context) -> bool:
        store = ctx.documents()
        return store.find_one(ctx.settings.document_db(LOGS), COLLECTION, MISSING) is not None

    def run(self, ctx: Context) -> None:
        store = ctx.documents()
        database = ctx.settings.document_db(LOGS)
        total = 0
        while not ctx.should_stop():
            docs = list(store.find(database, COLLECTION, MISSING, projection={"time": 1}, limit=BATCH))
            if not docs:
                break
            updates = [(d["_id"], {"time_date": _utc_or_none(d.get("time"))}) for d in docs]
            store.update_fields(database, COLLECTION, updates)
            total += len(updates)
        ctx.log.info("time_date set on %d event(s)", total)


def _utc_or_none(value: object) -> object:
    """The event's UTC time; None (stored as null, so the event is not looked at again) if it has
    none or one out of range."""
    try:
        return parse_event_time(value)
    except TimeOutOfRange:
        return None
