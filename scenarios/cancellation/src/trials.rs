//! Cancellation at seeded random moments: many ingestions, each cancelled
//! from another thread at a random moment, into slow or hung sinks; the
//! cancel-to-return latency (real time), the writes that started after the
//! abort began, abort-exactly-once, descriptors and temporary files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use weir::source::FileSource;
use weir::{BoxSink, CancellationToken, ErrorKind, FileSink, IngestOptions, NullSink, Outcome, ingest};
use weir_harness::{ScenarioResult, SyntheticSource, open_fds, write_test_file};

use crate::probe::{Behaviour, ProbeCounts, probe_sink};
use crate::stats::{LatencyRecorder, temp_files};
use crate::{Error, io_error};
pub use weir_harness::figures::cancellation::TrialsReport;

/// Size of the file the file-backed trials read.
const INPUT_FILE_LEN: u64 = 4 << 20;
/// Abort timeout of every trial: generous, so that a slow abort shows up in
/// the latency instead of being cut off.
const ABORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which sink the trials cancel against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkMode {
    /// A write that never completes, from a random write on (sometimes the
    /// first): the cancellation must not wait for it.
    Hung,
    /// Every write takes 0.2 to 1 ms more (Tokio's timer rounds up to 1 ms):
    /// some ingestions finish before the cancellation lands.
    Slow,
}

impl SinkMode {
    /// `hung` or `slow`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hung => "hung",
            Self::Slow => "slow",
        }
    }
}

/// One trial's plan, drawn from the seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialPlan {
    /// Trial number.
    pub index: usize,
    /// `synthetic` or `file`.
    pub source: String,
    /// `null` or `file`: what the probe wraps.
    pub inner_sink: String,
    /// Chunk size, bytes.
    pub chunk_size: usize,
    /// Chunks the source yields.
    pub chunks: usize,
    /// Writes in flight at most.
    pub max_in_flight: usize,
    /// Hung: the first write that never completes. Slow: none.
    pub hang_from: Option<u64>,
    /// Slow: the extra time per write, microseconds.
    pub write_delay_us: Option<u64>,
    /// When the token is cancelled, after the ingestion is started.
    pub cancel_after_us: u64,
}

impl TrialPlan {
    /// Draws trial `index` of `mode` from `rng`.
    pub fn draw(mode: SinkMode, index: usize, rng: &mut Xoshiro256PlusPlus) -> Self {
        let mut pick = |lo: u64, hi: u64| lo + rng.next_u64() % (hi - lo + 1);
        let source = if pick(0, 1) == 0 { "synthetic" } else { "file" };
        let inner_sink = if pick(0, 1) == 0 { "null" } else { "file" };
        let chunk_size = [4096usize, 16 * 1024, 64 * 1024][pick(0, 2) as usize];
        let max_in_flight = pick(1, 4) as usize;
        match mode {
            SinkMode::Hung => Self {
                index,
                source: source.to_owned(),
                inner_sink: inner_sink.to_owned(),
                chunk_size,
                chunks: pick(16, 64) as usize,
                max_in_flight,
                hang_from: Some(pick(0, 8)),
                write_delay_us: None,
                cancel_after_us: pick(0, 2_000),
            },
            SinkMode::Slow => {
                let chunks = pick(2, 24) as usize;
                let delay = pick(200, 1_000);
                // Tokio's timer fires on whole milliseconds: each write takes
                // about 1 ms. Cancel anywhere in 0 ..= 1.25 x the expected run.
                let expected_us = (chunks.div_ceil(max_in_flight) as u64) * 1_100;
                Self {
                    index,
                    source: source.to_owned(),
                    inner_sink: inner_sink.to_owned(),
                    chunk_size,
                    chunks,
                    max_in_flight,
                    hang_from: None,
                    write_delay_us: Some(delay),
                    cancel_after_us: pick(0, expected_us * 5 / 4),
                }
            }
        }
    }

    fn behaviour(&self) -> Behaviour {
        match (self.hang_from, self.write_delay_us) {
            (Some(from), _) => Behaviour::HangFrom(from),
            (None, Some(us)) => Behaviour::Slow(Duration::from_micros(us)),
            (None, None) => Behaviour::Immediate,
        }
    }
}

/// How one trial ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialOutcome {
    /// `cancelled`, `committed` (finished before the cancellation landed)
    /// or the unexpected error.
    pub outcome: String,
    /// Cancel-to-return, when it was cancelled.
    pub latency: Option<Duration>,
    /// How long `abort` took, when it was aborted.
    pub abort_duration: Option<Duration>,
    /// What the sink saw.
    pub counts: ProbeCounts,
    /// A hung write was outstanding when the cancellation landed.
    pub while_hung: bool,
    /// The report's byte counts disagree with what the sink acknowledged.
    pub byte_mismatch: bool,
    /// The ingestion was aborted other than exactly once with `Cancelled`,
    /// or committed other than with one successful `finalize` and no abort.
    pub terminal_mismatch: bool,
    /// Open descriptors after the trial minus before.
    pub fd_delta: i64,
    /// Temporary files left in the trial's directory.
    pub temp_files_left: usize,
}

