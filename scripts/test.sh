#!/usr/bin/env bash
# Sets up everything the test suite needs on this machine (virtualenv, MariaDB, FerretDB, GnuPG,
# sshd, logrotate, Chromium; each installed and started only if missing), checks lint and types,
# and runs the whole test suite.
# Extra arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
py="$(bash scripts/setup.sh dev)"
bin="$(dirname "$py")"
bash scripts/install_gnupg.sh
bash scripts/start_mariadb.sh
bash scripts/start_ferretdb.sh
bash scripts/install_deploy_tools.sh
bash scripts/install_chromium.sh
"$bin/ruff" check .
"$bin/ruff" format --check .
"$bin/mypy" .
# Where setup.sh built native/eventscan, its tests must run, not skip; its Rust is linted (and its
# own unit tests run) where rustfmt and clippy are installed (rustup's default profile has both).
if "$py" -c "import eventscan" 2>/dev/null; then export OPTIMUS_REQUIRE_NATIVE=1; fi
[ -x "$HOME/.cargo/bin/cargo" ] && PATH="$PATH:$HOME/.cargo/bin"
if cargo fmt --version >/dev/null 2>&1 && cargo clippy --version >/dev/null 2>&1; then
  CACHE="${OPTIMUS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/optimus-ingestor}"
  (cd native/eventscan && cargo fmt --check &&
    PYO3_PYTHON="$py" CARGO_TARGET_DIR="$CACHE/cargo-target" cargo clippy -q --release --all-targets -- -D warnings &&
    PYO3_PYTHON="$py" CARGO_TARGET_DIR="$CACHE/cargo-target" cargo test -q --release)
fi
# Two workers for the tests that need no server (SQLite, files, processes); then, one at a time, the
# tests on the shared MariaDB/FerretDB servers (several load the sample into the same databases);
# last, one at a time, those that stop or restart a server or time themselves (`serial`). pytest's 5 ("no test
# selected", e.g. with -k) is not a failure.
jobs="${PYTEST_JOBS:-2}"
status=0
"$py" -m pytest -q -p no:cacheprovider -n "$jobs" -m "not serial and not mysql and not mongo and not quarantine" "$@" || status=$?
[ "$status" = 5 ] && status=0
for selection in "(mysql or mongo) and not serial and not quarantine" "serial and not quarantine"; do
  part=0
  "$py" -m pytest -q -p no:cacheprovider -m "$selection" "$@" || part=$?
  [ "$part" = 5 ] && part=0
  [ "$status" = 0 ] && status=$part
done
exit "$status"
