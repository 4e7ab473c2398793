//! Cancellation trials at a small count: every trial ends cancelled (or,
//! for slow sinks, committed first), no write after abort, nothing leaks.
//! No timing is asserted.

use weir_cancellation::{SinkMode, run_trials};

fn assert_clean(mode: SinkMode, trials: usize) -> weir_cancellation::TrialsReport {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(run_trials(mode, trials, 11, dir.path())).unwrap();
    assert_eq!(report.trials, trials);
    assert_eq!(report.unexpected, 0, "{:?}", report.unexpected_examples);
    assert_eq!(report.cancelled + report.committed, trials);
    assert_eq!(report.violations, 0, "{:?}", report.counts);
    assert_eq!(report.terminal_mismatches, 0);
    assert_eq!(report.byte_mismatches, 0);
    assert_eq!(
        report.count_leaked_fds(),
        0,
        "{} -> {}",
        report.fds_before,
        report.fds_after
    );
    assert_eq!(report.trials_with_fd_growth, 0);
    assert_eq!(report.temp_files_left, 0);
    assert_eq!(
        report.latency.count as usize, report.cancelled,
        "one latency per cancellation"
    );
    assert_eq!(
        report.counts.aborts as usize, report.cancelled,
        "each cancelled trial aborted once"
    );
    report
}

#[test]
fn hung_sinks_are_cancelled_without_waiting_for_the_hung_write() {
    let report = assert_clean(SinkMode::Hung, 60);
    assert_eq!(report.cancelled, 60, "a hung sink never commits");
    assert!(
        report.cancelled_while_hung > 0,
        "some cancellations land on a hung write"
    );
}

#[test]
fn slow_sinks_are_cancelled_or_finish_first() {
    let report = assert_clean(SinkMode::Slow, 60);
    assert!(report.cancelled > 0);
}
