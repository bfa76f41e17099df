#!/usr/bin/env bash
# Installs what the deployment tests need when it is missing: Debian's OpenSSH server (the fab
# deploy test starts its own sshd on a spare loopback port) and logrotate (the log rotation test).
# Idempotent; the packages' own services are never started. (systemd-analyze, when present, checks
# the unit; it is not installed for that alone.)
set -euo pipefail
if [ -x /usr/sbin/sshd ] && [ -x /usr/sbin/logrotate ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d keeps the package from starting a system-wide sshd on port 22.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 755 /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends openssh-server openssh-client logrotate >/dev/null
