//! loom models of the lifecycle guard: concurrent cancellation requests
//! racing the loop's commit point and its finalize/abort decisions. Run by
//! `just loom` (`RUSTFLAGS="--cfg weir_loom"`).

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use crate::lifecycle::{self, CancelRequest, Phase};

/// What the loop did, as the sink would see it.
#[derive(Default)]
struct SinkCalls {
    finalize_ok: AtomicUsize,
    finalize_err: AtomicUsize,
    aborts: AtomicUsize,
}

/// The loop's side: try to commit; `finalize_fails` decides finalize's result.
fn drive(running: lifecycle::Running, calls: &SinkCalls, finalize_fails: bool) {
    match running.finalize() {
        Ok(finalizing) => {
            if finalize_fails {
                calls.finalize_err.fetch_add(1, Ordering::SeqCst);
                let aborting = finalizing.failed();
                calls.aborts.fetch_add(1, Ordering::SeqCst);
                aborting.aborted();
            } else {
                calls.finalize_ok.fetch_add(1, Ordering::SeqCst);
                finalizing.committed();
            }
        }
        Err(aborting) => {
            calls.aborts.fetch_add(1, Ordering::SeqCst);
            aborting.aborted();
        }
    }
}

fn check(finalize_fails: bool, cancellers: usize) {
    loom::model(move || {
        let (running, handle) = lifecycle::new();
        let calls = Arc::new(SinkCalls::default());
        let accepted = Arc::new(AtomicUsize::new(0));

        let mut threads = Vec::new();
        for _ in 0..cancellers {
            let handle = handle.clone();
            let accepted = accepted.clone();
            threads.push(thread::spawn(move || {
                if handle.request_cancel() == CancelRequest::Accepted {
                    accepted.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        let loop_calls = calls.clone();
        threads.push(thread::spawn(move || drive(running, &loop_calls, finalize_fails)));
        for t in threads {
            t.join().unwrap();
        }

        let ok = calls.finalize_ok.load(Ordering::SeqCst);
        let err = calls.finalize_err.load(Ordering::SeqCst);
        let aborts = calls.aborts.load(Ordering::SeqCst);
        let accepted = accepted.load(Ordering::SeqCst);
        // Exactly one terminal outcome.
        assert_eq!(ok + aborts, 1, "ok={ok} aborts={aborts}");
        // Abort at most once, and never after a successful finalize.
        assert!(aborts <= 1);
        assert!(!(ok == 1 && aborts == 1));
        // A failed finalize is followed by exactly one abort.
        assert!(err == 0 || aborts == 1);
        // At most one request is accepted; an accepted one forbids a commit.
        assert!(accepted <= 1);
        if accepted == 1 {
            assert_eq!(ok, 0, "committed despite an accepted cancellation");
            assert_eq!(err, 0, "finalize called despite an accepted cancellation");
        }
        let end = handle.phase();
        if ok == 1 {
            assert_eq!(end, Phase::Committed);
        } else {
            assert_eq!(end, Phase::Aborted);
        }
    });
}

#[test]
fn cancel_races_commit() {
    check(false, 1);
}

#[test]
fn two_cancels_race_commit() {
    check(false, 2);
}

#[test]
fn cancel_races_failed_finalize() {
    check(true, 1);
}

#[test]
fn two_cancels_race_failed_finalize() {
    check(true, 2);
}
