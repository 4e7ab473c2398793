//! The delivery section: weir's HTTP delivery (pull and engine read-ahead)
//! against tower-http's `ServeFile` and nginx: server RSS and CPU per GiB
//! with many slow clients (and RSS over time), the cost per connection with
//! 100 and 1,000 of them (table and chart), fast-client throughput, and the
//! disconnect storm's descriptors and memory; weir's uploads, compressed
//! delivery and identity against compressed, with the server's runtime lag
//! in every phase; and the gates' verdicts. Read
//! as the typed figures `weir-delivery`'s scenario writes
//! (`weir_harness::figures::delivery`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;
use weir_harness::ScenarioResult;
use weir_harness::figures::delivery::{
    DeliveryCompressed, DeliveryEncoding, DeliveryFast, DeliveryRows, DeliverySlow, DeliveryStorm, DeliveryUpload,
    ServerLag, DeliveryRanges};

use super::newest_per_variant;

use super::{Figures, Section};
use crate::Error;
use crate::charts::MAX_POINTS;
use crate::markdown::{self, bytes, rate};
use crate::model::{Chart, LineChart, Series, Table, downsample_max};

pub(crate) const SECTION: Section = Section {
    scenario: "delivery",
    title: "Delivery: weir vs nginx and tower-http ServeFile (slow clients, throughput, disconnect storm), uploads and compression",
    render,
};

/// The servers, in display order, with their labels.
const SERVERS: [(&str, &str); 5] = [
    ("weir-pull", "weir (pull)"),
    ("weir-sendfile", "weir (sendfile)"),
    ("weir-read-ahead", "weir (engine read-ahead)"),
    ("tower-serve-file", "tower-http ServeFile"),
    ("nginx", "nginx (sendfile)"),
];

fn list_bytes(values: &[u64]) -> String {
    if values.is_empty() {
        "-".to_owned()
    } else {
        values.iter().map(|&b| bytes(b)).collect::<Vec<_>>().join(", ")
    }
}

fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".to_owned())
}

fn label(server: &str) -> &str {
    SERVERS.iter().find(|(s, _)| *s == server).map_or(server, |(_, l)| l)
}

/// Every server kind seen in the results, known ones first.
fn servers(newest: &BTreeMap<&str, &ScenarioResult>) -> Vec<String> {
    let mut seen: Vec<String> = SERVERS.iter().map(|(s, _)| (*s).to_owned()).collect();
    for r in newest.values() {
        if let Some(server) = r.params.get("server").and_then(Value::as_str)
            && !seen.iter().any(|s| s == server)
        {
            seen.push(server.to_owned());
        }
    }
    seen.retain(|s| ["slow", "crowd", "fast", "storm"].iter().any(|p| newest.contains_key(format!("{p}-{s}").as_str())));
    seen
}

/// One row per server: the slow, fast and storm phases side by side.
pub(crate) fn comparison_table(newest: &BTreeMap<&str, &ScenarioResult>) -> Table {
    let slow_clients = newest
        .iter()
        .find(|(v, _)| v.starts_with("slow-"))
        .and_then(|(_, r)| r.params.get("slow_clients").and_then(Value::as_u64));
    let mut table = Table::new([
        "server".to_owned(),
        format!(
            "peak RSS, {} slow clients",
            slow_clients.map_or_else(|| "?".to_owned(), |n| n.to_string())
        ),
        "CPU s per GiB (slow)".to_owned(),
        "CPU vs ServeFile".to_owned(),
        "fast throughput (median)".to_owned(),
        "throughput vs ServeFile".to_owned(),
        "throughput vs nginx".to_owned(),
        "CPU s per GiB (fast)".to_owned(),
        "storm fds before -> peak -> after".to_owned(),
        "storm RSS before -> after each storm".to_owned(),
        "growth after first storm".to_owned(),
    ]);
    for server in servers(newest) {
        let get = |phase: &str| newest.get(format!("{phase}-{server}").as_str()).copied();
        let fast_run = get("fast");
        let slow = get("slow").map(|r| r.figures::<DeliverySlow>().unwrap_or_default());
        let fast = fast_run.map(|r| r.figures::<DeliveryFast>().unwrap_or_default());
        let storm = get("storm").map(|r| r.figures::<DeliveryStorm>().unwrap_or_default());
        let baseline = server == "tower-serve-file";
        let ratio = |present: bool, value: Option<f64>| {
            if baseline && present {
                "1.00x".to_owned()
            } else {
                or_dash(value.map(|x| format!("{x:.2}x")))
            }
        };
        table.row([
            label(&server).to_owned(),
            or_dash(slow.as_ref().map(|f| bytes(f.server_peak_rss_bytes))),
            or_dash(slow.as_ref().map(|f| format!("{:.3}", f.cpu_s_per_gib))),
            ratio(slow.is_some(), slow.as_ref().and_then(|f| f.cpu_per_gib_vs_serve_file)),
            or_dash(fast_run.map(|r| rate(r.throughput_bps))),
            ratio(fast.is_some(), fast.as_ref().and_then(|f| f.throughput_vs_serve_file)),
            if server == "nginx" && fast.is_some() {
                "1.00x".to_owned()
            } else {
                or_dash(fast.as_ref().and_then(|f| {
                    let paired = f.paired_vs_nginx.as_ref()?;
                    Some(format!("{:.2}x (spread {:.2})", paired.median, paired.spread))
                }))
            },
            or_dash(fast.as_ref().map(|f| format!("{:.3}", f.cpu_s_per_gib))),
            or_dash(
                storm
                    .as_ref()
                    .map(|f| format!("{} -> {} -> {}", f.fds_before, f.fds_peak, f.fds_after)),
            ),
            or_dash(
                storm
                    .as_ref()
                    .map(|f| format!("{} -> {}", bytes(f.rss_before_bytes), list_bytes(&f.rss_after_each_storm_bytes))),
            ),
            or_dash(storm.as_ref().map(|f| bytes(f.rss_growth_after_first_storm_bytes))),
        ]);
    }
    table
}

