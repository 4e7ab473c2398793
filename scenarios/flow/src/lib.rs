//! Flow research for weir: what backpressure buys.
//!
//! - **Controlled** flow is the engine (`weir::ingest`) with at most 1 or N
//!   writes in flight; **unbounded** flow is the broken way, every write
//!   spawned without waiting ([`run_unbounded`], which lives here and never
//!   in the engine), behind a safety net ([`UnboundedCap`]).
//! - Sinks: null, file, and [`SlowSink`] (a serial device with a fixed or
//!   seeded random delay per write); sources: synthetic and file.
//! - The flat-memory proof: the same pipeline at several sizes (100 MiB,
//!   1 GiB, 10 GiB in the full profile), peak RSS for each and the slope.
//! - Throughput as ratios in one process: the engine against a plain
//!   `std::fs` loop over the same file with the same buffer size.
//!
//! [`FlowParams::default`] is the quick profile (seconds);
//! [`FlowParams::full`] the one the write-up's figures come from.
//!
//! ```no_run
//! use weir_flow::{FlowParams, run};
//!
//! let results = run(&FlowParams::default(), std::path::Path::new("results"))?;
//! for result in &results {
//!     println!("{} {}: peak RSS {} bytes", result.scenario, result.variant, result.rss.peak_bytes);
//! }
//! # Ok::<(), weir_flow::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod case;
mod measure;
mod slow;
mod throughput;
mod unbounded;

use std::io;
use std::path::{Path, PathBuf};

pub use case::{Case, CaseKind, DelayModel, SinkKind, SourceKind, UnboundedCap, Variant};
pub use measure::LAG_INTERVAL;
pub use slow::SlowSink;
pub use unbounded::{UnboundedError, UnboundedReport, run_unbounded};
use weir_harness::ScenarioResult;
pub use weir_harness::figures::flow::{
    FlatPoint, FlowRow, FlowRun, FlowSummary, FlowThroughput, ThroughputRow, slope, summarize,
};
use weir_harness::inject::Injection;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Why a flow run could not be carried out (a failed ingestion is not an
/// error: it is recorded as the result's outcome).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O step of the harness itself failed.
    #[error(transparent)]
    Io(#[from] weir_harness::IoError),
    /// The parameters or the selection are invalid.
    #[error("invalid flow parameters: {0}")]
    InvalidParams(String),
    /// A case cannot be run as given.
    #[error("invalid case: {0}")]
    InvalidCase(String),
    /// Running a case elsewhere (for example in a child process) failed.
    #[error("case `{case}` failed")]
    Case {
        /// The case.
        case: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io(weir_harness::IoError::new(context, source))
    }
}

/// Runs picked by hand instead of the profile's plan: every combination of
/// the given variants, sinks, sources and size (defaults: `controlled-1`,
/// `slow`, `synthetic`, the profile's backpressure size).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// `controlled`, `controlled-K`, `unbounded`, `throughput`.
    pub variants: Vec<String>,
    /// `null`, `file`, `slow`, `slow-exp`.
    pub sink: Option<String>,
    /// `synthetic`, `file`.
    pub source: Option<String>,
    /// Input size, bytes.
    pub size: Option<u64>,
}

impl Selection {
    /// `true` when nothing was picked: the profile's plan runs.
    pub fn is_empty(&self) -> bool {
        self.variants.is_empty() && self.sink.is_none() && self.source.is_none() && self.size.is_none()
    }
}

/// Parameters of a flow run. `Default` is the quick profile.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowParams {
    /// Seed for data and delays.
    pub seed: u64,
    /// Chunk size for the engine, the sources and the plain loops.
    pub chunk_size: usize,
    /// The N of "max in-flight N".
    pub in_flight_n: usize,
    /// The slow sink's (mean) delay per write, microseconds.
    pub slow_delay_micros: u64,
    /// Input size of the controlled-vs-unbounded comparison.
    pub backpressure_size: u64,
    /// Input sizes of the flat-memory proof.
    pub flat_sizes: Vec<u64>,
    /// File size of the throughput comparison.
    pub throughput_size: u64,
    /// Rounds of each side in the throughput comparison.
    pub throughput_rounds: usize,
    /// The engine's `max_in_flight` in the file -> file throughput case.
    pub throughput_in_flight: usize,
    /// Also compare file -> null at this (larger) buffer size, to show how
    /// much of the gap is per-chunk overhead; `None` to skip.
    pub throughput_large_chunk: Option<usize>,
    /// The unbounded variant's safety net.
    pub cap: UnboundedCap,
    /// RSS sampling interval, milliseconds.
    pub sample_millis: u64,
    /// Scratch space; a private directory is made (and removed) inside it.
    pub work_dir: PathBuf,
    /// Runs picked by hand (empty: the whole plan).
    pub selection: Selection,
    /// Lab-only injected regressions (`WEIR_LAB_INJECT`), none by default.
    pub inject: Injection,
}

