//! The terminal-state guard of one ingestion, as a typestate: at most one
//! terminal outcome, `abort` at most once, never `finalize` after `abort`.
//!
//! The ingest loop owns the only [`Running`] value of an ingestion and moves
//! it through consuming methods (`Running -> Finalizing -> committed`, or
//! `-> Aborting -> aborted`), so a wrong order does not compile. Nothing
//! else holds a part of the lifecycle: cancellation and shutdown reach the
//! loop only through its stop signal (`stop.rs`), which the loop looks at
//! itself before passing the commit point. With one party there is no race
//! to decide at run time, so there is no shared state and no atomic here;
//! what can race (the stop signal's wake-ups, the registry's admissions) has
//! its loom models in `loom_stop.rs` and `loom_registry.rs`.

/// The loop's token while the ingestion runs. Not `Clone`: one per ingestion.
#[derive(Debug)]
pub(crate) struct Running(());

/// Commit point passed: only `finalize`'s result decides now.
#[derive(Debug)]
#[must_use = "a finalizing ingestion must end committed or aborting"]
pub(crate) struct Finalizing(());

/// The one permission to call `abort`.
#[derive(Debug)]
#[must_use = "an aborting ingestion must end aborted"]
pub(crate) struct Aborting(());

/// Creates the lifecycle of a new ingestion.
pub(crate) fn new() -> Running {
    Running(())
}

impl Running {
    /// Passes the commit point: from here on cancellation has no effect.
    pub(crate) fn finalize(self) -> Finalizing {
        Finalizing(())
    }

    /// Fails before the commit point: the ingestion will abort.
    pub(crate) fn abort(self) -> Aborting {
        Aborting(())
    }
}

impl Finalizing {
    /// `finalize` returned `Ok`.
    pub(crate) fn committed(self) {}

    /// `finalize` returned `Err` (or timed out, or panicked): the sink must
    /// now be aborted, once.
    pub(crate) fn failed(self) -> Aborting {
        Aborting(())
    }
}

impl Aborting {
    /// `abort` has returned (or was given up on).
    pub(crate) fn aborted(self) {}
}