/// The disconnect storm, one row per server.
pub(crate) fn storm_table(newest: &BTreeMap<&str, &ScenarioResult>) -> Table {
    let mut table = Table::new([
        "server",
        "clients hung up",
        "fds before -> peak",
        "fds after each storm",
        "threads before -> after each storm",
        "RSS before",
        "RSS after each storm",
        "growth after the first storm",
        "outcome",
    ]);
    let join = |values: &[u64]| values.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    for server in servers(newest) {
        let Some(run) = newest.get(format!("storm-{server}").as_str()) else {
            continue;
        };
        let f = run.figures::<DeliveryStorm>().unwrap_or_default();
        table.row([
            label(&server).to_owned(),
            f.clients_hung_up.to_string(),
            format!("{} -> {}", f.fds_before, f.fds_peak),
            join(&f.fds_after_each_storm),
            format!("{} -> {}", f.threads_before, join(&f.threads_after_each_storm)),
            bytes(f.rss_before_bytes),
            list_bytes(&f.rss_after_each_storm_bytes),
            bytes(f.rss_growth_after_first_storm_bytes),
            run.outcome.clone(),
        ]);
    }
    table
}

/// What a slow connection costs each server: the slow (100) and crowd
/// (1,000) phases side by side, against nginx.
pub(crate) fn per_connection_table(newest: &BTreeMap<&str, &ScenarioResult>) -> Table {
    let mut table = Table::new([
        "server",
        "idle RSS",
        "peak RSS (slow)",
        "over nginx (slow)",
        "run time (slow)",
        "vs nginx (slow)",
        "peak RSS (crowd)",
        "vs nginx (crowd)",
        "RSS per added connection",
        "slowest fresh request (crowd)",
        "client rate (crowd)",
        "client CPU (slow / crowd)",
    ]);
    for server in servers(newest) {
        let phase = |p: &str| {
            newest
                .get(format!("{p}-{server}").as_str())
                .map(|r| r.figures::<DeliverySlow>().unwrap_or_default())
        };
        let (slow, crowd) = (phase("slow"), phase("crowd"));
        if slow.is_none() && crowd.is_none() {
            continue;
        }
        let x = |v: Option<f64>| or_dash(v.map(|x| format!("{x:.2}x")));
        let signed = |v: Option<f64>| {
            or_dash(v.map(|b| {
                let sign = if b < 0.0 { "-" } else { "+" };
                format!("{sign}{}", bytes(b.abs() as u64))
            }))
        };
        table.row([
            label(&server).to_owned(),
            or_dash(slow.as_ref().or(crowd.as_ref()).map(|f| bytes(f.server_baseline_rss_bytes))),
            or_dash(slow.as_ref().map(|f| format!("{} ({} clients)", bytes(f.server_peak_rss_bytes), f.clients))),
            signed(slow.as_ref().and_then(|f| f.peak_rss_over_nginx_bytes)),
            or_dash(slow.as_ref().map(|f| format!("{:.3} s", f.server_run_s))),
            x(slow.as_ref().and_then(|f| f.cpu_vs_nginx)),
            or_dash(crowd.as_ref().map(|f| format!("{} ({} clients)", bytes(f.server_peak_rss_bytes), f.clients))),
            x(crowd.as_ref().and_then(|f| f.peak_rss_vs_nginx)),
            or_dash(crowd.as_ref().and_then(|f| f.rss_slope_bytes_per_client).map(|b| bytes(b.max(0.0) as u64))),
            or_dash(crowd.as_ref().map(|f| format!("{:.0} ms", f.fresh_request_max_ms))),
            or_dash(crowd.as_ref().map(|f| format!("{:.0} KiB/s", f.mean_client_rate_bps / 1024.0))),
            format!(
                "{} / {}",
                or_dash(slow.as_ref().map(|f| format!("{:.2} s", f.client_cpu_s))),
                or_dash(crowd.as_ref().map(|f| format!("{:.2} s", f.client_cpu_s)))
            ),
        ]);
    }
    table
}