impl Default for FlowParams {
    /// The quick profile: 32 MiB into a 1 ms sink, flat memory at 8, 32 and
    /// 128 MiB, throughput over a 512 MiB file in 11 paired rounds: seconds.
    fn default() -> Self {
        Self {
            seed: 42,
            chunk_size: weir::DEFAULT_CHUNK_SIZE,
            in_flight_n: 8,
            slow_delay_micros: 1000,
            backpressure_size: 32 * MIB,
            flat_sizes: vec![8 * MIB, 32 * MIB, 128 * MIB],
            throughput_size: 512 * MIB,
            throughput_rounds: 11,
            throughput_in_flight: 4,
            throughput_large_chunk: Some(1 << 20),
            cap: UnboundedCap::default(),
            sample_millis: 10,
            work_dir: std::env::temp_dir(),
            selection: Selection::default(),
            inject: Injection::default(),
        }
    }
}

impl FlowParams {
    /// The full profile the write-up uses: 1 GiB into a 1 ms sink, flat
    /// memory at 100 MiB, 1 GiB and 10 GiB, throughput over a 1 GiB file (a
    /// few minutes on two cores).
    pub fn full() -> Self {
        Self {
            backpressure_size: GIB,
            flat_sizes: vec![100 * MIB, GIB, 10 * GIB],
            throughput_size: GIB,
            throughput_rounds: 15,
            ..Self::default()
        }
    }

    fn validate(&self) -> Result<(), Error> {
        let invalid = |what: String| Err(Error::InvalidParams(what));
        let chunk_ok = |c: usize| c > 0 && c <= weir::MAX_CHUNK_SIZE;
        if !chunk_ok(self.chunk_size) || !self.throughput_large_chunk.is_none_or(chunk_ok) {
            return invalid(format!(
                "chunk sizes must be 1 ..= {} bytes, got {} and {:?}",
                weir::MAX_CHUNK_SIZE,
                self.chunk_size,
                self.throughput_large_chunk
            ));
        }
        if self.in_flight_n == 0 || self.in_flight_n > weir::MAX_IN_FLIGHT {
            return invalid(format!(
                "in-flight N must be 1 ..= {}, got {}",
                weir::MAX_IN_FLIGHT,
                self.in_flight_n
            ));
        }
        if self.selection.size == Some(0) || self.backpressure_size == 0 || self.throughput_size == 0 {
            return invalid("sizes must be at least 1 byte".to_owned());
        }
        if self.flat_sizes.contains(&0) {
            return invalid("flat-memory sizes must be at least 1 byte".to_owned());
        }
        Ok(())
    }

    fn slow(&self) -> SinkKind {
        SinkKind::Slow(DelayModel::Fixed {
            micros: self.slow_delay_micros,
        })
    }

    fn slow_exp(&self) -> SinkKind {
        SinkKind::Slow(DelayModel::Exponential {
            mean_micros: self.slow_delay_micros,
            seed: self.seed,
        })
    }

    fn parse_sink(&self, name: &str) -> Result<SinkKind, Error> {
        match name {
            "null" => Ok(SinkKind::Null),
            "file" => Ok(SinkKind::File),
            "slow" => Ok(self.slow()),
            "slow-exp" => Ok(self.slow_exp()),
            other => Err(Error::InvalidParams(format!(
                "unknown sink `{other}` (expected null, file, slow or slow-exp)"
            ))),
        }
    }

    fn parse_variant(&self, name: &str) -> Result<Vec<Option<Variant>>, Error> {
        let controlled = |max_in_flight| Some(Variant::Controlled { max_in_flight });
        match name {
            "controlled" => Ok(vec![controlled(1), controlled(self.in_flight_n)]),
            "unbounded" => Ok(vec![Some(Variant::Unbounded)]),
            "throughput" => Ok(vec![None]),
            other => match other.strip_prefix("controlled-").map(str::parse::<usize>) {
                Some(Ok(n)) if (1..=weir::MAX_IN_FLIGHT).contains(&n) => Ok(vec![controlled(n)]),
                _ => Err(Error::InvalidParams(format!(
                    "unknown variant `{other}` (expected controlled, controlled-K with K in 1..={}, unbounded or throughput)",
                    weir::MAX_IN_FLIGHT
                ))),
            },
        }
    }

