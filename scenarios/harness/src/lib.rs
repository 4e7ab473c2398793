//! Shared measurement harness for weir's scenarios: what every scenario run
//! records, measured the same way.
//!
//! - [`RssSampler`]: resident memory sampled from a background thread during
//!   the run (10 ms by default), not just at start and end.
//! - [`LagProbe`]: a heartbeat task on the runtime that records how late
//!   each tick fires: a blocked runtime shows up as lag.
//! - [`open_fds`], [`Machine`], [`git_revision`]: leak accounting and
//!   provenance.
//! - [`ScenarioResult`]: the one JSON result format every run writes, its
//!   scenario's typed [`figures`] in `extra`.
//! - [`SyntheticSource`] and [`write_test_file`]: deterministic, seeded
//!   input of any size, generated on the fly.
//! - [`cpu_seconds`], [`tree_cpu_seconds`]: CPU time of this process or of
//!   a server's process tree, from `/proc`.
//! - [`PairedRatio`]: a ratio from paired, interleaved rounds (the median
//!   of per-round ratios, with its spread), the way every timing is compared.
//! - [`parse_bytes`]: byte sizes on the lab's command lines.
//! - [`criterion_results`]: criterion's estimates as results, so benches
//!   flow into the same report and gate.
//!
//! ```
//! use std::time::Duration;
//! use weir_harness::RssSampler;
//!
//! let sampler = RssSampler::start(Duration::from_millis(5));
//! let buffer = vec![1u8; 4 << 20];
//! std::thread::sleep(Duration::from_millis(20));
//! let rss = sampler.stop();
//! assert!(rss.peak_bytes >= rss.baseline_bytes);
//! assert!(!rss.samples.is_empty());
//! drop(buffer);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cpu;
mod criterion;
mod error_text;
mod fds;
pub mod figures;
pub mod inject;
mod lag;
mod paired;
mod result;
mod rss;
mod runtime;
mod size;
mod synthetic;

pub use cpu::{child_pids, cpu_seconds, load_average, parent_pid, process_name, tree_cpu_seconds};
pub use criterion::criterion_results;
pub use error_text::{IoError, error_text, io_error};
pub use fds::open_fds;
pub use lag::{LagProbe, LagSeries};
pub use paired::{PairedRatio, Round, a_first, median, quantile};
pub use result::{Machine, ScenarioResult, git_revision, load_results, unix_now};
pub use rss::{RssSampler, RssSeries, current_rss};
pub use runtime::runtime;
pub use size::parse_bytes;
pub use synthetic::{SyntheticSource, synthetic_bytes, write_test_file, write_text_file};
