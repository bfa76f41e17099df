"""Country (and Australian state) of an IP address, from a MaxMind GeoIP2/GeoLite2 database.

Rules of the contract: `""` for an empty IP or `::1`; private, loopback, link-local and reserved
addresses (those `ipaddress` does not call global) are not looked up (no country); an address the
database does not know has no country. A small LRU cache in front of the reader makes repeated addresses (most of a log) cheap.
Behind it, each answer is kept for the database's whole network that holds the address (every
address of a network of the database's search tree has its record), so a new address in a network
seen before costs no decoding of the record. Where the compiled module `eventscan` is installed
(native/eventscan), its `GeoReader` looks up a new network and reads of its record only the codes
the answer takes (~3 us, against ~20 us for the Python reader's decoding of a whole City record);
the Python reader answers wherever it cannot tell.
"""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache
from pathlib import Path
from typing import Any

import maxminddb

from utils.native import native

NO_ANSWER = None
Answer = tuple[str, str | None] | None
_UNKNOWN = ("?", None)  # not in the network cache (an answer is never this)

# The first bytes of the IPv4 addresses that `ipaddress` may not call global: those of its private
# and reserved networks (0/8, 10/8, 127/8, 169.254/16, 172.16/12, 192.0.0/24, 192.0.2/24,
# 192.168/16, 198.18/15, 198.51.100/24, 203.0.113/24, 240/4, 255.255.255.255) and of the shared
# address space 100.64/10; 224-239 (multicast, which it calls global) too, to be safe. Any other
# IPv4 address is global: told without `is_global`, which walks those networks (~9 us).
# `tests/test_geoip.py` checks this set against the networks of the running Python's `ipaddress`.
MAYBE_NOT_GLOBAL_V4 = frozenset((0, 10, 100, 127, 169, 172, 192, 198, 203, *range(224, 256)))


def _native_reader(path: Path, is_city: bool) -> Any:
    """`eventscan.GeoReader` of the file, where the module is built and not turned off
    (`utils/native.py`)."""
    reader_class = native("GeoReader")
    if reader_class is None:
        return None
    try:
        return reader_class(str(path), is_city)
    except (OSError, ValueError):  # a file it cannot read (or name) that the Python reader may
        return None


class GeoIP:
    """Look-ups in one `.mmdb` file (Country or City database)."""

    def __init__(self, path: Path, cache_size: int = 65536) -> None:
        self.path = path
        self._reader = maxminddb.open_database(str(path), maxminddb.MODE_MMAP_EXT)
        meta = self._reader.metadata()
        self.database_type = str(meta.database_type)
        self.build_epoch = int(meta.build_epoch)
        self.is_city = "City" in self.database_type
        self._native = _native_reader(path, self.is_city)
        self.lookup = lru_cache(maxsize=cache_size)(self._lookup)
        # version -> prefix length -> the network's leading bits -> its answer
        self._networks: dict[int, dict[int, dict[int, Answer]]] = {4: {}, 6: {}}
        self._networks_kept = 0
        self._networks_max = cache_size or 65536

    def _lookup(self, ip: str) -> Answer:
        """(country ISO code, AU subdivision code or None); "" for no IP; None for no answer."""
        if ip == "" or ip == "::1":
            return ("", None)
        text = ip.strip()
        address: ipaddress.IPv4Address | ipaddress.IPv6Address
        try:
            # A dotted quad as `ipaddress` reads one (four decimal octets up to 255, no leading
            # zero, ASCII only), in a tenth of its time; anything else (IPv6, junk) goes to it.
            number, version = int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big"), 4
            address = ipaddress.IPv4Address(number)
        except (OSError, ValueError):  # ValueError: a NUL in the text
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                return None
            number, version = int(address), address.version
        if (version == 6 or number >> 24 in MAYBE_NOT_GLOBAL_V4) and not address.is_global:
            return None
        bits = 32 if version == 4 else 128
        networks = self._networks[version]
        for length, answers in networks.items():
            known = answers.get(number >> (bits - length), _UNKNOWN)
            if known is not _UNKNOWN:
                return known
        found = self._native.find(address.packed) if self._native is not None else None
        if found is not None:
            answer, length = found
        else:
            try:
                record, length = self._reader.get_with_prefix_len(address)
            except ValueError:
                return None
            answer = self._answer(record)
        if 0 <= length <= bits:
            if self._networks_kept >= self._networks_max:  # bounded: start again
                for each in self._networks.values():
                    each.clear()
                self._networks_kept = 0
            networks.setdefault(length, {})[number >> (bits - length)] = answer
            self._networks_kept += 1
        return answer

    def _answer(self, record: Any) -> Answer:
        """The answer of a database record (None: no record)."""
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
        self._native = None  # unmapped once no look-up holds it
