"""The compiled module `eventscan` (native/eventscan), where it is built: its parts are looked up
here, and none is given where it is not installed or `OPTIMUS_NATIVE_SCAN=0` turns it off (the
Python code then does the same work)."""

from __future__ import annotations

import os
from typing import Any


def native(name: str) -> Any:
    """A function or class of `eventscan`, if it is installed and not turned off; else None."""
    if os.environ.get("OPTIMUS_NATIVE_SCAN", "1") == "0":
        return None
    try:
        import eventscan  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    return getattr(eventscan, name, None)
