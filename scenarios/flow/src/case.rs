//! One measured case: what flows, from where, into what, and how much. A
//! case is plain data (serde) so that a parent process can hand it to a
//! fresh child process to measure.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir_harness::inject::Injection;

/// How the bytes are moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// The engine: `weir::ingest` with at most this many writes in flight.
    Controlled {
        /// `max_in_flight` passed to the engine.
        max_in_flight: usize,
    },
    /// The broken way: every write spawned as its own task without waiting,
    /// bounded only by the [`UnboundedCap`] safety net.
    Unbounded,
}

impl Variant {
    /// The name used in results and on the command line: `controlled-1`,
    /// `controlled-8`, `unbounded`.
    pub fn name(&self) -> String {
        match self {
            Self::Controlled { max_in_flight } => format!("controlled-{max_in_flight}"),
            Self::Unbounded => "unbounded".to_owned(),
        }
    }
}

/// Where the bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// `weir_harness::SyntheticSource`: seeded bytes generated on the fly.
    Synthetic,
    /// `weir::source::FileSource` over a seeded test file written first.
    File,
}

impl SourceKind {
    /// `synthetic` or `file`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Synthetic => "synthetic",
            Self::File => "file",
        }
    }
}

/// How long one write takes on a [`SlowSink`](crate::SlowSink).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DelayModel {
    /// Every write takes the same time.
    Fixed {
        /// The delay, microseconds.
        micros: u64,
    },
    /// Exponentially distributed delays with this mean, drawn from a seeded
    /// generator in write order (so a run is reproducible), capped at ten
    /// times the mean.
    Exponential {
        /// The mean delay, microseconds.
        mean_micros: u64,
        /// The generator's seed.
        seed: u64,
    },
}

impl DelayModel {
    /// The mean delay.
    pub fn mean(&self) -> Duration {
        match *self {
            Self::Fixed { micros } => Duration::from_micros(micros),
            Self::Exponential { mean_micros, .. } => Duration::from_micros(mean_micros),
        }
    }
}

/// Where the bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkKind {
    /// `weir::NullSink`: discards at once.
    Null,
    /// `weir::FileSink` into the work directory (removed after the run).
    File,
    /// A [`SlowSink`](crate::SlowSink): one write at a time, each taking the
    /// model's delay.
    Slow(DelayModel),
}

impl SinkKind {
    /// `null`, `file`, `slow-1ms` or `slow-exp-1ms`.
    pub fn name(&self) -> String {
        match self {
            Self::Null => "null".to_owned(),
            Self::File => "file".to_owned(),
            Self::Slow(DelayModel::Fixed { micros }) => format!("slow-{}", human_micros(*micros)),
            Self::Slow(DelayModel::Exponential { mean_micros, .. }) => {
                format!("slow-exp-{}", human_micros(*mean_micros))
            }
        }
    }
}

fn human_micros(micros: u64) -> String {
    if micros.is_multiple_of(1000) {
        format!("{}ms", micros / 1000)
    } else {
        format!("{micros}us")
    }
}

/// The safety net that keeps the unbounded variant from eating the machine:
/// it stops reading once this many bytes are outstanding, and gives up on
/// the writes still pending after this long. Either is recorded in the
/// result (`extra.capped`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnboundedCap {
    /// Most bytes held by spawned, unfinished writes.
    pub max_outstanding_bytes: u64,
    /// Longest the run may take, milliseconds, draining included.
    pub max_millis: u64,
}

impl Default for UnboundedCap {
    /// 2 GiB outstanding, 120 s.
    fn default() -> Self {
        Self {
            max_outstanding_bytes: 2 << 30,
            max_millis: 120_000,
        }
    }
}

