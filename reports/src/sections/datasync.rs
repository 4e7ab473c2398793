//! The datasync section: events per second from the mock API into
//! PostgreSQL for the exactly-once COPY job against staging-only, the
//! two-stage TSV design and row-by-row INSERTs (table and bars), with each
//! variant's event count and exactly-once verification, and the COPY
//! encoding comparison, and the gates' verdicts. Read as the typed figures
//! `weir-datasync-lab` writes (`weir_harness::figures::datasync`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;
use weir_harness::ScenarioResult;
use weir_harness::figures::datasync::{DatasyncEncoding, DatasyncRun, DatasyncScale};

use super::newest_per_variant;

use super::{Figures, Section};
use crate::Error;
use crate::markdown;
use crate::model::{Bar, BarChart, Chart, Table};

pub(crate) const SECTION: Section = Section {
    scenario: "datasync",
    title: "DataSync: API -> PostgreSQL, exactly-once COPY vs the alternatives",
    render,
};

/// The job variants, in display order, with what each is.
const VARIANTS: [(&str, &str); 5] = [
    ("copy", "binary COPY into events (the job)"),
    ("copy-staging", "every segment via staging + ON CONFLICT"),
    ("two-stage-tsv", "whole log to TSV, then one COPY"),
    ("row-by-row", "one INSERT per event, per-segment transaction"),
    ("row-by-row-autocommit", "one autocommitted INSERT per event"),
];
/// The encoding comparison's variant.
const ENCODING: &str = "copy-encoding";

fn job(r: &ScenarioResult) -> DatasyncRun {
    r.figures().unwrap_or_default()
}

/// The job runs in display order (known variants first, then any other
/// except the encoding comparison).
fn job_runs<'a>(newest: &BTreeMap<&str, &'a ScenarioResult>) -> Vec<&'a ScenarioResult> {
    let mut runs: Vec<&ScenarioResult> = VARIANTS.iter().filter_map(|(v, _)| newest.get(v).copied()).collect();
    runs.extend(
        newest
            .iter()
            .filter(|(v, _)| **v != ENCODING && !is_scale(v) && !VARIANTS.iter().any(|(k, _)| k == *v))
            .map(|(_, r)| *r),
    );
    runs
}

/// The job spread over NATS JetStream workers (`jetstream-N`).
fn is_scale(variant: &str) -> bool {
    variant.starts_with("jetstream-")
}

/// One row per worker count: events/s, CPU per event by side, the paired
/// ratio of one worker over the single-process job.
fn scale_table(newest: &BTreeMap<&str, &ScenarioResult>) -> Table {
    let mut table = Table::new([
        "variant",
        "workers",
        "N events",
        "time",
        "events/s",
        "vs single-process job (paired median [min, max], rounds)",
        "CPU us/event: workers",
        "NATS",
        "PostgreSQL",
        "mock API",
        "exactly once verified",
        "outcome",
    ]);
    let us = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |x| format!("{x:.2}"));
    let mut runs: Vec<&ScenarioResult> = newest.iter().filter(|(v, _)| is_scale(v)).map(|(_, r)| *r).collect();
    runs.sort_by_key(|r| r.figures::<DatasyncScale>().map_or(0, |f| f.workers));
    for r in runs {
        let f = r.figures::<DatasyncScale>().unwrap_or_default();
        table.row([
            r.variant.clone(),
            f.workers.to_string(),
            r.params
                .get("events")
                .and_then(Value::as_u64)
                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
            format!("{:.2} s", f.elapsed_s),
            format!("{:.0}", f.events_per_s),
            f.vs_single_process_rounds.as_ref().map_or_else(
                || "-".to_owned(),
                |p| format!("{:.2}x [{:.2}, {:.2}], {}", p.median, p.min, p.max, p.rounds.len()),
            ),
            us(f.cpu_workers_us_per_event),
            us(f.cpu_nats_us_per_event),
            us(f.cpu_postgres_us_per_event),
            us(f.cpu_api_us_per_event),
            if f.verified { "yes" } else { "NO" }.to_owned(),
            r.outcome.clone(),
        ]);
    }
    table
}

