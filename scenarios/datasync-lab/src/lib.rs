//! The DataSync scenario: the same seeded event log, with faults on, loaded
//! into PostgreSQL by the job (binary COPY, pipelined segments), by the job
//! through the staging table only, by the seed document's two-stage design
//! (TSV file, then COPY) and by row-by-row `INSERT` (on a smaller log);
//! plus pre-encoded binary COPY frames against tokio-postgres'
//! `BinaryCopyInWriter`. Every run is checked (stored ids and dead letters
//! equal the log's) and written as a `ScenarioResult`.
//!
//! The job itself is the `weir-datasync` product crate; this crate holds the
//! experiment and its baselines.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::SinkExt as _;
use serde_json::{Map, Value, json};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use weir::Transform as _;
use weir_harness::figures::datasync::{DatasyncEncoding, DatasyncRun};
use weir_harness::{RssSampler, ScenarioResult};

use weir_datasync::api::{ApiConfig, ApiCounts, FaultRates, MockApi};
use weir_datasync::cli::DEFAULT_API_KEY;
use weir_datasync::dataset::Dataset;
use weir_datasync::job::{JobConfig, JobReport, SinkKind, run_job};
use weir_datasync::parse::{
    BINARY_COPY_HEADER, BINARY_COPY_TRAILER, ParseEvents, RowFormat, SharedTally, encode_binary, parse_event,
};
use weir_datasync::pg::{Db, database_url};
use weir_datasync::sink::CopyTarget;

use crate::two_stage::run_two_stage;

pub mod faults;
mod scale;
pub mod two_stage;

pub use weir_datasync::Error;

/// The postmaster of the server `db` is connected to, when that server runs
/// on this machine (the parent of the connection's backend), so that the
/// CPU PostgreSQL spends can be metered.
async fn postmaster_pid(db: &Db) -> Option<u32> {
    let backend = db.backend_pid().await?;
    // A server elsewhere has its own pids: only a local `postgres` process
    // with this pid is our backend.
    let postgres = |pid| weir_harness::process_name(pid).is_some_and(|name| name.starts_with("postgres"));
    if !postgres(backend) {
        return None;
    }
    weir_harness::parent_pid(backend).filter(|&parent| postgres(parent))
}

/// The job: binary COPY straight into `events`, repeats dropped upstream,
/// two segments in flight.
pub const VARIANT_COPY: &str = "copy";
/// The job with every segment through the staging table and `ON CONFLICT`.
pub const VARIANT_COPY_STAGING: &str = "copy-staging";
/// The seed document's design: the whole log to a TSV file, then one COPY.
pub const VARIANT_TWO_STAGE: &str = "two-stage-tsv";
/// One `INSERT` per event in each segment's transaction (on `row_by_row_events`).
pub const VARIANT_ROW_BY_ROW: &str = "row-by-row";
/// One autocommitted `INSERT` per event (on a tenth of `row_by_row_events`).
pub const VARIANT_ROW_BY_ROW_AUTOCOMMIT: &str = "row-by-row-autocommit";
/// Pre-encoded binary COPY frames vs `BinaryCopyInWriter`, no API.
pub const VARIANT_ENCODING: &str = "copy-encoding";

pub use scale::{VARIANT_JETSTREAM_1, VARIANT_JETSTREAM_2, VARIANT_JETSTREAM_4};

/// Every variant, in the order they run.
pub const VARIANTS: [&str; 9] = [
    VARIANT_COPY,
    VARIANT_COPY_STAGING,
    VARIANT_TWO_STAGE,
    VARIANT_ROW_BY_ROW,
    VARIANT_ROW_BY_ROW_AUTOCOMMIT,
    VARIANT_ENCODING,
    VARIANT_JETSTREAM_1,
    VARIANT_JETSTREAM_2,
    VARIANT_JETSTREAM_4,
];

