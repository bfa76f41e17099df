#!/usr/bin/env bash
# Sets up everything the test suite needs on this machine (virtualenv, MariaDB, FerretDB; each
# installed and started only if missing; Chromium for the status page's browser test), checks lint and types, and runs the whole test suite.
# Extra arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
py="$(bash scripts/setup.sh dev)"
bin="$(dirname "$py")"
bash scripts/start_mariadb.sh
bash scripts/start_ferretdb.sh
bash scripts/install_chromium.sh
"$bin/ruff" check .
"$bin/ruff" format --check .
"$bin/mypy" .
exec "$py" -m pytest -q -p no:cacheprovider "$@"
