//! The whole scenario at a small size, in this process (the shutdown part
//! sends SIGTERM to this test process, which nextest runs on its own): the
//! results are written and every check but the trial-count floor passes.

use std::time::Duration;

use weir_cancellation::{CancellationParams, MIN_HUNG_TRIALS, Part, ShutdownPlan, run_blocking};
use weir_harness::load_results;

#[test]
fn a_small_run_writes_every_result_and_its_checks_pass() {
    let out = tempfile::tempdir().unwrap();
    let params = CancellationParams {
        trials: 40,
        disconnect_trials: 8,
        shutdown: ShutdownPlan {
            ingestions: 50,
            longest: Duration::from_millis(1500),
            grace: Duration::from_millis(500),
            signal_after: Duration::from_millis(100),
            margin: Duration::from_millis(200),
            ..ShutdownPlan::default()
        },
        ..CancellationParams::default()
    };
    assert!(params.trials < MIN_HUNG_TRIALS);
    let results = run_blocking(&params, out.path()).unwrap();
    let variants: Vec<&str> = results.iter().map(|r| r.variant.as_str()).collect();
    assert_eq!(variants, ["hung", "slow", "disconnect", "shutdown", "summary"]);
    assert_eq!(load_results(out.path()).unwrap().len(), results.len());

    let checks = results.last().unwrap().extra["checks"].as_array().unwrap().clone();
    assert!(checks.len() > 15);
    for check in &checks {
        let name = check["name"].as_str().unwrap();
        if name == "hung: p99 cancel-to-return" {
            // 40 trials are below the floor's count: the check says so.
            assert_eq!(check["pass"], false, "{check}");
        } else {
            assert_eq!(check["pass"], true, "{check}");
        }
    }
    let shutdown = &results[3];
    assert!(
        shutdown.extra["signal_sent_ms"].as_f64().is_some(),
        "the process signalled itself"
    );
    assert!(!shutdown.extra["active_samples"].as_array().unwrap().is_empty());
    assert_eq!(Part::ALL.len() + 1, results.len());
}
