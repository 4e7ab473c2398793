//! The whole scenario at a small size, in this process (the shutdown part
//! sends SIGTERM to this test process, which nextest runs on its own): the
//! results are written, and every count that admits no exception is 0
//! (timings are the gates' business).

use std::time::Duration;

use weir_cancellation::{
    CancellationParams, DisconnectReport, MIN_HUNG_TRIALS, Part, ShutdownPlan, ShutdownRun, TrialsReport, run_blocking,
};
use weir_harness::load_results;

#[test]
fn a_small_run_writes_every_result_and_leaves_nothing_behind() {
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
    assert_eq!(variants, ["hung", "slow", "disconnect", "shutdown"]);
    assert_eq!(load_results(out.path()).unwrap().len(), results.len());

    for result in &results {
        weir_harness::figures::conforms(result).unwrap();
    }
    for trials in &results[..2] {
        let f = trials.figures::<TrialsReport>().unwrap();
        assert_eq!(f.trials, 40, "{}", trials.variant);
        assert!(f.cancelled > 0, "{f:?}");
        assert_eq!(f.latency.count, f.cancelled as u64, "{f:?}");
        let zero = [
            f.unexpected,
            f.terminal_mismatches,
            f.byte_mismatches,
            f.leaked_fds,
            f.trials_with_fd_growth,
            f.temp_files_left,
        ];
        assert_eq!(zero, [0; 6], "{f:?}");
        assert_eq!(f.violations, 0, "{f:?}");
        assert_eq!(trials.metric("extra.latency.p99_us"), Some(f.latency.p99_us));
    }
    let disconnect = results[2].figures::<DisconnectReport>().unwrap();
    assert_eq!(disconnect.as_expected, disconnect.trials, "{disconnect:?}");
    assert!(disconnect.closed + disconnect.reset > 0, "{disconnect:?}");
    assert_eq!(
        (disconnect.violations, disconnect.leaked_fds, disconnect.temp_files_left),
        (0, 0, 0),
        "{disconnect:?}"
    );
    let shutdown = results[3].figures::<ShutdownRun>().unwrap();
    assert!(shutdown.signal_sent_ms.is_some(), "the process signalled itself");
    assert!(!shutdown.active_samples.is_empty());
    assert_eq!(
        (
            shutdown.not_as_expected,
            shutdown.violations,
            shutdown.late_not_clean,
            shutdown.active_at_end
        ),
        (0, 0, 0, 0),
        "{shutdown:?}"
    );
    assert!(
        shutdown.temp_files_left.is_empty() && shutdown.target_mismatches.is_empty(),
        "{shutdown:?}"
    );
    assert_eq!(Part::ALL.len(), results.len());
}