/// Peak server RSS against the number of slow clients (idle, the slow
/// phase, the crowd), one line per server: the slope is the cost of a
/// connection.
pub(crate) fn per_connection_chart(newest: &BTreeMap<&str, &ScenarioResult>, note: &str) -> LineChart {
    let mib = |b: u64| b as f64 / f64::from(1u32 << 20);
    let series = servers(newest)
        .iter()
        .filter_map(|server| {
            let phases: Vec<DeliverySlow> = ["slow", "crowd"]
                .iter()
                .filter_map(|p| newest.get(format!("{p}-{server}").as_str())?.figures::<DeliverySlow>())
                .collect();
            let first = phases.first()?;
            let mut points = vec![(0.0, mib(first.server_baseline_rss_bytes))];
            points.extend(phases.iter().map(|f| (f.clients as f64, mib(f.server_peak_rss_bytes))));
            Some(Series {
                name: label(server).to_owned(),
                points,
            })
        })
        .collect();
    LineChart {
        title: "Server peak RSS against concurrent slow clients".to_owned(),
        note: note.to_owned(),
        x_label: "slow clients (0: idle server)".to_owned(),
        y_label: "server peak resident memory (MiB)".to_owned(),
        y_log: false,
        series,
    }
}

/// Server RSS over time during the slow-client phase, one line per server.
pub(crate) fn slow_rss_chart(newest: &BTreeMap<&str, &ScenarioResult>, note: &str) -> LineChart {
    let series = servers(newest)
        .iter()
        .filter_map(|server| {
            let r = newest.get(format!("slow-{server}").as_str())?;
            if r.rss.samples.is_empty() {
                return None;
            }
            let points: Vec<(f64, f64)> = r
                .rss
                .samples
                .iter()
                .map(|[ms, b]| (*ms as f64 / 1000.0, *b as f64 / f64::from(1u32 << 20)))
                .collect();
            Some(Series {
                name: format!("{} (peak {})", label(server), bytes(r.rss.peak_bytes)),
                points: downsample_max(&points, MAX_POINTS),
            })
        })
        .collect();
    let clients = newest
        .iter()
        .find(|(v, _)| v.starts_with("slow-"))
        .and_then(|(_, r)| r.params.get("slow_clients").and_then(Value::as_u64))
        .unwrap_or_default();
    LineChart {
        title: format!("Server RSS with {clients} slow clients"),
        note: note.to_owned(),
        x_label: "seconds since the clients started".to_owned(),
        y_label: "server resident memory (MiB)".to_owned(),
        y_log: false,
        series,
    }
}

fn rss_cell(baseline: u64, peak: u64, growth: u64) -> String {
    format!("{} -> {} ({})", bytes(baseline), bytes(peak), bytes(growth))
}

fn lag_cell(lag: &ServerLag) -> String {
    format!("{:.1} / {:.1} / {:.1}", lag.p50_ms, lag.p99_ms, lag.max_ms)
}

/// weir's uploads, compressed delivery and rows: one row each, when they ran.
pub(crate) fn weir_only_table(newest: &BTreeMap<&str, &ScenarioResult>) -> Table {
    let mut table = Table::new([
        "phase",
        "load",
        "outcome",
        "server RSS baseline -> peak (growth)",
        "server CPU s",
        "runtime lag p50 / p99 / max, ms",
    ]);
    for (variant, r) in newest {
        if let Some(f) = variant.starts_with("upload-").then(|| r.figures::<DeliveryUpload>()).flatten() {
            table.row([
                format!("uploads ({})", label(variant.trim_start_matches("upload-"))),
                format!(
                    "{} x {} at {}/s, then {} cut off mid-body",
                    f.uploads,
                    bytes(f.upload_bytes),
                    bytes(f.rate_bps),
                    f.cutoffs
                ),
                format!(
                    "{} of {} committed (digest checked); cut-offs: {} aborts counted, {} files, {} temp files, \
                     {} descriptors left",
                    f.committed,
                    f.uploads,
                    f.cutoff_aborts_counted,
                    f.cutoff_leftover_files,
                    f.cutoff_temp_files,
                    f.cutoff_fds_over_baseline
                ),
                rss_cell(f.server_baseline_rss_bytes, f.server_peak_rss_bytes, f.rss_growth_bytes),
                format!("{:.2}", f.server_cpu_s),
                lag_cell(&f.server_lag),
            ]);
        }
        if let Some(f) = variant.starts_with("compressed-").then(|| r.figures::<DeliveryCompressed>()).flatten() {
            table.row([
                format!("{} delivery ({})", f.coding, label(variant.trim_start_matches("compressed-"))),
                format!(
                    "{} file ({:.1}x smaller encoded) read at {}/s, {} runtime workers",
                    bytes(f.file_bytes),
                    f.compression_ratio,
                    bytes(f.client_rate_bps),
                    f.server_threads
                ),
                if f.body_matches {
                    "decoded body equals the file".to_owned()
                } else {
                    "decoded body DIFFERS from the file".to_owned()
                },
                rss_cell(f.server_baseline_rss_bytes, f.server_peak_rss_bytes, f.rss_growth_bytes),
                format!("{:.2}", f.server_cpu_s),
                lag_cell(&f.server_lag),
            ]);
        }
        if let Some(f) = variant.starts_with("rows-").then(|| r.figures::<DeliveryRows>()).flatten() {
            table.row([
                format!("PostgreSQL rows ({})", label(variant.trim_start_matches("rows-"))),
                format!(
                    "{} rows as CSV ({}) read at {}/s",
                    f.rows,
                    bytes(f.body_bytes),
                    bytes(f.client_rate_bps)
                ),
                format!(
                    "{} of {} rows received; query gone {:.0} ms after a hang-up",
                    f.rows_received, f.rows, f.query_end_after_hangup_ms
                ),
                rss_cell(f.server_baseline_rss_bytes, f.server_peak_rss_bytes, f.rss_growth_bytes),
                format!("{:.2}", f.server_cpu_s),
                lag_cell(&f.server_lag),
            ]);
        }
    }
    table
}

