#!/usr/bin/env bash
# One command for the three big inputs (issue "speed and memory of the two big inputs"): each row is
# our ingest and its reference on the same file in the same run, once on a quiet machine and once
# with the other core kept busy (--busy-core):
#
#   * tracking log -> embedded store (bench_clickstream: reference gunzip + orjson.loads);
#   * tracking log -> MongoDB-wire server (bench_mongo: reference the original's insert_many of the
#     raw lines into a collection with its three indexes);
#   * courseware_studentmodule dump -> MariaDB (bench_database_state: reference the plain client's
#     LOAD DATA LOCAL INFILE into a ready table).
#
# Starts the test servers (scripts/start_*.sh, reused when running). Sizes from the environment:
# EVENTS (1000000), MONGO_EVENTS (30000), ROWS (1000000), REPEAT (3). Output: the three tables on
# standard output, everything else in each benchmark's results JSON under WORK (a new /tmp dir).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
py="$(bash scripts/setup.sh dev)"
bash scripts/start_mariadb.sh >&2
bash scripts/start_ferretdb.sh >&2
EVENTS="${EVENTS:-1000000}"
MONGO_EVENTS="${MONGO_EVENTS:-30000}"
ROWS="${ROWS:-1000000}"
REPEAT="${REPEAT:-3}"
WORK="${WORK:-$(mktemp -d /tmp/bench-big-inputs-XXXXXX)}"
MYSQL_URL="${INGESTOR_TEST_MYSQL_URL:-mysql://ingestor:ingestor@127.0.0.1:${MARIADB_PORT:-3306}}"
MONGO_URL="${INGESTOR_TEST_MONGO_URL:-mongodb://127.0.0.1:${FERRETDB_PORT:-27017}/}"
echo "# big inputs: $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), load $(cut -d' ' -f1-3 /proc/loadavg), work dir $WORK"

for busy in "" "--busy-core"; do
  echo
  echo "## tracking log -> embedded store ${busy:-(quiet)}"
  # quiet: also the same ingest with its writes in line (--serial), to time the store and the reading side apart
  "$py" -m bench.bench_clickstream --events "$EVENTS" --backends sqlite --no-quarter --repeat "$REPEAT" \
    --work-dir "$WORK/clickstream${busy:+-busy}" ${busy:---serial}
  echo
  echo "## tracking log -> MongoDB-wire server ${busy:-(quiet)}"
  "$py" -m bench.bench_mongo --events "$MONGO_EVENTS" --mongo-url "$MONGO_URL" --repeat "$REPEAT" \
    --work-dir "$WORK/mongo${busy:+-busy}" $busy
done
echo
echo "## courseware_studentmodule dump -> MariaDB (quiet, then with the other core busy)"
"$py" -m bench.bench_database_state --rows "$ROWS" --backends mysql --mysql-url "$MYSQL_URL" \
  --no-quarter --repeat "$REPEAT" --busy-core --work-dir "$WORK/dump"
