//! The headline table: one row per claim the README makes, each figure
//! read from the results (never typed in), with the command that measures
//! it. A row whose results are absent is left out, not guessed. Figures
//! are read as their scenario's types (`weir_harness::figures`).

use std::fmt::Write as _;

use serde::de::DeserializeOwned;
use weir_harness::ScenarioResult;
use weir_harness::figures::bench::BenchEstimate;
use weir_harness::figures::cancellation::TrialsReport;
use weir_harness::figures::chaos::ChaosRun;
use weir_harness::figures::datasync::{DatasyncEncoding, DatasyncRun};
use weir_harness::figures::delivery::{DeliveryFast, DeliverySlow};
use weir_harness::figures::flow::FlowThroughput;
use weir_harness::figures::offload::{ChecksumRun, StageRun};

use crate::markdown::{self, bytes, rate};
use crate::model::Table;

/// One row's cells: what, figure, the command that measures it.
type Row = [String; 3];

/// The rows, in the README's order. Each reads what it needs from the
/// results, or returns `None` when a result it needs is missing.
const ROWS: &[fn(&Results<'_>) -> Option<Row>] = &[
    flow_backpressure,
    flow_throughput,
    cancel_latency,
    chaos,
    delivery_slow,
    delivery_fast,
    datasync_rate,
    datasync_baselines,
    datasync_cpu,
    checksums,
    offload,
    bench_engine,
    bench_sweep,
];

/// The results the rows read, newest first where several match.
struct Results<'a>(&'a [ScenarioResult]);

impl<'a> Results<'a> {
    /// The newest successful result of `scenario`/`variant` whose params
    /// match `filter` (`""`: any).
    fn newest(&self, scenario: &str, variant: &str, filter: &str) -> Option<&'a ScenarioResult> {
        self.0
            .iter()
            .filter(|r| r.scenario == scenario && r.variant == variant && r.is_ok())
            .filter(|r| filter.is_empty() || r.params_match(filter))
            .max_by_key(|r| r.started_unix_s)
    }

    /// A metric of that newest result (the harness's own series:
    /// `rss.*`, `lag.*`).
    fn num(&self, scenario: &str, variant: &str, filter: &str, path: &str) -> Option<f64> {
        self.newest(scenario, variant, filter)?.metric(path)
    }

    /// The figures of that newest result, as `T`.
    fn figures<T: DeserializeOwned>(&self, scenario: &str, variant: &str, filter: &str) -> Option<T> {
        self.newest(scenario, variant, filter)?.figures()
    }
}

/// A parameter as a whole number.
fn param(result: &ScenarioResult, key: &str) -> Option<u64> {
    result.params.get(key)?.as_u64()
}

