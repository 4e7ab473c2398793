# weir: the recipes a person runs are the ones CI runs.

# Lists the recipes.
default:
    @just --list

# Everything CI checks: formatting, clippy (-D warnings), docs, all tests, loom models.
test: fmt-check clippy doc nextest doctest loom

# Formatting check.
fmt-check:
    cargo fmt --all -- --check

# Clippy over every crate and target, warnings as errors.
clippy:
    cargo clippy --workspace --all-targets --locked -- -D warnings

# Builds the docs, warnings as errors.
doc:
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

# Every unit and integration test (one process per test, so descriptor counts are exact).
nextest:
    cargo nextest run --workspace --locked --no-fail-fast

# The doc tests (nextest does not run them).
doctest:
    cargo test --workspace --doc --locked

# loom models of the engine's lifecycle guard, the registry's admission gate and the loop's stop signal (only the engine is rebuilt, in its own target dir).
loom:
    RUSTFLAGS="--cfg weir_loom" cargo test -p weir --lib --release --locked --target-dir target/loom loom_

# Starts a local PostgreSQL on 127.0.0.1 (installing Debian's package if missing; uses DATABASE_URL when set), prints the DATABASE_URL and writes it to .pg/env, which the tests and `weir-lab` read when DATABASE_URL is unset.
pg-up:
    bash scripts/pg-up.sh

# Stops the PostgreSQL that `just pg-up` started (its data stays in .pg/).
pg-down:
    bash scripts/pg-down.sh

# Starts a NATS JetStream cluster on loopback (3 nodes; `just nats-up --single` for one; `--fresh` restarts it with empty stores, as the gate and bench-all do, so that no stream the tests left behind costs CPU during a measurement), installing Debian's nats-server if missing; writes NATS_URL and the nodes' PID files to .nats/env, which the tests read when NATS_URL is unset.
nats-up *ARGS:
    bash scripts/nats-up.sh {{ARGS}}

# Stops the NATS nodes that `just nats-up` started, by PID (their stores stay in .nats/).
nats-down:
    bash scripts/nats-down.sh

# Installs Debian's nginx-light when no nginx is found (as root: apt-get; its service is not started): the delivery scenario's baseline, which the scenario runs with a configuration of its own.
nginx-install:
    bash scripts/nginx-install.sh

# Re-runs exactly the chaos case a failing test printed (SINK: memory, file or null; default all).
replay SEED SINK="":
    cargo run -q -p weir-testkit --bin chaos-replay -- {{SEED}} {{SINK}}

# The main job: every scenario (flow, delivery, datasync and jetstream at full size, the others' default profiles), every criterion bench, then `just report` and the gates' verdicts on what it measured ("N of M gates pass", breaches listed; a measurement run, so it exits 0 when every scenario ran). Writes only to ignored paths: RESULTS (emptied first), target/criterion and reports/out; `just publish` puts the figures into the committed documents.
bench-all RESULTS="results":
    mkdir -p target && date +%s > target/bench-all.started
    just pg-up
    just nats-up --fresh
    just nginx-install
    cargo build --release --locked -q -p weir-lab
    rm -rf {{RESULTS}}
    for s in flow delivery datasync jetstream; do cargo run --release --locked -q -p weir-lab -- run "$s" --full --out {{RESULTS}} || exit 1; done
    for s in $(cargo run --release --locked -q -p weir-lab -- list --names); do case "$s" in flow|delivery|datasync|jetstream) ;; *) cargo run --release --locked -q -p weir-lab -- run "$s" --out {{RESULTS}} || exit 1;; esac; done
    cargo bench --locked -q -p weir-benches -- --warm-up-time 1 --measurement-time 2 --noplot --nresamples 10000
    just report {{RESULTS}}
    cargo run --release --locked -q -p weir-lab -- gate --no-run --report-only --out {{RESULTS}} --criterion target/criterion
    echo "bench-all: $(( $(date +%s) - $(cat target/bench-all.started) )) s (under 900 s on two cores is the aim)"

# Renders the report (index, charts, tables) into reports/out/ (git-ignored) from existing results; changes no committed file.
report RESULTS="results":
    cargo run --release --locked -q -p weir-lab -- report {{RESULTS}} --out reports/out

# Publishes a report into the committed documents: every milestone write-up's generated block (reports/*.md, listed in reports/README.md) with its figures and tables, and README.md's generated block. Run after `just bench-all` on a clean revision, then commit what changed (`cargo nextest run -p weir-reports` fails while a committed document differs from what was published).
publish RESULTS="results":
    cargo run --release --locked -q -p weir-lab -- report {{RESULTS}} --out reports/out --publish reports --readme README.md

# Runs the flow scenario with extra arguments, e.g. `just flow --variant unbounded --size 1GiB --sink slow`.
flow *ARGS:
    cargo run --release --locked -q -p weir-lab -- run flow {{ARGS}}

# Builds what the gate runs (the lab in release, the criterion benches) without running it; `.ci/run` runs it beside the tests at nice 19.
gate-build:
    cargo build --release --locked -q -p weir-lab
    cargo bench --locked --no-run -q -p weir-benches

# The regression gate (on a NATS cluster restarted empty): short criterion benches, every scenario's quick profile, then gates.toml; a first breach is measured twice more and the median of the three decides; exits non-zero on a confirmed breach.
gate OUT="target/gate":
    just nats-up --fresh
    just nginx-install
    cargo bench --locked -q -p weir-benches -- --warm-up-time 1 --measurement-time 2 --noplot --nresamples 10000
    cargo run --release --locked -q -p weir-lab -- gate --out {{OUT}} --criterion target/criterion --bench-command "cargo bench --locked -q -p weir-benches -- --warm-up-time 1 --measurement-time 2 --noplot --nresamples 10000"