/// Runs `trials` cancellation trials against `mode` sinks, drawn from
/// `seed`, with scratch files in `dir`. Needs a multi-thread runtime for
/// realistic latencies (it runs on any Tokio runtime with time enabled).
///
/// # Errors
///
/// When the scratch directory or input file cannot be made.
pub async fn run_trials(mode: SinkMode, trials: usize, seed: u64, dir: &Path) -> Result<TrialsReport, Error> {
    std::fs::create_dir_all(dir).map_err(io_error(format!("creating {}", dir.display())))?;
    let input = dir.join("input.bin");
    write_test_file(&input, INPUT_FILE_LEN, seed).map_err(io_error(format!("writing {}", input.display())))?;
    let scratch = dir.join(format!("{}-sinks", mode.name()));
    std::fs::create_dir_all(&scratch).map_err(io_error(format!("creating {}", scratch.display())))?;

    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ mode as u64);
    let mut latency = LatencyRecorder::default();
    let mut abort_duration = LatencyRecorder::default();
    let mut by_case: BTreeMap<String, LatencyRecorder> = BTreeMap::new();
    let mut report = TrialsReport {
        mode: mode.name().to_owned(),
        trials,
        fds_before: crate::stats::baseline_fds().await,
        ..TrialsReport::default()
    };
    let started = Instant::now();
    for index in 0..trials {
        let plan = TrialPlan::draw(mode, index, &mut rng);
        let outcome = run_one(&plan, &input, &scratch).await;
        match outcome.outcome.as_str() {
            "cancelled" => {
                report.cancelled += 1;
                report.cancelled_while_hung += usize::from(outcome.while_hung);
                report.cancelled_before_first_ack += usize::from(outcome.counts.bytes_acknowledged == 0);
            }
            "committed" => report.committed += 1,
            other => {
                report.unexpected += 1;
                if report.unexpected_examples.len() < 5 {
                    report.unexpected_examples.push(format!("trial {index}: {other}"));
                }
            }
        }
        if let Some(value) = outcome.latency {
            latency.record(value);
            by_case
                .entry(format!("{} -> {}", plan.source, plan.inner_sink))
                .or_default()
                .record(value);
        }
        if let Some(value) = outcome.abort_duration {
            abort_duration.record(value);
        }
        report.counts.add(&outcome.counts);
        report.byte_mismatches += usize::from(outcome.byte_mismatch);
        report.terminal_mismatches += usize::from(outcome.terminal_mismatch);
        report.trials_with_fd_growth += usize::from(outcome.fd_delta > 0);
        report.temp_files_left += outcome.temp_files_left;
    }
    report.elapsed_s = started.elapsed().as_secs_f64();
    report.fds_after = crate::stats::settle(report.fds_before, Duration::from_secs(1), open_fds).await;
    report.violations = report.counts.violations();
    report.latency = latency.stats();
    report.abort_duration = abort_duration.stats();
    report.latency_by_case = by_case.into_iter().map(|(case, r)| (case, r.stats())).collect();
    Ok(report)
}

/// Builds the trial's source.
fn source(plan: &TrialPlan, input: &Path) -> Result<BoxStream<'static, std::io::Result<Bytes>>, String> {
    match plan.source.as_str() {
        "file" => {
            let file = FileSource::open(input, plan.chunk_size).map_err(|e| format!("opening the input: {e}"))?;
            Ok(file.take(plan.chunks).boxed())
        }
        _ => {
            let len = (plan.chunk_size * plan.chunks) as u64;
            Ok(SyntheticSource::new(plan.index as u64, len, plan.chunk_size).boxed())
        }
    }
}

