//! Latency distributions (HDR histogram, 3 significant digits) and small
//! process probes (threads, temporary files) shared by the scenario's parts.

use std::path::Path;
use std::time::Duration;

use hdrhistogram::Histogram;
pub use weir_harness::figures::cancellation::LatencyStats;

/// The quantiles kept for the latency-by-percentile chart.
pub const CHART_QUANTILES: [f64; 13] = [
    0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 1.0,
];

/// Collects durations into an HDR histogram (1 ns ..= 1 hour).
#[derive(Debug)]
pub struct LatencyRecorder {
    histogram: Option<Histogram<u64>>,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self {
            // The bounds are constant and valid, so creation cannot fail.
            histogram: Histogram::new_with_bounds(1, 3_600_000_000_000, 3).ok(),
        }
    }
}

impl LatencyRecorder {
    /// Records one duration (clamped into the histogram's range).
    pub fn record(&mut self, value: Duration) {
        if let Some(h) = &mut self.histogram {
            let nanos = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX).max(1);
            h.saturating_record(nanos);
        }
    }

    /// The distribution recorded so far.
    pub fn stats(&self) -> LatencyStats {
        let Some(h) = self.histogram.as_ref().filter(|h| !h.is_empty()) else {
            return LatencyStats::default();
        };
        let us = |nanos: u64| nanos as f64 / 1_000.0;
        LatencyStats {
            count: h.len(),
            mean_us: h.mean() / 1_000.0,
            p50_us: us(h.value_at_quantile(0.5)),
            p90_us: us(h.value_at_quantile(0.9)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
            quantiles: CHART_QUANTILES
                .iter()
                .map(|&q| (q, us(h.value_at_quantile(q))))
                .collect(),
        }
    }
}

/// Threads of this process, from `/proc/self/status` (0 where unknown).
pub fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Waits up to `within` for `probe` to return `want` (threads and
/// descriptors are released a moment after the code that owns them
/// returns); returns the last value seen.
pub async fn settle(want: usize, within: Duration, probe: impl Fn() -> usize) -> usize {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let now = probe();
        if now == want || tokio::time::Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Open descriptors at rest: the smallest of a few counts 1 ms apart, so
/// that a descriptor another thread holds for a moment (the RSS sampler
/// reading `/proc/self/statm`) does not inflate the baseline and hide a
/// leak.
pub async fn baseline_fds() -> usize {
    let mut least = weir_harness::open_fds();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(1)).await;
        least = least.min(weir_harness::open_fds());
    }
    least
}

/// Files in `dir` (recursively) whose name ends in `.weir-tmp`: the file
/// sink's temporary files, which must never outlive an ingestion.
pub fn temp_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.to_string_lossy().ends_with(".weir-tmp") {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_recorded_values() {
        let mut recorder = LatencyRecorder::default();
        for micros in 1..=1000u64 {
            recorder.record(Duration::from_micros(micros));
        }
        let stats = recorder.stats();
        assert_eq!(stats.count, 1000);
        assert!((stats.p50_us - 500.0).abs() <= 1.0, "{stats:?}");
        assert!((stats.p99_us - 990.0).abs() <= 1.0, "{stats:?}");
        assert!((stats.max_us - 1000.0).abs() <= 1.0, "{stats:?}");
        assert_eq!(stats.quantiles.len(), CHART_QUANTILES.len());
        assert!(stats.quantiles.windows(2).all(|w| w[0].1 <= w[1].1));
    }

    #[test]
    fn an_empty_recorder_has_an_empty_distribution() {
        assert_eq!(LatencyRecorder::default().stats(), LatencyStats::default());
    }

    #[test]
    fn temporary_files_are_found_in_subdirectories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/.x.123.weir-tmp"), b"").unwrap();
        std::fs::write(dir.path().join("kept.bin"), b"").unwrap();
        let found = temp_files(dir.path());
        assert_eq!(found.len(), 1);
        assert!(found[0].ends_with(".x.123.weir-tmp"));
    }

    #[test]
    fn this_process_has_threads() {
        assert!(threads() >= 1);
    }
}
