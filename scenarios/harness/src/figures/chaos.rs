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