/// Parameters of the scenario. `Default` is the quick profile;
/// [`DatasyncParams::full`] the full one.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasyncParams {
    /// Events in the log for the COPY and two-stage variants.
    pub events: u64,
    /// Events in the log for the row-by-row variant.
    pub row_by_row_events: u64,
    /// Rows for the encoding comparison.
    pub encoding_events: u64,
    /// Seed of the log and the faults.
    pub seed: u64,
    /// The API's faults.
    pub faults: FaultRates,
    /// Share of malformed events.
    pub malformed_rate: f64,
    /// Share of repeated events.
    pub repeat_rate: f64,
    /// Event lines per segment.
    pub segment_events: u64,
    /// PostgreSQL; `DATABASE_URL` or `.pg/env` when `None`.
    pub database_url: Option<String>,
    /// Variants to run (all when empty).
    pub variants: Vec<String>,
    /// Check stored ids and dead letters against the log after each run.
    pub verify: bool,
    /// The jetstream variants' worker process: program and arguments
    /// before the job's (`weir-lab datasync-worker`); those variants fail
    /// with a clear outcome when it is empty.
    pub worker_command: Vec<String>,
    /// Paired rounds of one worker against the single-process job.
    pub scale_rounds: usize,
    /// Work items per worker.
    pub scale_items_per_worker: u64,
}

impl Default for DatasyncParams {
    /// The quick profile: 300,000 events (row-by-row: 10,000), typical
    /// faults, segments of 50,000.
    fn default() -> Self {
        Self {
            events: 300_000,
            row_by_row_events: 10_000,
            encoding_events: 100_000,
            seed: 42,
            faults: FaultRates::typical(),
            malformed_rate: 0.001,
            repeat_rate: 0.005,
            segment_events: 50_000,
            database_url: None,
            variants: Vec::new(),
            verify: true,
            worker_command: Vec::new(),
            scale_rounds: 5,
            scale_items_per_worker: 2,
        }
    }
}

impl DatasyncParams {
    /// The full profile: 2,000,000 events (row-by-row: 100,000), segments
    /// of 100,000; the one-worker vs single-process pairing in 3 rounds
    /// (each round loads the whole log twice). Sized so that `just
    /// bench-all` stays under 15 minutes on two cores.
    pub fn full() -> Self {
        Self {
            events: 2_000_000,
            row_by_row_events: 100_000,
            encoding_events: 500_000,
            segment_events: 100_000,
            scale_rounds: 3,
            ..Self::default()
        }
    }

    fn wants(&self, variant: &str) -> bool {
        self.variants.is_empty() || self.variants.iter().any(|v| v == variant)
    }
}

/// The mock API on a runtime of its own (one worker), like a separate
/// service.
struct ApiServer {
    runtime: tokio::runtime::Runtime,
    api: Option<MockApi>,
}

