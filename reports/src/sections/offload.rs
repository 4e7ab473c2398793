//! The transforms section: checksum transforms against plain hasher loops
//! (ratios), a CPU-heavy stage inline vs offloaded on both runtime flavours
//! (lag p99, throughput, a lag chart per flavour), and `spawn_blocking`
//! vs rayon, and the gates' verdicts. Read as the typed figures
//! `weir-offload` writes (`weir_harness::figures::offload`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;
use weir_harness::ScenarioResult;
use weir_harness::figures::offload::{ChecksumRun, OffloadSummary, StageRun};

use super::newest_per_variant;

use super::{Figures, Section};
use crate::Error;
use crate::charts;
use crate::markdown::{self, millis, rate};
use crate::model::{Chart, Table};

pub(crate) const SECTION: Section = Section {
    scenario: "offload",
    title: "Transforms: checksums vs plain loops, CPU-heavy stages inline vs offloaded",
    render,
};

/// The runtime flavours, in display order.
const FLAVORS: [&str; 2] = ["current_thread", "multi_thread"];
/// The ways a stage runs, in display order.
const WAYS: [&str; 5] = [
    "inline",
    "inline-no-yield",
    "spawn_blocking",
    "adapter-spawn_blocking",
    "adapter-rayon",
];

/// A number of a result's `params`.
fn num(map: &serde_json::Map<String, Value>, key: &str) -> f64 {
    map.get(key).and_then(Value::as_f64).unwrap_or_default()
}

fn text<'a>(map: &'a serde_json::Map<String, Value>, key: &str) -> &'a str {
    map.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn lag_p99(r: &ScenarioResult) -> String {
    r.lag.as_ref().map_or_else(|| "-".to_owned(), |l| millis(l.p99_us))
}

fn way_label(way: &str) -> &str {
    match way {
        "inline" => "inline (on the runtime)",
        "inline-no-yield" => "inline in the source (no yield)",
        "spawn_blocking" => "engine offload (spawn_blocking)",
        "adapter-spawn_blocking" => "stream adapter, spawn_blocking",
        "adapter-rayon" => "stream adapter, rayon pool",
        other => other,
    }
}

/// Checksum transforms against the plain hasher loop over the same bytes.
pub(crate) fn checksum_table(results: &[&ScenarioResult]) -> Table {
    let mut table = Table::new([
        "algorithm",
        "input",
        "chunk",
        "plain loop (best)",
        "transform (best)",
        "ratio (best)",
        "ratio (medians)",
        "outcome",
    ]);
    for r in results {
        let f = r.figures::<ChecksumRun>().unwrap_or_default();
        table.row([
            text(&r.params, "algorithm").to_owned(),
            markdown::bytes(num(&r.params, "size") as u64),
            markdown::bytes(num(&r.params, "chunk_size") as u64),
            rate(f.plain_bps),
            rate(f.engine_bps),
            format!("{:.3}x", f.ratio),
            format!("{:.3}x", f.median_ratio),
            r.outcome.clone(),
        ]);
    }
    table
}

/// Each way of running the stage, per group and flavour: throughput and lag.
pub(crate) fn offload_table(runs: &[&ScenarioResult], baselines: &BTreeMap<&str, &ScenarioResult>) -> Table {
    let mut table = Table::new([
        "stage",
        "runtime",
        "way",
        "throughput",
        "per chunk",
        "CPU per chunk",
        "lag p99",
        "worst p99 of runs",
        "idle lag p99",
        "outcome",
    ]);
    for r in runs {
        let flavor = text(&r.params, "flavor");
        let idle = baselines.get(flavor).map_or_else(|| "-".to_owned(), |b| lag_p99(b));
        let f = r.figures::<StageRun>().unwrap_or_default();
        table.row([
            format!(
                "{} ({} x {})",
                text(&r.params, "group"),
                num(&r.params, "chunks"),
                markdown::bytes(num(&r.params, "chunk_size") as u64)
            ),
            flavor.to_owned(),
            way_label(text(&r.params, "way")).to_owned(),
            rate(r.throughput_bps),
            format!("{:.1} us", f.per_chunk_us),
            format!("{:.1} us", f.per_chunk_cpu_us),
            lag_p99(r),
            if f.runs_lag_p99_us.is_empty() {
                "-".to_owned()
            } else {
                millis(f.worst_lag_p99_us)
            },
            idle,
            r.outcome.clone(),
        ]);
    }
    table
}