/// A count with thousands separators: `3,000,000`.
fn count(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mib(bytes_f: f64) -> String {
    bytes(bytes_f.max(0.0) as u64)
}

fn flow_backpressure(r: &Results<'_>) -> Option<Row> {
    const SLOW: &str = "group=backpressure,sink=slow-1ms";
    let one = r.newest("flow", "controlled-1", SLOW)?;
    let size = param(one, "size").unwrap_or(one.bytes);
    let mut figure = format!("+{} RSS (in-flight 1)", mib(one.metric("rss.growth_bytes")?));
    if let Some(eight) = r.num("flow", "controlled-8", SLOW, "rss.growth_bytes") {
        let _ = write!(figure, ", +{} (in-flight 8)", mib(eight));
    }
    if let Some(unbounded) = r.num("flow", "unbounded", SLOW, "rss.growth_bytes") {
        let _ = write!(figure, "; unbounded: +{}", mib(unbounded));
    }
    Some([
        format!("controlled flow, 1 ms slow sink, {}", bytes(size)),
        figure,
        "`weir-lab run flow`".into(),
    ])
}

fn flow_throughput(r: &Results<'_>) -> Option<Row> {
    let mut parts = Vec::new();
    for (sink, label) in [("file", "`FileSink`"), ("null", "`NullSink`")] {
        let run: FlowThroughput = r.figures("flow", "throughput", &format!("sink={sink},chunk_size=65536"))?;
        parts.push(format!(
            "{label} {:.2}x ({} vs {})",
            run.ratio,
            rate(run.engine_bps),
            rate(run.plain_bps)
        ));
    }
    Some([
        "file -> sink vs a plain `std::fs` loop, 64 KiB buffers".into(),
        parts.join("; "),
        "`weir-lab run flow --variant throughput`".into(),
    ])
}

fn cancel_latency(r: &Results<'_>) -> Option<Row> {
    let hung = r.newest("cancellation", "hung", "")?;
    let trials = param(hung, "trials").unwrap_or_default();
    let figures: TrialsReport = hung.figures()?;
    Some([
        format!("cancel-to-return, hung sink write, {} trials", count(trials as f64)),
        format!(
            "p99 {:.0} us (p50 {:.0} us); {} writes after abort",
            figures.latency.p99_us, figures.latency.p50_us, figures.violations
        ),
        "`weir-lab run cancellation`".into(),
    ])
}

fn chaos(r: &Results<'_>) -> Option<Row> {
    let mut sinks: Vec<&str> =
        r.0.iter()
            .filter(|x| x.scenario == "chaos")
            .map(|x| x.variant.as_str())
            .collect();
    sinks.sort_unstable();
    sinks.dedup();
    if sinks.is_empty() {
        return None;
    }
    let (mut schedules, mut violations) = (0.0, 0.0);
    for sink in &sinks {
        let run: ChaosRun = r.figures("chaos", sink, "")?;
        schedules += run.schedules as f64;
        violations += run.violations as f64;
    }
    Some([
        format!(
            "atomic invariant over generated failure schedules ({} sinks)",
            sinks.join(", ")
        ),
        format!("{} schedules, {} violations", count(schedules), count(violations)),
        "`weir-lab run chaos`; `just test` runs more".into(),
    ])
}

/// weir's server in a phase: the default send path's result (sendfile),
/// or, in results from before it, the hyper path's; and the path's name.
fn weir_server<'a>(r: &Results<'a>, phase: &str) -> Option<(&'a ScenarioResult, &'static str)> {
    r.newest("delivery", &format!("{phase}-weir-sendfile"), "")
        .map(|w| (w, "sendfile"))
        .or_else(|| {
            r.newest("delivery", &format!("{phase}-weir-pull"), "")
                .map(|w| (w, "hyper"))
        })
}

fn delivery_slow(r: &Results<'_>) -> Option<Row> {
    let (weir, path) = weir_server(r, "slow")?;
    let clients = param(weir, "slow_clients").unwrap_or_default();
    let size = param(weir, "file_size").unwrap_or_default();
    let mut figure = format!(
        "{} ({path} path",
        bytes(weir.figures::<DeliverySlow>()?.server_peak_rss_bytes)
    );
    for (variant, name) in [
        ("slow-nginx", "nginx"),
        ("slow-tower-serve-file", "tower-http `ServeFile`"),
    ] {
        if let Some(other) = r.figures::<DeliverySlow>("delivery", variant, "") {
            let _ = write!(figure, "; {name}: {}", bytes(other.server_peak_rss_bytes));
        }
    }
    figure.push(')');
    Some([
        format!("HTTP, {clients} slow clients x {}: server peak RSS", bytes(size)),
        figure,
        "`weir-lab run delivery`".into(),
    ])
}

fn delivery_fast(r: &Results<'_>) -> Option<Row> {
    let fast = weir_server(r, "fast")?
        .0
        .figures::<DeliveryFast>()?
        .throughput_vs_serve_file?;
    let cpu = weir_server(r, "slow")?
        .0
        .figures::<DeliverySlow>()?
        .cpu_per_gib_vs_serve_file?;
    Some([
        "HTTP vs `ServeFile`: fast-client throughput; CPU per GiB sent to slow clients".into(),
        format!("{fast:.2}x; {cpu:.2}x"),
        "`weir-lab run delivery`".into(),
    ])
}