/// Identity against compressed delivery, as fast as the client reads.
pub(crate) fn encoding_table(newest: &BTreeMap<&str, &ScenarioResult>) -> Table {
    let mut table = Table::new([
        "representation",
        "throughput (file bytes, median)",
        "vs identity (paired)",
        "server CPU s per file GiB",
        "wire bytes per file byte",
        "runtime lag p50 / p99 / max, ms",
    ]);
    for (variant, r) in newest {
        let Some(f) = variant.starts_with("encoding-").then(|| r.figures::<DeliveryEncoding>()).flatten() else {
            continue;
        };
        table.row([
            "identity".to_owned(),
            rate(f.identity_throughput_bps),
            "1.00x".to_owned(),
            format!("{:.3}", f.identity_cpu_s_per_gib),
            "1.00".to_owned(),
            lag_cell(&f.identity_lag),
        ]);
        table.row([
            f.coding.clone(),
            rate(f.encoded_throughput_bps),
            or_dash(f.paired_encoded_vs_identity.as_ref().map(|p| format!("{:.2}x (spread {:.2})", p.median, p.spread))),
            format!("{:.3}", f.encoded_cpu_s_per_gib),
            format!("{:.2}", f.wire_bytes_per_file_byte),
            lag_cell(&f.encoded_lag),
        ]);
    }
    table
}

/// Range requests: one row per server.
pub(crate) fn ranges_table(newest: &BTreeMap<&str, &ScenarioResult>) -> Table {
    let mut table = Table::new([
        "server",
        "ranges (clients, longest)",
        "answered right",
        "requests/s (median of rounds)",
        "vs nginx (paired median, spread)",
        "latency p50 / p99, ms",
        "server CPU s",
        "outcome",
    ]);
    for (variant, r) in newest {
        let Some(f) = variant.starts_with("ranges-").then(|| r.figures::<DeliveryRanges>()).flatten() else {
            continue;
        };
        table.row([
            label(variant.trim_start_matches("ranges-")).to_owned(),
            format!("{} ({}, {})", f.requests, f.clients, bytes(f.max_range_bytes)),
            format!("{} of {}", f.ok, f.requests),
            format!("{:.0}", f.requests_per_s),
            or_dash(
                f.paired_vs_nginx
                    .as_ref()
                    .map(|p| format!("{:.2}x ({:.2})", p.median, p.spread)),
            ),
            format!("{:.2} / {:.2}", f.latency_p50_ms, f.latency_p99_ms),
            format!("{:.2}", f.server_cpu_s),
            r.outcome.clone(),
        ]);
    }
    table
}

/// Each weir server's runtime lag per phase.
pub(crate) fn lag_table(newest: &BTreeMap<&str, &ScenarioResult>) -> Table {
    let mut table = Table::new(["server", "phase", "runtime lag p50 / p99 / max, ms"]);
    for (variant, r) in newest {
        let Some((phase, server)) = variant.split_once('-') else {
            continue;
        };
        let lag = match phase {
            "slow" | "crowd" => r.figures::<DeliverySlow>().and_then(|f| f.server_lag),
            "fast" => r.figures::<DeliveryFast>().and_then(|f| f.server_lag),
            "storm" => r.figures::<DeliveryStorm>().and_then(|f| f.server_lag),
            "upload" => r.figures::<DeliveryUpload>().map(|f| f.server_lag),
            "compressed" => r.figures::<DeliveryCompressed>().map(|f| f.server_lag),
            "rows" => r.figures::<DeliveryRows>().map(|f| f.server_lag),
            "ranges" => r.figures::<DeliveryRanges>().and_then(|f| f.server_lag),
            _ => None,
        };
        if let Some(lag) = lag {
            table.row([label(server).to_owned(), phase.to_owned(), lag_cell(&lag)]);
        }
    }
    table
}