/// `spawn_blocking` against rayon through the same adapter, from the
/// summary's `pools`.
pub(crate) fn pools_table(summary: &ScenarioResult) -> Table {
    let mut table = Table::new([
        "stage, runtime",
        "inline per chunk",
        "spawn_blocking per chunk (hop)",
        "rayon per chunk (hop)",
        "rayon throughput / spawn_blocking",
        "lag p99 spawn_blocking / rayon",
        "faster",
    ]);
    let pools = summary.figures::<OffloadSummary>().unwrap_or_default().pools;
    for (case, p) in pools {
        table.row([
            case.replace('-', ", "),
            format!("{:.1} us", p.inline_per_chunk_us),
            format!(
                "{:.1} us ({:+.1})",
                p.spawn_blocking_per_chunk_us, p.spawn_blocking_hop_us
            ),
            format!("{:.1} us ({:+.1})", p.rayon_per_chunk_us, p.rayon_hop_us),
            format!("{:.2}x", p.rayon_over_spawn_blocking_throughput),
            format!(
                "{} / {}",
                millis(p.spawn_blocking_lag_p99_us),
                millis(p.rayon_lag_p99_us)
            ),
            p.faster,
        ]);
    }
    table
}

/// The CPU-heavy stage's lag in units of one chunk's CPU time, per
/// runtime and way: the yield after a millisecond of inline work bounds an
/// inline weir stage's lag by about one chunk; the no-yield way is bounded
/// only by the coop budget.
pub(crate) fn lag_in_chunks(runs: &[&ScenarioResult], baselines: &BTreeMap<&str, &ScenarioResult>) -> String {
    let mut md = String::new();
    for flavor in FLAVORS {
        let pick = |way: &str| {
            runs.iter().copied().find(|r| {
                text(&r.params, "group") == "offload" && text(&r.params, "flavor") == flavor && text(&r.params, "way") == way
            })
        };
        let Some(cpu) = pick("inline").map(|r| r.figures::<StageRun>().unwrap_or_default().per_chunk_cpu_us) else {
            continue;
        };
        if cpu <= 0.0 {
            continue;
        }
        let p99 = |r: &ScenarioResult| r.lag.as_ref().map_or(0, |l| l.p99_us);
        let shown: Vec<String> = ["inline", "inline-no-yield", "spawn_blocking"]
            .into_iter()
            .filter_map(|way| {
                let r = pick(way)?;
                Some(format!("{} {} ({:.1} chunks)", way_label(way), millis(p99(r)), p99(r) as f64 / cpu))
            })
            .collect();
        let idle = baselines.get(flavor).map_or_else(String::new, |b| format!("; idle runtime {}", millis(p99(b))));
        let _ = writeln!(
            md,
            "- {flavor}: one chunk costs {:.2} ms of CPU; lag p99 {}{idle}.",
            cpu / 1000.0,
            shown.join(", ")
        );
    }
    if !md.is_empty() {
        md.insert_str(0, "Lag p99 in chunks of the stage's CPU time:\n\n");
        md.push('\n');
    }
    md
}

fn sort_key(r: &ScenarioResult) -> (usize, usize, usize) {
    let position = |list: &[&str], value: &str| list.iter().position(|v| *v == value).unwrap_or(list.len());
    (
        position(&["offload", "hop"], text(&r.params, "group")),
        position(&FLAVORS, text(&r.params, "flavor")),
        position(&WAYS, text(&r.params, "way")),
    )
}

