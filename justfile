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

# loom models of the engine's lifecycle guard (only the engine is rebuilt, in its own target dir).
loom:
    RUSTFLAGS="--cfg weir_loom" cargo test -p weir --lib --release --locked --target-dir target/loom loom_

# Re-runs exactly the chaos case a failing test printed (SINK: memory, file or null; default all).
replay SEED SINK="":
    cargo run -q -p weir-chaos --bin chaos-replay -- {{SEED}} {{SINK}}
