//! The gate fails on doctored regressions and passes on good results.

use serde_json::Value;
use weir_gate::{GateError, GateFile, breaches, confirm, evaluate, table};
use weir_harness::ScenarioResult;

const GATES: &str = r#"
[[gate]]
name = "engine keeps up with a plain read loop"
kind = "ratio"
scenario = "flow"
variant = "throughput"
metric = "extra.ratio_file_null_vs_std"
min = 0.9
why = "issue 3 floor"

[[gate]]
name = "controlled flow stays flat"
kind = "memory"
scenario = "flow"
variant = "controlled"
metric = "rss.growth_bytes"
max = 8388608

[[gate]]
name = "no invariant violation"
kind = "correctness"
scenario = "chaos"
metric = "extra.violations"
max = 0
"#;

fn good() -> Vec<ScenarioResult> {
    let mut throughput = ScenarioResult::new("flow", "throughput");
    throughput
        .extra
        .insert("ratio_file_null_vs_std".into(), Value::from(1.05));
    let mut controlled = ScenarioResult::new("flow", "controlled");
    controlled.rss.baseline_bytes = 4 << 20;
    controlled.rss.peak_bytes = 6 << 20;
    let mut chaos_a = ScenarioResult::new("chaos", "memory");
    chaos_a.extra.insert("violations".into(), Value::from(0));
    let mut chaos_b = ScenarioResult::new("chaos", "file");
    chaos_b.extra.insert("violations".into(), Value::from(0));
    vec![throughput, controlled, chaos_a, chaos_b]
}

fn gates() -> GateFile {
    toml::from_str(GATES).unwrap()
}

#[test]
fn good_results_pass_every_gate() {
    let verdicts = evaluate(&gates(), &good());
    assert_eq!(verdicts.len(), 4, "one verdict per chaos variant");
    assert!(verdicts.iter().all(|v| v.pass), "{}", table(&verdicts));
    assert!(breaches(&verdicts).is_empty());
}

#[test]
fn a_regressed_ratio_fails() {
    let mut results = good();
    results[0]
        .extra
        .insert("ratio_file_null_vs_std".into(), Value::from(0.7));
    let verdicts = evaluate(&gates(), &results);
    let failed = breaches(&verdicts);
    assert_eq!(failed.len(), 1);
    assert!(failed[0].contains("engine keeps up"), "{failed:?}");
    assert!(table(&verdicts).contains("**FAIL**"));
}

#[test]
fn a_breached_ceiling_fails() {
    let mut results = good();
    results[1].rss.peak_bytes = 40 << 20;
    let failed = breaches(&evaluate(&gates(), &results));
    assert_eq!(failed.len(), 1);
    assert!(failed[0].contains("stays flat"), "{failed:?}");
}

#[test]
fn a_single_violation_fails() {
    let mut results = good();
    results[3].extra.insert("violations".into(), Value::from(1));
    let failed = breaches(&evaluate(&gates(), &results));
    assert_eq!(failed.len(), 1);
    assert!(failed[0].contains("chaos/file"), "{failed:?}");
}

#[test]
fn a_missing_figure_fails_rather_than_passing_silently() {
    let mut results = good();
    results.remove(0);
    results[0].outcome = "error: it crashed".into();
    let failed = breaches(&evaluate(&gates(), &results));
    assert_eq!(failed.len(), 2, "{failed:?}");
}

#[test]
fn the_newest_result_of_a_variant_counts() {
    let mut results = good();
    let mut older = results[0].clone();
    older.started_unix_s -= 100;
    older.extra.insert("ratio_file_null_vs_std".into(), Value::from(0.1));
    results.push(older);
    assert!(breaches(&evaluate(&gates(), &results)).is_empty());
}

#[test]
fn a_gate_without_a_bound_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gates.toml");
    std::fs::write(
        &path,
        "[[gate]]\nname = \"toothless\"\nkind = \"ratio\"\nscenario = \"flow\"\nmetric = \"bytes\"\n",
    )
    .unwrap();
    assert!(matches!(GateFile::load(&path), Err(GateError::Vacuous(name)) if name == "toothless"));
    std::fs::write(&path, "[[gate]\n").unwrap();
    assert!(matches!(GateFile::load(&path), Err(GateError::Parse { .. })));
}