fn events_per_s(r: &ScenarioResult) -> Option<f64> {
    let rate = job(r).events_per_s;
    (r.is_ok() && rate > 0.0).then_some(rate)
}

/// One row per variant: N, time, events/s, the job's speed-up over it,
/// what happened to repeats and malformed events, and verification.
pub(crate) fn variants_table(newest: &BTreeMap<&str, &ScenarioResult>) -> Table {
    let copy = newest.get("copy").and_then(|r| events_per_s(r));
    let mut table = Table::new([
        "variant",
        "what",
        "N events",
        "time",
        "events/s",
        "job (copy) speed-up",
        "rows inserted",
        "dead letters",
        "repeats dropped / skipped by PostgreSQL",
        "API retries",
        "exactly once verified",
        "outcome",
    ]);
    for r in job_runs(newest) {
        let what = VARIANTS.iter().find(|(v, _)| *v == r.variant).map_or("", |(_, w)| w);
        let rate = events_per_s(r);
        let f = job(r);
        table.row([
            r.variant.clone(),
            what.to_owned(),
            r.params
                .get("events")
                .and_then(Value::as_u64)
                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
            format!("{:.2} s", r.elapsed_s),
            rate.map_or_else(|| "-".to_owned(), |x| format!("{x:.0}")),
            match (copy, rate) {
                (Some(c), Some(x)) if x > 0.0 => format!("{:.2}x", c / x),
                _ => "-".to_owned(),
            },
            f.rows_inserted.to_string(),
            f.dead_letters.to_string(),
            format!("{} / {}", f.repeats_dropped, f.duplicates_skipped_by_postgres),
            f.fetch
                .get("retries")
                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
            if f.verified { "yes" } else { "NO" }.to_owned(),
            r.outcome.clone(),
        ]);
    }
    table
}

/// Thousands of events per second per variant.
pub(crate) fn throughput_bars(newest: &BTreeMap<&str, &ScenarioResult>, note: &str) -> BarChart {
    let bars = job_runs(newest)
        .into_iter()
        .filter_map(|r| {
            let rate = events_per_s(r)?;
            let n = r.params.get("events").and_then(Value::as_u64).unwrap_or_default();
            Some(Bar {
                group: format!("{} (N={n})", r.variant),
                name: "thousand events/s".to_owned(),
                value: rate / 1000.0,
            })
        })
        .collect();
    BarChart {
        title: "Events per second into PostgreSQL, faults on".to_owned(),
        note: note.to_owned(),
        y_label: "thousand events/s".to_owned(),
        bars,
    }
}