fn render(results: &[ScenarioResult], figures: &mut Figures<'_>) -> Result<String, Error> {
    let newest = newest_per_variant(results);
    let weir_only = weir_only_table(&newest);
    let encoding = encoding_table(&newest);
    let ranges = ranges_table(&newest);
    if servers(&newest).is_empty() && weir_only.rows.is_empty() && encoding.rows.is_empty() && ranges.rows.is_empty()
    {
        return Ok("No results; run `weir-lab run delivery`.\n".to_owned());
    }
    // The newest of this scenario's results, not of the whole run.
    let note = crate::provenance(results);
    let mut md = String::new();
    if let Some(any) = newest.values().next() {
        let p = |key: &str| any.params.get(key);
        let _ = writeln!(
            md,
            "File {}; {} slow clients at {}/s each for {:.0} s; {} fast rounds; {} storm clients x {} hanging up \
             after {}; servers run as: {}.\n",
            p("file_size").and_then(Value::as_u64).map_or_else(|| "-".to_owned(), bytes),
            p("slow_clients").and_then(Value::as_u64).unwrap_or_default(),
            p("slow_rate").and_then(Value::as_u64).map_or_else(|| "-".to_owned(), bytes),
            p("slow_duration_s").and_then(Value::as_f64).unwrap_or_default(),
            p("fast_rounds").and_then(Value::as_u64).unwrap_or_default(),
            p("storm_clients").and_then(Value::as_u64).unwrap_or_default(),
            p("storm_rounds").and_then(Value::as_u64).unwrap_or_default(),
            p("storm_hangup_after").and_then(Value::as_u64).map_or_else(|| "-".to_owned(), bytes),
            p("server_isolation").and_then(Value::as_str).unwrap_or("-"),
        );
    }
    if !servers(&newest).is_empty() {
        let _ = writeln!(md, "{}", markdown::table(&comparison_table(&newest)));
    }
    let _ = writeln!(md, "{}", figures.gates.verdicts("delivery", results));
    let failed: Vec<String> = newest
        .values()
        .filter(|r| !r.is_ok())
        .map(|r| format!("- {}: {}", r.variant, r.outcome))
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(md, "Runs that did not end ok:\n\n{}\n", failed.join("\n"));
    }
    let mut md = figures.part("delivery/comparison", newest.values().copied(), md);
    let phase = |prefix: &'static str| newest.iter().filter(move |(v, _)| v.starts_with(prefix)).map(|(_, r)| *r);
    // weir's own phases, each a part of its own: uploads (the cut-offs are
    // disconnects), compressed delivery with the identity comparison, rows
    // from PostgreSQL, and the runtime lag of every phase.
    let only = |prefix: &str| -> BTreeMap<&str, &ScenarioResult> {
        newest
            .iter()
            .filter(|(v, _)| v.starts_with(prefix))
            .map(|(v, r)| (*v, *r))
            .collect()
    };
    const WEIR_ONLY: &str = "weir only (the baselines take no uploads and do not compress); RSS and CPU are the \
                             server process's, lag its own probe's (a timer whose lateness Tokio rounds to whole \
                             milliseconds)";
    let uploads = weir_only_table(&only("upload-"));
    if !uploads.rows.is_empty() {
        let part = format!("Uploads, {WEIR_ONLY}:\n\n{}\n", markdown::table(&uploads));
        md.push_str(&figures.part("delivery/uploads", phase("upload-"), part));
    }
    let compressed = weir_only_table(&only("compressed-"));
    if !compressed.rows.is_empty() || !encoding.rows.is_empty() {
        let mut part = String::new();
        if !compressed.rows.is_empty() {
            let _ = writeln!(
                part,
                "Compressed delivery to a slow client, {WEIR_ONLY}:\n\n{}",
                markdown::table(&compressed)
            );
        }
        if !encoding.rows.is_empty() {
            let _ = writeln!(
                part,
                "Identity against compressed delivery of the same file, one fresh server each, downloads as fast \
                 as the client reads (and decodes), paired interleaved rounds:\n\n{}",
                markdown::table(&encoding)
            );
        }
        md.push_str(&figures.part("delivery/compressed", phase("compressed-").chain(phase("encoding-")), part));
    }
    let rows = weir_only_table(&only("rows-"));
    if !rows.rows.is_empty() {
        let part = format!("Rows from PostgreSQL, {WEIR_ONLY}:\n\n{}\n", markdown::table(&rows));
        md.push_str(&figures.part("delivery/rows", phase("rows-"), part));
    }
    if !ranges.rows.is_empty() {
        let part = format!(
            "Range requests, seeded random single ranges (one in ten a suffix range), every body checked against \
             the file; the servers' rounds interleaved:\n\n{}\n",
            markdown::table(&ranges)
        );
        md.push_str(&figures.part("delivery/ranges", phase("ranges-"), part));
    }
    let lags = lag_table(&newest);
    if !lags.rows.is_empty() {
        let part = format!(
            "Server runtime lag per phase (p50 / p99 / max of the probe's lateness on the server's runtime):\n\n{}\n",
            markdown::table(&lags)
        );
        md.push_str(&figures.part("delivery/lag", newest.values().copied(), part));
    }
    let storm = storm_table(&newest);
    if !storm.rows.is_empty() {
        let part = format!(
            "Disconnect storm, per server: descriptors and threads before, at the peak and after each storm, and \
             resident memory after each.\n\n{}\n",
            markdown::table(&storm)
        );
        figures.part("delivery/storm", phase("storm-"), part);
    }
    let per_connection = per_connection_table(&newest);
    let cost = per_connection_chart(&newest, &note);
    if !cost.series.is_empty() {
        let mut part = format!(
            "Cost per connection (run time from the scheduler; client CPU is the scenario process's, which shares \
             the machine with the server):\n\n{}",
            markdown::table(&per_connection)
        );
        part.push('\n');
        part.push_str(&figures.chart(
            "delivery-per-connection",
            "server peak RSS against slow clients",
            &Chart::Line(cost),
            true,
        )?);
        part.push('\n');
        let drawn = phase("slow-").chain(phase("crowd-"));
        md.push_str(&figures.part("delivery/per-connection", drawn, part));
    }
    let chart = slow_rss_chart(&newest, &note);
    if chart.series.is_empty() {
        let _ = writeln!(md, "No slow-client RSS samples; run `weir-lab run delivery`.\n");
    } else {
        let mut part = figures.chart(
            "delivery-slow-rss",
            "server RSS over time with slow clients",
            &Chart::Line(chart),
            true,
        )?;
        part.push('\n');
        md.push_str(&figures.part("delivery/slow-rss", phase("slow-"), part));
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use weir_harness::{PairedRatio, RssSeries};

    fn run(phase: &str, server: &str, figures: &impl serde::Serialize) -> ScenarioResult {
        let mut r = ScenarioResult::new("delivery", format!("{phase}-{server}"));
        r.params.insert("server".into(), json!(server));
        r.params.insert("phase".into(), json!(phase));
        r.params.insert("slow_clients".into(), json!(100));
        r.set_figures(figures);
        r
    }

    fn fixture() -> Vec<ScenarioResult> {
        let mut slow = run(
            "slow",
            "weir-pull",
            &DeliverySlow {
                clients: 100,
                server_baseline_rss_bytes: 7 << 20,
                server_peak_rss_bytes: 8 << 20,
                cpu_s_per_gib: 0.288,
                cpu_per_gib_vs_serve_file: Some(0.2),
                ..DeliverySlow::default()
            },
        );
        slow.rss = RssSeries {
            samples: (0..20).map(|i| [i * 50, (7 << 20) + i * 4096]).collect(),
            baseline_bytes: 7 << 20,
            peak_bytes: 8 << 20,
        };
        let mut fast = run(
            "fast",
            "weir-pull",
            &DeliveryFast {
                throughput_vs_serve_file: Some(1.84),
                cpu_s_per_gib: 0.32,
                paired_vs_nginx: PairedRatio::from_pairs([(2.0, 1.0), (2.2, 2.0), (3.0, 2.0)]),
                ..DeliveryFast::default()
            },
        );
        fast.throughput_bps = 2.98e9;
        let storm = run(
            "storm",
            "weir-pull",
            &DeliveryStorm {
                fds_before: 13,
                fds_peak: 106,
                fds_after: 13,
                rss_before_bytes: 7 << 20,
                rss_after_each_storm_bytes: vec![10 << 20, 10 << 20],
                rss_growth_after_first_storm_bytes: 0,
                fds_back_to_baseline: true,
                ..DeliveryStorm::default()
            },
        );
        let mut tower_fast = run(
            "fast",
            "tower-serve-file",
            &DeliveryFast {
                cpu_s_per_gib: 0.69,
                ..DeliveryFast::default()
            },
        );
        tower_fast.throughput_bps = 1.62e9;
        let tower_slow = run(
            "slow",
            "tower-serve-file",
            &DeliverySlow {
                clients: 100,
                server_peak_rss_bytes: 14 << 20,
                cpu_s_per_gib: 1.428,
                ..DeliverySlow::default()
            },
        );
        let slow_run = |server: &str, clients: u64, peak: u64, vs_nginx: Option<(f64, f64, f64)>| {
            run(
                if clients == 100 { "slow" } else { "crowd" },
                server,
                &DeliverySlow {
                    clients,
                    server_baseline_rss_bytes: 4 << 20,
                    server_peak_rss_bytes: peak,
                    server_run_s: 0.25,
                    client_cpu_s: 0.3,
                    mean_client_rate_bps: 1e6,
                    fresh_request_max_ms: 12.0,
                    peak_rss_over_nginx_bytes: vs_nginx.map(|v| v.0),
                    cpu_vs_nginx: vs_nginx.map(|v| v.1),
                    peak_rss_vs_nginx: vs_nginx.map(|v| v.2),
                    rss_slope_bytes_per_client: (clients == 1000).then_some(10240.0),
                    ..DeliverySlow::default()
                },
            )
        };
        let nginx_slow = slow_run("nginx", 100, 5 << 20, None);
        let nginx_crowd = slow_run("nginx", 1000, 14 << 20, None);
        let weir_crowd = slow_run("weir-pull", 1000, 28 << 20, Some((0.0, 0.0, 2.0)));
        vec![slow, fast, storm, tower_fast, tower_slow, nginx_slow, nginx_crowd, weir_crowd]
    }

    #[test]
    fn the_per_connection_table_and_chart_put_every_server_against_nginx() {
        let results = fixture();
        let newest = newest_per_variant(&results);
        let md = markdown::table(&per_connection_table(&newest));
        expect_test::expect![[r#"
            | server | idle RSS | peak RSS (slow) | over nginx (slow) | run time (slow) | vs nginx (slow) | peak RSS (crowd) | vs nginx (crowd) | RSS per added connection | slowest fresh request (crowd) | client rate (crowd) | client CPU (slow / crowd) |
            |---|---|---|---|---|---|---|---|---|---|---|---|
            | weir (pull) | 7.00 MiB | 8.00 MiB (100 clients) | - | 0.000 s | - | 28.00 MiB (1000 clients) | 2.00x | 10.0 KiB | 12 ms | 977 KiB/s | 0.00 s / 0.30 s |
            | tower-http ServeFile | 0 B | 14.00 MiB (100 clients) | - | 0.000 s | - | - | - | - | - | - | 0.00 s / - |
            | nginx (sendfile) | 4.00 MiB | 5.00 MiB (100 clients) | - | 0.250 s | - | 14.00 MiB (1000 clients) | - | 10.0 KiB | 12 ms | 977 KiB/s | 0.30 s / 0.30 s |
        "#]].assert_eq(&md);
        let chart = per_connection_chart(&newest, "");
        let nginx = chart.series.iter().find(|s| s.name.starts_with("nginx")).unwrap();
        assert_eq!(nginx.points, vec![(0.0, 4.0), (100.0, 5.0), (1000.0, 14.0)]);
        // A line starts at the idle RSS of its first phase.
        let weir = chart.series.iter().find(|s| s.name == "weir (pull)").unwrap();
        assert_eq!(weir.points, vec![(0.0, 7.0), (100.0, 8.0), (1000.0, 28.0)]);
        let serve_file = chart.series.iter().find(|s| s.name == "tower-http ServeFile").unwrap();
        assert_eq!(serve_file.points, vec![(0.0, 0.0), (100.0, 14.0)]);
    }

    #[test]
    fn the_comparison_table_carries_the_key_figures() {
        let results = fixture();
        let newest = newest_per_variant(&results);
        let md = markdown::table(&comparison_table(&newest));
        expect_test::expect![[r#"
            | server | peak RSS, 100 slow clients | CPU s per GiB (slow) | CPU vs ServeFile | fast throughput (median) | throughput vs ServeFile | throughput vs nginx | CPU s per GiB (fast) | storm fds before -> peak -> after | storm RSS before -> after each storm | growth after first storm |
            |---|---|---|---|---|---|---|---|---|---|---|
            | weir (pull) | 8.00 MiB | 0.288 | 0.20x | 2980 MB/s | 1.84x | 1.50x (spread 0.30) | 0.320 | 13 -> 106 -> 13 | 7.00 MiB -> 10.00 MiB, 10.00 MiB | 0 B |
            | tower-http ServeFile | 14.00 MiB | 1.428 | 1.00x | 1620 MB/s | 1.00x | - | 0.690 | - | - | - |
            | nginx (sendfile) | 5.00 MiB | 0.000 | - | - | - | - | - | - | - | - |
        "#]]
        .assert_eq(&md);
    }

    #[test]
    fn the_section_draws_the_slow_rss_chart_and_handles_absence() {
        let dir = tempfile::tempdir().unwrap();
        let mut figures = Figures::for_test(dir.path());
        let md = render(&fixture(), &mut figures).unwrap();
        assert!(md.contains("figures/delivery-slow-rss.svg"), "{md}");
        // The verdicts are the gates': the storm's descriptors, the slow
        // phase's peak RSS and CPU, the fast phase's ratio.
        for row in [
            "| delivery: descriptors back to baseline after the disconnect storm | delivery/storm-weir-pull | \
             `extra.fds_back_to_baseline` | 1 | >= 1 | +0% | pass |",
            "| delivery: server peak RSS with slow clients | delivery/slow-weir-pull | `extra.server_peak_rss_bytes` | \
             8.00 MiB | <= 24.00 MiB | +67% | pass |",
            "| delivery: fast-client throughput vs ServeFile | delivery/fast-weir-pull | \
             `extra.throughput_vs_serve_file` | 1.840 | >= 0.800 | +130% | pass |",
        ] {
            assert!(md.contains(row), "{row} not in {md}");
        }
        assert!(dir.path().join("figures/delivery-slow-rss.png").is_file());
        let empty = render(&[], &mut figures).unwrap();
        assert!(empty.contains("run `weir-lab run delivery`"), "{empty}");
    }

    #[test]
    fn ranges_get_a_table_and_a_part_of_their_own() {
        let results = vec![
            run(
                "ranges",
                "weir-pull",
                &DeliveryRanges {
                    requests: 1000,
                    clients: 4,
                    max_range_bytes: 256 << 10,
                    ok: 999,
                    mismatches: 1,
                    requests_per_s: 5320.4,
                    latency_p50_ms: 0.49,
                    latency_p99_ms: 7.8,
                    server_cpu_s: 0.09,
                    paired_vs_nginx: weir_harness::PairedRatio::from_pairs([(0.96, 1.0), (0.98, 1.0)]),
                    ..DeliveryRanges::default()
                },
            ),
            run("ranges", "nginx", &DeliveryRanges::default()),
        ];
        let dir = tempfile::tempdir().unwrap();
        let mut figures = Figures::for_test(dir.path());
        let md = render(&results, &mut figures).unwrap();
        assert!(
            md.contains("| weir (pull) | 1000 (4, 256.0 KiB) | 999 of 1000 | 5320 | 0.97x (0.01) | 0.49 / 7.80 | 0.09 | ok |"),
            "{md}"
        );
        assert!(md.contains("| nginx (sendfile) | 0 (0, 0 B) | 0 of 0 | 0 | - |"), "{md}");
        assert!(figures.parts.contains_key("delivery/ranges"));
    }

    #[test]
    fn uploads_compression_and_lag_get_tables_of_their_own() {
        let lag = ServerLag {
            p50_ms: 1.1,
            p99_ms: 2.5,
            max_ms: 9.0,
        };
        let results = vec![
            run(
                "upload",
                "weir-pull",
                &DeliveryUpload {
                    uploads: 100,
                    upload_bytes: 4 << 20,
                    rate_bps: 1 << 20,
                    committed: 100,
                    all_committed: true,
                    server_baseline_rss_bytes: 10 << 20,
                    server_peak_rss_bytes: 22 << 20,
                    rss_growth_bytes: 12 << 20,
                    server_cpu_s: 1.2,
                    cutoffs: 200,
                    cutoff_aborts_counted: 200,
                    server_lag: lag,
                    ..DeliveryUpload::default()
                },
            ),
            run(
                "compressed",
                "weir-pull",
                &DeliveryCompressed {
                    coding: "zstd".into(),
                    server_threads: 2,
                    file_bytes: 32 << 20,
                    compression_ratio: 3.0,
                    client_rate_bps: 1 << 20,
                    body_matches: true,
                    server_baseline_rss_bytes: 9 << 20,
                    server_peak_rss_bytes: 14 << 20,
                    rss_growth_bytes: 5 << 20,
                    server_cpu_s: 0.3,
                    server_lag: lag,
                    ..DeliveryCompressed::default()
                },
            ),
            run(
                "encoding",
                "weir-pull",
                &DeliveryEncoding {
                    coding: "zstd".into(),
                    identity_throughput_bps: 1e9,
                    encoded_throughput_bps: 1e8,
                    paired_encoded_vs_identity: PairedRatio::from_pairs([(1e8, 1e9), (1.1e8, 1e9)]),
                    identity_cpu_s_per_gib: 0.5,
                    encoded_cpu_s_per_gib: 8.0,
                    wire_bytes_per_file_byte: 0.33,
                    identity_lag: lag,
                    encoded_lag: lag,
                    ..DeliveryEncoding::default()
                },
            ),
        ];
        let newest = newest_per_variant(&results);
        let md = markdown::table(&weir_only_table(&newest))
            + &markdown::table(&encoding_table(&newest))
            + &markdown::table(&lag_table(&newest));
        expect_test::expect![[r#"
            | phase | load | outcome | server RSS baseline -> peak (growth) | server CPU s | runtime lag p50 / p99 / max, ms |
            |---|---|---|---|---|---|
            | zstd delivery (weir (pull)) | 32.00 MiB file (3.0x smaller encoded) read at 1.00 MiB/s, 2 runtime workers | decoded body equals the file | 9.00 MiB -> 14.00 MiB (5.00 MiB) | 0.30 | 1.1 / 2.5 / 9.0 |
            | uploads (weir (pull)) | 100 x 4.00 MiB at 1.00 MiB/s, then 200 cut off mid-body | 100 of 100 committed (digest checked); cut-offs: 200 aborts counted, 0 files, 0 temp files, 0 descriptors left | 10.00 MiB -> 22.00 MiB (12.00 MiB) | 1.20 | 1.1 / 2.5 / 9.0 |
            | representation | throughput (file bytes, median) | vs identity (paired) | server CPU s per file GiB | wire bytes per file byte | runtime lag p50 / p99 / max, ms |
            |---|---|---|---|---|---|
            | identity | 1000 MB/s | 1.00x | 0.500 | 1.00 | 1.1 / 2.5 / 9.0 |
            | zstd | 100 MB/s | 0.11x (spread 0.05) | 8.000 | 0.33 | 1.1 / 2.5 / 9.0 |
            | server | phase | runtime lag p50 / p99 / max, ms |
            |---|---|---|
            | weir (pull) | compressed | 1.1 / 2.5 / 9.0 |
            | weir (pull) | upload | 1.1 / 2.5 / 9.0 |
        "#]].assert_eq(&md);
        let dir = tempfile::tempdir().unwrap();
        let mut figures = Figures::for_test(dir.path());
        let rendered = render(&results, &mut figures).unwrap();
        assert!(rendered.contains("Identity against compressed"), "{rendered}");
        assert!(!rendered.contains("No results"), "{rendered}");
    }
}