#[test]
fn the_committed_gates_file_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../gates.toml");
    let file = GateFile::load(&path).unwrap();
    assert!(!file.gates.is_empty());
}

#[test]
fn a_where_filter_picks_results_by_their_params() {
    let gates: GateFile = toml::from_str(
        r#"
        [[gate]]
        name = "file source keeps up"
        kind = "ratio"
        scenario = "flow"
        variant = "throughput"
        where = "sink=null"
        metric = "extra.ratio"
        min = 0.5
        "#,
    )
    .unwrap();
    let mut null = ScenarioResult::new("flow", "throughput");
    null.params.insert("sink".into(), Value::from("null"));
    null.extra.insert("ratio".into(), Value::from(0.4));
    let mut file = ScenarioResult::new("flow", "throughput");
    file.params.insert("sink".into(), Value::from("file"));
    file.extra.insert("ratio".into(), Value::from(0.95));
    file.started_unix_s += 10;
    // The newer file result must not hide the regressed null one.
    let failed = breaches(&evaluate(&gates, &[null, file]));
    assert_eq!(failed.len(), 1, "{failed:?}");
}

fn with_ratio(ratio: f64) -> Vec<ScenarioResult> {
    let mut results = good();
    results[0]
        .extra
        .insert("ratio_file_null_vs_std".into(), Value::from(ratio));
    results
}

#[test]
fn one_noisy_breach_is_outvoted_by_two_good_attempts() {
    let first = evaluate(&gates(), &with_ratio(0.7));
    assert_eq!(breaches(&first).len(), 1);
    let again = [
        evaluate(&gates(), &with_ratio(1.0)),
        evaluate(&gates(), &with_ratio(0.95)),
    ];
    let confirmed = confirm(first, &again);
    assert!(breaches(&confirmed).is_empty(), "{}", table(&confirmed));
    let ratio = confirmed
        .iter()
        .find(|v| v.gate.kind == weir_gate::Kind::Ratio)
        .unwrap();
    assert_eq!(ratio.attempts, [Some(0.7), Some(1.0), Some(0.95)]);
    assert_eq!(ratio.measured, Some(0.95), "the median of the attempts decides");
    assert!(table(&confirmed).contains("median of 3 attempts"));
}

#[test]
fn a_regression_in_every_attempt_stays_a_breach() {
    let first = evaluate(&gates(), &with_ratio(0.7));
    let again = [
        evaluate(&gates(), &with_ratio(0.75)),
        evaluate(&gates(), &with_ratio(1.2)),
    ];
    let failed = breaches(&confirm(first, &again));
    assert_eq!(failed.len(), 1, "two of three attempts breach: {failed:?}");
    assert!(failed[0].contains("engine keeps up"), "{failed:?}");
}

#[test]
fn a_figure_missing_from_a_re_measurement_counts_against_the_gate() {
    let first = evaluate(&gates(), &with_ratio(0.7));
    let mut gone = with_ratio(1.0);
    gone.remove(0);
    let again = [evaluate(&gates(), &gone), evaluate(&gates(), &with_ratio(1.0))];
    // Attempts 0.7, missing, 1.0: the median is the breach.
    assert_eq!(breaches(&confirm(first, &again)).len(), 1);
}

#[test]
fn a_correctness_breach_is_never_re_measured_away() {
    let mut results = good();
    results[3].extra.insert("violations".into(), Value::from(1));
    let first = evaluate(&gates(), &results);
    let again = [evaluate(&gates(), &good()), evaluate(&gates(), &good())];
    let confirmed = confirm(first, &again);
    let failed = breaches(&confirmed);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(confirmed.iter().all(|v| v.attempts.is_empty()));
}

