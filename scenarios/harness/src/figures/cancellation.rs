//! The cancellation scenario's figures: cancel-to-return trials into hung
//! and slow sinks, TCP peers hanging up mid-stream, and the SIGTERM drain
//! of many ingestions under a `Registry`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A latency distribution, microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LatencyStats {
    /// Values recorded.
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
    /// `[quantile, microseconds]` pairs at the scenario's chart quantiles.
    pub quantiles: Vec<(f64, f64)>,
}

/// What a probe sink saw: its calls, and any after `abort` began.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProbeCounts {
    /// `write` calls.
    pub writes_called: u64,
    /// Write futures that completed with `Ok`.
    pub writes_acknowledged: u64,
    /// Bytes of those writes.
    pub bytes_acknowledged: u64,
    /// Write futures that were created and not yet dropped when `abort`
    /// began (the engine must drop every outstanding write first).
    pub writes_alive_at_abort: u64,
    /// `write` calls after `abort` began.
    pub write_calls_after_abort: u64,
    /// Write futures polled for the first time after `abort` began: writes
    /// that *started* after the abort.
    pub write_starts_after_abort: u64,
    /// Polls of any write future after `abort` began.
    pub write_polls_after_abort: u64,
    /// `finalize` calls.
    pub finalizes: u64,
    /// `finalize` calls that returned `Ok`.
    pub finalized_ok: u64,
    /// `finalize` calls after `abort` began.
    pub finalizes_after_abort: u64,
    /// `abort` calls.
    pub aborts: u64,
}

impl ProbeCounts {
    /// Everything that must never happen, summed: writes called, started or
    /// polled after the abort began, writes still alive when it began, and
    /// `finalize` after `abort`.
    pub fn violations(&self) -> u64 {
        self.write_calls_after_abort
            + self.write_starts_after_abort
            + self.write_polls_after_abort
            + self.writes_alive_at_abort
            + self.finalizes_after_abort
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Self) {
        self.writes_called += other.writes_called;
        self.writes_acknowledged += other.writes_acknowledged;
        self.bytes_acknowledged += other.bytes_acknowledged;
        self.writes_alive_at_abort += other.writes_alive_at_abort;
        self.write_calls_after_abort += other.write_calls_after_abort;
        self.write_starts_after_abort += other.write_starts_after_abort;
        self.write_polls_after_abort += other.write_polls_after_abort;
        self.finalizes += other.finalizes;
        self.finalized_ok += other.finalized_ok;
        self.finalizes_after_abort += other.finalizes_after_abort;
        self.aborts += other.aborts;
    }
}

/// Everything one batch of trials measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrialsReport {
    /// `hung` or `slow`.
    pub mode: String,
    /// Trials run.
    pub trials: usize,
    /// Trials that ended `Cancelled`.
    pub cancelled: usize,
    /// Trials that committed before the cancellation landed.
    pub committed: usize,
    /// Cancelled while a hung write was outstanding.
    pub cancelled_while_hung: usize,
    /// Cancelled before the sink acknowledged any byte.
    pub cancelled_before_first_ack: usize,
    /// Trials that ended any other way (must be 0).
    pub unexpected: usize,
    /// The first few unexpected outcomes.
    pub unexpected_examples: Vec<String>,
    /// Cancel-to-return, real time.
    pub latency: LatencyStats,
    /// `abort` duration.
    pub abort_duration: LatencyStats,
    /// Cancel-to-return by `source -> inner sink` (for example
    /// `file -> null`): where the tail comes from.
    pub latency_by_case: BTreeMap<String, LatencyStats>,
    /// What the sinks saw, summed.
    pub counts: ProbeCounts,
    /// Writes called, started or polled after abort began, writes alive
    /// when it began, finalize after abort (must be 0).
    pub violations: u64,
    /// Trials whose report disagreed with the sink's acknowledged bytes.
    pub byte_mismatches: usize,
    /// Trials not ended by exactly one terminal sequence.
    pub terminal_mismatches: usize,
    /// Open descriptors before the batch.
    pub fds_before: usize,
    /// Open descriptors after the batch.
    pub fds_after: usize,
    /// Trials that ended with more descriptors open than they started
    /// with (after a short settle). A trial may end with fewer: its
    /// starting count can include a descriptor another thread of the
    /// process (the RSS sampler reading `/proc/self/statm`) had open for a
    /// moment.
    pub trials_with_fd_growth: usize,
    /// Temporary files left, summed over trials.
    pub temp_files_left: usize,
    /// Wall time of the batch, seconds.
    pub elapsed_s: f64,
    /// `fds_after - fds_before`, floored at 0: the gated leak count.
    pub leaked_fds: usize,
}

impl TrialsReport {
    /// `fds_after - fds_before`, floored at 0.
    pub fn count_leaked_fds(&self) -> usize {
        self.fds_after.saturating_sub(self.fds_before)
    }
}

/// Everything the disconnect trials measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DisconnectReport {
    /// Trials run.
    pub trials: usize,
    /// Trials per hang-up kind: close, reset, complete.
    pub closed: usize,
    /// See `closed`.
    pub reset: usize,
    /// See `closed`.
    pub complete: usize,
    /// Trials that ended as expected.
    pub as_expected: usize,
    /// The first few that did not.
    pub unexpected_examples: Vec<String>,
    /// An example error text after a clean close, and after a reset.
    pub close_error_example: Option<String>,
    /// See `close_error_example`.
    pub reset_error_example: Option<String>,
    /// Hang-up to return.
    pub latency: LatencyStats,
    /// What the sinks saw, summed.
    pub counts: ProbeCounts,
    /// Violations (see [`ProbeCounts::violations`]).
    pub violations: u64,
    /// Open descriptors before and after the trials.
    pub fds_before: usize,
    /// See `fds_before`.
    pub fds_after: usize,
    /// Temporary files left, summed.
    pub temp_files_left: usize,
    /// Wall time, seconds.
    pub elapsed_s: f64,
    /// `fds_after - fds_before`, floored at 0.
    pub leaked_fds: usize,
}

