#!/usr/bin/env bash
# Installs Debian's nginx-light when no nginx binary is found: the delivery
# scenario's baseline server. Idempotent; prints the binary's path.
#
# The package's own service is never started: the scenario runs nginx with a
# configuration of its own (one worker, loopback, a free port) and stops it by
# PID. When the machine has no policy-rc.d (Docker images do), one that
# refuses every service start is put in place for the installation only.
set -euo pipefail

find_nginx() {
    command -v nginx 2>/dev/null && return 0
    [ -x /usr/sbin/nginx ] && { echo /usr/sbin/nginx; return 0; }
    return 1
}

if BIN="$(find_nginx)"; then
    echo "nginx-install: found $BIN"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "nginx-install: no nginx found; install Debian's nginx-light (sudo apt-get install nginx-light)" >&2
    exit 1
fi
POLICY=/usr/sbin/policy-rc.d
OWN_POLICY=""
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# written by weir scripts/nginx-install.sh for one installation\nexit 101\n' >"$POLICY"
    chmod 755 "$POLICY"
    OWN_POLICY=1
fi
cleanup() { if [ -n "$OWN_POLICY" ]; then rm -f "$POLICY"; fi; }
trap cleanup EXIT
echo "nginx-install: installing nginx-light (apt-get install nginx-light)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends nginx-light
BIN="$(find_nginx)"
echo "nginx-install: installed $BIN"
