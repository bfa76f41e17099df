#!/usr/bin/env python3
"""Builds an encrypted edX delivery from a plain data directory, to try the Deliveries service.

  python scripts/make_delivery.py examples/data /tmp/incoming --recipient you@example.org

writes `/tmp/incoming/uqx-2015-06-07.zip` (the weekly dump, `.gpg` members in one top folder) and
`/tmp/incoming/uqx-edx-events-YYYY-MM-DD.log.gz.gpg` (one per daily log), encrypted to the
recipient's public key in GNUPG_HOME (or ~/.gnupg). Then run the daemon with
INCOMING_PATHS=/tmp/incoming and GNUPG_HOME holding the matching secret key.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from services.deliveries.build import build_daily, build_weekly  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "data", type=Path, help="a data directory with database_state/latest, clickstream_logs/latest"
    )
    parser.add_argument("out", type=Path, help="where the delivery is written (an incoming directory)")
    parser.add_argument("--recipient", required=True, help="the key (e-mail or id) to encrypt to")
    parser.add_argument("--homedir", default="", help="GnuPG home holding the recipient's public key")
    parser.add_argument("--org", default="uqx", help="the org as edX writes it in the names (default uqx)")
    parser.add_argument("--weekly-only", action="store_true", help="only the weekly zip")
    parser.add_argument("--daily-only", action="store_true", help="only the daily logs")
    args = parser.parse_args(argv)
    if not args.daily_only:
        print(build_weekly(args.data, args.out, args.recipient, args.homedir, args.org))
    if not args.weekly_only:
        for path in build_daily(args.data, args.out, args.recipient, args.homedir):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
