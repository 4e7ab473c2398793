//! Integration test of the transforms scenario: a tiny profile runs end to
//! end and writes one result per run plus the summary.

use std::time::Duration;

use weir_harness::load_results;
use weir_offload::{OffloadSummary, TransformsParams, run};

fn tiny() -> TransformsParams {
    TransformsParams {
        checksum_bytes: 2 << 20,
        repetitions: 2,
        heavy_bytes: 2 << 20,
        heavy_rounds: 2,
        offload_repetitions: 1,
        hop_repetitions: 1,
        hop_chunks: 200,
        lag_interval: Duration::from_millis(1),
        ..TransformsParams::default()
    }
}

#[test]
fn a_tiny_profile_writes_every_result_and_the_summary() {
    let out = tempfile::tempdir().unwrap();
    let results = run(&tiny(), out.path()).unwrap();

    // 3 checksums, 2 lag baselines, 2 groups x 2 runtimes x 4 ways, the
    // no-yield way of the CPU-heavy group on both runtimes, the summary.
    assert_eq!(results.len(), 3 + 2 + 16 + 2 + 1);
    for flavor in ["current_thread", "multi_thread"] {
        let variant = format!("offload-{flavor}-inline-no-yield");
        assert!(results.iter().any(|r| r.variant == variant), "no {variant}");
        assert!(
            !results
                .iter()
                .any(|r| r.variant == format!("hop-{flavor}-inline-no-yield")),
            "the cheap hop stage has no no-yield way"
        );
    }
    assert_eq!(load_results(out.path()).unwrap().len(), results.len());
    for result in &results[..results.len() - 1] {
        assert!(result.is_ok(), "{}: {}", result.variant, result.outcome);
        if !result.variant.starts_with("lag-baseline") {
            assert!(result.bytes > 0 && result.throughput_bps > 0.0, "{}", result.variant);
        }
        assert_eq!(result.params["seed"], 42);
    }
    for result in &results {
        weir_harness::figures::conforms(result).unwrap();
    }
    let summary = results.last().unwrap();
    assert_eq!(summary.variant, "summary");
    let figures = summary.figures::<OffloadSummary>().unwrap();
    // Order is kept by every way on both runtimes, and the runs all
    // completed: these do not depend on timing.
    assert_eq!(figures.distinct_burn_states.len(), 4, "{figures:#?}");
    assert!(figures.distinct_burn_states.values().all(|&n| n == 1), "{figures:#?}");
    assert!(figures.failed_runs.is_empty(), "{figures:#?}");
    // An inline stage blocks its current-thread runtime for at least the
    // stage's own CPU time (both measured in the same run).
    assert!(
        figures.inline_lag_over_cpu_current_thread.unwrap() >= 1.0,
        "{figures:#?}"
    );
    assert!(figures.pools["offload-multi_thread"].rayon_per_chunk_us > 0.0);
    assert!(figures.load_average_before.is_some());
}

#[test]
fn invalid_parameters_are_refused_before_anything_runs() {
    let out = tempfile::tempdir().unwrap();
    for params in [
        TransformsParams {
            heavy_chunk_size: 0,
            ..tiny()
        },
        TransformsParams {
            repetitions: 0,
            ..tiny()
        },
        TransformsParams {
            lag_interval: Duration::ZERO,
            ..tiny()
        },
    ] {
        let error = run(&params, out.path()).unwrap_err();
        assert!(error.to_string().starts_with("invalid parameters"), "{error}");
    }
    assert!(load_results(out.path()).unwrap().is_empty());
}
