//! The bench section: criterion's estimates (read by
//! `weir_harness::criterion_results` as scenario `bench`, variant
//! `group/function/parameter`): a table per group with the engine against
//! the raw loop, the in-flight sweep's throughput and the engine/raw ratio
//! by chunk size as charts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use weir_harness::ScenarioResult;
use weir_harness::figures::bench::BenchEstimate;

use super::{Figures, Section};
use crate::Error;
use crate::markdown::{self, rate};
use crate::model::{Bar, BarChart, Chart, LineChart, Series, Table};

pub(crate) const SECTION: Section = Section {
    scenario: "bench",
    title: "Benchmarks (criterion): engine vs raw loops",
    render,
};

/// One criterion benchmark.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bench<'a> {
    group: &'a str,
    function: &'a str,
    parameter: &'a str,
    result: &'a ScenarioResult,
}

impl Bench<'_> {
    fn figures(&self) -> BenchEstimate {
        self.result.figures().unwrap_or_default()
    }

    fn mean_ns(&self) -> f64 {
        let mean = self.figures().mean_ns;
        if mean > 0.0 { mean } else { self.result.elapsed_s * 1e9 }
    }

    fn ratio(&self) -> Option<f64> {
        self.figures().ratio_vs_raw
    }
}

/// The newest result of each variant, split into group, function and
/// parameter, by group.
fn by_group(results: &[ScenarioResult]) -> BTreeMap<&str, Vec<Bench<'_>>> {
    let mut newest: BTreeMap<&str, &ScenarioResult> = BTreeMap::new();
    for r in results {
        let entry = newest.entry(r.variant.as_str()).or_insert(r);
        if r.started_unix_s > entry.started_unix_s {
            *entry = r;
        }
    }
    let mut groups: BTreeMap<&str, Vec<Bench<'_>>> = BTreeMap::new();
    for (variant, result) in newest {
        let mut parts = variant.splitn(3, '/');
        let group = parts.next().unwrap_or_default();
        let function = parts.next().unwrap_or_default();
        let parameter = parts.next().unwrap_or_default();
        groups.entry(group).or_default().push(Bench {
            group,
            function,
            parameter,
            result,
        });
    }
    for benches in groups.values_mut() {
        benches.sort_by(|a, b| {
            numeric(a.parameter)
                .total_cmp(&numeric(b.parameter))
                .then(a.parameter.cmp(b.parameter))
                .then(a.function.cmp(b.function))
        });
    }
    groups
}

fn numeric(parameter: &str) -> f64 {
    parameter.parse().unwrap_or(f64::INFINITY)
}

/// Nanoseconds in the unit that suits them.
fn duration(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} us", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// A parameter as written, or as bytes when it is a power-of-two size.
fn parameter_label(group: &str, parameter: &str) -> String {
    match parameter.parse::<u64>() {
        Ok(n) if group != "in_flight_sweep" && n >= 1024 && n.is_power_of_two() => markdown::bytes(n),
        _ if parameter.is_empty() => "-".to_owned(),
        _ => parameter.to_owned(),
    }
}

