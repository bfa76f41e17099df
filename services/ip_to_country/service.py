"""IPToCountry: backfills `country` (and `subdivision`) on events stored without a GeoIP look-up.

Documents looked up while ingesting carry `geoip` (the build time of the database used). This
service looks up the ones without it, or with an older database than the configured one, and marks
each with the current build, so it always ends and never repeats work: in one pass over the
collection, its updates written in batches as it goes (a new GeoIP database makes every event due:
a query per batch would read the collection again from its start each time). It runs only when
GEOIP_DATABASE is configured, and records each run as a `save_run` row.
"""

from __future__ import annotations

from typing import Any

from base_service import SCAN_RECHECK_SECONDS, Context, Service
from services.clickstream.backfill import set_fields_in_one_pass
from services.clickstream.service import COLLECTION, LOGS, open_geoip
from utils.geoip import GeoIP

BATCH = 5000


class IPToCountryService(Service):
    name = "IPToCountry"
    derived = True
    depends_on = ("Clickstream",)
    runs_on_new_input = False  # only when due(): events left to backfill
    due_recheck_seconds = SCAN_RECHECK_SECONDS  # due() reads every event

    def __init__(self) -> None:
        self.geoip: GeoIP | None = None

    def start(self, ctx: Context) -> None:
        self.geoip = open_geoip(ctx)

    def status_extra(self, ctx: Context) -> dict[str, object]:
        return {"country": "off (no GEOIP_DATABASE)" if self.geoip is None else "on"}

    def _missing(self) -> dict[str, Any]:
        assert self.geoip is not None
        return {"$or": [{"geoip": {"$exists": False}}, {"geoip": {"$lt": self.geoip.build_epoch}}]}

    def due(self, ctx: Context) -> bool:
        if self.geoip is None:
            return False
        store = ctx.documents()
        return store.find_one(ctx.settings.document_db(LOGS), COLLECTION, self._missing()) is not None

    def run(self, ctx: Context) -> None:
        geoip = self.geoip
        if geoip is None:
            return
        build = geoip.build_epoch

        def fields_of(doc: dict[str, Any]) -> dict[str, Any]:
            ip = doc.get("ip")
            fields: dict[str, Any] = {"geoip": build}
            found = geoip.lookup(ip) if isinstance(ip, str) else None
            if found is not None:
                fields["country"] = found[0]
                if found[1]:
                    fields["subdivision"] = found[1]
            return fields

        total = set_fields_in_one_pass(ctx, self._missing(), {"ip": 1}, fields_of, BATCH)
        ctx.log.info("country looked up for %d event(s)", total)
