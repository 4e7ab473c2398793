//! The offload scenario's figures: checksum transforms against plain
//! hasher loops, CPU-heavy stages inline against offloaded, and the pool
//! comparison of the summary.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A checksum transform against a plain hasher loop (variants
/// `checksum-<algorithm>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChecksumRun {
    /// The plain loop's digest, which the transform's must equal.
    pub digest: String,
    /// Plain loop, best repetition, bytes per second.
    pub plain_bps: f64,
    /// Engine, best repetition, bytes per second.
    pub engine_bps: f64,
    /// Best over best: the gated figure.
    pub ratio: f64,
    /// Plain loop, median repetition.
    pub median_plain_bps: f64,
    /// Engine, median repetition.
    pub median_engine_bps: f64,
    /// Median over median.
    pub median_ratio: f64,
    /// Repetitions of each side.
    pub repetitions: u64,
    /// Wall time of all of them, seconds.
    pub measured_s: f64,
}

/// A CPU-heavy stage run one way (variants `offload-<flavor>-<way>`,
/// `hop-<flavor>-<way>`): the median run of its rounds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StageRun {
    /// CPU time the stage spent per chunk, microseconds.
    pub per_chunk_cpu_us: f64,
    /// Wall time per chunk, microseconds.
    pub per_chunk_us: f64,
    /// The chained digest of every chunk in order: equal across ways when
    /// every way keeps source order.
    pub burn_state: String,
    /// Every round's throughput, bytes per second, sorted.
    pub runs_bps: Vec<f64>,
    /// Every round's lag p99, microseconds.
    pub runs_lag_p99_us: Vec<u64>,
    /// The worst of them.
    pub worst_lag_p99_us: u64,
}

/// The summary result (variant `summary`): the pool comparison and the
/// load the run saw. Figures only: the verdicts are the gates'.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OffloadSummary {
    /// `rayon` against `spawn_blocking`, keyed `<group>-<flavor>`.
    pub pools: BTreeMap<String, PoolComparison>,
    /// Distinct chained digests over the ways of each `<group>-<flavor>`
    /// (1: every way kept source order).
    pub distinct_burn_states: BTreeMap<String, u64>,
    /// The inline stage on a current-thread runtime: its lag p99 over its
    /// CPU time per chunk (at least 1: the stage blocks the runtime).
    pub inline_lag_over_cpu_current_thread: Option<f64>,
    /// The variants whose run failed (none expected).
    pub failed_runs: Vec<String>,
    /// The machine's 1-minute load average before the run.
    pub load_average_before: Option<f64>,
    /// The same after it.
    pub load_average_after: Option<f64>,
}

/// One group and runtime flavor: the two pools against each other.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PoolComparison {
    /// `spawn_blocking` adapter, wall time per chunk, microseconds.
    pub spawn_blocking_per_chunk_us: f64,
    /// rayon adapter, the same.
    pub rayon_per_chunk_us: f64,
    /// Inline, the same (the stage's own cost).
    pub inline_per_chunk_us: f64,
    /// `spawn_blocking` minus inline: the hop's cost.
    pub spawn_blocking_hop_us: f64,
    /// rayon minus inline.
    pub rayon_hop_us: f64,
    /// `spawn_blocking` time over rayon's (above 1: rayon faster).
    pub rayon_over_spawn_blocking_throughput: f64,
    /// Lag p99 with `spawn_blocking`, microseconds.
    pub spawn_blocking_lag_p99_us: u64,
    /// Lag p99 with rayon.
    pub rayon_lag_p99_us: u64,
    /// Lag p99 of the idle runtime.
    pub idle_lag_p99_us: u64,
    /// `rayon` or `spawn_blocking`.
    pub faster: String,
}
