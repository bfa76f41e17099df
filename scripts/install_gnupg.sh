#!/usr/bin/env bash
# Installs Debian's GnuPG (gpg, gpg-agent, gpgconf) if it is missing: the Deliveries service
# decrypts edX's deliveries with it, and its tests make their own keys. Idempotent.
set -euo pipefail
if command -v gpg >/dev/null 2>&1 && command -v gpg-agent >/dev/null 2>&1 && command -v gpgconf >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends gnupg gpg-agent >/dev/null
