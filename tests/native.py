"""The compiled module `eventscan` (native/eventscan) for the tests of what it does: required where
scripts/test.sh built it (it sets OPTIMUS_REQUIRE_NATIVE), else the test is skipped."""

from __future__ import annotations

import os
from typing import Any

import pytest


def eventscan_module() -> Any:
    try:
        import eventscan  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        if os.environ.get("OPTIMUS_REQUIRE_NATIVE") == "1":
            raise
        pytest.skip("native/eventscan is not built")
    return eventscan
