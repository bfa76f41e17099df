"""GeoIP look-ups: the shortcuts (no `is_global` walk for most IPv4 addresses, answers kept per
network of the database) give exactly the answers of the plain look-up of each address."""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path
from typing import Any

import maxminddb
import netaddr
from mmdb_writer import MMDBWriter

from tests.native import eventscan_module
from utils.geoip import MAYBE_NOT_GLOBAL_V4, GeoIP


def geolite2_city() -> Path:
    import _maxminddb_geolite2

    return Path(_maxminddb_geolite2.__file__).parent / "GeoLite2-City.mmdb"


def plain_answer(reader: Any, ip: str, is_city: bool) -> tuple[str, str | None] | None:
    """The contract's rules, with `is_global` asked of every address and each record decoded."""
    if ip in ("", "::1"):
        return ("", None)
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if not address.is_global:
        return None
    record = reader.get(address)
    if not record:
        return None
    country = (record.get("country") or record.get("registered_country") or {}).get("iso_code")
    if not country:
        return None
    subdivision = None
    if country == "AU" and is_city:
        subdivision = ((record.get("subdivisions") or [{}])[0]).get("iso_code")
    return (country, subdivision)


def _special_v4_networks() -> list[ipaddress.IPv4Network]:
    """The networks the running Python's `ipaddress` does not call global (its own lists)."""
    constants: Any = ipaddress._IPv4Constants  # type: ignore[attr-defined]
    return [*constants._private_networks, constants._public_network]


def test_every_ipv4_address_python_may_not_call_global_starts_with_a_byte_that_is_checked():
    for network in _special_v4_networks():
        first, last = int(network.network_address) >> 24, int(network.broadcast_address) >> 24
        assert set(range(first, last + 1)) <= MAYBE_NOT_GLOBAL_V4, network
    rng = random.Random(7)
    for _ in range(200_000):
        address = ipaddress.IPv4Address(rng.getrandbits(32))
        if int(address) >> 24 not in MAYBE_NOT_GLOBAL_V4:
            assert address.is_global, address


def _sample_addresses(rng: random.Random) -> list[str]:
    """Addresses as a log has them: many in the same networks, edges of the special ranges, IPv6,
    IPv4-mapped IPv6, and text that is no address."""
    ips: list[str] = []
    for _ in range(1500):
        a, b, c = rng.randrange(1, 224), rng.randrange(256), rng.randrange(256)
        for _ in range(rng.choice((1, 3, 8))):
            ips.append(f"{a}.{b}.{(c + rng.randrange(4)) % 256}.{rng.randrange(256)}")
    for network in _special_v4_networks():
        for address in (network.network_address, network.broadcast_address):
            for step in (-1, 0, 1):
                if 0 <= int(address) + step < 2**32:
                    ips.append(str(ipaddress.IPv4Address(int(address) + step)))
    for prefix in ("2a00:1450", "2001:db8", "2400:cb00", "2607:f8b0", "fe80:0", "fc00:0", "2002:c000"):
        for _ in range(40):
            ips.append(f"{prefix}:" + ":".join(f"{rng.getrandbits(16):x}" for _ in range(6)))
    ips += ["::ffff:8.8.8.8", "::ffff:10.0.0.1", "", "::1", " 8.8.4.4 ", "not an ip", "1.2.3", "256.1.1.1"]
    # what the dotted-quad fast path must refuse as `ipaddress` does: leading zeros, other digits,
    # short and long forms, hex, signs, inner spaces, a trailing dot
    ips += ["08.8.8.8", "8.8.8.08", "0.0.0.0", "\u0668.8.8.8", "8.8.8", "8.8.8.8.8", "0x8.8.8.8", "+8.8.8.8"]
    ips += ["8. 8.8.8", "8.8.8.8.", "1234.1.1.1", "8.8.8.8\n", "\t8.8.8.8", "8.8.8.255", "8.8.8.256"]
    ips += ["8.8.8.8\x00", "\x00", "8.8\x00.8.8"]  # a NUL: inet_pton raises ValueError, not OSError
    rng.shuffle(ips)
    return ips


def test_answers_kept_per_network_are_those_of_the_plain_look_up_of_each_address():
    path = geolite2_city()
    reader = maxminddb.open_database(str(path), maxminddb.MODE_MMAP_EXT)
    geoip = GeoIP(path, cache_size=4096)
    ips = _sample_addresses(random.Random(11))
    try:
        for ip in ips:
            assert geoip.lookup(ip) == plain_answer(reader, ip, True), ip
        assert sum(len(t) for n in geoip._networks.values() for t in n.values()) > 0
        # a small cache starts again when full: still the same answers
        small = GeoIP(path, cache_size=50)
        for ip in ips:
            assert small._lookup(ip) == plain_answer(reader, ip, True), ip
        small.close()
    finally:
        geoip.close()
        reader.close()


