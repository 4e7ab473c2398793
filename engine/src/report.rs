//! What an ingestion did: bytes, chunks, write latency, in-flight peak,
//! per-stage metrics, and how it ended.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::error::ErrorKind;

/// How an ingestion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// `finalize` returned `Ok`: the data is committed.
    Committed,
    /// The sink was aborted because of a failure of this kind.
    Aborted(ErrorKind),
}

/// Write latency percentiles, from an HDR histogram (3 significant digits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LatencySummary {
    /// Completed writes measured.
    pub count: u64,
    /// Fastest write.
    pub min: Duration,
    /// Median write.
    pub p50: Duration,
    /// 99th percentile write.
    pub p99: Duration,
    /// Slowest write.
    pub max: Duration,
}

/// Per-stage transform metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StageReport {
    /// The transform's name.
    pub name: String,
    /// Whether the stage ran off the runtime's worker threads.
    pub offloaded: bool,
    /// Chunks handed to the stage.
    pub chunks_in: u64,
    /// Chunks the stage emitted.
    pub chunks_out: u64,
    /// Input chunks for which the stage emitted nothing.
    pub chunks_dropped: u64,
    /// Bytes handed to the stage.
    pub bytes_in: u64,
    /// Bytes the stage emitted.
    pub bytes_out: u64,
    /// Time spent inside the stage's code.
    pub busy: Duration,
    /// The stage's closing summary (for example a digest), if it has one.
    pub summary: Option<String>,
}

/// How the abort went, when the sink was aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AbortReport {
    /// Why the sink was aborted.
    pub reason: ErrorKind,
    /// When the abort began, measured from the start of the ingestion.
    pub at: Duration,
    /// Bytes the sink had acknowledged (`write` returned `Ok`) before the
    /// abort; none of them is committed.
    pub bytes_acknowledged: u64,
    /// How long `abort` took (up to the abort timeout).
    pub duration: Duration,
    /// `true` when `abort` returned `Ok` in time.
    pub clean: bool,
}

/// What one ingestion did. Returned on success, and inside
/// [`IngestError`](crate::IngestError) on failure.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IngestReport {
    /// How it ended.
    pub outcome: Outcome,
    /// Bytes taken from the source.
    pub bytes_read: u64,
    /// Bytes the sink acknowledged (equal to the bytes committed on success).
    pub bytes_written: u64,
    /// Chunks taken from the source.
    pub chunks_read: u64,
    /// Writes the sink acknowledged.
    pub chunks_written: u64,
    /// Wall time from the call to the return.
    pub elapsed: Duration,
    /// How long acknowledged writes waited, on the wall clock (also under
    /// Tokio's paused time, unlike `elapsed`). Counts every acknowledged
    /// write. A write that completed on its first poll (a fast sink, or one
    /// that buffers) waited for nothing and counts as zero, without a
    /// clock read; a write still pending after its first poll is timed from
    /// the end of that poll to its acknowledgement. The sink's synchronous
    /// work inside a poll is therefore in `elapsed`, not here: this is the
    /// time writes spent waiting (for a disk, a peer, a writer thread).
    pub write_latency: LatencySummary,
    /// Most writes outstanding at once.
    pub peak_in_flight: usize,
    /// One entry per transform stage, in order.
    pub stages: Vec<StageReport>,
    /// How long `finalize` took, when it was called.
    pub finalize_duration: Option<Duration>,
    /// How the abort went, when the sink was aborted.
    pub abort: Option<AbortReport>,
}

/// Accumulates the figures of a running ingestion.
#[derive(Debug)]
pub(crate) struct Stats {
    pub(crate) bytes_read: u64,
    pub(crate) chunks_read: u64,
    pub(crate) bytes_written: u64,
    pub(crate) chunks_written: u64,
    pub(crate) peak_in_flight: usize,
    /// Writes that waited for something, in nanoseconds; created by the
    /// first such write (its counts take ~256 KiB, which an ingestion
    /// whose writes never wait does not pay for).
    latency: Option<Histogram<u64>>,
    /// Writes that completed on their first poll: zero latency, added to
    /// the histogram once, when the report is built.
    immediate: u64,
}

