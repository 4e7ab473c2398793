//! The cancellation section: the gates' verdicts, cancel-to-return latency
//! by percentile (hung and slow sinks), client disconnects, and the
//! graceful shutdown's active ingestions over time with its summary. Read
//! as the typed figures `weir-cancellation` writes
//! (`weir_harness::figures::cancellation`).

use std::fmt::Write as _;

use weir_harness::ScenarioResult;
use weir_harness::figures::cancellation::{DisconnectReport, Expected, ShutdownRun, TrialsReport};

use super::{Figures, Section};
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

fn us(value: f64) -> String {
    if value >= 1000.0 {
        format!("{:.2} ms", value / 1000.0)
    } else {
        format!("{value:.0} us")
    }
}

/// A batch of trials and its figures.
type Batch<'a> = (&'a ScenarioResult, TrialsReport);

fn batch(r: &ScenarioResult) -> Batch<'_> {
    (r, r.figures().unwrap_or_default())
}

/// One row per trial batch (hung, slow).
pub(crate) fn latency_table(batches: &[Batch<'_>]) -> Table {
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
    for (r, f) in batches {
        table.row([
            r.variant.clone(),
            f.trials.to_string(),
            format!("{} / {}", f.cancelled, f.committed),
            us(f.latency.p50_us),
            us(f.latency.p90_us),
            us(f.latency.p99_us),
            us(f.latency.p999_us),
            us(f.latency.max_us),
            us(f.abort_duration.p99_us),
            f.violations.to_string(),
            f.leaked_fds.to_string(),
        ]);
    }
    table
}

/// Cancel-to-return by source and inner sink, per batch.
pub(crate) fn by_case_table(batches: &[Batch<'_>]) -> Table {
    let mut table = Table::new(["sink", "source -> inner sink", "cancelled", "p50", "p99", "max"]);
    for (r, f) in batches {
        for (case, stats) in &f.latency_by_case {
            table.row([
                r.variant.clone(),
                case.clone(),
                stats.count.to_string(),
                us(stats.p50_us),
                us(stats.p99_us),
                us(stats.max_us),
            ]);
        }
    }
    table
}

/// Latency against "nines" (0.9 -> 1, 0.99 -> 2, ...), one line per batch.
pub(crate) fn latency_chart(batches: &[Batch<'_>], note: &str) -> LineChart {
    let series = batches
        .iter()
        .filter(|(_, f)| !f.latency.quantiles.is_empty())
        .map(|(r, f)| Series {
            name: format!("{} sink", r.variant),
            points: f
                .latency
                .quantiles
                .iter()
                .filter(|(q, _)| *q < 1.0)
                .map(|(q, value)| (-(1.0 - q).log10(), value / 1000.0))
                .collect(),
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
pub(crate) fn active_chart(shutdown: &ShutdownRun, note: &str) -> LineChart {
    let samples: Vec<(f64, f64)> = shutdown
        .active_samples
        .iter()
        .map(|&(ms, active)| (ms / 1000.0, active as f64))
        .collect();
    let top = shutdown.ingestions as f64;
    let vertical = |name: &str, ms: f64| Series {
        name: format!("{name} ({:.0} ms)", ms),
        points: vec![(ms / 1000.0, 0.0), (ms / 1000.0, top)],
    };
    let mut series = vec![Series {
        name: "active ingestions".to_owned(),
        points: downsample_max(&samples, crate::charts::MAX_POINTS),
    }];
    series.push(vertical("SIGTERM seen", shutdown.shutdown_began_ms));
    series.push(vertical("grace deadline", shutdown.deadline_ms));
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
pub(crate) fn shutdown_table(shutdown: &ShutdownRun) -> Table {
    let mut table = Table::new(["figure", "value"]);
    let met = |expected: Expected| {
        let (of, ok) = shutdown.tally(expected);
        format!("{ok} of {of}")
    };
    let s = &shutdown.summary;
    for (figure, value) in [
        ("ingestions", shutdown.ingestions.to_string()),
        ("grace", format!("{:.0} ms", shutdown.grace_ms)),
        ("SIGTERM seen at", format!("{:.0} ms", shutdown.shutdown_began_ms)),
        ("completed", s.completed.to_string()),
        ("aborted (cancelled by the shutdown)", s.aborted.to_string()),
        ("failed", s.failed.to_string()),
        ("refused (late arrivals)", s.refused.to_string()),
        ("still running at the deadline", s.cancelled_at_deadline.to_string()),
        ("shutdown took", format!("{:.0} ms", s.took_ms)),
        ("planned to finish well within the grace: committed", met(Expected::Finish)),
        ("planned to end well after the deadline: aborted", met(Expected::Abort)),
        ("within the margin of the deadline: one clean ending", met(Expected::Either)),
        (
            "fds / threads before -> after",
            format!(
                "{} -> {} / {} -> {}",
                shutdown.fds_before, shutdown.fds_after, shutdown.threads_before, shutdown.threads_after
            ),
        ),
    ] {
        table.row([figure.to_owned(), value]);
    }
    table
}

fn render(results: &[ScenarioResult], figures: &mut Figures<'_>) -> Result<String, Error> {
    // The newest of this scenario's results, not of the whole run.
    let note = crate::provenance(results);
    let mut md = String::new();
    let _ = writeln!(md, "{}", figures.gates.verdicts("cancellation", results));

    let batches: Vec<Batch<'_>> = ["hung", "slow"]
        .iter()
        .filter_map(|v| newest(results, v))
        .map(batch)
        .collect();
    if !batches.is_empty() {
        let mut part = String::new();
        let _ = writeln!(
            part,
            "### Cancel at random moments\n\nEach trial cancels its token from another thread at a seeded random \
             moment; latency runs from just before `cancel()` to just after `ingest` returned (real time, \
             multi-thread runtime with 2 workers). A write counts as a violation when it is called, first polled or \
             polled again after `abort` began, or is still alive when it begins.\n"
        );
        let chart = Chart::Line(latency_chart(&batches, &note));
        part.push_str(&figures.chart(
            "cancellation-latency",
            "cancel-to-return latency by percentile",
            &chart,
            true,
        )?);
        let _ = writeln!(part, "\n{}", markdown::table(&latency_table(&batches)));
        let cases = by_case_table(&batches);
        if !cases.rows.is_empty() {
            let _ = writeln!(
                part,
                "By source and inner sink (the file source and sink own a thread each):\n"
            );
            let _ = writeln!(part, "{}", markdown::table(&cases));
        }
        let drawn = ["hung", "slow"].into_iter().filter_map(|v| newest(results, v));
        md.push_str(&figures.part("cancellation/random", drawn, part));
    }

    if let Some(disconnect) = newest(results, "disconnect") {
        let e = disconnect.figures::<DisconnectReport>().unwrap_or_default();
        let mut part = String::new();
        let _ = writeln!(
            part,
            "### Client disconnect\n\nThe peer promises a length (8-byte prefix) and hangs up early, by FIN or RST. \
             {} of {} trials ended as expected ({} closed, {} reset, {} complete); hang-up to return p50 {}, p99 {}; \
             leaked fds {}, writes after abort {}.\n",
            e.as_expected,
            e.trials,
            e.closed,
            e.reset,
            e.complete,
            us(e.latency.p50_us),
            us(e.latency.p99_us),
            e.leaked_fds,
            e.violations,
        );
        for text in [&e.close_error_example, &e.reset_error_example].into_iter().flatten() {
            let _ = writeln!(part, "- `{text}`");
        }
        part.push('\n');
        md.push_str(&figures.part("cancellation/disconnect", [disconnect], part));
    }

    if let Some(run) = newest(results, "shutdown") {
        let shutdown = run.figures::<ShutdownRun>().unwrap_or_default();
        let mut part = String::new();
        let _ = writeln!(part, "### Graceful shutdown under SIGTERM\n");
        let chart = Chart::Line(active_chart(&shutdown, &note));
        part.push_str(&figures.chart(
            "cancellation-shutdown-active",
            "active ingestions over time",
            &chart,
            true,
        )?);
        let _ = writeln!(part, "\n{}", markdown::table(&shutdown_table(&shutdown)));
        md.push_str(&figures.part("cancellation/shutdown", [run], part));
    }
    Ok(md)
}
