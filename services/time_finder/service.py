"""TimeFinder: backfills `time_date` on tracking-log events stored without it.

The clickstream service sets `time_date` while ingesting, so this only finds documents loaded by an
older version or by other tools. It reads them in one pass over the collection and writes their
updates in batches as it goes (each document stops matching once updated, so it always ends; a
query per batch would read the collection again from its start each time), and records each run as
a `save_run` row.
"""

from __future__ import annotations

from base_service import SCAN_RECHECK_SECONDS, Context, Service
from services.clickstream.backfill import set_fields_in_one_pass
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
        total = set_fields_in_one_pass(
            ctx, MISSING, {"time": 1}, lambda doc: {"time_date": _utc_or_none(doc.get("time"))}, BATCH
        )
        ctx.log.info("time_date set on %d event(s)", total)


def _utc_or_none(value: object) -> object:
    """The event's UTC time; None (stored as null, so the event is not looked at again) if it has
    none or one out of range."""
    try:
        return parse_event_time(value)
    except TimeOutOfRange:
        return None