fn datasync_rate(r: &Results<'_>) -> Option<Row> {
    let copy = r.newest("datasync", "copy", "")?;
    let events = param(copy, "events").unwrap_or_default();
    let figures: DatasyncRun = copy.figures()?;
    Some([
        format!("DataSync, {} events with faults, exactly once", count(events as f64)),
        format!(
            "{} events/s; stored ids {}",
            count(figures.events_per_s),
            if figures.verified {
                "equal the API's"
            } else {
                "NOT verified"
            }
        ),
        "`weir-lab run datasync`".into(),
    ])
}

fn datasync_baselines(r: &Results<'_>) -> Option<Row> {
    let copy: DatasyncRun = r.figures("datasync", "copy", "")?;
    let autocommit = copy.speedup_vs_row_by_row_autocommit?;
    let one_tx = copy.speedup_vs_row_by_row?;
    let mut figure = format!("{autocommit:.0}x autocommit; {one_tx:.1}x one transaction");
    if let Some(tsv) = copy.speedup_vs_two_stage_tsv {
        let _ = write!(figure, "; {tsv:.1}x two-stage TSV");
    }
    if let Some(ceiling) = r
        .figures::<DatasyncEncoding>("datasync", "copy-encoding", "")
        .and_then(|e| e.pg_copy_ceiling_vs_row_by_row)
    {
        let _ = write!(
            figure,
            " (PostgreSQL's own COPY of the same rows: {ceiling:.1}x one transaction)"
        );
    }
    Some([
        "DataSync COPY job vs row-by-row `INSERT`".into(),
        figure,
        "`weir-lab run datasync`".into(),
    ])
}

fn datasync_cpu(r: &Results<'_>) -> Option<Row> {
    let copy = r.newest("datasync", "copy", "")?;
    let figures: DatasyncRun = copy.figures()?;
    let client = figures.cpu_client_us_per_event?;
    let server = figures.cpu_postgres_us_per_event?;
    let mut figure = format!("{client:.2} us / {server:.2} us");
    if let Some(bound) = figures.cpu_bound_events_per_s {
        let _ = write!(
            figure,
            ": {} cores allow ~{}k events/s",
            copy.machine.cores,
            count(bound / 1000.0)
        );
    }
    Some([
        "DataSync CPU per event (mock API + job / PostgreSQL)".into(),
        figure,
        "`weir-lab run datasync`".into(),
    ])
}

fn checksums(r: &Results<'_>) -> Option<Row> {
    let sha = r.figures::<ChecksumRun>("offload", "checksum-sha256", "")?.ratio;
    let blake = r.figures::<ChecksumRun>("offload", "checksum-blake3", "")?.ratio;
    Some([
        "SHA-256 / BLAKE3 transform vs a raw hasher loop".into(),
        format!("{sha:.2}x / {blake:.2}x"),
        "`weir-lab run offload`".into(),
    ])
}

fn offload(r: &Results<'_>) -> Option<Row> {
    let offloaded = r.newest("offload", "offload-current_thread-spawn_blocking", "")?;
    let inline = r.num("offload", "offload-current_thread-inline", "", "lag.p99_us")?;
    let per_chunk = offloaded.figures::<StageRun>()?.per_chunk_cpu_us;
    Some([
        format!(
            "CPU-heavy stage ({}/chunk), current-thread runtime: lag p99",
            markdown::millis(per_chunk as u64)
        ),
        format!(
            "offloaded {}; inline {}",
            markdown::millis(offloaded.metric("lag.p99_us")? as u64),
            markdown::millis(inline as u64)
        ),
        "`weir-lab run offload`".into(),
    ])
}

fn bench_engine(r: &Results<'_>) -> Option<Row> {
    let ratios: Vec<String> = ["4096", "65536", "1048576"]
        .iter()
        .filter_map(|size| {
            r.figures::<BenchEstimate>("bench", &format!("engine_vs_raw/engine/{size}"), "")?
                .ratio_vs_raw
        })
        .map(|ratio| format!("{ratio:.2}x"))
        .collect();
    if ratios.len() < 3 {
        return None;
    }
    Some([
        "engine vs a raw loop (criterion), 4 KiB / 64 KiB / 1 MiB chunks".into(),
        ratios.join(" / "),
        "`cargo bench -p weir-benches --bench engine`".into(),
    ])
}

