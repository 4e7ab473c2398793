#!/usr/bin/env bash
# Stops the NATS nodes that scripts/nats-up.sh started, by PID (their
# stores stay in .nats/; delete .nats/ to start afresh).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${WEIR_NATS_DIR:-.nats}"
if [ ! -f "$DIR/cluster" ]; then
    echo "nats-down: no cluster recorded in $DIR/cluster (nothing started by nats-up)"
    exit 0
fi
stopped=0
for pid_file in "$DIR"/n*/nats.pid; do
    [ -f "$pid_file" ] || continue
    pid="$(cat "$pid_file")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "nats-down: $pid did not stop in 10 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        stopped=$((stopped + 1))
    fi
    rm -f "$pid_file"
done
rm -f "$DIR/cluster" "$DIR/env"
echo "nats-down: stopped $stopped node(s)"
