//! The seed document's two-stage design, as a baseline: read the whole log
//! into a TSV buffer file (stage 1), then COPY the file into PostgreSQL in
//! one transaction (stage 2). Both stages run through weir; nothing is
//! committed until the very end, so a crash restarts from scratch.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use weir::IngestOptions;

use weir_datasync::client::ApiClient;
use weir_datasync::job::{JobConfig, JobReport};
use weir_datasync::parse::{ParseEvents, RowFormat};
use weir_datasync::pg::{Db, DbError};
use weir_datasync::sink::{CopyFormat, CopyTarget, PgCopySink, Segment, Turn};
use weir_datasync::source::ApiSource;

/// Timings of the two stages.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimes {
    /// API to TSV file, seconds.
    pub fetch_s: f64,
    /// TSV file to PostgreSQL, seconds.
    pub load_s: f64,
}

/// Runs both stages with `buffer` as the TSV file (removed at the end).
///
/// # Errors
///
/// As [`run_job`](crate::run_job); a failure in either stage commits nothing.
pub async fn run_two_stage(config: &JobConfig, buffer: &Path) -> Result<(JobReport, StageTimes), crate::Error> {
    let started = Instant::now();
    let db = Db::connect(&config.database_url, &config.schema).await?;
    db.ensure_schema().await?;
    let state = db.load_state(&config.job).await?;
    let client = ApiClient::new(&config.api_url, config.api_key.clone(), config.retry)?;
    let segment = Segment::new(&config.job);

    // Stage 1: the whole log into the buffer file.
    let source = ApiSource::new(&client, state.resume, u64::MAX, Arc::clone(&segment.progress));
    let parse = ParseEvents::new(RowFormat::Tsv, config.frame_bytes, Arc::clone(&segment.tally));
    let file = weir::FileSink::create(buffer).map_err(|source| crate::Error::Io {
        context: format!("creating {}", buffer.display()),
        source,
    })?;
    let options = IngestOptions::builder()
        .chunk_size(config.chunk_size)
        .max_in_flight(config.max_in_flight)
        .transform(parse)
        .build();
    weir::ingest(source.into_stream(), file, options).await?;
    let fetch_s = started.elapsed().as_secs_f64();

    // Stage 2: the file into PostgreSQL, one transaction.
    let load_started = Instant::now();
    let reader = weir::source::FileSource::open(buffer, config.chunk_size).map_err(|source| crate::Error::Io {
        context: format!("opening {}", buffer.display()),
        source,
    })?;
    let sink = PgCopySink::begin(
        Arc::clone(db.client()),
        segment.clone(),
        CopyFormat::Text,
        CopyTarget::Staging,
        Turn::default(),
    )
    .await?;
    let options = IngestOptions::builder().chunk_size(config.chunk_size).build();
    let loaded = weir::ingest(reader, sink, options).await;
    let _ = std::fs::remove_file(buffer);
    loaded?;
    let load_s = load_started.elapsed().as_secs_f64();

    let progress = segment.progress.lock().map(|p| p.clone()).unwrap_or_default();
    let checkpoint = progress.checkpoint.ok_or(DbError::NoCheckpoint)?;
    let tally = segment.committed().unwrap_or_default();
    let report = JobReport {
        resumed: false,
        done: checkpoint.remaining == 0,
        segments: 1,
        lines: progress.lines,
        rows_staged: tally.rows_staged,
        rows_inserted: tally.rows_inserted,
        dead_letters: tally.dead_letters,
        repeats_dropped: 0,
        conflict_retries: 0,
        elapsed_s: started.elapsed().as_secs_f64(),
        fetch: client.stats().snapshot(),
        exported_ids: None,
    };
    tracing::info!(fetch_s, load_s, lines = report.lines, "two-stage load finished");
    Ok((report, StageTimes { fetch_s, load_s }))
}
