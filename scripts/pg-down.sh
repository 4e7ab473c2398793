#!/usr/bin/env bash
# Stops the PostgreSQL that scripts/pg-up.sh started (its data stays in
# .pg/ for the next `just pg-up`; delete .pg/ to start afresh).
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER=".pg/cluster"
if [ ! -f "$CLUSTER" ]; then
    echo "pg-down: no cluster recorded in $CLUSTER (nothing started by pg-up)"
    exit 0
fi
# shellcheck source=/dev/null
. "$CLUSTER"
cd /
RUN=()
if [ "$(id -u)" -eq 0 ]; then
    RUN=(runuser -u postgres --)
fi
if "${RUN[@]}" "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    "${RUN[@]}" "$BIN/pg_ctl" -D "$DATA" -m fast -w stop
else
    echo "pg-down: not running"
fi
