//! The datasync scenario's figures: the job and its baselines against a
//! real PostgreSQL, and PostgreSQL's own COPY ceiling.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One job variant (`copy`, `copy-staging`, `two-stage-tsv`, `row-by-row`,
/// `row-by-row-autocommit`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DatasyncRun {
    /// The mock API's counters (requests, faults injected, bytes sent).
    pub api: BTreeMap<String, u64>,
    /// The client's fetch counters (requests, retries, waits).
    pub fetch: BTreeMap<String, u64>,
    /// Two-stage only: the fetch stage's wall time, seconds.
    pub stage_fetch_s: Option<f64>,
    /// Two-stage only: the load stage's wall time, seconds.
    pub stage_load_s: Option<f64>,
    /// Events per second, end to end.
    pub events_per_s: f64,
    /// NDJSON lines read.
    pub lines: u64,
    /// Lines per second.
    pub lines_per_s: f64,
    /// Segments committed.
    pub segments: u64,
    /// Rows inserted.
    pub rows_inserted: u64,
    /// Events the API repeated, dropped before the database.
    pub repeats_dropped: u64,
    /// Rows staged that PostgreSQL skipped as duplicates.
    pub duplicates_skipped_by_postgres: u64,
    /// Segments retried after a conflict.
    pub conflict_retries: u64,
    /// Malformed events stored as dead letters.
    pub dead_letters: u64,
    /// This process's CPU time, seconds.
    pub cpu_client_s: Option<f64>,
    /// The same per event, microseconds.
    pub cpu_client_us_per_event: Option<f64>,
    /// PostgreSQL's process tree's CPU time, seconds.
    pub cpu_postgres_s: Option<f64>,
    /// The same per event, microseconds.
    pub cpu_postgres_us_per_event: Option<f64>,
    /// At that CPU per event, the most events/s this machine's cores allow.
    pub cpu_bound_events_per_s: Option<f64>,
    /// Ten times row-by-row's rate (issue 7's target), for comparison.
    pub ten_times_row_by_row_events_per_s: Option<f64>,
    /// The stored ids equal the API's and the dead letters the injected
    /// malformed events: the gated figure.
    pub verified: bool,
    /// `copy` only: its events/s over `copy-staging`'s.
    pub speedup_vs_copy_staging: Option<f64>,
    /// `copy` only: over `two-stage-tsv`'s.
    pub speedup_vs_two_stage_tsv: Option<f64>,
    /// `copy` only: over row-by-row `INSERT` in one transaction.
    pub speedup_vs_row_by_row: Option<f64>,
    /// `copy` only: over row-by-row autocommit `INSERT`.
    pub speedup_vs_row_by_row_autocommit: Option<f64>,
}

/// The encoding comparison and PostgreSQL's COPY ceiling (variant
/// `copy-encoding`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DatasyncEncoding {
    /// Rows per second COPYing pre-encoded tuples.
    pub pre_encoded_rows_per_s: f64,
    /// Rows per second through `BinaryCopyInWriter`.
    pub binary_copy_in_writer_rows_per_s: f64,
    /// The first over the second.
    pub pre_encoded_speedup: f64,
    /// The ceiling's client CPU time, seconds (not measured: `None`).
    pub pg_copy_ceiling_cpu_client_s: Option<f64>,
    /// The same per row, microseconds.
    pub pg_copy_ceiling_cpu_client_us_per_event: Option<f64>,
    /// The ceiling's PostgreSQL CPU time, seconds.
    pub pg_copy_ceiling_cpu_postgres_s: Option<f64>,
    /// The same per row, microseconds.
    pub pg_copy_ceiling_cpu_postgres_us_per_event: Option<f64>,
    /// At that CPU per row, the most rows/s this machine's cores allow.
    pub pg_copy_ceiling_cpu_bound_rows_per_s: Option<f64>,
    /// PostgreSQL's COPY rate with pre-encoded frames on one connection.
    pub pg_copy_ceiling_rows_per_s_1conn: Option<f64>,
    /// The same on two connections.
    pub pg_copy_ceiling_rows_per_s_2conn: Option<f64>,
    /// The better ceiling over row-by-row's rate.
    pub pg_copy_ceiling_vs_row_by_row: Option<f64>,
    /// Ten times row-by-row's rate, for comparison.
    pub ten_times_row_by_row_events_per_s: Option<f64>,
}

/// The job spread over NATS JetStream (variants `jetstream-1`,
/// `jetstream-2`, `jetstream-4`): worker processes taking work items.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DatasyncScale {
    /// Worker processes.
    pub workers: u64,
    /// Events per second, end to end: from planning to the last item's ack.
    pub events_per_s: f64,
    /// That load's wall time, seconds.
    pub elapsed_s: f64,
    /// The workers' CPU per event, microseconds.
    pub cpu_workers_us_per_event: Option<f64>,
    /// The NATS servers' CPU per event, microseconds.
    pub cpu_nats_us_per_event: Option<f64>,
    /// PostgreSQL's CPU per event, microseconds.
    pub cpu_postgres_us_per_event: Option<f64>,
    /// The lab process's CPU per event (the mock API, the planner), microseconds.
    pub cpu_api_us_per_event: Option<f64>,
    /// `jetstream-1` only: one worker's events/s over the single-process
    /// job's on the same log, the median of paired interleaved rounds (the
    /// broker's cost): the gated figure.
    pub vs_single_process: Option<f64>,
    /// Those rounds, with quartiles and spread.
    pub vs_single_process_rounds: Option<crate::PairedRatio>,
    /// Every load was exact (stored ids and dead letters checked).
    pub verified: bool,
}
