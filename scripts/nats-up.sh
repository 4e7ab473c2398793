#!/usr/bin/env bash
# Starts a NATS JetStream cluster on loopback for weir's tests and scenarios,
# and writes its addresses to .nats/env (which the tests read when NATS_URL
# is unset).
#
#   scripts/nats-up.sh            three nodes, one cluster (the default)
#   scripts/nats-up.sh --single   one node, for quick tests
#   scripts/nats-up.sh --fresh    (with either) stops a running cluster and
#                                 starts it with empty stores: what the
#                                 tests left behind is gone. Every stream
#                                 and consumer is a replicated group whose
#                                 heartbeats cost CPU while it sits idle
#                                 (~10% of a core per node, measured with
#                                 ~1,000 of them), which a measurement
#                                 must not share its cores with.
#
# - Installs Debian's nats-server package when `nats-server` is missing (as
#   root: apt-get).
# - Each node has its own config, store directory, log and PID file under
#   .nats/<node>/ ($WEIR_NATS_DIR instead of .nats when set: a test's own
#   cluster); client, cluster and monitoring ports are free ones from
#   $WEIR_NATS_PORT (default 14220) up, so another checkout's cluster does
#   not clash. Keep them below Linux's ephemeral range (32768-60999): there
#   the local end of any outgoing connection may take a port between the
#   check and the node's bind ("address already in use").
# - Waits until JetStream answers on every node and (cluster) a metadata
#   leader is elected, then writes .nats/env:
#     NATS_URL=nats://127.0.0.1:P1,nats://127.0.0.1:P2,...
#     WEIR_NATS_NODES=3
#     WEIR_NATS_<N>_PID_FILE, WEIR_NATS_<N>_CONFIG, WEIR_NATS_<N>_MONITOR
#   (the fault tests kill and restart nodes through these).
# Idempotent: a cluster whose nodes all run is left running; a different
# size is stopped first and starts with empty stores.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
DIR="${WEIR_NATS_DIR:-$ROOT/.nats}"
ENV_FILE="$DIR/env"
NODES=3
FRESH=0
for arg in "$@"; do
    case "$arg" in
        --single) NODES=1 ;;
        --fresh) FRESH=1 ;;
        *) echo "nats-up: unknown argument $arg (expected --single, --fresh or nothing)" >&2; exit 2 ;;
    esac
done
mkdir -p "$DIR"
if [ "$FRESH" = 1 ]; then
    bash "$ROOT/scripts/nats-down.sh" >/dev/null
    rm -rf "$DIR"/n*/store
fi

port_taken() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# GET http://127.0.0.1:$1$2 with bash alone (no curl on some machines).
http_get() {
    local reply
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
    reply="$(cat <&3)" || true
    exec 3<&-
    printf '%s' "$reply"
}

