#!/usr/bin/env bash
# Sets up and runs the daemon's main job once on the embedded default (SQLite, no server) against
# the sample data package in examples/data. The results land in ./var (or $INGESTOR_STATE_DIR).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
py="$(bash "$here/scripts/setup.sh" runtime)"
cd "$here"
state="${INGESTOR_STATE_DIR:-$here/var}"
set +e
"$py" ingestor.py --set "DATA_PATHS=$here/examples/data" --set "STATE_DIR=$state" --set API_ENABLED=0 run --once
status=$?
set -e
"$py" ingestor.py --set "DATA_PATHS=$here/examples/data" --set "STATE_DIR=$state" status || true
echo "SQL databases: $state/sql/*.sqlite   rejects: $state/rejects/   logs: $state/logs/"
# The sample package holds deliberately bad files (see examples/README.md), so some files fail:
# exit status 1 means "ran, and some files were failed", as `run --once` reports it.
exit $status
