#!/usr/bin/env bash
# Builds FerretDB 1.24.2 (the last release with the SQLite backend) from its Go module if the binary
# is missing. The module as served by the proxy lacks the generated build/version/version.txt, so the
# source is copied to a cache directory outside the repo, the file is written, and it is built there.
# The Go build cache makes later builds quick.
set -euo pipefail
FERRETDB_VERSION=v1.24.2
CACHE="${OPTIMUS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/optimus-ingestor}"
BIN="$CACHE/bin/ferretdb"
if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "${FERRETDB_VERSION}"; then
  echo "$BIN"
  exit 0
fi
mkdir -p "$CACHE/bin"
moddir="$(go mod download -json "github.com/FerretDB/FerretDB@${FERRETDB_VERSION}" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[ -n "$moddir" ] || { echo "install_ferretdb: go mod download failed" >&2; exit 1; }
src="$CACHE/ferretdb-src-${FERRETDB_VERSION}"
rm -rf "$src"
cp -r "$moddir" "$src"
chmod -R u+w "$src"
echo "$FERRETDB_VERSION" > "$src/build/version/version.txt"
(cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$BIN" ./cmd/ferretdb) >&2
rm -rf "$src"
echo "$BIN"
