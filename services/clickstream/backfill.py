"""One pass of a backfill over the stored tracking-log events (TimeFinder, IPToCountry)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from base_service import Context
from services.clickstream.service import COLLECTION, LOGS
from stores.documents.base import Document


def set_fields_in_one_pass(
    ctx: Context,
    filter: Mapping[str, Any],
    projection: Mapping[str, int],
    fields_of: Callable[[Document], dict[str, Any]],
    batch: int,
) -> int:
    """Set `fields_of(event)` on every event that matches `filter`; return how many were updated.

    The collection is read once, in one streamed `find`, and the updates are written in batches of
    `batch` as the pass goes (a query per batch would read the collection again from its start each
    time: quadratic in its size). An event updated before the pass reaches it no longer matches; one
    met twice (MongoDB may) gets the same fields again. Stops after a batch once the daemon is
    stopping: the next run goes on."""
    store = ctx.documents()
    database = ctx.settings.document_db(LOGS)
    total = 0
    updates: list[tuple[Any, dict[str, Any]]] = []
    for doc in store.find(database, COLLECTION, dict(filter), projection=dict(projection)):
        updates.append((doc["_id"], fields_of(doc)))
        if len(updates) >= batch:
            total += store.update_fields(database, COLLECTION, updates)
            updates = []
            if ctx.should_stop():
                return total
    return total + store.update_fields(database, COLLECTION, updates)