impl Stats {
    pub(crate) fn new() -> Self {
        Self {
            bytes_read: 0,
            chunks_read: 0,
            bytes_written: 0,
            chunks_written: 0,
            peak_in_flight: 0,
            latency: None,
            immediate: 0,
        }
    }

    #[inline]
    pub(crate) fn record_write(&mut self, bytes: usize, latency: Duration) {
        self.bytes_written += bytes as u64;
        self.chunks_written += 1;
        if latency.is_zero() {
            self.immediate += 1;
        } else {
            self.record_latency(latency);
        }
    }

    fn record_latency(&mut self, latency: Duration) {
        if self.latency.is_none() {
            // 1 ns ..= 1 hour, 3 significant digits; creation only fails on
            // bounds that are constant and valid here, so `ok()` never
            // drops a working histogram.
            self.latency = Histogram::new_with_bounds(1, 3_600_000_000_000, 3).ok();
        }
        if let Some(h) = &mut self.latency {
            let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
            h.saturating_record(nanos.max(1));
        }
    }

    fn latency_summary(&mut self) -> LatencySummary {
        let immediate = std::mem::take(&mut self.immediate);
        match &mut self.latency {
            Some(h) => {
                h.saturating_record_n(0, immediate);
                LatencySummary {
                    count: h.len(),
                    min: Duration::from_nanos(h.min()),
                    p50: Duration::from_nanos(h.value_at_quantile(0.5)),
                    p99: Duration::from_nanos(h.value_at_quantile(0.99)),
                    max: Duration::from_nanos(h.max()),
                }
            }
            // Every write (if any) completed on its first poll.
            None => LatencySummary {
                count: immediate,
                ..LatencySummary::default()
            },
        }
    }

    pub(crate) fn into_report(
        mut self,
        outcome: Outcome,
        elapsed: Duration,
        stages: Vec<StageReport>,
        finalize_duration: Option<Duration>,
        abort: Option<AbortReport>,
    ) -> IngestReport {
        IngestReport {
            outcome,
            bytes_read: self.bytes_read,
            bytes_written: self.bytes_written,
            chunks_read: self.chunks_read,
            chunks_written: self.chunks_written,
            elapsed,
            write_latency: self.latency_summary(),
            peak_in_flight: self.peak_in_flight,
            stages,
            finalize_duration,
            abort,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_percentiles_come_from_recorded_writes() {
        let mut stats = Stats::new();
        for micros in 1..=100u64 {
            stats.record_write(10, Duration::from_micros(micros));
        }
        let summary = stats.latency_summary();
        assert_eq!(summary.count, 100);
        assert_eq!(summary.min, Duration::from_micros(1));
        // HDR buckets keep 3 significant digits.
        assert!(summary.p50.as_micros().abs_diff(50) <= 1, "{summary:?}");
        assert!(summary.p99.as_micros().abs_diff(99) <= 1, "{summary:?}");
        assert!(summary.max.as_micros().abs_diff(100) <= 1, "{summary:?}");
        assert_eq!(stats.bytes_written, 1000);
    }

    #[test]
    fn no_writes_means_empty_summary() {
        assert_eq!(Stats::new().latency_summary(), LatencySummary::default());
    }

    #[test]
    fn writes_done_on_their_first_poll_count_as_zero_latency() {
        let mut stats = Stats::new();
        for _ in 0..98 {
            stats.record_write(10, Duration::ZERO);
        }
        stats.record_write(10, Duration::from_micros(7));
        stats.record_write(10, Duration::from_micros(9));
        let summary = stats.latency_summary();
        assert_eq!(summary.count, 100);
        assert_eq!(summary.min, Duration::ZERO);
        assert_eq!(summary.p50, Duration::ZERO);
        assert!(summary.max.as_micros().abs_diff(9) <= 1, "{summary:?}");
        assert_eq!(stats.chunks_written, 100);
    }
}
