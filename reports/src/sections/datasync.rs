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
    // The newest of this scenario's results, not of the whole run.
    let note = crate::provenance(results);
    let mut md = String::new();
    let table = variants_table(&newest);
    if table.rows.is_empty() {
        let _ = writeln!(md, "No job results; run `weir-lab run datasync` (needs `just pg-up`).\n");
    } else {
        let runs = job_runs(&newest);
        let verified = runs.iter().filter(|r| job(r).verified).count();
        let mut part = String::new();
        let _ = writeln!(
            part,
            "The mock API serves a seeded event log with faults (rate limits, slow and truncated responses, \
             expired cursors); each variant loads it into a fresh schema. Verified: the stored ids and dead \
             letters are exactly the log's (no loss, no duplicate). {verified} of {} variants verified.\n\n{}",
            table.rows.len(),
            markdown::table(&table)
        );
        let bars = throughput_bars(&newest, &note);
        if !bars.bars.is_empty() {
            part.push_str(&figures.chart(
                "datasync-events-per-s",
                "events per second by variant",
                &Chart::Bars(bars),
                true,
            )?);
            part.push('\n');
        }
        if let Some(rate) = newest.get("copy").and_then(|r| events_per_s(r)) {
            let n = newest["copy"].params.get("events").and_then(Value::as_u64).unwrap_or_default();
            let _ = writeln!(
                part,
                "\n{}",
                crate::seed::beside(&crate::seed::DATASYNC, &format!("{rate:.0} events/s (the copy job, N={n})"))
            );
        }
        md.push_str(&figures.part("datasync/jobs", runs, part));
    }
    let scale = scale_table(&newest);
    if !scale.rows.is_empty() {
        let mut part = format!(
            "The job spread over NATS JetStream (`just nats-up`: 3 nodes on this machine): the log planned into \
             time ranges on a replicated work queue, worker processes (`weir-lab datasync-worker`) taking one \
             item at a time, each acked after its commit. Time runs from planning to the last ack. Workers, \
             NATS, PostgreSQL and the mock API share this machine's cores, so more workers here measure \
             contention, not scale-out.\n\n{}",
            markdown::table(&scale)
        );
        part.push_str(&projection(&newest));
        let drawn = newest.iter().filter(|(v, _)| is_scale(v)).map(|(_, r)| *r);
        md.push_str(&figures.part("datasync/scale", drawn, part));
    }
    if let Some(run) = newest.get("copy")
        && let copy = job(run)
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
        let part = format!(
            "CPU per event in the job (copy): {client:.2} us in the scenario's process (mock API server and \
             job) + {server:.2} us in PostgreSQL's processes = {:.2} us: this machine's cores allow at most \
             {bound:.0} events/s at that cost{ten}.\n\n",
            client + server
        );
        md.push_str(&figures.part("datasync/cpu", [*run], part));
    }
    if let Some(encoding) = newest.get(ENCODING) {
        let mut part = String::new();
        let f = encoding.figures::<DatasyncEncoding>().unwrap_or_default();
        match (f.pre_encoded_rows_per_s, f.binary_copy_in_writer_rows_per_s) {
            (pre, typed) if encoding.is_ok() && pre > 0.0 && typed > 0.0 => {
                let _ = writeln!(
                    part,
                    "COPY encoding ({} rows, no API): pre-encoded binary frames {pre:.0} rows/s vs \
                     `BinaryCopyInWriter` {typed:.0} rows/s ({:.2}x).\n",
                    encoding.params.get("events").and_then(Value::as_u64).unwrap_or_default(),
                    f.pre_encoded_speedup
                );
            }
            _ => {
                let _ = writeln!(part, "COPY encoding comparison: {}.\n", encoding.outcome);
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
                part,
                "PostgreSQL's own ceiling on this machine (the same rows pre-encoded, COPYed into an emptied \
                 `events` with its uuid primary key and committed; no API, no parsing): {one:.0} rows/s from one \
                 connection, {two:.0} rows/s from two in parallel{over_row_by_row}. No client loads this table \
                 faster here.{cpu}\n"
            );
            if let Some(rate) = newest.get("copy").and_then(|r| events_per_s(r)) {
                let _ = writeln!(
                    part,
                    "The job (copy) reached {:.2} of the one-connection ceiling and {:.2} of the two-connection one.\n",
                    rate / one,
                    rate / two
                );
            }
        }
        md.push_str(&figures.part("datasync/ceiling", [*encoding], part));
    }
    let _ = writeln!(md, "{}", figures.gates.verdicts("datasync", results));
    Ok(md)
}