/// Runs one trial: starts the ingestion on the runtime, cancels it from a
/// thread of its own after the planned delay (a plain sleep, so moments
/// below Tokio's 1 ms timer resolution are reached), and measures from just
/// before `cancel()` to just after `ingest` returned.
pub async fn run_one(plan: &TrialPlan, input: &Path, scratch: &Path) -> TrialOutcome {
    let fds_before = open_fds();
    let target: PathBuf = scratch.join(format!("trial-{}.bin", plan.index));
    let failed = |message: String| TrialOutcome {
        outcome: message,
        latency: None,
        abort_duration: None,
        counts: ProbeCounts::default(),
        while_hung: false,
        byte_mismatch: false,
        terminal_mismatch: true,
        fd_delta: 0,
        temp_files_left: 0,
    };
    let inner: BoxSink = if plan.inner_sink == "file" {
        match FileSink::create(&target) {
            Ok(sink) => Box::new(sink),
            Err(e) => return failed(format!("creating the file sink: {e}")),
        }
    } else {
        Box::new(NullSink)
    };
    let (sink, probe) = probe_sink(inner, plan.behaviour());
    let source = match source(plan, input) {
        Ok(source) => source,
        Err(message) => return failed(message),
    };
    let token = CancellationToken::new();
    let options = IngestOptions::builder()
        .chunk_size(plan.chunk_size)
        .max_in_flight(plan.max_in_flight)
        .abort_timeout(ABORT_TIMEOUT)
        .cancel_token(token.clone())
        .build();

    let run = tokio::spawn(async move {
        let result = ingest(source, sink, options).await;
        (result, Instant::now())
    });
    let delay = Duration::from_micros(plan.cancel_after_us);
    let (sent, cancelled_at) = tokio::sync::oneshot::channel();
    let hung_probe = probe.clone();
    let hang_from = plan.hang_from;
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(delay);
        let while_hung = hang_from.is_some_and(|from| hung_probe.counts().writes_called > from);
        let at = Instant::now();
        token.cancel();
        let _ = sent.send((at, while_hung));
    });
    let joined = run.await;
    let cancel = cancelled_at.await.ok();
    // The thread has sent its last message: it is returning.
    let _ = canceller.join();

    let (result, returned) = match joined {
        Ok(pair) => pair,
        Err(e) => return failed(format!("the ingestion task failed: {e}")),
    };
    let counts = probe.counts();
    let mut outcome = TrialOutcome {
        outcome: String::new(),
        latency: None,
        abort_duration: None,
        counts,
        while_hung: cancel.is_some_and(|(_, hung)| hung),
        byte_mismatch: false,
        terminal_mismatch: false,
        fd_delta: 0,
        temp_files_left: 0,
    };
    match result {
        Ok(report) => {
            outcome.outcome = "committed".to_owned();
            outcome.byte_mismatch = report.bytes_written != counts.bytes_acknowledged;
            outcome.terminal_mismatch =
                counts.finalized_ok != 1 || counts.aborts != 0 || report.outcome != Outcome::Committed;
            let _ = std::fs::remove_file(&target);
        }
        Err(error) if error.kind() == ErrorKind::Cancelled => {
            outcome.outcome = "cancelled".to_owned();
            outcome.latency = cancel.map(|(at, _)| returned.saturating_duration_since(at));
            let abort = error.report().abort.clone();
            outcome.abort_duration = abort.as_ref().map(|a| a.duration);
            outcome.byte_mismatch = error.report().bytes_written != counts.bytes_acknowledged
                || abort
                    .as_ref()
                    .is_none_or(|a| a.bytes_acknowledged != counts.bytes_acknowledged);
            outcome.terminal_mismatch = counts.aborts != 1
                || counts.finalized_ok != 0
                || probe.abort_reason() != Some(ErrorKind::Cancelled)
                || abort
                    .as_ref()
                    .is_none_or(|a| a.reason != ErrorKind::Cancelled || !a.clean)
                || target.exists();
        }
        Err(error) => {
            outcome.outcome = format!("unexpected error: {error}");
            outcome.terminal_mismatch = true;
        }
    }
    drop(probe);
    outcome.temp_files_left = temp_files(scratch).len();
    let fds_after = crate::stats::settle(fds_before, Duration::from_millis(200), open_fds).await;
    outcome.fd_delta = fds_after as i64 - fds_before as i64;
    outcome
}

/// The batch as a result file's content.
pub fn to_result(report: &TrialsReport, seed: u64) -> ScenarioResult {
    let mut result = ScenarioResult::new("cancellation", report.mode.clone()).with_transfer(
        report.counts.bytes_acknowledged,
        Duration::from_secs_f64(report.elapsed_s),
    );
    result.params.insert("part".into(), "trials".into());
    result.params.insert("sink".into(), report.mode.clone().into());
    result.params.insert("trials".into(), report.trials.into());
    result.params.insert("seed".into(), seed.into());
    if report.unexpected > 0 {
        result.outcome = format!(
            "{} unexpected outcome(s): {:?}",
            report.unexpected, report.unexpected_examples
        );
    }
    result.set_figures(&TrialsReport {
        leaked_fds: report.count_leaked_fds(),
        ..report.clone()
    });
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_seeded_and_in_range() {
        let draw = |seed| {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            (0..200)
                .map(|i| TrialPlan::draw(SinkMode::Hung, i, &mut rng))
                .collect::<Vec<_>>()
        };
        let a = draw(1);
        assert_eq!(a, draw(1));
        assert_ne!(a, draw(2));
        for plan in &a {
            assert!((1..=4).contains(&plan.max_in_flight));
            assert!(plan.cancel_after_us <= 2_000);
            assert!(plan.hang_from.is_some_and(|h| h <= 8));
            assert!(
                plan.chunks as u64 > plan.hang_from.unwrap_or(0),
                "a hung plan never finishes"
            );
        }
        assert!(a.iter().any(|p| p.source == "file") && a.iter().any(|p| p.source == "synthetic"));
        assert!(a.iter().any(|p| p.inner_sink == "file") && a.iter().any(|p| p.inner_sink == "null"));
    }

    #[test]
    fn slow_plans_cancel_within_their_expected_run() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        for i in 0..200 {
            let plan = TrialPlan::draw(SinkMode::Slow, i, &mut rng);
            let expected = plan.chunks.div_ceil(plan.max_in_flight) as u64 * 1_100;
            assert!(plan.cancel_after_us <= expected * 5 / 4);
            assert!(plan.write_delay_us.is_some_and(|d| (200..=1_000).contains(&d)));
        }
    }
}