impl DisconnectReport {
    /// `fds_after - fds_before`, floored at 0.
    pub fn count_leaked_fds(&self) -> usize {
        self.fds_after.saturating_sub(self.fds_before)
    }
}

/// What an ingestion was expected to do, given when the shutdown began.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expected {
    /// Planned to end well within the grace period: must commit.
    Finish,
    /// Planned to end well after it: must be cancelled by the shutdown.
    Abort,
    /// Within the margin of the deadline: either.
    Either,
}

/// One ingestion's ending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestionRecord {
    /// Its number.
    pub index: usize,
    /// `file` or `memory`.
    pub sink: String,
    /// Writes planned.
    pub writes: u64,
    /// Planned duration, milliseconds from the start.
    pub planned_ms: f64,
    /// What it should have done.
    pub expected: Expected,
    /// `committed` or the error kind (`shutdown` when cancelled).
    pub outcome: String,
    /// When it returned, milliseconds from the start.
    pub returned_ms: f64,
    /// Bytes the sink acknowledged.
    pub bytes_acknowledged: u64,
    /// `abort` calls.
    pub aborts: u64,
    /// `finalize` returned `Ok`.
    pub finalized: bool,
    /// Probe violations (writes after abort, finalize after abort...).
    pub violations: u64,
    /// Its ending matches `expected`, with one terminal sequence.
    pub as_expected: bool,
}

/// A newcomer during the drain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LateRecord {
    /// The error text (a refusal is expected).
    pub error: String,
    /// It was refused.
    pub refused: bool,
    /// Its source was dropped.
    pub source_dropped: bool,
    /// Its sink was aborted exactly once, with `Refused`.
    pub sink_aborted_once: bool,
}

/// The registry's `ShutdownSummary`, serializable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SummaryRecord {
    /// Committed.
    pub completed: u64,
    /// Cancelled by the shutdown, each aborted once.
    pub aborted: u64,
    /// Failed otherwise.
    pub failed: u64,
    /// Refused while shutting down.
    pub refused: u64,
    /// Still running when the grace period ended.
    pub cancelled_at_deadline: usize,
    /// Shutdown start to last return, milliseconds.
    pub took_ms: f64,
}

/// Everything one shutdown run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShutdownRun {
    /// Ingestions started.
    pub ingestions: usize,
    /// Grace period, milliseconds.
    pub grace_ms: f64,
    /// Margin around the deadline, milliseconds.
    pub margin_ms: f64,
    /// When this process sent SIGTERM to itself, if it did.
    pub signal_sent_ms: Option<f64>,
    /// When the registry was seen shutting down (1 ms polling).
    pub shutdown_began_ms: f64,
    /// `shutdown_began_ms + grace_ms`.
    pub deadline_ms: f64,
    /// When `shutdown_on_signal` returned.
    pub shutdown_returned_ms: f64,
    /// The registry's summary.
    pub summary: SummaryRecord,
    /// Every ingestion's ending.
    pub records: Vec<IngestionRecord>,
    /// The newcomers.
    pub late: Vec<LateRecord>,
    /// `[ms, active ingestions]`.
    pub active_samples: Vec<(f64, usize)>,
    /// Open descriptors before and after.
    pub fds_before: usize,
    /// See `fds_before`.
    pub fds_after: usize,
    /// Threads before and after (file sinks' writer threads must be gone).
    pub threads_before: usize,
    /// See `threads_before`.
    pub threads_after: usize,
    /// Tokio tasks alive before and after.
    pub tasks_before: usize,
    /// See `tasks_before`.
    pub tasks_after: usize,
    /// Temporary files left.
    pub temp_files_left: Vec<String>,
    /// Committed targets whose ingestion did not commit, or committed
    /// file ingestions without their target.
    pub target_mismatches: Vec<String>,
    /// Ingestions whose ending did not match what they were expected to do
    /// (see [`IngestionRecord::as_expected`]; 0 expected).
    pub not_as_expected: usize,
    /// Probe violations over every ingestion (writes or finalize after
    /// abort; 0 expected).
    pub violations: u64,
    /// Newcomers not refused cleanly (refused, source dropped, sink aborted
    /// once; 0 expected).
    pub late_not_clean: usize,
    /// Active ingestions at the last sample (0 expected).
    pub active_at_end: usize,
}

impl ShutdownRun {
    /// Fills the counts derived from the records ([`Self::not_as_expected`],
    /// [`Self::violations`], [`Self::late_not_clean`],
    /// [`Self::active_at_end`]).
    pub fn count(&mut self) {
        self.not_as_expected = self.records.iter().filter(|r| !r.as_expected).count();
        self.violations = self.records.iter().map(|r| r.violations).sum();
        self.late_not_clean = self
            .late
            .iter()
            .filter(|l| !(l.refused && l.source_dropped && l.sink_aborted_once))
            .count();
        self.active_at_end = self.active_samples.last().map_or(0, |s| s.1);
    }

    /// Ingestions per expectation and outcome: `(expected, met)`.
    pub fn tally(&self, expected: Expected) -> (usize, usize) {
        let of: Vec<_> = self.records.iter().filter(|r| r.expected == expected).collect();
        (of.len(), of.iter().filter(|r| r.as_expected).count())
    }
}
