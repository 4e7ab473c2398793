//! The flow scenario's figures: one run of a flow case (controlled or
//! unbounded), one throughput comparison, and the summary computed from
//! them ([`summarize`]), which `weir-flow` writes and `weir-reports` reads.

use serde::{Deserialize, Serialize};

use crate::{PairedRatio, ScenarioResult};

/// What one controlled or unbounded flow case measured (variants
/// `controlled-<n>` and `unbounded`, every group).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FlowRun {
    /// Peak minus baseline RSS, bytes (also `rss.growth_bytes`), kept in the
    /// figures so that a reader of the JSON alone sees it.
    pub growth_bytes: u64,
    /// The machine's 1-minute load average when the run started: a noisy
    /// neighbour shows here.
    pub load_average_before: Option<f64>,
    /// The same when it ended.
    pub load_average_after: Option<f64>,
    /// Controlled: the most writes in flight at once (must not exceed the
    /// configured bound).
    pub peak_in_flight: Option<u64>,
    /// Controlled: chunks the sink acknowledged.
    pub chunks_written: Option<u64>,
    /// Controlled: the p99 of one write's latency, microseconds.
    pub write_latency_p99_us: Option<u64>,
    /// Unbounded: the cap that stops the broken way before it eats the
    /// machine, bytes outstanding.
    pub cap_outstanding_bytes: Option<u64>,
    /// Unbounded: the cap on its wall time, milliseconds.
    pub cap_millis: Option<u64>,
    /// Unbounded: the most bytes spawned and not yet written.
    pub peak_outstanding_bytes: Option<u64>,
    /// Unbounded: write tasks spawned.
    pub spawned: Option<u64>,
    /// Unbounded: bytes read from the source.
    pub bytes_read: Option<u64>,
    /// Unbounded: why the cap stopped it, when it did.
    pub capped: Option<String>,
    /// Backpressure group: the p99 lag of the same runtime's heartbeat
    /// over one idle second just before the run, microseconds: what the
    /// machine alone costs the heartbeat at that moment.
    pub idle_lag_p99_us: Option<u64>,
    /// Backpressure group: the run's p99 lag minus `idle_lag_p99_us`
    /// (0 when the idle second was the worse), microseconds: what the
    /// ingestion adds, with a loaded machine's share taken out.
    pub lag_over_idle_p99_us: Option<u64>,
}

/// One throughput comparison (variant `throughput`): the engine against a
/// plain `std::fs` loop in paired, interleaved rounds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FlowThroughput {
    /// What the engine was compared with, in words.
    pub baseline: String,
    /// The machine's 1-minute load average before the rounds.
    pub load_average_before: Option<f64>,
    /// The same after them.
    pub load_average_after: Option<f64>,
    /// Engine, median round, bytes per second.
    pub engine_bps: f64,
    /// Plain loop, median round, bytes per second.
    pub plain_bps: f64,
    /// The median of the per-round `engine / plain` ratios: the gated
    /// figure.
    pub ratio: f64,
    /// Largest minus smallest per-round ratio.
    pub ratio_spread: f64,
    /// Every round.
    pub paired: PairedRatio,
}

/// One size of the flat-memory proof.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlatPoint {
    /// Input size, bytes.
    pub size: u64,
    /// Peak RSS, bytes.
    pub peak_bytes: u64,
    /// RSS when the run started, bytes.
    pub baseline_bytes: u64,
    /// Throughput, bytes per second.
    pub throughput_bps: f64,
}

/// One run of the controlled-vs-unbounded comparison.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlowRow {
    /// `controlled-1`, `controlled-8`, `unbounded`.
    pub variant: String,
    /// Source name.
    pub source: String,
    /// Sink name.
    pub sink: String,
    /// Input size, bytes.
    pub size: u64,
    /// Peak minus baseline RSS, bytes.
    pub growth_bytes: u64,
    /// Peak RSS, bytes.
    pub peak_bytes: u64,
    /// Wall time, seconds.
    pub elapsed_s: f64,
    /// Runtime lag p99, microseconds.
    pub lag_p99_us: Option<u64>,
    /// The machine's 1-minute load average when the run started.
    pub load_average: Option<f64>,
    /// `ok`, `capped: ...` or the error.
    pub outcome: String,
}

/// One throughput comparison, as the summary lists it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThroughputRow {
    /// `null` or `file`.
    pub sink: String,
    /// What the engine was compared with.
    pub baseline: String,
    /// File size, bytes.
    pub size: u64,
    /// Buffer (chunk) size, bytes.
    pub chunk_size: u64,
    /// Engine median, bytes per second.
    pub engine_bps: f64,
    /// Plain loop median, bytes per second.
    pub plain_bps: f64,
    /// `engine_bps / plain_bps`.
    pub ratio: f64,
}

/// Everything a flow run found (variant `summary`). Figures only: the
/// verdicts on them are the gates' (`gates.toml`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FlowSummary {
    /// Flat-memory points, by size.
    pub flat_memory: Vec<FlatPoint>,
    /// Least-squares slope of peak RSS against input size, bytes of RSS per
    /// GiB of input (0 means perfectly flat).
    pub flat_slope_bytes_per_gib: Option<f64>,
    /// Largest minus smallest flat-memory peak, bytes.
    pub flat_spread_bytes: Option<u64>,
    /// Controlled and unbounded runs (group `backpressure` and `adhoc`).
    pub flows: Vec<FlowRow>,
    /// Throughput comparisons.
    pub throughput: Vec<ThroughputRow>,
}