fn render(results: &[ScenarioResult], figures: &mut Figures<'_>) -> Result<String, Error> {
    let newest = newest_per_variant(results);
    if newest.is_empty() {
        return Ok("No results; run `weir-lab run datasync` (needs `just pg-up`).\n".to_owned());
    }
    let note = figures.note.clone();
    let mut md = String::new();
    let table = variants_table(&newest);
    if table.rows.is_empty() {
        let _ = writeln!(md, "No job results; run `weir-lab run datasync` (needs `just pg-up`).\n");
    } else {
        let verified = job_runs(&newest)
            .iter()
            .filter(|r| job(r).verified)
            .count();
        let _ = writeln!(
            md,
            "The mock API serves a seeded event log with faults (rate limits, slow and truncated responses, \
             expired cursors); each variant loads it into a fresh schema. Verified: the stored ids and dead \
             letters are exactly the log's (no loss, no duplicate). {verified} of {} variants verified.\n\n{}",
            table.rows.len(),
            markdown::table(&table)
        );
        let bars = throughput_bars(&newest, &note);
        if !bars.bars.is_empty() {
            md.push_str(&figures.chart(
                "datasync-events-per-s",
                "events per second by variant",
                &Chart::Bars(bars),
                true,
            )?);
            md.push('\n');
        }
    }
    let scale = scale_table(&newest);
    if !scale.rows.is_empty() {
        let _ = writeln!(
            md,
            "The job spread over NATS JetStream (`just nats-up`: 3 nodes on this machine): the log planned into \
             time ranges on a replicated work queue, worker processes (`weir-lab datasync-worker`) taking one \
             item at a time, each acked after its commit. Time runs from planning to the last ack. Workers, \
             NATS, PostgreSQL and the mock API share this machine's cores, so more workers here measure \
             contention, not scale-out.\n\n{}",
            markdown::table(&scale)
        );
    }
    if let Some(copy) = newest.get("copy").map(|r| job(r))
        && let (Some(client), Some(server), Some(bound)) = (
            copy.cpu_client_us_per_event,
            copy.cpu_postgres_us_per_event,
            copy.cpu_bound_events_per_s,
        )
    {
        let ten = copy
            .ten_times_row_by_row_events_per_s
            .map(|t| format!("; 10x row-by-row would need {t:.0} events/s"))
            .unwrap_or_default();
        let _ = writeln!(
            md,
            "CPU per event in the job (copy): {client:.2} us in the scenario's process (mock API server and \
             job) + {server:.2} us in PostgreSQL's processes = {:.2} us: this machine's cores allow at most \
             {bound:.0} events/s at that cost{ten}.\n",
            client + server
        );
    }
    if let Some(encoding) = newest.get(ENCODING) {
        let f = encoding.figures::<DatasyncEncoding>().unwrap_or_default();
        match (f.pre_encoded_rows_per_s, f.binary_copy_in_writer_rows_per_s) {
            (pre, typed) if encoding.is_ok() && pre > 0.0 && typed > 0.0 => {
                let _ = writeln!(
                    md,
                    "COPY encoding ({} rows, no API): pre-encoded binary frames {pre:.0} rows/s vs \
                     `BinaryCopyInWriter` {typed:.0} rows/s ({:.2}x).\n",
                    encoding.params.get("events").and_then(Value::as_u64).unwrap_or_default(),
                    f.pre_encoded_speedup
                );
            }
            _ => {
                let _ = writeln!(md, "COPY encoding comparison: {}.\n", encoding.outcome);
            }
        }
        if let (Some(one), Some(two)) = (f.pg_copy_ceiling_rows_per_s_1conn, f.pg_copy_ceiling_rows_per_s_2conn) {
            let cpu = match (
                f.pg_copy_ceiling_cpu_postgres_us_per_event,
                f.pg_copy_ceiling_cpu_bound_rows_per_s,
            ) {
                (Some(us), Some(bound)) => format!(
                    " PostgreSQL spent {us:.2} us of CPU per row there: at most {bound:.0} rows/s on this \
                     machine's cores, with a client that cost nothing."
                ),
                _ => String::new(),
            };
            let over_row_by_row = f
                .pg_copy_ceiling_vs_row_by_row
                .map(|x| format!(", {x:.2}x the row-by-row rate of this run"))
                .unwrap_or_default();
            let _ = writeln!(
                md,
                "PostgreSQL's own ceiling on this machine (the same rows pre-encoded, COPYed into an emptied \
                 `events` with its uuid primary key and committed; no API, no parsing): {one:.0} rows/s from one \
                 connection, {two:.0} rows/s from two in parallel{over_row_by_row}. No client loads this table \
                 faster here.{cpu}\n"
            );
        }
    }
    let _ = writeln!(md, "{}", figures.gates.verdicts("datasync", results));
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(variant: &str, events: u64, per_s: f64, verified: bool) -> ScenarioResult {
        let mut r = ScenarioResult::new("datasync", variant);
        r.params.insert("events".into(), json!(events));
        r.elapsed_s = events as f64 / per_s;
        r.set_figures(&DatasyncRun {
            events_per_s: per_s,
            rows_inserted: events - 10,
            dead_letters: 10,
            repeats_dropped: 5,
            duplicates_skipped_by_postgres: 0,
            fetch: [("retries".to_owned(), 2)].into(),
            verified,
            ..DatasyncRun::default()
        });
        r
    }

    #[test]
    fn the_table_has_rates_speedups_n_and_verification() {
        let dir = tempfile::tempdir().unwrap();
        let mut figures = Figures::for_test(dir.path());
        let mut encoding = ScenarioResult::new("datasync", ENCODING);
        encoding.params.insert("events".into(), json!(100_000));
        encoding.set_figures(&DatasyncEncoding {
            pre_encoded_rows_per_s: 990_000.0,
            binary_copy_in_writer_rows_per_s: 660_000.0,
            pre_encoded_speedup: 1.5,
            pg_copy_ceiling_rows_per_s_1conn: Some(200_000.0),
            pg_copy_ceiling_rows_per_s_2conn: Some(300_000.0),
            pg_copy_ceiling_vs_row_by_row: Some(6.0),
            pg_copy_ceiling_cpu_postgres_us_per_event: Some(5.0),
            pg_copy_ceiling_cpu_bound_rows_per_s: Some(400_000.0),
            ..DatasyncEncoding::default()
        });
        let mut copy = job("copy", 300_000, 150_000.0, true);
        let mut copy_figures = copy.figures::<DatasyncRun>().unwrap();
        copy_figures.cpu_client_us_per_event = Some(2.0);
        copy_figures.cpu_postgres_us_per_event = Some(6.0);
        copy_figures.cpu_bound_events_per_s = Some(250_000.0);
        copy_figures.ten_times_row_by_row_events_per_s = Some(500_000.0);
        copy_figures.speedup_vs_row_by_row = Some(3.0);
        copy.set_figures(&copy_figures);
        let results = vec![
            job("row-by-row", 10_000, 50_000.0, true),
            copy,
            job("two-stage-tsv", 300_000, 120_000.0, false),
            encoding,
        ];
        let md = render(&results, &mut figures).unwrap();
        assert!(
            md.contains("| copy | binary COPY into events (the job) | 300000 | 2.00 s | 150000 | 1.00x | 299990 | 10 | 5 / 0 | 2 | yes | ok |"),
            "{md}"
        );
        assert!(md.contains("| two-stage-tsv |") && md.contains("| 120000 | 1.25x |"), "{md}");
        assert!(md.contains("| row-by-row |") && md.contains("| 10000 | 0.20 s | 50000 | 3.00x |"), "{md}");
        assert!(md.contains("| NO | ok |"), "{md}");
        assert!(md.contains("2 of 3 variants verified"), "{md}");
        assert!(md.contains("990000 rows/s vs `BinaryCopyInWriter` 660000 rows/s (1.50x)"), "{md}");
        assert!(
            md.contains("200000 rows/s from one connection, 300000 rows/s from two in parallel, 6.00x the row-by-row"),
            "{md}"
        );
        assert!(
            md.contains("5.00 us of CPU per row there: at most 400000 rows/s"),
            "{md}"
        );
        assert!(
            md.contains(
                "2.00 us in the scenario's process (mock API server and job) + 6.00 us in PostgreSQL's processes = \
                 8.00 us: this machine's cores allow at most 250000 events/s at that cost; 10x row-by-row would \
                 need 500000 events/s"
            ),
            "{md}"
        );
        assert!(md.contains("figures/datasync-events-per-s.svg"), "{md}");
        // The gates judge the copy run: verified, 3x one-transaction
        // row-by-row; the autocommit speed-up was not measured.
        for row in [
            "| datasync: exact id set after the run | datasync/copy | `extra.verified` | 1 | >= 1 | +0% | pass |",
            "| datasync: COPY job vs row-by-row INSERT in one transaction | datasync/copy | \
             `extra.speedup_vs_row_by_row` | 3 | >= 2 | +50% | pass |",
            "| datasync: COPY job vs row-by-row autocommit INSERT | datasync/copy | \
             `extra.speedup_vs_row_by_row_autocommit` | missing | >= 10 | - | **FAIL** |",
        ] {
            assert!(md.contains(row), "{row} not in {md}");
        }
        let empty = render(&[], &mut figures).unwrap();
        assert!(empty.contains("run `weir-lab run datasync`"), "{empty}");
    }
}
