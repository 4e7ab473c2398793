//! The `bench` pseudo-scenario's figures: criterion's estimates, read by
//! [`crate::criterion_results`].

use serde::{Deserialize, Serialize};

/// One criterion benchmark (variant `<group>/<function>/<parameter>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BenchEstimate {
    /// Mean time per iteration, nanoseconds.
    pub mean_ns: f64,
    /// The group's `raw` baseline time over this one's (higher is faster),
    /// where the group has a `raw` function with the same parameter.
    pub ratio_vs_raw: Option<f64>,
}