impl ApiServer {
    fn start(config: ApiConfig) -> Result<Self, crate::Error> {
        let io = |context: &str| {
            let context = context.to_owned();
            move |source| crate::Error::Io { context, source }
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("datasync-api")
            .enable_all()
            .build()
            .map_err(io("building the api runtime"))?;
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let api = runtime
            .block_on(MockApi::start(config, listen))
            .map_err(io("starting the mock api"))?;
        Ok(Self {
            runtime,
            api: Some(api),
        })
    }

    fn url(&self) -> String {
        self.api.as_ref().map(MockApi::url).unwrap_or_default()
    }

    fn stop(mut self) -> ApiCounts {
        let Some(api) = self.api.take() else {
            return ApiCounts::default();
        };
        let counts = api.counts();
        self.runtime.block_on(api.shutdown());
        counts
    }
}

/// A worker process's arguments after its command (`weir-lab
/// datasync-worker`): the job's API, database, schema and segment size,
/// the queue's servers and name, no progress bar.
fn worker_job_args(job: &JobConfig, servers: &[String], queue: &str) -> Vec<String> {
    [
        "--api-url",
        &job.api_url,
        "--api-key",
        DEFAULT_API_KEY,
        "--database-url",
        &job.database_url,
        "--schema",
        &job.schema,
        "--segment-events",
        &job.segment_events.to_string(),
        "--no-progress",
        "--nats",
        &servers.join(","),
        "--queue",
        queue,
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

fn io_error(context: &str) -> impl FnOnce(std::io::Error) -> crate::Error + '_ {
    move |source| crate::Error::Io {
        context: context.to_owned(),
        source,
    }
}

/// Runs the selected variants and writes one result each to `out`.
///
/// # Errors
///
/// No database, unknown variants, or a failure outside a variant (a failed
/// variant is a result with its error as the outcome).
pub fn run(params: &DatasyncParams, out: &Path) -> Result<Vec<ScenarioResult>, crate::Error> {
    if let Some(unknown) = params.variants.iter().find(|v| !VARIANTS.contains(&v.as_str())) {
        return Err(crate::Error::Config(format!(
            "unknown datasync variant {unknown:?} (known: {})",
            VARIANTS.join(", ")
        )));
    }
    if params.events == 0 || params.segment_events == 0 {
        return Err(crate::Error::Config(
            "events and segment_events must be at least 1".to_owned(),
        ));
    }
    params.faults.validate().map_err(crate::Error::Config)?;
    let url = match &params.database_url {
        Some(url) => url.clone(),
        None => database_url(&std::env::current_dir().unwrap_or_default())?,
    };
    let runtime = weir_datasync::cli::runtime().map_err(io_error("building the job runtime"))?;
    let mut results = Vec::new();
    let job_variants = [
        (VARIANT_COPY, SinkKind::Copy, params.events),
        (VARIANT_COPY_STAGING, SinkKind::Copy, params.events),
        (VARIANT_TWO_STAGE, SinkKind::Copy, params.events),
        (VARIANT_ROW_BY_ROW, SinkKind::RowByRow, params.row_by_row_events),
        (
            VARIANT_ROW_BY_ROW_AUTOCOMMIT,
            SinkKind::RowByRowAutocommit,
            (params.row_by_row_events / 10).max(1),
        ),
    ];
    for (variant, sink, events) in job_variants {
        if params.wants(variant) {
            results.push(run_variant(params, &runtime, &url, variant, sink, events, out)?);
        }
    }
    if params.wants(VARIANT_ENCODING) {
        results.push(runtime.block_on(run_encoding(params, &url)));
    }
    for (variant, workers) in [
        (VARIANT_JETSTREAM_1, 1),
        (VARIANT_JETSTREAM_2, 2),
        (VARIANT_JETSTREAM_4, 4),
    ] {
        if params.wants(variant) {
            results.push(scale::run(params, &runtime, &url, variant, workers)?);
        }
    }
    add_ratios(&mut results);
    for result in &results {
        result.write_to(out).map_err(io_error("writing a result"))?;
    }
    Ok(results)
}

/// CPU spent by this process (the API server and the job) and by the
/// PostgreSQL server's process tree (when it runs on this machine) between
/// `start` and `stop`.
struct CpuMeter {
    server: Option<u32>,
    client_before: Option<f64>,
    server_before: Option<f64>,
}

/// What a [`CpuMeter`] measured, seconds.
#[derive(Debug, Clone, Copy)]
struct CpuSpent {
    client: Option<f64>,
    server: Option<f64>,
}

impl CpuMeter {
    fn start(server: Option<u32>) -> Self {
        Self {
            server,
            client_before: weir_harness::cpu_seconds(std::process::id(), false),
            server_before: server.and_then(weir_harness::tree_cpu_seconds),
        }
    }

    /// Lets the server reap the connections that just closed, then reads.
    async fn stop(self) -> CpuSpent {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let client = weir_harness::cpu_seconds(std::process::id(), false);
        let server = self.server.and_then(weir_harness::tree_cpu_seconds);
        CpuSpent {
            client: client.zip(self.client_before).map(|(after, before)| after - before),
            server: server.zip(self.server_before).map(|(after, before)| after - before),
        }
    }
}

/// CPU seconds, and microseconds per unit (event or row), of this process
/// and of PostgreSQL.
#[derive(Debug, Clone, Copy)]
struct CpuFigures {
    client_s: Option<f64>,
    client_us: Option<f64>,
    postgres_s: Option<f64>,
    postgres_us: Option<f64>,
}

impl CpuSpent {
    /// The figures, per `units` (events or rows).
    fn per(self, units: u64) -> CpuFigures {
        let per_unit = |s: f64| s * 1e6 / units.max(1) as f64;
        CpuFigures {
            client_s: self.client,
            client_us: self.client.map(per_unit),
            postgres_s: self.server,
            postgres_us: self.server.map(per_unit),
        }
    }
}

/// A product's counters (all `u64` fields) as the figures carry them.
fn counters(value: serde_json::Result<Value>) -> BTreeMap<String, u64> {
    match value {
        Ok(Value::Object(map)) => map.into_iter().filter_map(|(k, v)| Some((k, v.as_u64()?))).collect(),
        _ => BTreeMap::new(),
    }
}

fn common_params(params: &DatasyncParams, events: u64) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("events".into(), json!(events));
    map.insert("seed".into(), json!(params.seed));
    map.insert("segment_events".into(), json!(params.segment_events));
    map.insert("malformed_rate".into(), json!(params.malformed_rate));
    map.insert("repeat_rate".into(), json!(params.repeat_rate));
    map.insert(
        "faults".into(),
        serde_json::to_value(params.faults).unwrap_or(Value::Null),
    );
    map
}

fn run_variant(
    params: &DatasyncParams,
    runtime: &tokio::runtime::Runtime,
    url: &str,
    variant: &str,
    sink: SinkKind,
    events: u64,
    out: &Path,
) -> Result<ScenarioResult, crate::Error> {
    let dataset = Dataset {
        malformed_rate: params.malformed_rate,
        repeat_rate: params.repeat_rate,
        ..Dataset::new(params.seed, events)
    };
    let mut api_config = ApiConfig::new(dataset, DEFAULT_API_KEY);
    api_config.faults = params.faults;
    let server = ApiServer::start(api_config)?;
    let schema = format!("datasync_bench_{}", variant.replace('-', "_"));
    let mut config = JobConfig::new(server.url(), DEFAULT_API_KEY, url);
    config.schema = schema;
    config.segment_events = params.segment_events;
    config.sink = sink;
    config.progress = false;
    if variant == VARIANT_COPY_STAGING {
        config.fast_target = CopyTarget::Staging;
    }
    tracing::info!(variant, events, "datasync variant starting");

    let outcome = runtime.block_on(async {
        let db = Db::connect(&config.database_url, &config.schema).await?;
        db.drop_schema().await?;
        let meter = CpuMeter::start(postmaster_pid(&db).await);
        let rss = RssSampler::start(Duration::from_millis(50));
        let started = Instant::now();
        let ran = if variant == VARIANT_TWO_STAGE {
            let buffer = out.join(format!("datasync-buffer-{}.tsv", std::process::id()));
            if let Some(parent) = buffer.parent() {
                std::fs::create_dir_all(parent).map_err(io_error("creating the output directory"))?;
            }
            run_two_stage(&config, &buffer).await.map(|(report, stages)| {
                let figures = DatasyncRun {
                    stage_fetch_s: Some(stages.fetch_s),
                    stage_load_s: Some(stages.load_s),
                    ..DatasyncRun::default()
                };
                (report, figures)
            })
        } else {
            run_job(&config).await.map(|report| (report, DatasyncRun::default()))
        };
        let elapsed = started.elapsed();
        let rss = rss.stop();
        let cpu = meter.stop().await;
        let verified = match (&ran, params.verify) {
            (Ok(_), true) => Some(weir_datasync::verify(&db, &dataset).await?),
            _ => None,
        };
        let _ = db.drop_schema().await;
        Ok::<_, crate::Error>((ran, elapsed, rss, cpu, verified))
    });
    let counts = server.stop();
    let (ran, elapsed, rss, cpu, verified) = outcome?;

    let mut result = ScenarioResult::new("datasync", variant).with_transfer(counts.bytes_sent, elapsed);
    result.params = common_params(params, events);
    result.params.insert("sink".into(), json!(sink));
    result.rss = rss;
    let mut figures = match ran {
        Ok((report, stages)) => {
            let cpu = cpu.per(events);
            DatasyncRun {
                cpu_client_s: cpu.client_s,
                cpu_client_us_per_event: cpu.client_us,
                cpu_postgres_s: cpu.postgres_s,
                cpu_postgres_us_per_event: cpu.postgres_us,
                ..job_figures(&report, events, elapsed, stages)
            }
        }
        Err(error) => {
            result.outcome = format!("error: {error}");
            DatasyncRun::default()
        }
    };
    figures.api = counters(serde_json::to_value(counts));
    let checked = verified.is_some();
    if let Some(problem) = verified.flatten() {
        result.outcome = format!("error: {problem}");
    }
    figures.verified = checked && result.is_ok();
    result.set_figures(&figures);
    tracing::info!(
        variant,
        outcome = result.outcome,
        elapsed_s = result.elapsed_s,
        "datasync variant finished"
    );
    Ok(result)
}

/// The job report's figures, on top of `base` (a variant's own).
fn job_figures(report: &JobReport, events: u64, elapsed: Duration, base: DatasyncRun) -> DatasyncRun {
    let seconds = elapsed.as_secs_f64().max(f64::EPSILON);
    DatasyncRun {
        events_per_s: events as f64 / seconds,
        lines: report.lines,
        lines_per_s: report.lines as f64 / seconds,
        segments: report.segments,
        rows_inserted: report.rows_inserted,
        repeats_dropped: report.repeats_dropped,
        duplicates_skipped_by_postgres: report.rows_staged - report.rows_inserted,
        conflict_retries: report.conflict_retries,
        dead_letters: report.dead_letters,
        fetch: counters(serde_json::to_value(report.fetch)),
        ..base
    }
}

/// A `json` value sent as its text (what a `BinaryCopyInWriter` user writes).
#[derive(Debug)]
struct JsonText<'a>(&'a str);

