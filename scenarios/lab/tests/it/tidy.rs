//! Tidy tests (rust-analyzer's habit): the architecture invariants of
//! ARCHITECTURE.md, executable. They read the workspace's manifests and
//! sources, so a change that breaks a boundary fails `just test`, not a
//! review.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The workspace root (this crate is `scenarios/lab`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The product crates' folders: what a user depends on.
const PRODUCTS: &[&str] = &["engine", "transforms", "object-store", "http", "datasync", "jetstream"];

/// Crates the engine must never depend on: HTTP, PostgreSQL, plotting,
/// benchmarking (the engine stays small; those live at the edges).
const ENGINE_FORBIDDEN: &[&str] = &[
    "http",
    "http-body",
    "http-body-util",
    "hyper",
    "hyper-util",
    "tower",
    "tower-http",
    "tokio-postgres",
    "postgres",
    "postgres-protocol",
    "plotters",
    "criterion",
    "object_store",
    "async-nats",
];

/// One workspace crate: its folder (relative to the root), package name and
/// normal (not dev) dependencies.
#[derive(Debug)]
struct Crate {
    folder: String,
    name: String,
    dependencies: Vec<String>,
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn crates() -> Vec<Crate> {
    let manifest: toml::Table = toml::from_str(&read(&root().join("Cargo.toml"))).unwrap();
    let members = manifest["workspace"]["members"].as_array().unwrap();
    members
        .iter()
        .map(|m| {
            let folder = m.as_str().unwrap().to_owned();
            let own: toml::Table = toml::from_str(&read(&root().join(&folder).join("Cargo.toml"))).unwrap();
            let mut dependencies: Vec<String> = own
                .get("dependencies")
                .and_then(toml::Value::as_table)
                .map(|t| t.keys().cloned().collect())
                .unwrap_or_default();
            // Target-specific normal dependencies count too.
            for target in own
                .get("target")
                .and_then(toml::Value::as_table)
                .into_iter()
                .flat_map(|t| t.values())
            {
                if let Some(deps) = target.get("dependencies").and_then(toml::Value::as_table) {
                    dependencies.extend(deps.keys().cloned());
                }
            }
            Crate {
                name: own["package"]["name"].as_str().unwrap().to_owned(),
                folder,
                dependencies,
            }
        })
        .collect()
}

/// Every `.rs` file under the workspace's crate folders.
fn sources() -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack: Vec<PathBuf> = crates().iter().map(|c| root().join(&c.folder)).collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                // A crate folder inside another (scenarios/*) is visited as its own.
                if path.file_name().is_some_and(|n| n != "target") && !path.join("Cargo.toml").exists() {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

fn relative(path: &Path) -> String {
    let root = root().canonicalize().unwrap();
    let path = path.canonicalize().unwrap();
    path.strip_prefix(&root).unwrap().display().to_string()
}

#[test]
fn the_engine_depends_on_no_workspace_crate_and_nothing_heavy() {
    let crates = crates();
    let names: Vec<&str> = crates.iter().map(|c| c.name.as_str()).collect();
    let engine = crates.iter().find(|c| c.folder == "engine").unwrap();
    let bad: Vec<&String> = engine
        .dependencies
        .iter()
        .filter(|d| names.contains(&d.as_str()) || ENGINE_FORBIDDEN.contains(&d.as_str()))
        .collect();
    assert!(
        bad.is_empty(),
        "the engine must stay small and self-contained; it depends on {bad:?}"
    );
}

#[test]
fn products_depend_on_no_lab_crate() {
    let crates = crates();
    let lab: Vec<&str> = crates
        .iter()
        .filter(|c| !PRODUCTS.contains(&c.folder.as_str()))
        .map(|c| c.name.as_str())
        .collect();
    for product in crates.iter().filter(|c| PRODUCTS.contains(&c.folder.as_str())) {
        let bad: Vec<&String> = product
            .dependencies
            .iter()
            .filter(|d| lab.contains(&d.as_str()))
            .collect();
        assert!(bad.is_empty(), "product {} depends on lab crates {bad:?}", product.name);
    }
}

#[test]
fn reports_depend_on_no_scenario_crate() {
    let crates = crates();
    // The experiments: scenario crates other than the shared lab pieces.
    let shared = [
        "scenarios/harness",
        "scenarios/testkit",
        "scenarios/gate",
        "scenarios/lab",
    ];
    let scenarios: Vec<&str> = crates
        .iter()
        .filter(|c| c.folder.starts_with("scenarios/") && !shared.contains(&c.folder.as_str()))
        .map(|c| c.name.as_str())
        .collect();
    let reports = crates.iter().find(|c| c.folder == "reports").unwrap();
    let bad: Vec<&String> = reports
        .dependencies
        .iter()
        .filter(|d| scenarios.contains(&d.as_str()))
        .collect();
    assert!(
        bad.is_empty(),
        "figures reach reports as typed results, not through scenario crates: {bad:?}"
    );
}

#[test]
fn no_two_crates_or_crate_folders_share_a_name() {
    let crates = crates();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for c in &crates {
        let folder = Path::new(&c.folder).file_name().unwrap().to_string_lossy().into_owned();
        for name in [c.name.clone(), folder] {
            if let Some(other) = seen.insert(name.clone(), c.folder.clone())
                && other != c.folder
            {
                panic!("`{name}` names both {other} and {}", c.folder);
            }
        }
    }
}

#[test]
fn every_source_file_opens_with_a_module_doc() {
    let missing: Vec<String> = sources()
        .iter()
        .filter(|p| {
            let text = read(p);
            !text
                .lines()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.starts_with("//!"))
        })
        .map(|p| relative(p))
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` doc saying what they are for: {missing:?}"
    );
}

/// Where a file calls a sink's terminal method (`.finalize().await`,
/// `.abort(cause).await`, their `_dyn` twins), outside test code and
/// outside a `finalize`/`abort` body that forwards to an inner sink: the
/// byte offsets of the calls.
fn terminal_calls(text: &str) -> Vec<usize> {
    // Test code calls sinks directly to test them: everything from the
    // first `#[cfg(test)]` on is left out.
    let end = text.find("#[cfg(test)]").unwrap_or(text.len());
    let code = &text[..end];
    let mut calls = Vec::new();
    for method in [".finalize(", ".finalize_dyn(", ".abort(", ".abort_dyn("] {
        let mut from = 0;
        while let Some(at) = code[from..].find(method) {
            let start = from + at;
            from = start + method.len();
            let Some(close) = code[from..].find(')') else { continue };
            let args = code[from..from + close].trim();
            let after = code[from + close + 1..].trim_start();
            let awaited = after.starts_with(".await");
            // A sink's abort takes the cause; `JoinHandle::abort()` takes
            // nothing. A sink's finalize is awaited; a hasher's is not.
            let is_sink_call = awaited && (method.contains("finalize") == args.is_empty());
            if is_sink_call && !inside_forwarding_body(code, start) {
                calls.push(start);
            }
        }
    }
    calls
}

/// Whether `at` lies in the body of a `fn finalize`/`fn abort` (or their
/// `_dyn` twins): a wrapper sink forwarding its own terminal call.
fn inside_forwarding_body(code: &str, at: usize) -> bool {
    let before = &code[..at];
    let Some(fn_at) = before.rfind("fn ") else { return false };
    let name: String = before[fn_at + 3..]
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    matches!(name.as_str(), "finalize" | "abort" | "finalize_dyn" | "abort_dyn")
}

/// Files that drive a sink by hand on purpose, and why.
const DRIVE_SINKS_BY_HAND: &[(&str, &str)] = &[
    (
        "benches/src/lib.rs",
        "the raw baseline: the same sink written without the engine, to measure the engine's cost",
    ),
    (
        "scenarios/flow/src/unbounded.rs",
        "the broken way the flow scenario contrasts with the engine: every write spawned, no backpressure",
    ),
];

#[test]
fn only_the_ingest_loop_calls_a_sinks_finalize_or_abort() {
    let mut offenders = Vec::new();
    for path in sources() {
        let name = relative(&path);
        if name == "engine/src/ingest.rs"
            || name.contains("/tests/")
            || DRIVE_SINKS_BY_HAND.iter().any(|(file, _)| *file == name)
        {
            continue;
        }
        let text = read(&path);
        for at in terminal_calls(&text) {
            let line = text[..at].lines().count();
            offenders.push(format!("{name}:{line}"));
        }
    }
    assert!(
        offenders.is_empty(),
        "only engine/src/ingest.rs may end a sink (the lifecycle decides the one outcome); called at {offenders:?}"
    );
}

#[test]
fn the_terminal_call_scan_finds_what_it_should() {
    let direct = "async fn commit(mut sink: S) {\n    sink.finalize().await.unwrap();\n    sink\n        .abort(&cause)\n        .await;\n}\n";
    assert_eq!(terminal_calls(direct).len(), 2);
    let harmless = "fn f() { handle.abort(); let d = hasher.finalize(); }\n";
    assert!(terminal_calls(harmless).is_empty());
    let forwarding = "async fn abort(self, cause: &Cause) -> R {\n    self.inner.abort(cause).await\n}\n";
    assert!(terminal_calls(forwarding).is_empty());
    let in_tests = "fn a() {}\n#[cfg(test)]\nmod tests { async fn t() { sink.finalize().await; } }\n";
    assert!(terminal_calls(in_tests).is_empty());
}