/// Machine counts the projection is tabulated for.
const PROJECTED_MACHINES: [u32; 6] = [1, 2, 4, 8, 16, 32];

/// What the projection is computed from, all measured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProjectionInputs {
    /// The variant the CPU figures come from (the most workers).
    pub variant: String,
    /// Its worker processes.
    pub workers: u64,
    /// Cores of the machine it ran on.
    pub cores: f64,
    /// One worker's events/s (`jetstream-1`), on a machine it shared with
    /// NATS, PostgreSQL and the mock API.
    pub one_worker_events_per_s: f64,
    /// NATS's CPU per event, microseconds (all three nodes).
    pub nats_us: f64,
    /// PostgreSQL's CPU per event in this job, microseconds.
    pub postgres_us: f64,
    /// PostgreSQL's measured COPY ceiling (the better of one and two
    /// connections), rows/s, when the run measured it.
    pub copy_ceiling_rows_per_s: Option<f64>,
}

impl ProjectionInputs {
    /// Reads them from the newest results; `None` unless `jetstream-1` and
    /// a larger JetStream run ended verified with CPU figures.
    pub(crate) fn from_results(newest: &BTreeMap<&str, &ScenarioResult>) -> Option<Self> {
        let scale = |r: &ScenarioResult| r.figures::<DatasyncScale>().unwrap_or_default();
        let one = newest.get("jetstream-1").filter(|r| r.is_ok()).map(|r| scale(r))?;
        let (run, f) = newest
            .iter()
            .filter(|(v, _)| is_scale(v))
            .map(|(_, r)| (*r, scale(r)))
            .filter(|(r, f)| r.is_ok() && f.verified)
            .max_by_key(|(_, f)| f.workers)?;
        let ceiling = newest.get(ENCODING).and_then(|r| {
            let e = r.figures::<DatasyncEncoding>().unwrap_or_default();
            match (e.pg_copy_ceiling_rows_per_s_1conn, e.pg_copy_ceiling_rows_per_s_2conn) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            }
        });
        Some(Self {
            variant: run.variant.clone(),
            workers: f.workers,
            cores: run.machine.cores.max(1) as f64,
            one_worker_events_per_s: one.events_per_s,
            nats_us: f.cpu_nats_us_per_event?,
            postgres_us: f.cpu_postgres_us_per_event?,
            copy_ceiling_rows_per_s: ceiling,
        })
    }

    /// Events/s `us` of CPU per event allows on one machine's cores.
    fn cpu_bound(&self, us: f64) -> f64 {
        if us > 0.0 { self.cores * 1e6 / us } else { f64::INFINITY }
    }

    /// One PostgreSQL database's bound: its CPU per event in this job, and
    /// its measured COPY ceiling when known, whichever is lower.
    pub(crate) fn database_bound(&self) -> f64 {
        let cpu = self.cpu_bound(self.postgres_us);
        self.copy_ceiling_rows_per_s.map_or(cpu, |c| cpu.min(c))
    }

    /// `machines` machines of workers (one worker each, at the measured
    /// one-worker rate), NATS at its CPU per event on one machine's cores.
    pub(crate) fn front_bound(&self, machines: u32) -> f64 {
        (f64::from(machines) * self.one_worker_events_per_s).min(self.cpu_bound(self.nats_us))
    }
}