impl ToSql for JsonText<'_> {
    fn to_sql(&self, _: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON
    }

    to_sql_checked!();
}

const ENCODING_TYPES: [Type; 4] = [Type::UUID, Type::TEXT, Type::TIMESTAMPTZ, Type::JSON];

/// Parses `lines` and COPYs them in frames of `frame` bytes; rolls back.
async fn copy_pre_encoded(db: &Db, lines: &[Vec<u8>], frame: usize) -> Result<Duration, crate::Error> {
    let client = db.client();
    client
        .batch_execute("BEGIN")
        .await
        .map_err(weir_datasync::pg::query("BEGIN"))?;
    let started = Instant::now();
    let sink = client
        .copy_in("COPY weir_staging (id, type, ts, payload) FROM STDIN (FORMAT binary)")
        .await
        .map_err(weir_datasync::pg::query("starting COPY"))?;
    let mut sink = Box::pin(sink);
    let mut buf = Vec::with_capacity(frame + 1024);
    buf.extend_from_slice(BINARY_COPY_HEADER);
    for line in lines {
        if let Ok(event) = parse_event(line) {
            encode_binary(&event, &mut buf);
        }
        if buf.len() >= frame {
            let full = std::mem::replace(&mut buf, Vec::with_capacity(frame + 1024));
            sink.send(Bytes::from(full))
                .await
                .map_err(weir_datasync::pg::query("COPY"))?;
        }
    }
    buf.extend_from_slice(BINARY_COPY_TRAILER);
    sink.send(Bytes::from(buf))
        .await
        .map_err(weir_datasync::pg::query("COPY"))?;
    sink.as_mut()
        .finish()
        .await
        .map_err(weir_datasync::pg::query("finishing COPY"))?;
    let elapsed = started.elapsed();
    client
        .batch_execute("ROLLBACK")
        .await
        .map_err(weir_datasync::pg::query("ROLLBACK"))?;
    Ok(elapsed)
}

