//! The chaos scenario's figures: one result per shipped sink, the test
//! kit's failure schedules run against it.

use serde::{Deserialize, Serialize};

/// What one sink's batch of schedules found (variant: the sink's name).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChaosRun {
    /// Schedules run.
    pub schedules: u64,
    /// Schedules that ended committed.
    pub committed: u64,
    /// Schedules that ended aborted.
    pub aborted: u64,
    /// Schedules that broke the invariant (must be 0).
    pub violations: u64,
    /// The first few broken schedules, to replay.
    pub failures: Vec<ChaosFailure>,
    /// What each way of ending did, by the kind of the returned error
    /// (`committed` for the schedules that committed), in the order first
    /// seen.
    pub by_kind: Vec<ChaosKind>,
}

/// The schedules that ended one way, and what the sink saw of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChaosKind {
    /// `committed`, or the error's kind (`write`, `source`, `cancelled`,
    /// `finalize`, ...).
    pub kind: String,
    /// Schedules that ended this way.
    pub schedules: u64,
    /// Of those, the ones whose sink saw `finalize` called.
    pub finalize_called: u64,
    /// Of those, the ones whose sink saw exactly one `abort`.
    pub aborted_once: u64,
    /// Of those, the ones whose sink saw more than one `abort` (must be 0).
    pub aborted_twice: u64,
    /// Of those, the ones whose error kept a failed or hung abort beside
    /// the root cause.
    pub abort_failure_kept: u64,
    /// Of those, the ones that broke the invariant.
    pub violations: u64,
}

/// One schedule that broke the invariant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChaosFailure {
    /// The schedule's seed.
    pub seed: u64,
    /// Which points of the invariant it broke, in words.
    pub violations: Vec<String>,
    /// The command that re-runs it (`just replay <seed> <sink>`).
    pub replay: String,
}

impl ChaosKind {
    /// Adds `row` to the row of its kind in `rows`, or appends it: how the
    /// scenario counts its schedules and how the report sums the sinks.
    pub fn tally(rows: &mut Vec<ChaosKind>, row: ChaosKind) {
        let Some(into) = rows.iter_mut().find(|r| r.kind == row.kind) else {
            rows.push(row);
            return;
        };
        into.schedules += row.schedules;
        into.finalize_called += row.finalize_called;
        into.aborted_once += row.aborted_once;
        into.aborted_twice += row.aborted_twice;
        into.abort_failure_kept += row.abort_failure_kept;
        into.violations += row.violations;
    }
}
