#!/usr/bin/env bash
# Installs Debian's MariaDB server and client if they are missing. Idempotent.
set -euo pipefail
if command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# policy-rc.d keeps the package's own init script from starting a system-wide server.
$SUDO apt-get install -y -qq --no-install-recommends mariadb-server mariadb-client >/dev/null
