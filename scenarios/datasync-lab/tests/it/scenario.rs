//! The scenario's quick profile, scaled down: every variant runs, is
//! verified, and the COPY result carries its ratios to the baselines.

use weir_datasync_lab::{DatasyncParams, VARIANTS, run};

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
        ..DatasyncParams::default()
    };
    let results = run(&params, out.path()).unwrap();
    assert_eq!(results.len(), VARIANTS.len());
    for result in &results {
        assert!(result.is_ok(), "{}: {}", result.variant, result.outcome);
    }
    for result in results.iter().filter(|r| r.variant != "copy-encoding") {
        assert_eq!(result.extra["verified"], true, "{}", result.variant);
        assert!(result.extra["events_per_s"].as_f64().unwrap() > 0.0);
    }
    let copy = results.iter().find(|r| r.variant == "copy").unwrap();
    // CPU accounting (10 ms ticks: a run this small may spend none):
    // always for this process; for PostgreSQL when it runs here, as
    // `just pg-up` starts it.
    let spent = |key: &str| copy.extra.get(key).and_then(serde_json::Value::as_f64);
    assert!(spent("cpu_client_s").is_some_and(|s| s >= 0.0), "{:?}", copy.extra);
    let url = database_url();
    if url.contains("@127.0.0.1") || url.contains("@localhost") {
        assert!(
            spent("cpu_postgres_s").is_some_and(|s| s >= 0.0),
            "no PostgreSQL CPU figure with a local server: {:?}",
            copy.extra
        );
    }
    for ratio in [
        "speedup_vs_row_by_row",
        "speedup_vs_row_by_row_autocommit",
        "speedup_vs_two_stage_tsv",
        "speedup_vs_copy_staging",
    ] {
        assert!(copy.extra[ratio].as_f64().unwrap() > 0.0, "{ratio}");
    }
    let encoding = results.iter().find(|r| r.variant == "copy-encoding").unwrap();
    assert!(encoding.extra["pre_encoded_speedup"].as_f64().unwrap() > 0.0);
    for ceiling in [
        "pg_copy_ceiling_rows_per_s_1conn",
        "pg_copy_ceiling_rows_per_s_2conn",
        "pg_copy_ceiling_vs_row_by_row",
    ] {
        assert!(encoding.extra[ceiling].as_f64().unwrap() > 0.0, "{ceiling}");
    }
    let written = weir_harness::load_results(out.path()).unwrap();
    assert_eq!(written.len(), VARIANTS.len());
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
