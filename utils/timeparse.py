"""Parsing the `time` of tracking-log events into naive UTC datetimes.

Seen in real logs (edx-data-package.md 4.5): `2014-05-02T16:01:49.512248+00:00`, no fraction
(`...T03:57:24+00:00`), no zone at all (2012-2013 Open edX: taken as UTC), and `Z`. Python 3.11's
`fromisoformat` reads all of them at C speed; a space instead of `T` and other offsets work too.
"""

from __future__ import annotations

from datetime import UTC, datetime


class TimeOutOfRange(ValueError):
    """A `time` that is a valid time but out of Python's range once made UTC (`0001-01-01T00:00+05:00`)."""


def parse_event_time(value: object) -> datetime | None:
    """The UTC instant of an event's `time` (naive, as stored), or None if it is not a time.

    TimeOutOfRange if it is a time that cannot be made UTC."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    if value.endswith("+00:00"):  # the common case: already UTC, no conversion needed
        try:
            return datetime.fromisoformat(value[:-6])
        except ValueError:
            return _lenient(value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return _lenient(value)
    return _utc(parsed, value)


def _utc(parsed: datetime, value: str) -> datetime:
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            raise TimeOutOfRange(f"time {value[:40]!r} is out of range once made UTC") from None
    return parsed


def _lenient(value: str) -> datetime | None:
    """Odd forms: more than 6 fractional digits, a `+0000` offset without colon."""
    text = value.strip()
    if len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit() and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return _utc(parsed, value)
