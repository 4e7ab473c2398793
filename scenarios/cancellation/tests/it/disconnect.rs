//! Client disconnects over real TCP on 127.0.0.1: a hang-up mid-stream
//! (FIN or RST) fails the ingestion with a source error and aborts the sink;
//! a complete upload commits; nothing leaks.

use weir_cancellation::{DisconnectPlan, HangUp, run_disconnects};
use weir_harness::open_fds;

fn plan(hang_up: HangUp, promised: u64, sent: u64, file_sink: bool) -> DisconnectPlan {
    DisconnectPlan {
        index: 0,
        hang_up,
        promised,
        sent,
        file_sink,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_close_before_the_promised_length_is_a_source_error() {
    let dir = tempfile::tempdir().unwrap();
    let fds = open_fds();
    let outcome = weir_cancellation::disconnect_trial(plan(HangUp::Close, 1 << 20, 300_000, true), dir.path())
        .await
        .unwrap();
    assert!(outcome.as_expected, "{outcome:?}");
    assert_eq!(outcome.outcome, "source");
    let error = outcome.error.unwrap();
    assert!(
        error.contains("the peer closed the connection after 300000 of 1048576 promised bytes"),
        "{error}"
    );
    assert_eq!(outcome.counts.aborts, 1);
    assert_eq!(outcome.temp_files_left, 0);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no target, no temporary file"
    );
    assert_eq!(open_fds(), fds);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_mid_stream_is_a_source_error() {
    let dir = tempfile::tempdir().unwrap();
    let fds = open_fds();
    let outcome = weir_cancellation::disconnect_trial(plan(HangUp::Reset, 1 << 20, 200_000, false), dir.path())
        .await
        .unwrap();
    assert!(outcome.as_expected, "{outcome:?}");
    assert_eq!(outcome.outcome, "source");
    assert!(outcome.bytes_read <= 200_000);
    assert_eq!(open_fds(), fds);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hang_up_right_after_the_prefix_aborts_before_any_write() {
    let dir = tempfile::tempdir().unwrap();
    for hang_up in [HangUp::Close, HangUp::Reset] {
        let outcome = weir_cancellation::disconnect_trial(plan(hang_up, 4096, 0, true), dir.path())
            .await
            .unwrap();
        assert!(outcome.as_expected, "{outcome:?}");
        assert_eq!(outcome.counts.writes_called, 0);
        assert_eq!(outcome.counts.aborts, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_upload_commits_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    for file_sink in [true, false] {
        let outcome =
            weir_cancellation::disconnect_trial(plan(HangUp::Complete, 500_000, 500_000, file_sink), dir.path())
                .await
                .unwrap();
        assert!(outcome.as_expected, "{outcome:?}");
        assert_eq!(outcome.outcome, "committed");
        assert_eq!(outcome.counts.bytes_acknowledged, 500_000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_disconnects_all_end_as_expected_and_leak_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let report = run_disconnects(16, 5, dir.path()).await.unwrap();
    assert_eq!(report.as_expected, report.trials, "{:?}", report.unexpected_examples);
    assert!(report.closed + report.reset > 0);
    assert_eq!(report.violations, 0);
    assert_eq!(report.count_leaked_fds(), 0);
    assert_eq!(report.temp_files_left, 0);
}
