//! The cancellation section: the floors as checks, cancel-to-return latency
//! by percentile (hung and slow sinks), client disconnects, and the
//! graceful shutdown's active ingestions over time with its summary. Read
//! from the results' `extra` maps (written by `weir-cancellation`).

use std::fmt::Write as _;

use serde_json::Value;
use weir_harness::ScenarioResult;

use super::{Figures, Section, checks_table};
use crate::Error;
use crate::markdown;
use crate::model::{Chart, LineChart, Series, Table, downsample_max};

pub(crate) const SECTION: Section = Section {
    scenario: "cancellation",
    title: "Cancellation, client disconnects and graceful shutdown",
    render,
};

/// The newest result of `variant`.
fn newest<'a>(results: &'a [ScenarioResult], variant: &str) -> Option<&'a ScenarioResult> {
    results
        .iter()
        .filter(|r| r.variant == variant)
        .max_by_key(|r| r.started_unix_s)
}

fn num(v: &Value, path: &[&str]) -> f64 {
    path.iter()
        .try_fold(v, |v, key| v.get(key))
        .and_then(Value::as_f64)
        .unwrap_or_default()
}

fn extra(r: &ScenarioResult) -> Value {
    Value::Object(r.extra.clone())
}

fn us(value: f64) -> String {
    if value >= 1000.0 {
        format!("{:.2} ms", value / 1000.0)
    } else {
        format!("{value:.0} us")
    }
}

/// One row per trial batch (hung, slow).
pub(crate) fn latency_table(batches: &[&ScenarioResult]) -> Table {
    let mut table = Table::new([
        "sink",
        "trials",
        "cancelled / committed",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "abort p99",
        "writes after abort",
        "leaked fds",
    ]);
    for r in batches {
        let e = extra(r);
        table.row([
            r.variant.clone(),
            format!("{}", num(&e, &["trials"])),
            format!("{} / {}", num(&e, &["cancelled"]), num(&e, &["committed"])),
            us(num(&e, &["latency", "p50_us"])),
            us(num(&e, &["latency", "p90_us"])),
            us(num(&e, &["latency", "p99_us"])),
            us(num(&e, &["latency", "p999_us"])),
            us(num(&e, &["latency", "max_us"])),
            us(num(&e, &["abort_duration", "p99_us"])),
            format!("{}", num(&e, &["violations"])),
            format!("{}", num(&e, &["leaked_fds"])),
        ]);
    }
    table
}

/// Cancel-to-return by source and inner sink, per batch.
pub(crate) fn by_case_table(batches: &[&ScenarioResult]) -> Table {
    let mut table = Table::new(["sink", "source -> inner sink", "cancelled", "p50", "p99", "max"]);
    for r in batches {
        let Some(cases) = r.extra.get("latency_by_case").and_then(Value::as_object) else {
            continue;
        };
        for (case, stats) in cases {
            table.row([
                r.variant.clone(),
                case.clone(),
                format!("{}", num(stats, &["count"])),
                us(num(stats, &["p50_us"])),
                us(num(stats, &["p99_us"])),
                us(num(stats, &["max_us"])),
            ]);
        }
    }
    table
}

/// Latency against "nines" (0.9 -> 1, 0.99 -> 2, ...), one line per batch.
pub(crate) fn latency_chart(batches: &[&ScenarioResult], note: &str) -> LineChart {
    let series = batches
        .iter()
        .filter_map(|r| {
            let quantiles = r.extra.get("latency")?.get("quantiles")?.as_array()?;
            let points = quantiles
                .iter()
                .filter_map(|pair| {
                    let q = pair.get(0)?.as_f64()?;
                    let value = pair.get(1)?.as_f64()?;
                    (q < 1.0).then(|| (-(1.0 - q).log10(), value / 1000.0))
                })
                .collect();
            Some(Series {
                name: format!("{} sink", r.variant),
                points,
            })
        })
        .collect();
    LineChart {
        title: "Cancel-to-return latency by percentile".to_owned(),
        note: note.to_owned(),
        x_label: "nines (1 = p90, 2 = p99, 3 = p99.9)".to_owned(),
        y_label: "cancel to return (ms)".to_owned(),
        y_log: false,
        series,
    }
}

/// Active ingestions over time, with the signal and the deadline drawn as
/// vertical lines.
pub(crate) fn active_chart(shutdown: &ScenarioResult, note: &str) -> LineChart {
    let e = extra(shutdown);
    let samples: Vec<(f64, f64)> = e
        .get("active_samples")
        .and_then(Value::as_array)
        .map(|samples| {
            samples
                .iter()
                .filter_map(|s| Some((s.get(0)?.as_f64()? / 1000.0, s.get(1)?.as_f64()?)))
                .collect()
        })
        .unwrap_or_default();
    let top = num(&e, &["ingestions"]);
    let vertical = |name: &str, ms: f64| Series {
        name: format!("{name} ({:.0} ms)", ms),
        points: vec![(ms / 1000.0, 0.0), (ms / 1000.0, top)],
    };
    let mut series = vec![Series {
        name: "active ingestions".to_owned(),
        points: downsample_max(&samples, crate::charts::MAX_POINTS),
    }];
    series.push(vertical("SIGTERM seen", num(&e, &["shutdown_began_ms"])));
    series.push(vertical("grace deadline", num(&e, &["deadline_ms"])));
    LineChart {
        title: "Graceful shutdown: active ingestions over time".to_owned(),
        note: note.to_owned(),
        x_label: "seconds since start".to_owned(),
        y_label: "active ingestions".to_owned(),
        y_log: false,
        series,
    }
}