alive() {
    local pid_file="$1"
    [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

if [ -f "$DIR/cluster" ]; then
    # shellcheck source=/dev/null
    RUNNING_NODES="$(. "$DIR/cluster"; echo "$NODES")"
    all=1
    for n in $(seq 1 "$RUNNING_NODES"); do
        alive "$DIR/n$n/nats.pid" || all=0
    done
    if [ "$all" = 1 ] && [ "$RUNNING_NODES" = "$NODES" ] && [ -f "$ENV_FILE" ]; then
        echo "nats-up: $NODES node(s) already running"
        cat "$ENV_FILE"
        exit 0
    fi
    bash "$ROOT/scripts/nats-down.sh" >/dev/null
    if [ "$RUNNING_NODES" != "$NODES" ]; then
        # A store holds its cluster's metadata: another size starts afresh.
        rm -rf "$DIR"/n*/store
    fi
fi

if ! command -v nats-server >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "nats-up: nats-server not found; install Debian's nats-server package (sudo apt-get install nats-server)" >&2
        exit 1
    fi
    echo "nats-up: installing nats-server (apt-get install nats-server)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q nats-server
fi
echo "nats-up: $(nats-server --version)"

# Three free ports a node: client, cluster, monitoring. `free_port` sets
# PORT (a subshell could not move `next` on).
next="${WEIR_NATS_PORT:-14220}"
free_port() {
    while port_taken "$next"; do
        next=$((next + 1))
        if [ "$next" -gt 65000 ]; then
            echo "nats-up: no free port found" >&2
            exit 1
        fi
    done
    PORT="$next"
    next=$((next + 1))
}
declare -a CLIENT CLUSTER MONITOR PIDS
for n in $(seq 1 "$NODES"); do
    free_port; CLIENT[n]="$PORT"
    free_port; CLUSTER[n]="$PORT"
    free_port; MONITOR[n]="$PORT"
done

ROUTES=""
for n in $(seq 1 "$NODES"); do
    ROUTES="$ROUTES nats-route://127.0.0.1:${CLUSTER[n]}"
done

URLS=""
{
    echo "# written by scripts/nats-up.sh; the tests read it when NATS_URL is unset"
    echo "WEIR_NATS_NODES=$NODES"
} >"$ENV_FILE.tmp"
for n in $(seq 1 "$NODES"); do
    node="$DIR/n$n"
    mkdir -p "$node/store"
    conf="$node/nats.conf"
    {
        echo "server_name: n$n"
        echo "listen: 127.0.0.1:${CLIENT[n]}"
        echo "http: 127.0.0.1:${MONITOR[n]}"
        echo "pid_file: \"$node/nats.pid\""
        echo "max_payload: 8MB"
        echo "jetstream {"
        echo "  store_dir: \"$node/store\""
        echo "  max_memory_store: 256MB"
        echo "  max_file_store: 8GB"
        echo "}"
        if [ "$NODES" -gt 1 ]; then
            echo "cluster {"
            echo "  name: weir"
            echo "  listen: 127.0.0.1:${CLUSTER[n]}"
            echo "  routes: [$(echo "$ROUTES" | xargs | tr ' ' ',')]"
            echo "}"
        fi
    } >"$conf"
    if [ -f "$node/nats.log" ]; then mv -f "$node/nats.log" "$node/nats.log.1"; fi
    nohup nats-server -c "$conf" >"$node/nats.log" 2>&1 &
    PIDS[n]=$!
    URLS="${URLS:+$URLS,}nats://127.0.0.1:${CLIENT[n]}"
    {
        echo "WEIR_NATS_${n}_PID_FILE=$node/nats.pid"
        echo "WEIR_NATS_${n}_CONFIG=$conf"
        echo "WEIR_NATS_${n}_MONITOR=http://127.0.0.1:${MONITOR[n]}"
        echo "WEIR_NATS_${n}_URL=nats://127.0.0.1:${CLIENT[n]}"
    } >>"$ENV_FILE.tmp"
done
echo "NATS_URL=$URLS" >>"$ENV_FILE.tmp"
printf 'NODES=%q\n' "$NODES" >"$DIR/cluster"

# A failed start stops the nodes it started (nothing is left running).
fail() {
    local n
    for n in $(seq 1 "$NODES"); do
        kill -TERM "${PIDS[n]}" 2>/dev/null || true
    done
    sleep 1
    for n in $(seq 1 "$NODES"); do
        kill -KILL "${PIDS[n]}" 2>/dev/null || true
        rm -f "$DIR/n$n/nats.pid"
    done
    rm -f "$DIR/cluster" "$ENV_FILE.tmp"
    exit 1
}

# Ready: every node's JetStream answers, and a cluster's meta leader sees
# every peer current. A node that died (a port taken after the check) fails
# at once.
deadline=$((SECONDS + 60))
for n in $(seq 1 "$NODES"); do
    until http_get "${MONITOR[n]}" "/healthz?js-enabled-only=true" 2>/dev/null | grep -q '"status": *"ok"'; do
        if [ "$SECONDS" -ge "$deadline" ] || ! kill -0 "${PIDS[n]}" 2>/dev/null; then
            echo "nats-up: node n$n did not become healthy; its log:" >&2
            tail -n 30 "$DIR/n$n/nats.log" >&2
            fail
        fi
        sleep 0.2
    done
done
# The meta leader must see every other node as a current peer: a stream
# with 3 replicas made before that is refused ("no suitable peers").
peers_current() {
    local n count
    for n in $(seq 1 "$NODES"); do
        count="$(http_get "${MONITOR[n]}" "/jsz" 2>/dev/null | grep -o '"current": *true' | wc -l)"
        if [ "$count" -ge $((NODES - 1)) ]; then
            return 0
        fi
    done
    return 1
}
if [ "$NODES" -gt 1 ]; then
    until peers_current; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "nats-up: no JetStream metadata leader with every peer current in 60 s; node logs:" >&2
            tail -n 15 "$DIR"/n*/nats.log >&2
            fail
        fi
        sleep 0.2
    done
fi
mv -f "$ENV_FILE.tmp" "$ENV_FILE"
echo "nats-up: $NODES node(s) ready"
echo "NATS_URL=$URLS"
echo "(written to $ENV_FILE; export it with: set -a; . $ENV_FILE; set +a)"