/// The projection table and its reading, from measured figures only: see
/// [`ProjectionInputs`]. Every figure is an upper bound (network, disk,
/// replication and coordination are left out) and says so.
fn projection(newest: &BTreeMap<&str, &ScenarioResult>) -> String {
    let Some(p) = ProjectionInputs::from_results(newest) else {
        return String::new();
    };
    let fmt = |x: f64| if x.is_finite() { format!("{x:.0}") } else { "-".to_owned() };
    let database = p.database_bound();
    let mut table = Table::new([
        "worker machines",
        "workers + NATS bound",
        "1 database",
        "bottleneck",
        "2 databases (partitioned table)",
        "4 databases",
        "object store as sink (no PostgreSQL)",
    ]);
    let mut moves_at = None;
    for n in PROJECTED_MACHINES {
        let front = p.front_bound(n);
        if moves_at.is_none() && database <= front {
            moves_at = Some(n);
        }
        table.row([
            n.to_string(),
            fmt(front),
            fmt(front.min(database)),
            if database <= front { "PostgreSQL" } else { "workers" }.to_owned(),
            fmt(front.min(2.0 * database)),
            fmt(front.min(4.0 * database)),
            fmt(front),
        ]);
    }
    let mut md = String::new();
    let ceiling = p
        .copy_ceiling_rows_per_s
        .map(|c| format!(" and its measured COPY ceiling ({c:.0} rows/s), whichever is lower"))
        .unwrap_or_default();
    let _ = writeln!(
        md,
        "\n**Projection, computed from the figures above; not a measurement.** Each worker machine runs one worker \
         at the rate `jetstream-1` measured ({:.0} events/s, on a machine it shared with NATS, PostgreSQL and the \
         mock API); NATS is bounded by its CPU per event in `{}` ({:.2} us, {} workers) on {:.0} cores; one \
         PostgreSQL database on a {:.0}-core machine of its own by its CPU per event in that run ({:.2} us){ceiling}; \
         P databases (the table partitioned by time range, one partition per database) by P times that; an object \
         store as sink removes PostgreSQL's term and adds a cost this project has not measured. Network, disk, \
         replication and coordination are left out: every figure is an upper bound, in events/s.\n\n{}",
        p.one_worker_events_per_s,
        p.variant,
        p.nats_us,
        p.workers,
        p.cores,
        p.cores,
        p.postgres_us,
        markdown::table(&table)
    );
    let last = PROJECTED_MACHINES[PROJECTED_MACHINES.len() - 1];
    let _ = writeln!(
        md,
        "{}\n",
        match moves_at {
            Some(n) => format!(
                "With one database the bottleneck moves from the workers to PostgreSQL at {n} worker machine(s): \
                 past that, more workers add nothing until the table is spread over several databases or the sink \
                 is not PostgreSQL, and then NATS's bound ({:.0} events/s on one machine's cores) is the next.",
                p.cpu_bound(p.nats_us)
            ),
            None => format!("Up to {last} worker machines the workers stay the bottleneck."),
        }
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_bounds_take_the_lower_of_cpu_and_ceiling_and_stop_at_nats() {
        let p = ProjectionInputs {
            variant: "jetstream-4".into(),
            workers: 4,
            cores: 2.0,
            one_worker_events_per_s: 100_000.0,
            nats_us: 0.5,
            postgres_us: 5.0,
            copy_ceiling_rows_per_s: Some(300_000.0),
        };
        // 2 cores / 5 us = 400,000 events/s, above the measured ceiling.
        assert_eq!(p.database_bound(), 300_000.0);
        assert_eq!(p.front_bound(2), 200_000.0);
        // NATS: 2 cores / 0.5 us caps the front at 4,000,000.
        assert_eq!(p.front_bound(64), 4_000_000.0);
        let without_ceiling = ProjectionInputs {
            copy_ceiling_rows_per_s: None,
            ..p
        };
        assert_eq!(without_ceiling.database_bound(), 400_000.0);
    }
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