/// The valid events of `lines` as binary COPY tuples, in frames of about
/// `frame` bytes (without the stream's header and trailer), as the job's
/// own parser frames them.
fn tuple_frames(lines: &[Vec<u8>], frame: usize) -> Result<Vec<Bytes>, crate::Error> {
    let mut parse = ParseEvents::new(RowFormat::BinaryCopy, frame, SharedTally::default());
    let mut frames = Vec::new();
    for line in lines {
        let chunk = Bytes::from([line.as_slice(), b"\n"].concat());
        parse.transform(chunk, &mut frames).map_err(encoding_error)?;
    }
    parse.finish(&mut frames).map_err(encoding_error)?;
    Ok(frames)
}

fn encoding_error(error: weir::BoxError) -> crate::Error {
    crate::Error::Io {
        context: "encoding rows for the COPY ceiling".to_owned(),
        source: std::io::Error::other(error),
    }
}

/// PostgreSQL's own rate on this machine: the pre-encoded `frames` COPYed
/// into an emptied `events` (its uuid primary key, its `json` payload) and
/// committed, from `connections` connections in parallel, each taking every
/// `connections`-th frame. No API and no parsing: no client loads this
/// table faster here.
async fn copy_ceiling(url: &str, schema: &str, frames: &[Bytes], connections: usize) -> Result<Duration, crate::Error> {
    let mut dbs = Vec::with_capacity(connections);
    for _ in 0..connections {
        dbs.push(Db::connect(url, schema).await?);
    }
    dbs[0]
        .client()
        .batch_execute("TRUNCATE events")
        .await
        .map_err(weir_datasync::pg::query("emptying events"))?;
    let started = Instant::now();
    let loads = dbs.iter().enumerate().map(|(first, db)| async move {
        let client = db.client();
        client
            .batch_execute("BEGIN")
            .await
            .map_err(weir_datasync::pg::query("BEGIN"))?;
        let sink = client
            .copy_in("COPY events (id, type, ts, payload) FROM STDIN (FORMAT binary)")
            .await
            .map_err(weir_datasync::pg::query("starting COPY"))?;
        let mut sink = Box::pin(sink);
        let header = std::iter::once(Bytes::from_static(BINARY_COPY_HEADER));
        let trailer = std::iter::once(Bytes::from_static(BINARY_COPY_TRAILER));
        let mine = frames.iter().skip(first).step_by(connections).cloned();
        for frame in header.chain(mine).chain(trailer) {
            sink.send(frame).await.map_err(weir_datasync::pg::query("COPY"))?;
        }
        sink.as_mut()
            .finish()
            .await
            .map_err(weir_datasync::pg::query("finishing COPY"))?;
        client
            .batch_execute("COMMIT")
            .await
            .map_err(weir_datasync::pg::query("COMMIT"))?;
        Ok::<_, crate::Error>(())
    });
    futures_util::future::try_join_all(loads).await?;
    Ok(started.elapsed())
}

