//! What a flow run found, computed from its results: the flat-memory table
//! and slope, controlled vs unbounded growth, throughput ratios, runtime
//! lag, and each of the floors as a check.

use serde::{Deserialize, Serialize};
use weir_harness::ScenarioResult;

const MIB: u64 = 1 << 20;

/// Controlled flow into a slow sink may add at most this much RSS.
pub const CONTROLLED_GROWTH_CEILING: u64 = 8 * MIB;
/// Flat-memory peaks must be within this of each other...
pub const FLAT_SPREAD_CEILING: u64 = 2 * MIB;
/// ...and each under this.
pub const FLAT_PEAK_CEILING: u64 = 16 * MIB;
/// The engine must reach at least this fraction of the plain loop.
pub const THROUGHPUT_RATIO_FLOOR: f64 = 0.9;
/// Runtime lag p99 during controlled flow must stay under this, microseconds.
pub const LAG_P99_CEILING_US: u64 = 5_000;
/// Runs with fewer lag samples than this are not used for the lag check.
pub const LAG_MIN_SAMPLES: usize = 100;
/// The unbounded variant must grow by at least this fraction of its input
/// (it is expected to approach the whole input).
pub const UNBOUNDED_GROWTH_FLOOR: f64 = 0.5;

/// One size of the flat-memory proof.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// One throughput comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// One of the floors, checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// What is checked.
    pub name: String,
    /// The requirement, in words.
    pub requirement: String,
    /// What was measured, in words.
    pub measured: String,
    /// Whether it holds.
    pub pass: bool,
}

/// Everything a flow run found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// The floors.
    pub checks: Vec<Check>,
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

fn extra_f64(result: &ScenarioResult, key: &str) -> f64 {
    result
        .extra
        .get(key)
        .and_then(serde_json::Value::as_f64)
        .unwrap_or_default()
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / MIB as f64)
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
            load_average: r.extra.get("load_average_before").and_then(serde_json::Value::as_f64),
            outcome: r.outcome.clone(),
        })
        .collect();

    summary.throughput = flow
        .iter()
        .filter(|r| r.variant == "throughput" && r.is_ok())
        .map(|r| ThroughputRow {
            sink: param_str(r, "sink"),
            baseline: r
                .extra
                .get("baseline")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            size: param_u64(r, "size"),
            chunk_size: param_u64(r, "chunk_size"),
            engine_bps: extra_f64(r, "engine_bps"),
            plain_bps: extra_f64(r, "plain_bps"),
            ratio: extra_f64(r, "ratio"),
        })
        .collect();

    summary.checks = checks(&summary, &flow);
    summary
}

fn checks(summary: &FlowSummary, flow: &[&ScenarioResult]) -> Vec<Check> {
    let mut checks = Vec::new();
    for row in summary
        .flows
        .iter()
        .filter(|r| r.variant.starts_with("controlled") && r.sink.starts_with("slow"))
    {
        checks.push(Check {
            name: format!("controlled memory: {} -> {} ({})", row.variant, row.sink, mib(row.size)),
            requirement: format!("peak - baseline RSS < {}", mib(CONTROLLED_GROWTH_CEILING)),
            measured: mib(row.growth_bytes),
            pass: row.outcome == "ok" && row.growth_bytes < CONTROLLED_GROWTH_CEILING,
        });
    }
    for row in summary.flows.iter().filter(|r| r.variant == "unbounded") {
        let fraction = row.growth_bytes as f64 / row.size.max(1) as f64;
        checks.push(Check {
            name: format!("unbounded grows: -> {} ({})", row.sink, mib(row.size)),
            requirement: format!("peak - baseline RSS >= {UNBOUNDED_GROWTH_FLOOR} x input"),
            measured: format!("{} ({fraction:.2} x input)", mib(row.growth_bytes)),
            pass: fraction >= UNBOUNDED_GROWTH_FLOOR,
        });
    }
    if summary.flat_memory.len() >= 2 {
        let spread = summary.flat_spread_bytes.unwrap_or_default();
        checks.push(Check {
            name: format!(
                "flat memory: {}",
                summary
                    .flat_memory
                    .iter()
                    .map(|p| mib(p.size))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            requirement: format!("peaks within {} of each other", mib(FLAT_SPREAD_CEILING)),
            measured: format!(
                "spread {}, slope {:.0} bytes/GiB",
                mib(spread),
                summary.flat_slope_bytes_per_gib.unwrap_or_default()
            ),
            pass: spread <= FLAT_SPREAD_CEILING,
        });
        let max_peak = summary
            .flat_memory
            .iter()
            .map(|p| p.peak_bytes)
            .max()
            .unwrap_or_default();
        checks.push(Check {
            name: "flat memory: peak RSS".to_owned(),
            requirement: format!("each peak < {}", mib(FLAT_PEAK_CEILING)),
            measured: format!("largest {}", mib(max_peak)),
            pass: max_peak < FLAT_PEAK_CEILING,
        });
    }
    for row in &summary.throughput {
        checks.push(Check {
            name: format!(
                "throughput: file -> {} vs plain loop, {} KiB buffers",
                row.sink,
                row.chunk_size / 1024
            ),
            requirement: format!("engine >= {THROUGHPUT_RATIO_FLOOR} x plain"),
            measured: format!(
                "{:.2} x ({:.0} vs {:.0} MB/s)",
                row.ratio,
                row.engine_bps / 1e6,
                row.plain_bps / 1e6
            ),
            pass: row.ratio >= THROUGHPUT_RATIO_FLOOR,
        });
    }
    // A p99 needs samples: runs shorter than a second (a hundred 10 ms
    // heartbeats) are left out.
    let lag = flow
        .iter()
        .filter(|r| r.variant.starts_with("controlled") && r.is_ok())
        .filter_map(|r| r.lag.as_ref())
        .filter(|l| l.samples.len() >= LAG_MIN_SAMPLES)
        .map(|l| l.p99_us)
        .max();
    if let Some(p99) = lag {
        checks.push(Check {
            name: "runtime lag during controlled flow".to_owned(),
            requirement: format!(
                "p99 < {} ms (worst controlled run of at least {LAG_MIN_SAMPLES} heartbeats)",
                LAG_P99_CEILING_US / 1000
            ),
            measured: format!("{:.2} ms", p99 as f64 / 1000.0),
            pass: p99 < LAG_P99_CEILING_US,
        });
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    fn flat_points_give_spread_slope_and_checks() {
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
        assert!(summary.checks.iter().all(|c| c.pass), "{:?}", summary.checks);

        let grown = [flat(100 * MIB, 9 * MIB), flat(1 << 30, 20 * MIB)];
        let summary = summarize(&grown);
        assert_eq!(
            summary.checks.iter().filter(|c| !c.pass).count(),
            2,
            "{:?}",
            summary.checks
        );
    }
}
