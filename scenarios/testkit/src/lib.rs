//! weir's test kit, the proof of the atomic invariant: chaos sources, transforms and sinks
//! driven by a [`FailureSchedule`], the lab's one call recorder ([`Recorded`]
//! wraps any sink and tells a [`Recorder`] every lifecycle call, byte and
//! write poll; the cancellation and validation scenarios count with it too),
//! the invariant [`check`], and a conformance runner that applies the same
//! checks to every sink the project ships.
//!
//! Every schedule is derived from a `u64` seed, so a failing case is
//! replayed exactly with `just replay SEED`.
//!
//! ```
//! use weir_testkit::{FailureSchedule, MemoryTarget, run_case};
//!
//! // A sink that fails on its eleventh write ("Database Connection Lost").
//! let mut schedule = FailureSchedule::clean(1, 20, 16);
//! schedule.write_fails_at = Some(10);
//! let outcome = run_case(&schedule, &mut MemoryTarget::default());
//! assert!(outcome.holds(), "{:?}", outcome.violations);
//! assert!(outcome.result.contains("Database Connection Lost") || outcome.result.contains("chunk 10"));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod check;
mod recorder;
mod runner;
mod schedule;
mod sink;
mod source;
mod suite;
mod targets;
mod transform;

pub use check::{Observed, check};
pub use recorder::{Counts, Event, Recorded, Recorder};
pub use runner::{CaseOutcome, Clock, conformance, options_for, quiet_chaos_panics, run_case};
pub use schedule::{AbortFault, FailureSchedule, FinalizeFault, TransformFault, TransformPlan};
pub use sink::ChaosSink;
pub use source::ChaosSource;
pub use suite::{cases_from_env, suite};
pub use targets::{FileTarget, MemoryTarget, NullTarget, SinkTarget, WriterCommit, WriterTarget};
pub use transform::ChaosTransform;