fn param_str(result: &ScenarioResult, key: &str) -> String {
    result
        .params
        .get(key)
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn param_u64(result: &ScenarioResult, key: &str) -> u64 {
    result
        .params
        .get(key)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_default()
}

/// Least-squares slope of `y` against `x`; `None` with fewer than two
/// distinct `x`.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    Some(sxy / sxx)
}

/// The flow results of `results` (other scenarios and the summary itself
/// are skipped), summarized.
pub fn summarize(results: &[ScenarioResult]) -> FlowSummary {
    let flow: Vec<&ScenarioResult> = results
        .iter()
        .filter(|r| r.scenario == "flow" && r.variant != "summary")
        .collect();
    let mut summary = FlowSummary::default();

    let mut flat: Vec<FlatPoint> = flow
        .iter()
        .filter(|r| param_str(r, "group") == "flat-memory" && r.is_ok())
        .map(|r| FlatPoint {
            size: param_u64(r, "size"),
            peak_bytes: r.rss.peak_bytes,
            baseline_bytes: r.rss.baseline_bytes,
            throughput_bps: r.throughput_bps,
        })
        .collect();
    flat.sort_by_key(|p| p.size);
    let gib = f64::from(1u32 << 30);
    summary.flat_slope_bytes_per_gib = slope(
        &flat
            .iter()
            .map(|p| (p.size as f64 / gib, p.peak_bytes as f64))
            .collect::<Vec<_>>(),
    );
    let peaks = flat.iter().map(|p| p.peak_bytes);
    summary.flat_spread_bytes = peaks.clone().max().zip(peaks.min()).map(|(max, min)| max - min);
    summary.flat_memory = flat;

    summary.flows = flow
        .iter()
        .filter(|r| matches!(param_str(r, "group").as_str(), "backpressure" | "adhoc") && r.variant != "throughput")
        .map(|r| FlowRow {
            variant: r.variant.clone(),
            source: param_str(r, "source"),
            sink: param_str(r, "sink"),
            size: param_u64(r, "size"),
            growth_bytes: r.rss.growth_bytes(),
            peak_bytes: r.rss.peak_bytes,
            elapsed_s: r.elapsed_s,
            lag_p99_us: r.lag.as_ref().map(|l| l.p99_us),
            load_average: r.figures::<FlowRun>().and_then(|f| f.load_average_before),
            outcome: r.outcome.clone(),
        })
        .collect();

    summary.throughput = flow
        .iter()
        .filter(|r| r.variant == "throughput" && r.is_ok())
        .map(|r| {
            let figures = r.figures::<FlowThroughput>().unwrap_or_default();
            ThroughputRow {
                sink: param_str(r, "sink"),
                baseline: figures.baseline,
                size: param_u64(r, "size"),
                chunk_size: param_u64(r, "chunk_size"),
                engine_bps: figures.engine_bps,
                plain_bps: figures.plain_bps,
                ratio: figures.ratio,
            }
        })
        .collect();
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MIB: u64 = 1 << 20;

    fn flat(size: u64, peak: u64) -> ScenarioResult {
        let mut r = ScenarioResult {
            scenario: "flow".into(),
            variant: "controlled-1".into(),
            outcome: "ok".into(),
            ..ScenarioResult::default()
        };
        r.params.insert("group".into(), json!("flat-memory"));
        r.params.insert("size".into(), json!(size));
        r.rss.peak_bytes = peak;
        r.rss.baseline_bytes = peak - MIB;
        r
    }

    #[test]
    fn slope_of_a_line_and_of_too_few_points() {
        let s = slope(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]).unwrap();
        assert!((s - 2.0).abs() < 1e-9);
        assert_eq!(slope(&[(1.0, 1.0)]), None);
        assert_eq!(slope(&[(1.0, 1.0), (1.0, 2.0)]), None);
    }

    #[test]
    fn flat_points_give_spread_and_slope() {
        let results = [
            flat(10 << 30, 10 * MIB),
            flat(100 * MIB, 9 * MIB),
            flat(1 << 30, 10 * MIB),
        ];
        let summary = summarize(&results);
        assert_eq!(
            summary.flat_memory.iter().map(|p| p.size).collect::<Vec<_>>(),
            [100 * MIB, 1 << 30, 10 << 30]
        );
        assert_eq!(summary.flat_spread_bytes, Some(MIB));
        assert!(summary.flat_slope_bytes_per_gib.unwrap() > 0.0);

        let grown = summarize(&[flat(100 * MIB, 9 * MIB), flat(1 << 30, 20 * MIB)]);
        assert_eq!(grown.flat_spread_bytes, Some(11 * MIB));
    }

    #[test]
    fn throughput_rows_read_the_typed_figures() {
        let mut r = ScenarioResult {
            scenario: "flow".into(),
            variant: "throughput".into(),
            outcome: "ok".into(),
            ..ScenarioResult::default()
        };
        r.params.insert("sink".into(), json!("null"));
        r.params.insert("chunk_size".into(), json!(65536));
        r.set_figures(&FlowThroughput {
            baseline: "plain".into(),
            engine_bps: 2.0e9,
            plain_bps: 2.5e9,
            ratio: 0.8,
            ..FlowThroughput::default()
        });
        let summary = summarize(&[r]);
        assert_eq!(summary.throughput.len(), 1);
        let row = &summary.throughput[0];
        assert_eq!((row.sink.as_str(), row.chunk_size, row.ratio), ("null", 65536, 0.8));
        assert_eq!(row.baseline, "plain");
    }
}