    /// The cases this run measures, in order, tagged with `run_id` and
    /// using `work_dir` for scratch files.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParams`] for invalid parameters or an unknown
    /// variant, sink or source in the selection.
    pub fn plan(&self, run_id: &str, work_dir: &Path) -> Result<Vec<Case>, Error> {
        self.validate()?;
        let case = |group: &str, kind: CaseKind| Case {
            group: group.to_owned(),
            kind,
            chunk_size: self.chunk_size,
            seed: self.seed,
            sample_millis: self.sample_millis,
            run_id: run_id.to_owned(),
            work_dir: work_dir.to_path_buf(),
            inject: self.inject,
        };
        let flow = |variant, source, sink, size| CaseKind::Flow {
            variant,
            source,
            sink,
            size,
            cap: self.cap,
        };
        let throughput = |sink, size| CaseKind::Throughput {
            sink,
            size,
            rounds: self.throughput_rounds,
            max_in_flight: if sink == SinkKind::File {
                self.throughput_in_flight
            } else {
                1
            },
        };
        if self.selection.is_empty() {
            let size = self.backpressure_size;
            let synthetic = SourceKind::Synthetic;
            let mut cases = vec![
                case(
                    "backpressure",
                    flow(Variant::Controlled { max_in_flight: 1 }, synthetic, self.slow(), size),
                ),
                case(
                    "backpressure",
                    flow(
                        Variant::Controlled {
                            max_in_flight: self.in_flight_n,
                        },
                        synthetic,
                        self.slow(),
                        size,
                    ),
                ),
                case(
                    "backpressure",
                    flow(
                        Variant::Controlled { max_in_flight: 1 },
                        synthetic,
                        self.slow_exp(),
                        size,
                    ),
                ),
                case("backpressure", flow(Variant::Unbounded, synthetic, self.slow(), size)),
            ];
            for &size in &self.flat_sizes {
                cases.push(case(
                    "flat-memory",
                    flow(
                        Variant::Controlled { max_in_flight: 1 },
                        synthetic,
                        SinkKind::Null,
                        size,
                    ),
                ));
            }
            cases.push(case("throughput", throughput(SinkKind::Null, self.throughput_size)));
            cases.push(case("throughput", throughput(SinkKind::File, self.throughput_size)));
            if let Some(chunk_size) = self.throughput_large_chunk {
                cases.push(Case {
                    chunk_size,
                    ..case("throughput", throughput(SinkKind::Null, self.throughput_size))
                });
            }
            return Ok(cases);
        }

        let selection = &self.selection;
        let mut variants = Vec::new();
        for name in &selection.variants {
            variants.extend(self.parse_variant(name)?);
        }
        if variants.is_empty() {
            variants.push(Some(Variant::Controlled { max_in_flight: 1 }));
        }
        let sink = selection.sink.as_deref().map(|s| self.parse_sink(s)).transpose()?;
        let source = match selection.source.as_deref() {
            None | Some("synthetic") => SourceKind::Synthetic,
            Some("file") => SourceKind::File,
            Some(other) => {
                return Err(Error::InvalidParams(format!(
                    "unknown source `{other}` (expected synthetic or file)"
                )));
            }
        };
        let mut cases = Vec::new();
        for variant in variants {
            match variant {
                Some(variant) => {
                    let size = selection.size.unwrap_or(self.backpressure_size);
                    cases.push(case("adhoc", flow(variant, source, sink.unwrap_or(self.slow()), size)));
                }
                None => {
                    if selection.source.as_deref() == Some("synthetic") {
                        return Err(Error::InvalidParams(
                            "the throughput variant reads a file: drop --source or pass --source file".to_owned(),
                        ));
                    }
                    let size = selection.size.unwrap_or(self.throughput_size);
                    let sinks = match sink {
                        None => vec![SinkKind::Null, SinkKind::File],
                        Some(s @ (SinkKind::Null | SinkKind::File)) => vec![s],
                        Some(other) => {
                            return Err(Error::InvalidParams(format!(
                                "the throughput variant compares null and file sinks, not {}",
                                other.name()
                            )));
                        }
                    };
                    for s in sinks {
                        cases.push(case("throughput", throughput(s, size)));
                    }
                }
            }
        }
        cases.dedup();
        Ok(cases)
    }
}

/// Measures one case in this process and returns its result (not written).
/// For honest RSS figures, call it in a fresh process per case (as
/// `weir-lab` does).
///
/// # Errors
///
/// When the harness itself cannot run the case (runtime, scratch files); a
/// failed ingestion is the result's outcome instead.
pub fn run_case(case: &Case) -> Result<ScenarioResult, Error> {
    tracing::info!(%case, "measuring");
    match case.kind {
        CaseKind::Flow { .. } => measure::run_flow(case),
        CaseKind::Throughput { .. } => throughput::run_throughput(case),
    }
}

/// The summary result written after the cases: variant `summary`, the
/// [`FlowSummary`] in `extra`.
///
/// # Errors
///
/// Never in practice (serializing the summary).
pub fn summary_result(results: &[ScenarioResult], run_id: &str) -> Result<ScenarioResult, Error> {
    let summary = summarize(results);
    let mut result = ScenarioResult::new("flow", "summary");
    result.params.insert("run_id".into(), run_id.into());
    // The outcome says whether the summary could be computed, not whether
    // the floors held: the gate judges each figure on its own, and one
    // figure's verdict must never refuse another's.
    result.set_figures(&summary);
    Ok(result)
}

