//! Chart builders: one function per chart, from results to a chart model
//! (no drawing here).

mod lag;
mod rss;
mod throughput;

pub use lag::lag_over_time;
pub use rss::{controlled_vs_unbounded, flat_memory};
pub use throughput::throughput_bars;

/// Most points kept per series, so that figures stay small.
pub const MAX_POINTS: usize = 1500;