/// Parses `lines` and COPYs them through `BinaryCopyInWriter`; rolls back.
async fn copy_typed(db: &Db, lines: &[Vec<u8>]) -> Result<Duration, crate::Error> {
    let client = db.client();
    client
        .batch_execute("BEGIN")
        .await
        .map_err(weir_datasync::pg::query("BEGIN"))?;
    let started = Instant::now();
    let sink = client
        .copy_in("COPY weir_staging (id, type, ts, payload) FROM STDIN (FORMAT binary)")
        .await
        .map_err(weir_datasync::pg::query("starting COPY"))?;
    let writer = BinaryCopyInWriter::new(sink, &ENCODING_TYPES);
    let mut writer = Box::pin(writer);
    for line in lines {
        if let Ok(event) = parse_event(line) {
            let unix_us = event.pg_micros + 946_684_800_000_000;
            let ts = UNIX_EPOCH + Duration::from_micros(u64::try_from(unix_us).unwrap_or(0));
            let kind: &str = &event.kind;
            let payload = JsonText(event.payload);
            let row: [&(dyn ToSql + Sync); 4] = [&event.id, &kind, &ts as &SystemTime, &payload];
            writer
                .as_mut()
                .write(&row)
                .await
                .map_err(weir_datasync::pg::query("COPY"))?;
        }
    }
    writer
        .as_mut()
        .finish()
        .await
        .map_err(weir_datasync::pg::query("finishing COPY"))?;
    let elapsed = started.elapsed();
    client
        .batch_execute("ROLLBACK")
        .await
        .map_err(weir_datasync::pg::query("ROLLBACK"))?;
    Ok(elapsed)
}

