//! The scenario's quick profile, scaled down: every variant runs, is
//! verified, and the COPY result carries its ratios to the baselines.

use weir_datasync_lab::{DatasyncParams, VARIANTS, run};
use weir_harness::figures::datasync::{DatasyncEncoding, DatasyncRun, DatasyncScale};

use crate::support::database_url;

#[test]
fn every_variant_runs_verified_and_the_ratios_are_reported() {
    let out = tempfile::tempdir().unwrap();
    let params = DatasyncParams {
        events: 6_000,
        row_by_row_events: 1_000,
        encoding_events: 2_000,
        segment_events: 1_500,
        faults: crate::support::quick_faults(),
        database_url: Some(database_url()),
        // The jetstream variants have a test of their own.
        variants: VARIANTS
            .iter()
            .filter(|v| !v.starts_with("jetstream-"))
            .map(|v| (*v).to_owned())
            .collect(),
        ..DatasyncParams::default()
    };
    let results = run(&params, out.path()).unwrap();
    assert_eq!(results.len(), VARIANTS.len() - 3);
    for result in &results {
        assert!(result.is_ok(), "{}: {}", result.variant, result.outcome);
        weir_harness::figures::conforms(result).unwrap();
    }
    for result in results.iter().filter(|r| r.variant != "copy-encoding") {
        let f = result.figures::<DatasyncRun>().unwrap();
        assert!(f.verified, "{}", result.variant);
        assert!(f.events_per_s > 0.0, "{}: {f:?}", result.variant);
        assert!(
            f.api.get("requests").is_some_and(|&n| n > 0),
            "{}: {f:?}",
            result.variant
        );
    }
    let copy = results.iter().find(|r| r.variant == "copy").unwrap();
    // CPU accounting (10 ms ticks: a run this small may spend none):
    // always for this process; for PostgreSQL when it runs here, as
    // `just pg-up` starts it.
    let f = copy.figures::<DatasyncRun>().unwrap();
    assert!(f.cpu_client_s.is_some_and(|s| s >= 0.0), "{f:?}");
    let url = database_url();
    if url.contains("@127.0.0.1") || url.contains("@localhost") {
        assert!(
            f.cpu_postgres_s.is_some_and(|s| s >= 0.0),
            "no PostgreSQL CPU figure with a local server: {f:?}"
        );
    }
    for (name, ratio) in [
        ("row-by-row", f.speedup_vs_row_by_row),
        ("row-by-row autocommit", f.speedup_vs_row_by_row_autocommit),
        ("two-stage TSV", f.speedup_vs_two_stage_tsv),
        ("copy-staging", f.speedup_vs_copy_staging),
    ] {
        assert!(ratio.is_some_and(|r| r > 0.0), "{name}: {f:?}");
    }
    // The gated paths read the same figures.
    assert_eq!(copy.metric("extra.speedup_vs_row_by_row"), f.speedup_vs_row_by_row);
    assert_eq!(copy.metric("extra.verified"), Some(1.0));
    let encoding = results.iter().find(|r| r.variant == "copy-encoding").unwrap();
    let e = encoding.figures::<DatasyncEncoding>().unwrap();
    assert!(e.pre_encoded_speedup > 0.0, "{e:?}");
    for (name, ceiling) in [
        ("one connection", e.pg_copy_ceiling_rows_per_s_1conn),
        ("two connections", e.pg_copy_ceiling_rows_per_s_2conn),
        ("over row-by-row", e.pg_copy_ceiling_vs_row_by_row),
    ] {
        assert!(ceiling.is_some_and(|c| c > 0.0), "{name}: {e:?}");
    }
    let written = weir_harness::load_results(out.path()).unwrap();
    assert_eq!(written.len(), VARIANTS.len() - 3);
}

#[test]
fn unknown_variants_are_refused() {
    let params = DatasyncParams {
        variants: vec!["nope".to_owned()],
        database_url: Some("postgres://127.0.0.1:9/x".to_owned()),
        ..DatasyncParams::default()
    };
    let error = run(&params, std::path::Path::new("unused")).unwrap_err().to_string();
    assert!(error.contains("nope") && error.contains("row-by-row"), "{error}");
}

/// `weir-datasync` (this workspace's binary, built beside the tests by
/// `just test`): the worker process of the jetstream variants.
pub(crate) fn worker_command() -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(std::path::Path::parent).unwrap();
    let worker = dir.join("weir-datasync");
    assert!(
        worker.is_file(),
        "{} is missing: build it first (`cargo build -p weir-datasync`; `just test` builds every binary)",
        worker.display()
    );
    vec![worker.display().to_string(), "worker".to_owned()]
}

#[test]
fn the_jetstream_variants_load_exactly_and_pair_one_worker_with_the_job() {
    let out = tempfile::tempdir().unwrap();
    let params = DatasyncParams {
        events: 6_000,
        segment_events: 1_500,
        faults: crate::support::quick_faults(),
        database_url: Some(database_url()),
        variants: vec!["jetstream-1".to_owned(), "jetstream-2".to_owned()],
        worker_command: worker_command(),
        scale_rounds: 2,
        ..DatasyncParams::default()
    };
    let results = run(&params, out.path()).unwrap();
    assert_eq!(results.len(), 2);
    for result in &results {
        assert!(result.is_ok(), "{}: {}", result.variant, result.outcome);
        weir_harness::figures::conforms(result).unwrap();
        let f = result.figures::<DatasyncScale>().unwrap();
        assert!(f.verified && f.events_per_s > 0.0, "{}: {f:?}", result.variant);
        assert!(f.cpu_workers_us_per_event.is_some(), "{f:?}");
    }
    let one = results[0].figures::<DatasyncScale>().unwrap();
    let rounds = one.vs_single_process_rounds.expect("the paired rounds");
    assert_eq!(rounds.rounds.len(), 2);
    assert_eq!(one.vs_single_process, Some(rounds.median));
    assert!(
        results[1]
            .figures::<DatasyncScale>()
            .unwrap()
            .vs_single_process
            .is_none()
    );
}

#[test]
fn the_jetstream_variants_without_a_worker_command_say_so() {
    let out = tempfile::tempdir().unwrap();
    let params = DatasyncParams {
        events: 100,
        database_url: Some(database_url()),
        variants: vec!["jetstream-4".to_owned()],
        ..DatasyncParams::default()
    };
    let results = run(&params, out.path()).unwrap();
    assert!(results[0].outcome.contains("worker command"), "{}", results[0].outcome);
}
