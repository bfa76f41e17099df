#!/usr/bin/env bash
# Creates (or updates) the project's virtualenv outside the repo and prints its python's path.
# Idempotent: packages are installed again only when a requirements file changed.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${OPTIMUS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/optimus-ingestor}"
VENV="${OPTIMUS_VENV:-$CACHE/venv}"
PYTHON="${PYTHON:-python3}"
want="${1:-dev}"   # dev: with test tools; runtime: requirements.txt only
req="$here/requirements-dev.txt"; [ "$want" = runtime ] && req="$here/requirements.txt"

if [ ! -x "$VENV/bin/python" ]; then
  mkdir -p "$CACHE"
  if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
    # Debian's python3 keeps venv in a package of its own.
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null; fi
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
  fi
fi
stamp="$VENV/.requirements-$want.sha256"
sum="$(cat "$here/requirements.txt" "$req" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >&2
  echo "$sum" > "$stamp"
fi
# The compiled first pass of tracking-log lines (native/eventscan), where cargo is found: without it
# the loader gives the same documents from its Python parser, more slowly. Optional: a build that
# fails (no cargo, an older one than Cargo.toml's rust-version, no linker, no registry) only says so,
# and a build of older sources is removed rather than left in use.
native="$here/native/eventscan"
native_stamp="$VENV/.eventscan.sha256"
native_sum="$(cd "$native" && cat Cargo.toml Cargo.lock pyproject.toml eventscan.pyi src/*.rs | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$native_stamp" 2>/dev/null)" != "$native_sum" ]; then
  rm -f "$native_stamp"
  "$VENV/bin/python" -m pip uninstall -y -q eventscan >/dev/null 2>&1 || true
  [ -x "$HOME/.cargo/bin/cargo" ] && PATH="$PATH:$HOME/.cargo/bin"  # rustup's place, if not on PATH
  if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: no cargo on PATH: native/eventscan not built; the loader uses its Python parser" >&2
  else
    echo "setup: building native/eventscan (once per change of its sources)" >&2
    if CARGO_TARGET_DIR="$CACHE/cargo-target" "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$native" >&2; then
      echo "$native_sum" > "$native_stamp"
    else
      echo "setup: native/eventscan failed to build (see above); the loader uses its Python parser" >&2
    fi
  fi
fi
echo "$VENV/bin/python"
