//! The terminal-state guard of one ingestion: at most one terminal outcome,
//! `abort` at most once, and a commit point after which cancellation is too
//! late.
//!
//! The ingest loop owns the only [`Running`] value and moves it through
//! consuming methods (`Running -> Finalizing -> Committed`, or `-> Aborting
//! -> Aborted`), so a wrong order does not compile. Other parties (a
//! cancellation watcher, a shutdown registry) hold a [`LifecycleHandle`] and
//! may only *request* cancellation; the request races with the loop's commit
//! point and the shared state decides the winner atomically. The loom models
//! in `loom_lifecycle.rs` check this.

use crate::sync::{Arc, AtomicU8, Ordering};

const RUNNING: u8 = 0;
const CANCEL_REQUESTED: u8 = 1;
const FINALIZING: u8 = 2;
const COMMITTED: u8 = 3;
const ABORTING: u8 = 4;
const ABORTED: u8 = 5;

/// Where an ingestion stands, as others can observe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Running,
    CancelRequested,
    Finalizing,
    Committed,
    Aborting,
    Aborted,
}

fn phase(raw: u8) -> Phase {
    match raw {
        RUNNING => Phase::Running,
        CANCEL_REQUESTED => Phase::CancelRequested,
        FINALIZING => Phase::Finalizing,
        COMMITTED => Phase::Committed,
        ABORTING => Phase::Aborting,
        _ => Phase::Aborted,
    }
}

/// The answer to a cancellation request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CancelRequest {
    /// The ingestion had not passed its commit point: it will abort.
    Accepted,
    /// Someone else's request was accepted first: it will abort.
    AlreadyRequested,
    /// The commit point had passed (or the ingestion already ended); the
    /// outcome is decided by `finalize`.
    TooLate(Phase),
}

/// Shared view of one ingestion's lifecycle.
#[derive(Debug, Clone)]
pub(crate) struct LifecycleHandle {
    state: Arc<AtomicU8>,
}

impl LifecycleHandle {
    /// Asks the ingestion to abort instead of committing.
    pub(crate) fn request_cancel(&self) -> CancelRequest {
        match self
            .state
            .compare_exchange(RUNNING, CANCEL_REQUESTED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => CancelRequest::Accepted,
            Err(CANCEL_REQUESTED) => CancelRequest::AlreadyRequested,
            Err(other) => CancelRequest::TooLate(phase(other)),
        }
    }

    /// The current phase.
    #[cfg_attr(not(any(test, weir_loom)), allow(dead_code))]
    pub(crate) fn phase(&self) -> Phase {
        phase(self.state.load(Ordering::Acquire))
    }
}

/// The loop's token while the ingestion runs. Not `Clone`: one per ingestion.
#[derive(Debug)]
pub(crate) struct Running {
    state: Arc<AtomicU8>,
}

/// Commit point passed: only `finalize`'s result decides now.
#[derive(Debug)]
#[must_use = "a finalizing ingestion must end committed or aborting"]
pub(crate) struct Finalizing {
    state: Arc<AtomicU8>,
}

/// The one permission to call `abort`.
#[derive(Debug)]
#[must_use = "an aborting ingestion must end aborted"]
pub(crate) struct Aborting {
    state: Arc<AtomicU8>,
}

/// Creates the lifecycle of a new ingestion.
pub(crate) fn new() -> (Running, LifecycleHandle) {
    let state = Arc::new(AtomicU8::new(RUNNING));
    (Running { state: state.clone() }, LifecycleHandle { state })
}

impl Running {
    /// Tries to pass the commit point. Fails (handing back the abort
    /// permission) when a cancellation request got there first.
    pub(crate) fn finalize(self) -> Result<Finalizing, Aborting> {
        match self
            .state
            .compare_exchange(RUNNING, FINALIZING, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Ok(Finalizing { state: self.state }),
            Err(_) => {
                // Only a cancellation request moves the state while the loop
                // holds `Running`.
                self.state.store(ABORTING, Ordering::Release);
                Err(Aborting { state: self.state })
            }
        }
    }

    /// Fails before the commit point: the ingestion will abort.
    pub(crate) fn abort(self) -> Aborting {
        self.state.store(ABORTING, Ordering::Release);
        Aborting { state: self.state }
    }
}

impl Finalizing {
    /// `finalize` returned `Ok`.
    pub(crate) fn committed(self) {
        self.state.store(COMMITTED, Ordering::Release);
    }

    /// `finalize` returned `Err`: the sink must now be aborted, once.
    pub(crate) fn failed(self) -> Aborting {
        self.state.store(ABORTING, Ordering::Release);
        Aborting { state: self.state }
    }
}

impl Aborting {
    /// `abort` has returned (or was given up on).
    pub(crate) fn aborted(self) {
        self.state.store(ABORTED, Ordering::Release);
    }
}

#[cfg(all(test, not(weir_loom)))]
mod tests {
    use super::*;

    #[test]
    fn cancel_before_commit_point_wins() {
        let (running, handle) = new();
        assert_eq!(handle.request_cancel(), CancelRequest::Accepted);
        assert_eq!(handle.request_cancel(), CancelRequest::AlreadyRequested);
        let aborting = running.finalize().expect_err("cancel came first");
        assert_eq!(handle.phase(), Phase::Aborting);
        aborting.aborted();
        assert_eq!(handle.phase(), Phase::Aborted);
    }

    #[test]
    fn cancel_after_commit_point_is_too_late() {
        let (running, handle) = new();
        let finalizing = running.finalize().expect("no cancel yet");
        assert_eq!(handle.request_cancel(), CancelRequest::TooLate(Phase::Finalizing));
        finalizing.committed();
        assert_eq!(handle.request_cancel(), CancelRequest::TooLate(Phase::Committed));
    }

    #[test]
    fn failed_finalize_leads_to_one_abort() {
        let (running, handle) = new();
        let aborting = running.finalize().expect("no cancel").failed();
        assert_eq!(handle.phase(), Phase::Aborting);
        aborting.aborted();
        assert_eq!(handle.phase(), Phase::Aborted);
    }
}
