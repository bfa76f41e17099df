#!/usr/bin/env bash
# Starts FerretDB (MongoDB wire protocol, SQLite backend) for the tests on 127.0.0.1:$FERRETDB_PORT
# (default 27017), with its data under $INGESTOR_TEST_DIR. Telemetry is always off. Idempotent: a
# server already answering on the port is reused.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
TEST_DIR="${INGESTOR_TEST_DIR:-/tmp/optimus-ingestor-test}"
PORT="${FERRETDB_PORT:-27017}"
DEBUG_PORT="${FERRETDB_DEBUG_PORT:-28088}"
DATA="$TEST_DIR/ferretdb"

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
if answers; then
  echo "ferretdb: reusing the server on 127.0.0.1:$PORT"
  exit 0
fi
FERRETDB_BIN="$(bash "$here/install_ferretdb.sh")"
mkdir -p "$DATA/db" "$DATA/state"
DO_NOT_TRACK=1 nohup "$FERRETDB_BIN" --handler=sqlite --sqlite-url="file:$DATA/db/" \
  --listen-addr="127.0.0.1:$PORT" --state-dir="$DATA/state" --telemetry=disable \
  --debug-addr="127.0.0.1:$DEBUG_PORT" --log-level=warn >"$DATA/ferretdb.log" 2>&1 &
for _ in $(seq 1 120); do
  if answers; then echo "ferretdb: started on 127.0.0.1:$PORT (data in $DATA)"; exit 0; fi
  sleep 0.5
done
echo "ferretdb: did not start; see $DATA/ferretdb.log" >&2
tail -20 "$DATA/ferretdb.log" >&2
exit 1