/// A run identifier: start time and process id.
pub fn new_run_id() -> String {
    format!("{}-{}", weir_harness::unix_now(), std::process::id())
}

/// Runs the plan with `exec` measuring each case (in this process, or in a
/// child process, as the caller likes), writes every result and a summary
/// to `out`, and returns them (summary last).
///
/// # Errors
///
/// Invalid parameters, a case `exec` could not run, or results that could
/// not be written.
pub fn run_with(
    params: &FlowParams,
    out: &Path,
    mut exec: impl FnMut(&Case) -> Result<ScenarioResult, Error>,
) -> Result<Vec<ScenarioResult>, Error> {
    let run_id = new_run_id();
    std::fs::create_dir_all(&params.work_dir)
        .map_err(|source| Error::io(format!("creating {}", params.work_dir.display()), source))?;
    let scratch = tempfile::Builder::new()
        .prefix("weir-flow-")
        .tempdir_in(&params.work_dir)
        .map_err(|source| {
            Error::io(
                format!("creating scratch space in {}", params.work_dir.display()),
                source,
            )
        })?;
    let cases = params.plan(&run_id, scratch.path())?;
    let mut results = Vec::with_capacity(cases.len() + 1);
    for case in &cases {
        let result = exec(case)?;
        result
            .write_to(out)
            .map_err(|source| Error::io(format!("writing a result to {}", out.display()), source))?;
        results.push(result);
    }
    if results.len() > 1 {
        let summary = summary_result(&results, &run_id)?;
        summary
            .write_to(out)
            .map_err(|source| Error::io(format!("writing the summary to {}", out.display()), source))?;
        results.push(summary);
    }
    Ok(results)
}

/// Runs the plan in this process (see [`run_with`]).
///
/// # Errors
///
/// As [`run_with`].
pub fn run(params: &FlowParams, out: &Path) -> Result<Vec<ScenarioResult>, Error> {
    run_with(params, out, run_case)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_covers_every_part_of_the_study() {
        let plan = FlowParams::full().plan("r", Path::new("/tmp")).unwrap();
        let groups: Vec<&str> = plan.iter().map(|c| c.group.as_str()).collect();
        assert_eq!(groups.iter().filter(|g| **g == "backpressure").count(), 4);
        assert_eq!(
            plan.iter()
                .filter(|c| c.group == "flat-memory")
                .map(Case::size)
                .collect::<Vec<_>>(),
            [100 * MIB, GIB, 10 * GIB]
        );
        assert_eq!(groups.iter().filter(|g| **g == "throughput").count(), 3);
        assert!(plan.iter().any(|c| c.variant_name() == "unbounded"));
    }

    #[test]
    fn a_selection_is_a_matrix() {
        let params = FlowParams {
            selection: Selection {
                variants: vec!["controlled".into(), "unbounded".into()],
                sink: Some("slow-exp".into()),
                source: None,
                size: Some(MIB),
            },
            ..FlowParams::default()
        };
        let plan = params.plan("r", Path::new("/tmp")).unwrap();
        let names: Vec<String> = plan.iter().map(Case::variant_name).collect();
        assert_eq!(names, ["controlled-1", "controlled-8", "unbounded"]);
        assert!(plan.iter().all(|c| c.size() == MIB && c.group == "adhoc"));
    }

    #[test]
    fn bad_selections_are_named() {
        let with = |selection: Selection| FlowParams {
            selection,
            ..FlowParams::default()
        };
        let cases = [
            (
                Selection {
                    variants: vec!["sideways".into()],
                    ..Selection::default()
                },
                "unknown variant `sideways`",
            ),
            (
                Selection {
                    variants: vec!["controlled-0".into()],
                    ..Selection::default()
                },
                "unknown variant `controlled-0`",
            ),
            (
                Selection {
                    sink: Some("tape".into()),
                    ..Selection::default()
                },
                "unknown sink `tape`",
            ),
            (
                Selection {
                    source: Some("pipe".into()),
                    ..Selection::default()
                },
                "unknown source `pipe`",
            ),
            (
                Selection {
                    variants: vec!["throughput".into()],
                    sink: Some("slow".into()),
                    ..Selection::default()
                },
                "not slow-1ms",
            ),
            (
                Selection {
                    size: Some(0),
                    ..Selection::default()
                },
                "at least 1 byte",
            ),
        ];
        for (selection, expected) in cases {
            let error = with(selection).plan("r", Path::new("/tmp")).unwrap_err().to_string();
            assert!(error.contains(expected), "{error} should contain {expected}");
        }
    }
}
