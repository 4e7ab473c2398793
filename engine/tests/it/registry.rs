//! `Registry`: graceful shutdown drains what can finish, cancels the rest,
//! refuses newcomers, and says so.

use std::time::Duration;

use weir::{ErrorKind, IngestOptions, Registry};

use crate::support::{Call, Script, Scripted, chunks, source_of};

fn slow(delay_ms: u64) -> Scripted {
    Scripted::new(Script {
        write_delay: Some(Duration::from_millis(delay_ms)),
        ..Script::default()
    })
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_within_grace_then_cancels_and_refuses() {
    let registry = Registry::new();
    // Finishes in 10 x 10 ms = 100 ms: within the grace.
    let quick = slow(10);
    // Would need 10 x 1 s: cancelled when the 2 s grace runs out.
    let long = slow(1_000);
    // Never finishes its fourth write.
    let hung = Scripted::new(Script {
        hang_write: Some(3),
        ..Script::default()
    });
    let mut runs = Vec::new();
    for sink in [quick.clone(), long.clone(), hung.clone()] {
        let registry = registry.clone();
        runs.push(tokio::spawn(async move {
            registry
                .ingest(source_of(chunks(10, 100)), sink, IngestOptions::default())
                .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(registry.active(), 3);

    let shutdown = {
        let registry = registry.clone();
        tokio::spawn(async move { registry.shutdown(Duration::from_secs(2)).await })
    };
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(registry.is_shutting_down());

    // A newcomer during the drain is refused: source closed, sink aborted.
    let late = Scripted::default();
    let refused = registry
        .ingest(source_of(chunks(3, 10)), late.clone(), IngestOptions::default())
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Refused);
    assert_eq!(late.calls(), vec![Call::Abort(ErrorKind::Refused)]);

    let summary = shutdown.await.unwrap();
    let results: Vec<_> = futures_util::future::join_all(runs)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(results[0].is_ok(), "the quick one finished within the grace");
    assert_eq!(results[1].as_ref().unwrap_err().kind(), ErrorKind::Shutdown);
    assert_eq!(results[2].as_ref().unwrap_err().kind(), ErrorKind::Shutdown);
    for sink in [&long, &hung] {
        let aborts = sink.calls().iter().filter(|c| matches!(c, Call::Abort(_))).count();
        assert_eq!(aborts, 1, "aborted exactly once");
        assert!(!sink.calls().contains(&Call::Finalize));
    }
    assert_eq!(summary.completed, 1);
    assert_eq!(summary.aborted, 2);
    assert_eq!(summary.refused, 1);
    assert_eq!(summary.failed, 0);
    assert_eq!(summary.cancelled_at_deadline, 2);
    assert_eq!(summary.took, Duration::from_secs(2));
    assert_eq!(registry.active(), 0);
}

#[tokio::test(start_paused = true)]
async fn shutdown_of_an_idle_registry_returns_at_once() {
    let registry = Registry::new();
    let report = registry
        .ingest(source_of(chunks(2, 10)), Scripted::default(), IngestOptions::default())
        .await
        .unwrap();
    assert_eq!(report.bytes_written, 20);
    let summary = registry.shutdown(Duration::from_secs(30)).await;
    assert_eq!(summary.completed, 1);
    assert_eq!(summary.cancelled_at_deadline, 0);
    assert_eq!(summary.took, Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn the_abort_report_says_why_when_and_how_much() {
    let registry = Registry::new();
    let sink = slow(100);
    let run = {
        let registry = registry.clone();
        let sink = sink.clone();
        tokio::spawn(async move {
            registry
                .ingest(source_of(chunks(50, 1000)), sink, IngestOptions::default())
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(350)).await;
    registry.shutdown(Duration::from_millis(100)).await;
    let error = run.await.unwrap().unwrap_err();
    let abort = error.report().abort.clone().expect("the report describes the abort");
    assert_eq!(abort.reason, ErrorKind::Shutdown);
    // Started at 0; grace ran out at 450 ms; four 100 ms writes acknowledged.
    assert_eq!(abort.at, Duration::from_millis(450));
    assert_eq!(abort.bytes_acknowledged, 4_000);
    assert!(abort.clean);
    assert!(error.to_string().contains("cancelled by shutdown"), "{error}");
}

/// Regression: admission used to happen on the first poll, so ingestions
/// spawned just before a shutdown were refused instead of drained.
#[tokio::test(start_paused = true)]
async fn ingestions_spawned_before_a_shutdown_are_drained_not_refused() {
    let registry = Registry::new();
    let runs: Vec<_> = (0..5)
        .map(|_| tokio::spawn(registry.ingest(source_of(chunks(3, 10)), slow(10), IngestOptions::default())))
        .collect();
    // No yield between the spawns and the shutdown.
    let summary = registry.shutdown(Duration::from_secs(1)).await;
    for run in runs {
        assert!(run.await.unwrap().is_ok());
    }
    assert_eq!(summary.completed, 5);
    assert_eq!(summary.refused, 0);
}