/// Pre-encoded frames vs `BinaryCopyInWriter`, each twice, alternating;
/// the better of each pair counts.
async fn run_encoding(params: &DatasyncParams, url: &str) -> ScenarioResult {
    let events = params.encoding_events.max(1);
    let mut result = ScenarioResult::new("datasync", VARIANT_ENCODING);
    result.params = common_params(params, events);
    let dataset = Dataset {
        malformed_rate: 0.0,
        ..Dataset::new(params.seed, events)
    };
    let lines: Vec<Vec<u8>> = (0..events).map(|i| dataset.event_line(i)).collect();
    let bytes: u64 = lines.iter().map(|l| l.len() as u64 + 1).sum();
    let measured = async {
        let db = Db::connect(url, "datasync_bench_encoding").await?;
        db.ensure_schema().await?;
        let mut pre = Duration::MAX;
        let mut typed = Duration::MAX;
        for _ in 0..2 {
            pre = pre.min(copy_pre_encoded(&db, &lines, 512 << 10).await?);
            typed = typed.min(copy_typed(&db, &lines).await?);
        }
        let frames = tuple_frames(&lines, 512 << 10)?;
        let mut ceiling = [Duration::MAX; 2];
        let mut ceiling_cpu = None;
        let server = postmaster_pid(&db).await;
        for _ in 0..2 {
            for (connections, best) in (1..).zip(ceiling.iter_mut()) {
                // The server's CPU per row does not depend on the
                // connections: the first run measures it.
                let meter = ceiling_cpu.is_none().then(|| CpuMeter::start(server));
                *best = (*best).min(copy_ceiling(url, db.schema(), &frames, connections).await?);
                if let Some(meter) = meter {
                    let server = meter.stop().await.server;
                    ceiling_cpu = Some(CpuSpent { client: None, server });
                }
            }
        }
        let _ = db.drop_schema().await;
        Ok::<_, crate::Error>((pre, typed, ceiling, ceiling_cpu))
    };
    match measured.await {
        Ok((pre, typed, ceiling, ceiling_cpu)) => {
            result = result.with_transfer(bytes, pre);
            let per_s = |d: Duration| events as f64 / d.as_secs_f64().max(f64::EPSILON);
            let cpu = ceiling_cpu.map(|cpu| cpu.per(events));
            let [one, two] = ceiling;
            result.set_figures(&DatasyncEncoding {
                pre_encoded_rows_per_s: per_s(pre),
                binary_copy_in_writer_rows_per_s: per_s(typed),
                pre_encoded_speedup: typed.as_secs_f64() / pre.as_secs_f64().max(f64::EPSILON),
                pg_copy_ceiling_cpu_client_s: cpu.and_then(|c| c.client_s),
                pg_copy_ceiling_cpu_client_us_per_event: cpu.and_then(|c| c.client_us),
                pg_copy_ceiling_cpu_postgres_s: cpu.and_then(|c| c.postgres_s),
                pg_copy_ceiling_cpu_postgres_us_per_event: cpu.and_then(|c| c.postgres_us),
                pg_copy_ceiling_rows_per_s_1conn: Some(per_s(one)),
                pg_copy_ceiling_rows_per_s_2conn: Some(per_s(two)),
                ..DatasyncEncoding::default()
            });
        }
        Err(error) => result.outcome = format!("error: {error}"),
    }
    result
}