/// One group's table: with a `raw` baseline, each other function next to
/// it (mean time, throughput, ratio); without, every benchmark's figures.
pub(crate) fn group_table(benches: &[Bench<'_>]) -> Table {
    let raw: BTreeMap<&str, &Bench<'_>> = benches
        .iter()
        .filter(|b| b.function == "raw")
        .map(|b| (b.parameter, b))
        .collect();
    let group = benches.first().map_or("", |b| b.group);
    if raw.is_empty() {
        let mut table = Table::new(["parameter", "function", "mean time", "throughput"]);
        for b in benches {
            table.row([
                parameter_label(group, b.parameter),
                if b.function.is_empty() { "-" } else { b.function }.to_owned(),
                duration(b.mean_ns()),
                throughput(b.result),
            ]);
        }
        return table;
    }
    let mut table = Table::new([
        "parameter",
        "function",
        "mean time",
        "raw mean time",
        "throughput",
        "raw throughput",
        "raw time / its time",
    ]);
    for b in benches.iter().filter(|b| b.function != "raw") {
        let baseline = raw.get(b.parameter);
        table.row([
            parameter_label(group, b.parameter),
            b.function.to_owned(),
            duration(b.mean_ns()),
            baseline.map_or_else(|| "-".to_owned(), |r| duration(r.mean_ns())),
            throughput(b.result),
            baseline.map_or_else(|| "-".to_owned(), |r| throughput(r.result)),
            b.ratio().map_or_else(|| "-".to_owned(), |x| format!("{x:.2}x")),
        ]);
    }
    table
}

fn throughput(r: &ScenarioResult) -> String {
    if r.bytes == 0 {
        "-".to_owned()
    } else {
        rate(r.throughput_bps)
    }
}

/// Throughput against max in flight (the sink takes 1 ms per write).
pub(crate) fn in_flight_chart(benches: &[Bench<'_>], note: &str) -> LineChart {
    let points: Vec<(f64, f64)> = benches
        .iter()
        .filter_map(|b| Some((b.parameter.parse::<f64>().ok()?, b.result.throughput_bps / 1e6)))
        .collect();
    LineChart {
        title: "Throughput vs max in flight (sink: 1 ms per write)".to_owned(),
        note: note.to_owned(),
        x_label: "max in flight".to_owned(),
        y_label: "MB/s (criterion mean)".to_owned(),
        y_log: false,
        series: vec![Series {
            name: "engine".to_owned(),
            points,
        }],
    }
}

/// The engine's throughput as a percentage of the raw loop's, by chunk size.
pub(crate) fn ratio_chart(benches: &[Bench<'_>], note: &str) -> BarChart {
    let bars = benches
        .iter()
        .filter(|b| b.function != "raw")
        .filter_map(|b| {
            Some(Bar {
                group: parameter_label(b.group, b.parameter),
                name: format!("{} as % of raw", b.function),
                value: b.ratio()? * 100.0,
            })
        })
        .collect();
    BarChart {
        title: "Engine vs raw loop by chunk size (100 = as fast)".to_owned(),
        note: note.to_owned(),
        y_label: "% of the raw loop's throughput".to_owned(),
        bars,
    }
}

fn render(results: &[ScenarioResult], figures: &mut Figures<'_>) -> Result<String, Error> {
    let groups = by_group(results);
    if groups.is_empty() {
        return Ok(
            "No results; run `cargo bench -p weir-benches` (read from `target/criterion` by `weir-lab report`).\n"
                .to_owned(),
        );
    }
    // The newest of this scenario's results, not of the whole run.
    let note = crate::provenance(results);
    let mut md = figures.gates.verdicts("bench", results);
    md.push('\n');
    let _ = writeln!(
        md,
        "Criterion's mean time per iteration; ratio = the raw loop's time over the benchmark's (above 1: faster \
         than the raw loop).\n"
    );
    for (group, benches) in &groups {
        let mut part = format!("### {group}\n\n");
        if *group == "in_flight_sweep" {
            let chart = in_flight_chart(benches, &note);
            if chart.series.iter().any(|s| !s.points.is_empty()) {
                part.push_str(&figures.chart(
                    "bench-in-flight-sweep",
                    "throughput vs max in flight",
                    &Chart::Line(chart),
                    true,
                )?);
                part.push('\n');
            }
        }
        if *group == "engine_vs_raw" {
            let chart = ratio_chart(benches, &note);
            if !chart.bars.is_empty() {
                part.push_str(&figures.chart(
                    "bench-engine-vs-raw",
                    "engine/raw by chunk size",
                    &Chart::Bars(chart),
                    true,
                )?);
                part.push('\n');
            }
        }
        let _ = writeln!(part, "{}", markdown::table(&group_table(benches)));
        if *group == "engine_vs_raw" {
            let _ = writeln!(
                part,
                "Criterion's mean time per iteration; ratio = the raw loop's time over the benchmark's (above 1: \
                 faster than the raw loop).\n"
            );
            part = figures.part("bench/engine_vs_raw", benches.iter().map(|b| b.result), part);
        }
        md.push_str(&part);
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bench(variant: &str, mean_ns: f64, bytes: u64, ratio: Option<f64>) -> ScenarioResult {
        let mut r = ScenarioResult::new("bench", variant);
        r.bytes = bytes;
        r.elapsed_s = mean_ns / 1e9;
        r.throughput_bps = bytes as f64 / r.elapsed_s;
        r.set_figures(&BenchEstimate {
            mean_ns,
            ratio_vs_raw: ratio,
        });
        r
    }

    #[test]
    fn groups_become_tables_and_charts() {
        let dir = tempfile::tempdir().unwrap();
        let mut figures = Figures::for_test(dir.path());
        let mib = 1u64 << 20;
        let results = vec![
            bench("engine_vs_raw/raw/65536", 1.0e6, 64 * mib, None),
            bench("engine_vs_raw/engine/65536", 1.25e6, 64 * mib, Some(0.8)),
            bench("engine_vs_raw/raw/4096", 2.0e6, 64 * mib, None),
            bench("engine_vs_raw/engine/4096", 2.0e6, 64 * mib, Some(1.0)),
            bench("in_flight_sweep//1", 64.0e6, mib, None),
            bench("in_flight_sweep//8", 8.0e6, mib, None),
            bench("lifecycle/raw", 900.0, 0, None),
            bench("lifecycle/engine", 1200.0, 0, Some(0.75)),
        ];
        let md = render(&results, &mut figures).unwrap();
        let groups = by_group(&results);
        expect_test::expect![[r#"
            | parameter | function | mean time | raw mean time | throughput | raw throughput | raw time / its time |
            |---|---|---|---|---|---|---|
            | 4.0 KiB | engine | 2.00 ms | 2.00 ms | 33.6 GB/s | 33.6 GB/s | 1.00x |
            | 64.0 KiB | engine | 1.25 ms | 1.00 ms | 53.7 GB/s | 67.1 GB/s | 0.80x |
        "#]]
        .assert_eq(&markdown::table(&group_table(&groups["engine_vs_raw"])));
        assert!(md.contains("| 8 | - | 8.00 ms | 131 MB/s |"), "{md}");
        assert!(md.contains("| - | engine | 1.20 us | 900 ns | - | - | 0.75x |"), "{md}");
        assert!(
            md.contains("| bench: engine vs raw loop, 64 KiB chunks | bench/engine_vs_raw/engine/65536 | `extra.ratio_vs_raw` | 0.800 | >= 0.700 | +14% | pass |"),
            "{md}"
        );
        for figure in ["bench-in-flight-sweep", "bench-engine-vs-raw"] {
            assert!(md.contains(&format!("figures/{figure}.svg")), "{md}");
            assert!(dir.path().join(format!("figures/{figure}.png")).is_file());
        }
        let empty = render(&[], &mut figures).unwrap();
        assert!(empty.contains("No results; run `cargo bench -p weir-benches`"), "{empty}");
    }

    fn estimate(criterion: &std::path::Path, function: &str, mean_ns: f64) {
        let new = criterion.join("engine_vs_raw").join(function).join("65536").join("new");
        std::fs::create_dir_all(&new).unwrap();
        let estimates = json!({"mean": {"point_estimate": mean_ns, "standard_error": 1.0}});
        std::fs::write(new.join("estimates.json"), estimates.to_string()).unwrap();
        let benchmark = json!({"group_id": "engine_vs_raw", "function_id": function, "value_str": "65536",
                               "throughput": {"Bytes": 1u64 << 20}});
        std::fs::write(new.join("benchmark.json"), benchmark.to_string()).unwrap();
    }

    #[test]
    fn criterion_estimates_reach_the_report_and_absent_sections_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("results");
        let criterion = dir.path().join("criterion");
        std::fs::create_dir_all(&results).unwrap();
        estimate(&criterion, "raw", 1000.0);
        estimate(&criterion, "engine", 1250.0);
        let out = dir.path().join("out");
        let index = crate::render_dir_with_criterion(&results, &criterion, &out, None).unwrap();
        let text = std::fs::read_to_string(index).unwrap();
        assert!(text.contains("## Benchmarks (criterion)"), "{text}");
        assert!(text.contains("| 64.0 KiB | engine | 1.25 us | 1.00 us |"), "{text}");
        assert!(text.contains("| 0.80x |"), "{text}");
        assert!(text.contains("No results for: flow, "), "{text}");
        let missing = crate::render_dir_with_criterion(&results, &dir.path().join("none"), &out, None);
        assert!(matches!(missing, Err(crate::Error::NoResults(_))), "{missing:?}");
    }
}
