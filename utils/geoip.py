"""Country (and Australian state) of an IP address, from a MaxMind GeoIP2/GeoLite2 database.

Rules of the contract: `""` for an empty IP or `::1`; private, loopback, link-local, multicast and
reserved addresses are not looked up (no country); an address the database does not know has no
country. A small LRU cache in front of the reader makes repeated addresses (most of a log) cheap.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Any

import maxminddb

NO_ANSWER = None


class GeoIP:
    """Look-ups in one `.mmdb` file (Country or City database)."""

    def __init__(self, path: Path, cache_size: int = 65536) -> None:
        self.path = path
        self._reader = maxminddb.open_database(str(path), maxminddb.MODE_MMAP_EXT)
        meta = self._reader.metadata()
        self.database_type = str(meta.database_type)
        self.build_epoch = int(meta.build_epoch)
        self.is_city = "City" in self.database_type
        self.lookup = lru_cache(maxsize=cache_size)(self._lookup)

    def _lookup(self, ip: str) -> tuple[str, str | None] | None:
        """(country ISO code, AU subdivision code or None); "" for no IP; None for no answer."""
        if ip == "" or ip == "::1":
            return ("", None)
        try:
            address = ipaddress.ip_address(ip.strip())
        except ValueError:
            return None
        if not address.is_global:
            return None
        try:
            record: Any = self._reader.get(address)
        except ValueError:
            return None
        if not record:
            return None
        country = (record.get("country") or record.get("registered_country") or {}).get("iso_code")
        if not country:
            return None
        subdivision = None
        if country == "AU" and self.is_city:
            subdivisions = record.get("subdivisions") or []
            if subdivisions:
                subdivision = subdivisions[0].get("iso_code")
        return (str(country), subdivision)

    def close(self) -> None:
        self._reader.close()
