#!/usr/bin/env bash
# Starts a PostgreSQL for weir's tests and scenarios, and writes the
# DATABASE_URL to .pg/env (which the tests read when DATABASE_URL is unset).
#
# - DATABASE_URL set: checks it answers, writes it to .pg/env, done.
# - Otherwise: installs Debian's postgresql package when no server binaries
#   are found (as root: apt-get), creates a cluster owned by the `postgres`
#   user (or by you, when not root) in .pg/data, starts it on 127.0.0.1
#   (port $WEIR_PG_PORT, default 54329; when something else, such as another
#   checkout's cluster, holds that port, the next free one up to 54399),
#   creates role and database `weir`.
# Idempotent: a running cluster is left running on its port; a stopped one is
# started (on the port it had, while that is free).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
PGDIR="$ROOT/.pg"
ENV_FILE="$PGDIR/env"
PORT="${WEIR_PG_PORT:-54329}"
mkdir -p "$PGDIR"

# Whether something accepts TCP connections on 127.0.0.1:$1.
port_taken() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

write_env() {
    printf '# written by scripts/pg-up.sh; `just test` reads it when DATABASE_URL is unset\nDATABASE_URL=%s\n' "$1" >"$ENV_FILE"
    echo "DATABASE_URL=$1"
    echo "(written to $ENV_FILE; export it with: set -a; . $ENV_FILE; set +a)"
}

find_bindir() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir
        return 0
    fi
    return 1
}

if [ -n "${DATABASE_URL:-}" ]; then
    if command -v psql >/dev/null 2>&1; then
        if ! psql "$DATABASE_URL" -qAtc 'select 1' >/dev/null; then
            echo "pg-up: DATABASE_URL is set but does not answer; fix it or unset it to start a local cluster" >&2
            exit 1
        fi
    fi
    write_env "$DATABASE_URL"
    exit 0
fi

BIN="$(find_bindir || true)"
if [ -z "$BIN" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "pg-up: no PostgreSQL server binaries found; install Debian's postgresql package (sudo apt-get install postgresql) or set DATABASE_URL" >&2
        exit 1
    fi
    echo "pg-up: installing PostgreSQL (apt-get install postgresql)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q postgresql
    BIN="$(find_bindir)"
fi
echo "pg-up: using $BIN"

# As root, the cluster belongs to the `postgres` user; it needs to reach
# .pg/ (some checkouts live below directories only root can enter).
RUN=()
DATA="$PGDIR/data"
SOCK="$PGDIR/sock"
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    RUN=(runuser -u postgres --)
    chown postgres: "$PGDIR"
    if ! "${RUN[@]}" test -w "$PGDIR"; then
        BASE="/var/lib/postgresql/weir-$(printf '%s' "$ROOT" | md5sum | cut -c1-12)"
        echo "pg-up: postgres cannot reach $PGDIR; the cluster lives in $BASE"
        mkdir -p "$BASE"
        chown postgres: "$BASE"
        DATA="$BASE/data"
        SOCK="$BASE/sock"
    fi
fi
LOG="$(dirname "$DATA")/postgres.log"
# Every path is absolute from here; the `postgres` user may not be allowed
# into the checkout, so work from /.
cd /
"${RUN[@]}" mkdir -p "$SOCK"

if [ ! -f "$DATA/PG_VERSION" ]; then
    echo "pg-up: creating a cluster in $DATA"
    "${RUN[@]}" "$BIN/initdb" -D "$DATA" -U postgres -E UTF8 --no-locale \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
fi

if "${RUN[@]}" "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    # Running: on the port it was started with, recorded in .pg/cluster.
    if [ -f "$PGDIR/cluster" ]; then
        PORT="$(. "$PGDIR/cluster"; echo "$PORT")"
    fi
    echo "pg-up: already running on 127.0.0.1:$PORT"
else
    if port_taken "$PORT"; then
        if [ -n "${WEIR_PG_PORT:-}" ]; then
            echo "pg-up: 127.0.0.1:$PORT (WEIR_PG_PORT) is taken by another server; choose another port" >&2
            exit 1
        fi
        FREE=""
        for candidate in $(seq $((PORT + 1)) 54399); do
            if ! port_taken "$candidate"; then
                FREE="$candidate"
                break
            fi
        done
        if [ -z "$FREE" ]; then
            echo "pg-up: 127.0.0.1:$PORT to 54399 are all taken; set WEIR_PG_PORT or DATABASE_URL" >&2
            exit 1
        fi
        echo "pg-up: 127.0.0.1:$PORT is taken (another cluster?); using $FREE"
        PORT="$FREE"
    fi
    # The log shows this start only: an earlier run's lines would mislead.
    if [ -f "$LOG" ]; then mv -f "$LOG" "$LOG.1"; fi
    echo "pg-up: starting on 127.0.0.1:$PORT (log: $LOG)"
    # Sized for bulk loads on a 24 GiB machine: large buffers, few checkpoints.
    "${RUN[@]}" "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 -o "-p $PORT -k $SOCK \
        -c listen_addresses=127.0.0.1 -c shared_buffers=512MB -c max_wal_size=8GB \
        -c checkpoint_timeout=30min -c max_connections=200" start >/dev/null ||
        { echo "pg-up: the server did not start; its log:" >&2; tail -n 30 "$LOG" >&2; exit 1; }
fi

printf 'BIN=%q\nDATA=%q\nSOCK=%q\nPORT=%q\n' "$BIN" "$DATA" "$SOCK" "$PORT" >"$PGDIR/cluster"

PSQL=("${RUN[@]}" "$BIN/psql" -h "$SOCK" -p "$PORT" -U postgres -d postgres -qAtX -v ON_ERROR_STOP=1)
"${PSQL[@]}" -c "DO \$\$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'weir') THEN
        CREATE ROLE weir LOGIN PASSWORD 'weir';
    END IF;
END \$\$;"
if [ -z "$("${PSQL[@]}" -c "SELECT 1 FROM pg_database WHERE datname = 'weir'")" ]; then
    "${PSQL[@]}" -c "CREATE DATABASE weir OWNER weir"
fi
write_env "postgres://weir:weir@127.0.0.1:$PORT/weir"
