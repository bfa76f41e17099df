#!/usr/bin/env bash
# Builds FerretDB 1.24.2 (the last release with the SQLite backend) with the Go toolchain if the
# binary is missing. The Go build cache lives outside the repo, so later runs are quick.
set -euo pipefail
FERRETDB_VERSION=v1.24.2
bin_dir="$(go env GOPATH)/bin"
if [ -x "$bin_dir/ferretdb" ] && "$bin_dir/ferretdb" --version 2>/dev/null | grep -q "${FERRETDB_VERSION#v}"; then
  exit 0
fi
GOFLAGS=-mod=mod go install "github.com/FerretDB/FerretDB/cmd/ferretdb@${FERRETDB_VERSION}"