def test_a_network_kept_does_not_answer_for_its_neighbours(tmp_path):
    """Two adjacent networks with different countries, inside a larger one with a third."""
    writer = MMDBWriter(ip_version=6, database_type="GeoIP2-Country", ipv4_compatible=True)
    writer.insert_network(netaddr.IPSet(["1.2.0.0/16"]), {"country": {"iso_code": "NZ"}})
    writer.insert_network(netaddr.IPSet(["1.2.3.0/25"]), {"country": {"iso_code": "AU"}})
    writer.insert_network(netaddr.IPSet(["1.2.3.128/25"]), {"country": {"iso_code": "FR"}})
    path = tmp_path / "nested.mmdb"
    writer.to_db_file(str(path))
    geoip = GeoIP(path)
    expected = {
        "1.2.3.1": "AU",
        "1.2.3.127": "AU",
        "1.2.3.128": "FR",
        "1.2.3.255": "FR",
        "1.2.4.1": "NZ",
        "1.2.2.255": "NZ",
        "1.3.0.1": None,
        "1.2.3.2": "AU",
        "1.2.9.9": "NZ",
        "1.3.9.9": None,
    }
    reader = maxminddb.open_database(str(path), maxminddb.MODE_MMAP_EXT)
    try:
        for ip, country in expected.items():
            answer = geoip.lookup(ip)
            assert (answer[0] if answer else None) == country, ip
        # the same addresses written as IPv6 (IPv4-compatible, IPv4-mapped): another table, the
        # plain look-up's answers
        for ip in expected:
            for written in (f"::{ip}", f"::ffff:{ip}"):
                assert geoip.lookup(written) == plain_answer(reader, written, False), written
        assert geoip.lookup("::1.2.3.1") == ("AU", None)  # Python calls it global: looked up
    finally:
        geoip.close()
        reader.close()


def _python_find(reader: Any, address: Any, is_city: bool) -> tuple[Any, int] | None:
    """What `GeoIP` takes of the Python reader for an address: (answer, prefix length)."""
    try:
        record, length = reader.get_with_prefix_len(address)
    except ValueError:
        return None
    geoip = GeoIP.__new__(GeoIP)
    geoip.is_city = is_city
    return geoip._answer(record), length


def test_the_compiled_reader_answers_as_the_python_reader(tmp_path):
    """`eventscan.GeoReader.find` gives the Python reader's answer and prefix length, or None
    (then `GeoIP` asks the Python reader): on GeoLite2 City, and on records of every shape the
    answer's rules tell apart."""
    eventscan = eventscan_module()
    writer = MMDBWriter(ip_version=6, database_type="GeoIP2-City", ipv4_compatible=True)
    records: list[dict[str, Any]] = [
        {"country": {"iso_code": "AU"}, "subdivisions": [{"iso_code": "QLD"}, {"iso_code": "X"}]},
        {"country": {"iso_code": "AU"}, "subdivisions": []},
        {"country": {"iso_code": "AU"}, "subdivisions": [{"names": {"en": "Queensland"}}]},
        {"country": {"iso_code": "AU"}, "subdivisions": [{"iso_code": ""}]},
        {"country": {}, "registered_country": {"iso_code": "NZ"}},
        {"country": {"names": {"en": "France"}}, "registered_country": {"iso_code": "NZ"}},
        {"registered_country": {"iso_code": "FR", "geoname_id": 3017382}},
        {"country": {"iso_code": ""}},
        {"city": {"names": {"en": "Brisbane"}}},
        {"country": {"iso_code": "DE", "names": {"de": "Deutschland", "en": "Germany"}}, "x": [1, 2]},
    ]
    for index, record in enumerate(records):
        writer.insert_network(netaddr.IPSet([f"1.2.{index}.0/24"]), record)
    writer.insert_network(netaddr.IPSet(["2001:4860::/32"]), {"country": {"iso_code": "US"}})
    path = tmp_path / "shapes.mmdb"
    writer.to_db_file(str(path))
    cases = [
        (path, [f"1.2.{index}.{host}" for index in range(len(records) + 1) for host in (0, 200)]),
        (path, ["2001:4860::1", "2001:4861::1", "::ffff:1.2.0.9", "::1.2.5.1", "9.9.9.9"]),
        (geolite2_city(), _sample_addresses(random.Random(3))),
    ]
    for db, ips in cases:
        reader = maxminddb.open_database(str(db), maxminddb.MODE_MMAP_EXT)
        for is_city in (True, False):
            native = eventscan.GeoReader(str(db), is_city)
            answered = 0
            for ip in ips:
                try:
                    address = ipaddress.ip_address(ip)
                except ValueError:
                    continue
                found = native.find(address.packed)
                if found is not None:
                    answered += 1
                    assert found == _python_find(reader, address, is_city), ip
            assert answered > len(ips) // 2
        reader.close()
    # the shapes' answers, as the rules have them
    native = eventscan.GeoReader(str(path), True)
    found = [native.find(ipaddress.ip_address(f"1.2.{index}.1").packed) for index in range(len(records))]
    assert [each[0] if each else "left to Python" for each in found] == [
        ("AU", "QLD"),
        ("AU", None),
        ("AU", None),
        ("AU", ""),
        "left to Python",  # this writer writes the empty map as an empty list: not a map
        None,
        ("FR", None),
        None,
        None,
        ("DE", None),
    ]
    assert native.find(b"\x01\x02") is None


def test_geoip_answers_alike_with_and_without_the_compiled_reader(monkeypatch):
    eventscan_module()
    path = geolite2_city()
    ips = _sample_addresses(random.Random(5))
    monkeypatch.setenv("OPTIMUS_NATIVE_SCAN", "1")  # whatever the run's own setting
    with_native = GeoIP(path)
    assert with_native._native is not None
    monkeypatch.setenv("OPTIMUS_NATIVE_SCAN", "0")
    without = GeoIP(path)
    assert without._native is None
    try:
        assert [with_native.lookup(ip) for ip in ips] == [without.lookup(ip) for ip in ips]
    finally:
        with_native.close()
        without.close()


def test_a_file_the_compiled_reader_refuses_leaves_the_python_reader(tmp_path, monkeypatch):
    eventscan = eventscan_module()

    class Refusing:
        def __init__(self, path: str, is_city: bool) -> None:
            raise OSError("refused")

    monkeypatch.setattr(eventscan, "GeoReader", Refusing)
    geoip = GeoIP(geolite2_city())
    try:
        assert geoip._native is None and geoip.lookup("1.1.1.1") == ("AU", "VIC")
    finally:
        geoip.close()