/// What a [`Case`] measures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseKind {
    /// One flow from a source into a sink, with RSS and runtime lag sampled.
    Flow {
        /// Controlled or unbounded.
        variant: Variant,
        /// The source.
        source: SourceKind,
        /// The sink.
        sink: SinkKind,
        /// Input size, bytes.
        size: u64,
        /// The unbounded variant's safety net (ignored by controlled runs).
        cap: UnboundedCap,
    },
    /// The engine against a plain `std::fs` loop over the same page-cached
    /// file with the same buffer size, alternating, in one process.
    Throughput {
        /// `Null` (read loop) or `File` (read/write loop); others are refused.
        sink: SinkKind,
        /// File size, bytes.
        size: u64,
        /// Rounds of each (engine and plain loop alternate, ABBA).
        rounds: usize,
        /// The engine's `max_in_flight`.
        max_in_flight: usize,
    },
}

/// One measurement: a case kind plus the settings every case shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    /// Which part of the study it belongs to: `backpressure`, `flat-memory`,
    /// `throughput`, or `adhoc` for runs picked on the command line.
    pub group: String,
    /// What is measured.
    pub kind: CaseKind,
    /// Chunk size (engine `chunk_size`, source chunk, plain-loop buffer).
    pub chunk_size: usize,
    /// Seed for the data and the delays.
    pub seed: u64,
    /// RSS sampling interval, milliseconds.
    pub sample_millis: u64,
    /// Identifies the run (the parent's start) this case belongs to.
    pub run_id: String,
    /// Scratch directory for input and output files.
    pub work_dir: PathBuf,
    /// Lab-only injected regressions (`WEIR_LAB_INJECT`), none by default.
    #[serde(default)]
    pub inject: Injection,
}

impl Case {
    /// The result's variant name: `controlled-1`, `unbounded`, `throughput`.
    pub fn variant_name(&self) -> String {
        match &self.kind {
            CaseKind::Flow { variant, .. } => variant.name(),
            CaseKind::Throughput { .. } => "throughput".to_owned(),
        }
    }

    /// Input size, bytes.
    pub fn size(&self) -> u64 {
        match &self.kind {
            CaseKind::Flow { size, .. } | CaseKind::Throughput { size, .. } => *size,
        }
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = self.size() as f64 / f64::from(1 << 20);
        match &self.kind {
            CaseKind::Flow {
                variant, source, sink, ..
            } => write!(
                f,
                "{} {} {} -> {} {mib:.0} MiB",
                self.group,
                variant.name(),
                source.name(),
                sink.name()
            ),
            CaseKind::Throughput { sink, .. } => {
                write!(f, "{} file -> {} {mib:.0} MiB", self.group, sink.name())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_round_trip_through_json() {
        let case = Case {
            group: "backpressure".into(),
            kind: CaseKind::Flow {
                variant: Variant::Controlled { max_in_flight: 8 },
                source: SourceKind::Synthetic,
                sink: SinkKind::Slow(DelayModel::Exponential {
                    mean_micros: 1000,
                    seed: 3,
                }),
                size: 1 << 30,
                cap: UnboundedCap::default(),
            },
            chunk_size: 65536,
            seed: 42,
            sample_millis: 10,
            run_id: "r".into(),
            work_dir: PathBuf::from("/tmp/x"),
            inject: Injection {
                throughput: true,
                memory: false,
            },
        };
        let json = serde_json::to_string(&case).unwrap();
        assert_eq!(serde_json::from_str::<Case>(&json).unwrap(), case);
        assert_eq!(case.variant_name(), "controlled-8");
        assert_eq!(
            case.to_string(),
            "backpressure controlled-8 synthetic -> slow-exp-1ms 1024 MiB"
        );
    }

    #[test]
    fn sink_names_say_the_delay() {
        assert_eq!(SinkKind::Slow(DelayModel::Fixed { micros: 1000 }).name(), "slow-1ms");
        assert_eq!(SinkKind::Slow(DelayModel::Fixed { micros: 250 }).name(), "slow-250us");
        assert_eq!(SinkKind::Null.name(), "null");
    }
}