fn bench_sweep(r: &Results<'_>) -> Option<Row> {
    let mut points: Vec<(u64, f64)> =
        r.0.iter()
            .filter(|x| x.scenario == "bench")
            .filter_map(|x| {
                let n = x
                    .variant
                    .strip_prefix("in_flight_sweep/")?
                    .rsplit('/')
                    .next()?
                    .parse()
                    .ok()?;
                Some((n, x.throughput_bps))
            })
            .collect();
    points.sort_by_key(|p| p.0);
    let (first, last) = (points.first()?, points.last()?);
    if first.0 == last.0 {
        return None;
    }
    Some([
        "max-in-flight sweep, 1 ms per write".into(),
        format!("{} at {} -> {} at {}", rate(first.1), first.0, rate(last.1), last.0),
        "`cargo bench -p weir-benches --bench engine`".into(),
    ])
}

/// The headline table from `results`: only the rows whose results exist.
pub fn table(results: &[ScenarioResult]) -> Table {
    let results = Results(results);
    let mut table = Table::new(["what", "figure", "measured by"]);
    for row in ROWS {
        if let Some(cells) = row(&results) {
            table.row(cells);
        }
    }
    table
}

/// The headline table as a markdown section with its provenance, or
/// `None` when no row has its results.
pub fn section(results: &[ScenarioResult], note: &str) -> Option<String> {
    let table = table(results);
    if table.rows.is_empty() {
        return None;
    }
    Some(format!(
        "### Headline figures\n\nEach figure is read from the results by `weir-lab report` (`just bench-all` runs flow, \
         delivery and datasync at full size, the rest at their default profile; `just gate` re-checks the ratios and \
         ceilings in CI). Newest run: {note}.\n\n{}",
        markdown::table(&table)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(count(3_000_000.0), "3,000,000");
        assert_eq!(count(249_534.6), "249,535");
        assert_eq!(count(999.0), "999");
        assert_eq!(count(0.0), "0");
    }

    #[test]
    fn rows_without_their_results_are_left_out() {
        assert!(table(&[]).rows.is_empty());
        assert!(section(&[], "note").is_none());
        let mut hung = ScenarioResult::new("cancellation", "hung");
        hung.outcome = "ok".into();
        hung.params.insert("trials".into(), 1000.into());
        let mut figures = TrialsReport::default();
        figures.latency.p50_us = 42.1;
        figures.latency.p99_us = 121.6;
        hung.set_figures(&figures);
        let table = table(&[hung.clone()]);
        assert_eq!(table.rows.len(), 1);
        assert_eq!(table.rows[0][1], "p99 122 us (p50 42 us); 0 writes after abort");
        hung.outcome = "error: boom".into();
        assert!(super::table(&[hung]).rows.is_empty(), "a failed run is no figure");
    }

    #[test]
    fn the_slow_client_row_reads_the_default_send_path_and_falls_back_to_hyper() {
        let slow = |variant: &str, peak: u64| {
            let mut r = ScenarioResult::new("delivery", variant);
            r.params.insert("slow_clients".into(), 100.into());
            r.params.insert("file_size".into(), (64u64 << 20).into());
            r.set_figures(&DeliverySlow {
                server_peak_rss_bytes: peak,
                ..DeliverySlow::default()
            });
            r
        };
        let old = [slow("slow-weir-pull", 16 << 20), slow("slow-nginx", 5 << 20)];
        assert_eq!(table(&old).rows[0][1], "16.00 MiB (hyper path; nginx: 5.00 MiB)");
        let new = [slow("slow-weir-sendfile", 10 << 20), slow("slow-weir-pull", 16 << 20)];
        assert_eq!(table(&new).rows[0][1], "10.00 MiB (sendfile path)");
    }
}
