//! The rows phase: a PostgreSQL table streamed as CSV to a client
//! reading at a fixed rate (server RSS growth, every row received), then a
//! hang-up mid-stream and the time until the query is gone from
//! `pg_stat_activity`. weir servers only; the database is `DATABASE_URL`
//! or `.pg/env` (`just pg-up`).

use std::path::Path;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Empty};
use serde_json::json;
use tokio_postgres::NoTls;
use weir_harness::ScenarioResult;
use weir_harness::figures::delivery::DeliveryRows;
use weir_http::client::Client;

use crate::error::Error;
use crate::process::{ProcRssSampler, ProcStats, RunningServer};
use crate::serve::ServerKind;
use crate::{DeliveryParams, Phase, Scraped, isolation, result, settle_fds};

/// The scenario's schema in the database; its table is named for its row
/// count (`events_<rows>`), so that runs of different profiles neither
/// replace each other's table nor count each other's queries.
const SCHEMA: &str = "weir_delivery_rows";

fn table(rows: u64) -> String {
    format!("{SCHEMA}.events_{rows}")
}

fn database(error: impl std::fmt::Display) -> Error {
    Error::Config(format!("the rows phase needs PostgreSQL (`just pg-up`): {error}"))
}

/// The database URL: `DATABASE_URL`, else `.pg/env` above the working
/// directory.
fn database_url() -> Result<String, Error> {
    let here = std::env::current_dir().map_err(database)?;
    weir_datasync::pg::database_url(&here).map_err(database)
}

/// Creates the table of `rows` rows, unless it is there with that many.
async fn prepare(db: &tokio_postgres::Client, rows: u64) -> Result<(), Error> {
    let table = table(rows);
    let have = db
        .query_one(
            &format!("SELECT count(*) FROM pg_tables WHERE schemaname = '{SCHEMA}' AND tablename = 'events_{rows}'"),
            &[],
        )
        .await
        .map_err(database)?
        .get::<_, i64>(0);
    if have == 1 {
        let count: i64 = db
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .map_err(database)?
            .get(0);
        if u64::try_from(count).ok() == Some(rows) {
            return Ok(());
        }
    }
    db.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {SCHEMA}; DROP TABLE IF EXISTS {table}; \
         CREATE TABLE {table} AS SELECT g AS id, md5(g::text) AS digest, g % 97 AS kind \
         FROM generate_series(1, {rows}) g;"
    ))
    .await
    .map_err(database)
}

/// Creates the phase's table ahead of [`run`] (which then finds it there),
/// so that the table's load is over before a phase that runs beside this
/// one starts measuring.
pub(crate) async fn prepare_table(params: &DeliveryParams) -> Result<(), Error> {
    let (db, connection) = tokio_postgres::connect(&database_url()?, NoTls)
        .await
        .map_err(database)?;
    let driver = tokio::spawn(connection);
    let prepared = prepare(&db, params.rows).await;
    drop(db);
    driver.abort();
    prepared
}

/// Runs the phase against a fresh `kind` server.
pub(crate) async fn run(params: &DeliveryParams, dir: &Path, kind: ServerKind) -> Result<ScenarioResult, Error> {
    let url = database_url()?;
    let (db, connection) = tokio_postgres::connect(&url, NoTls).await.map_err(database)?;
    let driver = tokio::spawn(connection);
    prepare(&db, params.rows).await?;
    let mut options = crate::options(params, dir, kind);
    options.rows_url = Some(url);
    let table = table(params.rows);
    options.rows_tables = vec![table.clone()];
    let server = RunningServer::start(&params.launch, &options, 2)?;
    let stats = ProcStats::new(server.pid());
    // CSV (COPY's own format) rather than NDJSON: a third fewer bytes per
    // row, so the phase's fixed client rate delivers the same rows sooner.
    let path = format!("/rows/{table}.csv");
    // Warm-up: the first bytes of a stream, so threads exist.
    crate::download(server.addr, &path, None, Some(64 << 10), None).await?;
    settle_fds(stats, None).await;
    let sampler = ProcRssSampler::start(stats, params.sample_every)?;
    let cpu_before = stats.cpu_seconds();
    let started = Instant::now();
    let (received, bytes) = read_lines(server.addr, &path, params.rows_rate).await?;
    let elapsed = started.elapsed();
    let cpu = stats.cpu_seconds() - cpu_before;
    let rss = sampler.stop();

    // The hang-up: hold a stream, let go, and watch the query end.
    let mut client = Client::connect(server.addr).await?;
    let request = http::Request::get(&path)
        .body(Empty::new())
        .map_err(|e| Error::scenario("building a request", e))?;
    let mut body = client.send(request).await?.into_body();
    let _ = body.frame().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let running = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'weir-http rows' AND state <> 'idle' \
         AND query LIKE '%events_{}\"%'",
        params.rows
    );
    drop(body);
    drop(client);
    let hung_up = Instant::now();
    let mut ended_ms = 60_000.0;
    while hung_up.elapsed() < Duration::from_secs(60) {
        let count: i64 = db.query_one(&running, &[]).await.map_err(database)?.get(0);
        if count == 0 {
            ended_ms = hung_up.elapsed().as_secs_f64() * 1e3;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let lag = Scraped::from(server.addr).await?.lag();
    server.stop();
    drop(db);
    driver.abort();

    let mut result = result(params, Phase::Rows, kind).with_transfer(bytes, elapsed);
    result.params.insert("rows".into(), json!(params.rows));
    result.params.insert("rows_rate".into(), json!(params.rows_rate));
    let (baseline, peak) = (rss.baseline_bytes, rss.peak_bytes);
    result.rss = rss;
    result.set_figures(&DeliveryRows {
        server_isolation: isolation(params, kind).to_owned(),
        rows: params.rows,
        rows_received: received,
        all_rows: received == params.rows,
        body_bytes: bytes,
        client_rate_bps: params.rows_rate,
        server_baseline_rss_bytes: baseline,
        server_peak_rss_bytes: peak,
        rss_growth_bytes: peak.saturating_sub(baseline),
        server_cpu_s: cpu,
        elapsed_s: elapsed.as_secs_f64(),
        query_end_after_hangup_ms: ended_ms,
        server_lag: lag,
    });
    if received != params.rows {
        result.outcome = format!("received {received} of {} rows", params.rows);
    }
    Ok(result)
}

/// Reads the whole CSV body at `rate` bytes per second; returns the rows
/// (lines after the header line) and the bytes.
async fn read_lines(addr: std::net::SocketAddr, path: &str, rate: u64) -> Result<(u64, u64), Error> {
    let mut client = Client::connect(addr).await?;
    let request = http::Request::get(path)
        .body(Empty::new())
        .map_err(|e| Error::scenario("building a request", e))?;
    let response = client.send(request).await?;
    if response.status() != 200 {
        return Err(Error::check(format!("GET {path}: {}", response.status())));
    }
    let mut body = response.into_body();
    let started = Instant::now();
    let (mut lines, mut bytes) = (0u64, 0u64);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::scenario("reading rows", e))?;
        let Ok(data) = frame.into_data() else { continue };
        bytes += data.len() as u64;
        lines += data.iter().filter(|&&b| b == b'\n').count() as u64;
        let due = started + Duration::from_secs_f64(bytes as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
    }
    Ok((lines.saturating_sub(1), bytes))
}
