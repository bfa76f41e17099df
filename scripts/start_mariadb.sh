#!/usr/bin/env bash
# Starts a MariaDB server for the tests on 127.0.0.1 (port $MARIADB_PORT, default 3306), with its data
# under $INGESTOR_TEST_DIR (default /tmp/optimus-ingestor-test). Idempotent: a server that already
# answers with the test account is reused. Prints nothing on success but one line saying which server.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
TEST_DIR="${INGESTOR_TEST_DIR:-/tmp/optimus-ingestor-test}"
PORT="${MARIADB_PORT:-3306}"
USER_NAME=ingestor
USER_PASS=ingestor          # a throw-away account of the loopback test server, not a real credential
DATA="$TEST_DIR/mariadb"
SOCK="$DATA/mysqld.sock"

client() { mariadb --protocol=TCP -h 127.0.0.1 -P "$PORT" "$@"; }
if command -v mariadb >/dev/null 2>&1 && client -u "$USER_NAME" -p"$USER_PASS" -e 'SELECT 1' >/dev/null 2>&1; then
  echo "mariadb: reusing the server on 127.0.0.1:$PORT"
  exit 0
fi

bash "$here/install_mariadb.sh"
mkdir -p "$DATA"
if [ ! -d "$DATA/db/mysql" ]; then
  mariadb-install-db --no-defaults --datadir="$DATA/db" --user="$(id -un)" \
    --auth-root-authentication-method=socket --skip-test-db >"$DATA/install.log" 2>&1
fi
# The server runs as whoever runs this script (root in CI); it needs --user then.
nohup mariadbd --no-defaults --datadir="$DATA/db" --socket="$SOCK" --pid-file="$DATA/mysqld.pid" \
  --bind-address=127.0.0.1 --port="$PORT" --user="$(id -un)" --local-infile=1 \
  --skip-name-resolve --innodb-buffer-pool-size=512M --innodb-flush-log-at-trx-commit=2 \
  --max-allowed-packet=256M --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
  --log-error="$DATA/error.log" >/dev/null 2>&1 &
for _ in $(seq 1 120); do
  if mariadb --no-defaults -S "$SOCK" -u root -e 'SELECT 1' >/dev/null 2>&1; then break; fi
  sleep 0.5
done
mariadb --no-defaults -S "$SOCK" -u root <<SQL
CREATE USER IF NOT EXISTS '$USER_NAME'@'127.0.0.1' IDENTIFIED BY '$USER_PASS';
CREATE USER IF NOT EXISTS '$USER_NAME'@'localhost' IDENTIFIED BY '$USER_PASS';
GRANT ALL PRIVILEGES ON *.* TO '$USER_NAME'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$USER_NAME'@'localhost' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
client -u "$USER_NAME" -p"$USER_PASS" -e 'SELECT 1' >/dev/null
echo "mariadb: started on 127.0.0.1:$PORT (data in $DATA)"