#[test]
fn a_latency_gate_with_a_baseline_judges_the_excess_over_it() {
    let gates: GateFile = toml::from_str(
        r#"
        [[gate]]
        name = "offloaded stage adds little lag"
        kind = "latency"
        scenario = "offload"
        variant = "offload-multi"
        metric = "lag.p99_us"
        baseline = { variant = "lag-baseline-multi", metric = "lag.p99_us" }
        max = 5000
        "#,
    )
    .unwrap();
    let lagged = |variant: &str, p99: u64| {
        let mut r = ScenarioResult::new("offload", variant);
        r.lag = Some(weir_harness::LagSeries {
            p99_us: p99,
            ..weir_harness::LagSeries::default()
        });
        r
    };
    // A loaded machine: 9 ms of lag, 8 of them the machine's own.
    let verdicts = evaluate(
        &gates,
        &[lagged("offload-multi", 9_000), lagged("lag-baseline-multi", 8_000)],
    );
    assert!(breaches(&verdicts).is_empty(), "{}", table(&verdicts));
    assert_eq!(verdicts[0].measured, Some(1_000.0));
    // The stage blocks the runtime: 40 ms over an idle 1 ms.
    let verdicts = evaluate(
        &gates,
        &[lagged("offload-multi", 41_000), lagged("lag-baseline-multi", 1_000)],
    );
    assert_eq!(breaches(&verdicts).len(), 1);
    // No baseline measured: the gate cannot be trusted, so it fails.
    assert_eq!(breaches(&evaluate(&gates, &[lagged("offload-multi", 1_000)])).len(), 1);
}

/// The flow figures of one quick run, as measured clean (2026-12-01, Intel,
/// with a CPU hog) or with `WEIR_LAB_INJECT=throughput,memory`.
fn flow_run(injected: bool) -> Vec<ScenarioResult> {
    const MIB: u64 = 1 << 20;
    let with = |variant: &str, params: &[(&str, Value)]| {
        let mut r = ScenarioResult::new("flow", variant);
        for (key, value) in params {
            r.params.insert((*key).into(), value.clone());
        }
        r
    };
    let mut results = Vec::new();
    for (variant, growth) in [("controlled-1", MIB), ("controlled-8", 3 * MIB / 2)] {
        let mut r = with(variant, &[("group", "backpressure".into())]);
        r.rss.baseline_bytes = 6 * MIB;
        r.rss.peak_bytes = 6 * MIB + growth;
        r.lag = Some(weir_harness::LagSeries {
            p99_us: 1_900,
            ..weir_harness::LagSeries::default()
        });
        r.extra.insert("idle_lag_p99_us".into(), Value::from(1_200));
        r.extra.insert("lag_over_idle_p99_us".into(), Value::from(700));
        results.push(r);
    }
    for size in [8 * MIB, 32 * MIB, 128 * MIB] {
        let mut r = with(
            "controlled-1",
            &[("group", "flat-memory".into()), ("size", size.into())],
        );
        r.rss.baseline_bytes = 6 * MIB;
        // The ballast: three fifths of the resident memory at the start, held.
        r.rss.peak_bytes = if injected { 11 * MIB } else { 15 * MIB / 2 };
        results.push(r);
    }
    let mut summary = with("summary", &[]);
    summary.extra.insert("flat_spread_bytes".into(), Value::from(MIB / 8));
    results.push(summary);
    for (sink, ratio) in [("null", if injected { 0.626 } else { 0.886 }), ("file", 0.95)] {
        let mut r = with("throughput", &[("sink", sink.into()), ("chunk_size", 65536.into())]);
        r.extra.insert("ratio".into(), Value::from(ratio));
        results.push(r);
    }
    results
}

fn committed_gates() -> GateFile {
    GateFile::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../gates.toml")).unwrap()
}

#[test]
fn the_injected_regressions_breach_exactly_their_gates() {
    let gates = committed_gates();
    let flow = GateFile {
        gates: gates.gates.into_iter().filter(|g| g.scenario == "flow").collect(),
    };
    let clean = evaluate(&flow, &flow_run(false));
    assert!(breaches(&clean).is_empty(), "a clean run passes: {}", table(&clean));
    let injected = evaluate(&flow, &flow_run(true));
    let mut breached: Vec<&str> = injected
        .iter()
        .filter(|v| !v.pass)
        .map(|v| v.gate.name.as_str())
        .collect();
    breached.dedup();
    assert_eq!(
        breached,
        [
            "flow: flat memory, synthetic -> NullSink: peak RSS regression guard",
            "flow: file -> NullSink vs plain std::fs read loop",
        ],
        "{}",
        table(&injected)
    );
}