/// The registry's summary and the expectations met.
pub(crate) fn shutdown_table(shutdown: &ScenarioResult) -> Table {
    let e = extra(shutdown);
    let mut table = Table::new(["figure", "value"]);
    let records = e.get("records").and_then(Value::as_array).cloned().unwrap_or_default();
    let met = |expected: &str| {
        let of: Vec<&Value> = records
            .iter()
            .filter(|r| r.get("expected").and_then(Value::as_str) == Some(expected))
            .collect();
        let ok = of
            .iter()
            .filter(|r| r.get("as_expected").and_then(Value::as_bool) == Some(true))
            .count();
        format!("{ok} of {}", of.len())
    };
    for (figure, value) in [
        ("ingestions", format!("{}", num(&e, &["ingestions"]))),
        ("grace", format!("{:.0} ms", num(&e, &["grace_ms"]))),
        ("SIGTERM seen at", format!("{:.0} ms", num(&e, &["shutdown_began_ms"]))),
        ("completed", format!("{}", num(&e, &["summary", "completed"]))),
        (
            "aborted (cancelled by the shutdown)",
            format!("{}", num(&e, &["summary", "aborted"])),
        ),
        ("failed", format!("{}", num(&e, &["summary", "failed"]))),
        (
            "refused (late arrivals)",
            format!("{}", num(&e, &["summary", "refused"])),
        ),
        (
            "still running at the deadline",
            format!("{}", num(&e, &["summary", "cancelled_at_deadline"])),
        ),
        ("shutdown took", format!("{:.0} ms", num(&e, &["summary", "took_ms"]))),
        ("planned to finish well within the grace: committed", met("finish")),
        ("planned to end well after the deadline: aborted", met("abort")),
        ("within the margin of the deadline: one clean ending", met("either")),
        (
            "fds / threads before -> after",
            format!(
                "{} -> {} / {} -> {}",
                num(&e, &["fds_before"]),
                num(&e, &["fds_after"]),
                num(&e, &["threads_before"]),
                num(&e, &["threads_after"])
            ),
        ),
    ] {
        table.row([figure.to_owned(), value]);
    }
    table
}

fn render(results: &[ScenarioResult], figures: &mut Figures<'_>) -> Result<String, Error> {
    let note = figures.note.clone();
    let mut md = String::new();
    if let Some(summary) = newest(results, "summary") {
        let table = checks_table(summary);
        let passed = table
            .rows
            .iter()
            .filter(|r| r.last().is_some_and(|c| c == "pass"))
            .count();
        let _ = writeln!(
            md,
            "{passed} of {} checks pass.\n\n{}",
            table.rows.len(),
            markdown::table(&table)
        );
    }

    let batches: Vec<&ScenarioResult> = ["hung", "slow"].iter().filter_map(|v| newest(results, v)).collect();
    if !batches.is_empty() {
        let _ = writeln!(
            md,
            "### Cancel at random moments\n\nEach trial cancels its token from another thread at a seeded random \
             moment; latency runs from just before `cancel()` to just after `ingest` returned (real time, \
             multi-thread runtime with 2 workers). A write counts as a violation when it is called, first polled or \
             polled again after `abort` began, or is still alive when it begins.\n"
        );
        let chart = Chart::Line(latency_chart(&batches, &note));
        md.push_str(&figures.chart(
            "cancellation-latency",
            "cancel-to-return latency by percentile",
            &chart,
            true,
        )?);
        let _ = writeln!(md, "\n{}", markdown::table(&latency_table(&batches)));
        let cases = by_case_table(&batches);
        if !cases.rows.is_empty() {
            let _ = writeln!(
                md,
                "By source and inner sink (the file source and sink own a thread each):\n"
            );
            let _ = writeln!(md, "{}", markdown::table(&cases));
        }
    }

    if let Some(disconnect) = newest(results, "disconnect") {
        let e = extra(disconnect);
        let _ = writeln!(
            md,
            "### Client disconnect\n\nThe peer promises a length (8-byte prefix) and hangs up early, by FIN or RST. \
             {} of {} trials ended as expected ({} closed, {} reset, {} complete); hang-up to return p50 {}, p99 {}; \
             leaked fds {}, writes after abort {}.\n",
            num(&e, &["as_expected"]),
            num(&e, &["trials"]),
            num(&e, &["closed"]),
            num(&e, &["reset"]),
            num(&e, &["complete"]),
            us(num(&e, &["latency", "p50_us"])),
            us(num(&e, &["latency", "p99_us"])),
            num(&e, &["leaked_fds"]),
            num(&e, &["violations"]),
        );
        for key in ["close_error_example", "reset_error_example"] {
            if let Some(text) = e.get(key).and_then(Value::as_str) {
                let _ = writeln!(md, "- `{text}`");
            }
        }
        md.push('\n');
    }

    if let Some(shutdown) = newest(results, "shutdown") {
        let _ = writeln!(md, "### Graceful shutdown under SIGTERM\n");
        let chart = Chart::Line(active_chart(shutdown, &note));
        md.push_str(&figures.chart(
            "cancellation-shutdown-active",
            "active ingestions over time",
            &chart,
            true,
        )?);
        let _ = writeln!(md, "\n{}", markdown::table(&shutdown_table(shutdown)));
    }
    Ok(md)
}
