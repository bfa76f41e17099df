from datetime import datetime
from typing import Any

def scan(raw: bytes, digest_size: int) -> tuple[dict[str, Any], str, bytes] | None: ...
def prepare(
    lines: list[bytes], first: int, time_first: bool, tail_prefix: str
) -> list[tuple[str, str, str, datetime | None, str, int | None, str, str, str | None] | None]: ...
