from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

# (key, head, tail, when, course, user_id, username, name, ip)
Ready = tuple[str, str, str, datetime | None, str, int | None, str, str, str | None]
# (course, user_id, username, when, name, country, ip)
Counted = tuple[str, int | None, str, datetime | None, str, str | None, str | None]
# ip -> (place fields' text, country, subdivision)
Places = dict[str | None, tuple[str, str | None, str | None]]

def scan(raw: bytes, digest_size: int) -> tuple[dict[str, Any], str, bytes] | None: ...

class CountedRows:
    """A batch's counted events, kept by the module (the counters' `add_all` reads it)."""

    def __init__(self) -> None: ...
    def append(self, row: Counted) -> None: ...
    def __len__(self) -> int: ...
    def drop_positions(self, positions: set[int]) -> None: ...
    def tuples(self, prefix: str = "") -> list[Counted]: ...

def prepare(
    lines: list[bytes],
    first: int,
    time_first: bool,
    tail_prefix: str,
    places: Places,
    rows: CountedRows | None = None,
    noted: list[int] | None = None,
) -> tuple[list[tuple[str, str]], list[Counted], list[int], int, list[tuple[int, Ready | None]]]: ...

class Bson:
    """A BSON document that pymongo sends as it is (it reads `_type_marker` and `raw`)."""

    _type_marker: int
    def __init__(self, raw: bytes) -> None: ...
    @property
    def raw(self) -> bytes: ...
    def __getitem__(self, key: str) -> Any: ...
    def __contains__(self, key: object) -> bool: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[str]: ...
    def get(self, key: str, default: Any = None) -> Any: ...

def prepare_bson(
    lines: list[bytes],
    first: int,
    time_first: bool,
    source_file: str,
    geoip: int | None,
    places: Places,
    line_numbers: list[int] | None = None,
    rows: CountedRows | None = None,
    noted: list[int] | None = None,
    place: Callable[[str | None], tuple[str, str | None, str | None]] | None = None,
) -> tuple[list[Bson], list[Counted], list[int], int, list[int], list[tuple[int, str | None]]]: ...
def bson_routes(batch: list[Any], lanes: int) -> list[list[int]] | None: ...
def split_lines(data: bytes) -> list[bytes]: ...

class GeoReader:
    def __init__(self, path: str, is_city: bool) -> None: ...
    # ((country, subdivision) or None, prefix length), or None: ask the Python reader
    def find(self, packed: bytes) -> tuple[tuple[str, str | None] | None, int] | None: ...