/// Adds, to the `copy` result, its events/s over each baseline's, all
/// measured in this run; to every job result and the encoding comparison,
/// the CPU budget (at the measured CPU per event, this process plus
/// PostgreSQL, how many events/s this machine's cores allow at most,
/// against what 10x row-by-row would need); to the encoding comparison,
/// PostgreSQL's own ceiling over row-by-row.
fn add_ratios(results: &mut [ScenarioResult]) {
    let rate = |results: &[ScenarioResult], variant: &str| {
        results
            .iter()
            .find(|r| r.variant == variant && r.is_ok())
            .and_then(|r| r.figures::<DatasyncRun>())
            .map(|f| f.events_per_s)
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let bound = |client_us: Option<f64>, server_us: Option<f64>| {
        let per_event = server_us? + client_us.unwrap_or(0.0);
        (per_event > 0.0).then(|| cores * 1e6 / per_event)
    };
    let row_by_row = rate(results, VARIANT_ROW_BY_ROW);
    let copy = rate(results, VARIANT_COPY);
    let speedups: Vec<(&str, Option<f64>)> = [
        VARIANT_COPY_STAGING,
        VARIANT_TWO_STAGE,
        VARIANT_ROW_BY_ROW,
        VARIANT_ROW_BY_ROW_AUTOCOMMIT,
    ]
    .iter()
    .map(|v| (*v, copy.zip(rate(results, v)).map(|(copy, other)| copy / other)))
    .collect();
    let speedup = |variant: &str| speedups.iter().find(|(v, _)| *v == variant).and_then(|(_, x)| *x);
    // The jetstream variants carry their own figures (`DatasyncScale`).
    for result in results
        .iter_mut()
        .filter(|r| r.is_ok() && !r.variant.starts_with("jetstream-"))
    {
        let ten_times = row_by_row.map(|r| 10.0 * r);
        if result.variant == VARIANT_ENCODING {
            let Some(mut f) = result.figures::<DatasyncEncoding>() else {
                continue;
            };
            f.pg_copy_ceiling_cpu_bound_rows_per_s = bound(
                f.pg_copy_ceiling_cpu_client_us_per_event,
                f.pg_copy_ceiling_cpu_postgres_us_per_event,
            );
            f.ten_times_row_by_row_events_per_s = ten_times;
            // PostgreSQL's own ceiling over row-by-row: the most any client
            // could be faster than row-by-row here.
            let ceiling = [f.pg_copy_ceiling_rows_per_s_1conn, f.pg_copy_ceiling_rows_per_s_2conn]
                .into_iter()
                .flatten()
                .fold(0.0, f64::max);
            if let Some(row_by_row) = row_by_row.filter(|_| ceiling > 0.0) {
                f.pg_copy_ceiling_vs_row_by_row = Some(ceiling / row_by_row);
            }
            result.set_figures(&f);
        } else if let Some(mut f) = result.figures::<DatasyncRun>() {
            f.cpu_bound_events_per_s = bound(f.cpu_client_us_per_event, f.cpu_postgres_us_per_event);
            f.ten_times_row_by_row_events_per_s = ten_times;
            if result.variant == VARIANT_COPY {
                f.speedup_vs_copy_staging = speedup(VARIANT_COPY_STAGING);
                f.speedup_vs_two_stage_tsv = speedup(VARIANT_TWO_STAGE);
                f.speedup_vs_row_by_row = speedup(VARIANT_ROW_BY_ROW);
                f.speedup_vs_row_by_row_autocommit = speedup(VARIANT_ROW_BY_ROW_AUTOCOMMIT);
            }
            result.set_figures(&f);
        }
    }
}