fn render(results: &[ScenarioResult], figures: &mut Figures<'_>) -> Result<String, Error> {
    let newest = newest_per_variant(results);
    if newest.is_empty() {
        return Ok("No results; run `weir-lab run offload`.\n".to_owned());
    }
    // The newest of this scenario's results, not of the whole run.
    let note = crate::provenance(results);
    let mut md = String::new();
    let _ = writeln!(md, "{}", figures.gates.verdicts("offload", results));

    let checksums: Vec<&ScenarioResult> = newest
        .values()
        .copied()
        .filter(|r| r.variant.starts_with("checksum-"))
        .collect();
    let _ = writeln!(md, "### Checksums vs plain hasher loops\n");
    if checksums.is_empty() {
        let _ = writeln!(md, "No checksum results; run `weir-lab run offload`.\n");
    } else {
        let part = format!(
            "The same bytes through the checksum transform (engine, NullSink) and through a plain loop calling the \
             hasher; best and median of alternating rounds, one process.\n\n{}\n",
            markdown::table(&checksum_table(&checksums))
        );
        md.push_str(&figures.part("offload/checksums", checksums.iter().copied(), part));
    }

    let baselines: BTreeMap<&str, &ScenarioResult> = newest
        .values()
        .copied()
        .filter(|r| text(&r.params, "group") == "baseline")
        .map(|r| (text(&r.params, "flavor"), r))
        .collect();
    let mut runs: Vec<&ScenarioResult> = newest
        .values()
        .copied()
        .filter(|r| matches!(text(&r.params, "group"), "offload" | "hop"))
        .collect();
    runs.sort_by_key(|r| sort_key(r));
    let _ = writeln!(md, "### CPU-heavy stage inline vs offloaded\n");
    if runs.is_empty() {
        let _ = writeln!(md, "No offload results; run `weir-lab run offload`.\n");
    } else {
        let mut part = String::new();
        let _ = writeln!(
            part,
            "`offload`: a stage hashing each chunk many times (milliseconds per chunk); `hop`: a cheap stage on \
             small chunks, so the cost of handing each chunk to a pool shows. Lag: how late a 1 ms heartbeat on \
             the same runtime fired; the median-throughput run of several is shown.\n\n{}",
            markdown::table(&offload_table(&runs, &baselines))
        );
        part.push_str(&lag_in_chunks(&runs, &baselines));
        for flavor in FLAVORS {
            let lagged: Vec<(String, &ScenarioResult)> = runs
                .iter()
                .filter(|r| text(&r.params, "group") == "offload" && text(&r.params, "flavor") == flavor)
                .map(|r| (way_label(text(&r.params, "way")).to_owned(), *r))
                .collect();
            if lagged.iter().all(|(_, r)| r.lag.as_ref().is_none_or(|l| l.samples.is_empty())) {
                continue;
            }
            let mut chart = charts::lag_over_time(&lagged, &note);
            chart.title = format!("Runtime lag, CPU-heavy stage, {flavor} runtime");
            part.push_str(&figures.chart(
                &format!("offload-lag-{flavor}"),
                &format!("runtime lag, inline vs offloaded, {flavor}"),
                &Chart::Line(chart),
                true,
            )?);
        }
        part.push('\n');
        let drawn = runs.iter().chain(baselines.values()).copied();
        md.push_str(&figures.part("offload/stage", drawn, part));
    }

    if let Some(summary) = newest.get("summary") {
        let pools = pools_table(summary);
        if !pools.rows.is_empty() {
            let part = format!(
                "### spawn_blocking vs rayon\n\nThe same stream adapter hands each chunk to Tokio's blocking pool or \
                 to a dedicated rayon pool; hop = per-chunk time minus inline.\n\n{}\n",
                markdown::table(&pools)
            );
            md.push_str(&figures.part("offload/pools", [*summary], part));
        }
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use weir_harness::LagSeries;
    use weir_harness::figures::offload::PoolComparison;

    use super::*;

    fn checksum(algorithm: &str, plain: f64, engine: f64) -> ScenarioResult {
        let mut r = ScenarioResult::new("offload", format!("checksum-{algorithm}"));
        r.params.insert("algorithm".into(), json!(algorithm));
        r.params.insert("size".into(), json!(128u64 << 20));
        r.params.insert("chunk_size".into(), json!(65536));
        r.set_figures(&ChecksumRun {
            plain_bps: plain,
            engine_bps: engine,
            ratio: engine / plain,
            median_ratio: engine / plain,
            ..ChecksumRun::default()
        });
        r
    }

    fn offload(flavor: &str, way: &str, bps: f64, p99_us: u64) -> ScenarioResult {
        let mut r = ScenarioResult::new("offload", format!("offload-{flavor}-{way}"));
        for (key, value) in [
            ("group", json!("offload")),
            ("flavor", json!(flavor)),
            ("way", json!(way)),
            ("chunks", json!(128)),
            ("chunk_size", json!(262_144)),
        ] {
            r.params.insert(key.into(), value);
        }
        r.throughput_bps = bps;
        r.set_figures(&StageRun {
            per_chunk_us: 2200.0,
            per_chunk_cpu_us: 2150.0,
            ..StageRun::default()
        });
        r.lag = Some(LagSeries {
            samples: (0..10).map(|i| [i * 10, p99_us / 2]).collect(),
            p50_us: p99_us / 2,
            p99_us,
            max_us: p99_us,
        });
        r
    }

    #[test]
    fn tables_carry_ratios_lag_and_pools() {
        let dir = tempfile::tempdir().unwrap();
        let mut figures = Figures::for_test(dir.path());
        let mut summary = ScenarioResult::new("offload", "summary");
        let pool = PoolComparison {
            inline_per_chunk_us: 2288.4,
            spawn_blocking_per_chunk_us: 2300.0,
            spawn_blocking_hop_us: 11.6,
            rayon_per_chunk_us: 2263.7,
            rayon_hop_us: -24.7,
            rayon_over_spawn_blocking_throughput: 1.016,
            spawn_blocking_lag_p99_us: 1200,
            rayon_lag_p99_us: 1356,
            idle_lag_p99_us: 1000,
            faster: "rayon".into(),
        };
        summary.set_figures(&OffloadSummary {
            pools: [("offload-multi_thread".to_owned(), pool)].into(),
            ..OffloadSummary::default()
        });
        let results = vec![
            checksum("sha256", 2.0e9, 1.9e9),
            offload("current_thread", "inline", 110e6, 42_000),
            offload("current_thread", "spawn_blocking", 105e6, 2_800),
            offload("current_thread", "inline-no-yield", 80e6, 430_000),
            summary,
        ];
        let md = render(&results, &mut figures).unwrap();
        assert!(md.contains("| sha256 | 128.00 MiB | 64.0 KiB | 2000 MB/s | 1900 MB/s | 0.950x | 0.950x |"), "{md}");
        assert!(md.contains("| current_thread | inline (on the runtime) | 110 MB/s |"), "{md}");
        assert!(md.contains("| 42.00 ms |"), "{md}");
        assert!(md.contains("| 2.80 ms |"), "{md}");
        assert!(md.contains("| offload, multi_thread | 2288.4 us | 2300.0 us (+11.6) | 2263.7 us (-24.7) | 1.02x | 1.20 ms / 1.36 ms | rayon |"), "{md}");
        assert!(md.contains("figures/offload-lag-current_thread.svg"), "{md}");
        assert!(
            md.contains(
                "- current_thread: one chunk costs 2.15 ms of CPU; lag p99 inline (on the runtime) 42.00 ms (19.5 \
                 chunks), inline in the source (no yield) 430.00 ms (200.0 chunks), engine offload (spawn_blocking) \
                 2.80 ms (1.3 chunks)."
            ),
            "{md}"
        );
        // The verdicts are the gates': the SHA-256 ratio against its floor,
        // the BLAKE3 gate failing for want of a result.
        assert!(md.contains("Gates (`gates.toml`"), "{md}");
        assert!(
            md.contains(
                "| offload: SHA-256 transform vs raw hasher loop | offload/checksum-sha256 | `extra.ratio` | 0.950 | >= \
                 0.850 | +12% | pass |"
            ),
            "{md}"
        );
        assert!(md.contains("| offload: BLAKE3 transform vs raw hasher loop | offload/(missing) |"), "{md}");
        assert!(dir.path().join("figures/offload-lag-current_thread.png").is_file());
    }

    #[test]
    fn absent_results_say_how_to_get_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut figures = Figures::for_test(dir.path());
        let md = render(&[], &mut figures).unwrap();
        assert!(md.contains("run `weir-lab run offload`"), "{md}");
        let only_summary = render(&[ScenarioResult::new("offload", "summary")], &mut figures).unwrap();
        assert!(only_summary.contains("No checksum results"), "{only_summary}");
    }
}
