//! The ingestion job: segment after segment, one `weir::ingest` each (the
//! API as the source, `ParseEvents` as the transform, a PostgreSQL sink that
//! commits the rows with the API position), resuming from the committed
//! position after any stop, a SIGKILL included.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use futures_util::stream::FuturesOrdered;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::sync::oneshot;
use weir::IngestOptions;

use crate::client::{ApiClient, FetchCounts, Resume, RetryPolicy};
use crate::parse::{DedupWindow, ParseEvents, RowFormat};
use crate::pg::{Db, DbError};
use crate::sink::{CopyFormat, CopyTarget, PgCopySink, RowByRowSink, Segment, Turn};
use crate::source::ApiSource;

/// How the rows reach PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SinkKind {
    /// Binary COPY: a run's first segment through a staging table and
    /// `INSERT ... ON CONFLICT DO NOTHING`, later ones straight into
    /// `events` (a segment that meets a stored id is redone through staging).
    Copy,
    /// One `INSERT` per event in the segment's transaction (the baseline).
    RowByRow,
    /// One autocommitted `INSERT` per event, then the position (the naive
    /// baseline: at-least-once, idempotent).
    RowByRowAutocommit,
}

/// Everything the job needs.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// `http://host:port` of the API.
    pub api_url: String,
    /// The API key.
    pub api_key: String,
    /// PostgreSQL.
    pub database_url: String,
    /// The schema holding the job's tables.
    pub schema: String,
    /// The job's name in `ingest_state` (one position per name).
    pub job: String,
    /// Event lines per segment (one transaction each).
    pub segment_events: u64,
    /// How rows reach PostgreSQL.
    pub sink: SinkKind,
    /// Retries.
    pub retry: RetryPolicy,
    /// Write the stored ids to this file at the end.
    pub export_ids: Option<PathBuf>,
    /// Draw a progress bar (only ever on a terminal).
    pub progress: bool,
    /// Largest chunk between the stages.
    pub chunk_size: usize,
    /// Size of the row frames the transform emits.
    pub frame_bytes: usize,
    /// Sink writes in flight.
    pub max_in_flight: usize,
    /// Segments in flight (COPY sink only): with 2, a segment reads and
    /// COPYs while the previous one moves its rows and commits.
    pub pipeline_depth: usize,
    /// Where segments after the first COPY to (COPY sink only):
    /// [`CopyTarget::Events`] directly (repeats dropped upstream; a segment
    /// that still hits a stored id is redone through staging), or always
    /// [`CopyTarget::Staging`]. The first segment of a run always goes
    /// through staging: it may meet repeats of what a killed run committed.
    pub fast_target: CopyTarget,
    /// Where a job with no committed position starts (`None`: the log's
    /// start): a range of the log, as a work item of the distributed job.
    pub start: Option<Resume>,
    /// Where its range ends: Unix ms of the first event it need not read
    /// (`None`: the log's end). See [`Checkpoint::ends`](crate::protocol::Checkpoint::ends).
    pub until_ms: Option<u64>,
}

impl JobConfig {
    /// Where a ranged job's range starts (Unix ms): the time of
    /// [`start`](Self::start), when it is given as one.
    pub fn since_ms(&self) -> Option<u64> {
        self.start
            .as_ref()
            .filter(|start| start.cursor.is_none())
            .and_then(|start| start.watermark.as_deref())
            .and_then(crate::dataset::parse_ms)
    }

    /// The defaults: schema `datasync`, job `default`, segments of 100,000
    /// events, binary COPY, 1 MiB chunks and 512 KiB frames, 8 writes in
    /// flight, 2 segments in flight, a progress bar on a terminal.
    pub fn new(api_url: impl Into<String>, api_key: impl Into<String>, database_url: impl Into<String>) -> Self {
        Self {
            api_url: api_url.into(),
            api_key: api_key.into(),
            database_url: database_url.into(),
            schema: "datasync".to_owned(),
            job: "default".to_owned(),
            segment_events: 100_000,
            sink: SinkKind::Copy,
            retry: RetryPolicy::default(),
            export_ids: None,
            progress: true,
            chunk_size: 1 << 20,
            frame_bytes: 512 << 10,
            max_in_flight: 8,
            pipeline_depth: 2,
            fast_target: CopyTarget::Events,
            start: None,
            until_ms: None,
        }
    }
}

/// What a job run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobReport {
    /// This run started from a committed position (a restart).
    pub resumed: bool,
    /// The log has been read to its end and committed.
    pub done: bool,
    /// Segments committed by this run.
    pub segments: u64,
    /// Event lines read (repeats and malformed lines included).
    pub lines: u64,
    /// Rows handed to PostgreSQL (repeats included).
    pub rows_staged: u64,
    /// Rows inserted (repeats excluded).
    pub rows_inserted: u64,
    /// Repeats dropped before PostgreSQL (by id, within the dedup window).
    pub repeats_dropped: u64,
    /// Segments redone through staging after a direct COPY met a stored id.
    pub conflict_retries: u64,
    /// Dead letters inserted.
    pub dead_letters: u64,
    /// Wall time of this run, seconds.
    pub elapsed_s: f64,
    /// The client's counters.
    pub fetch: FetchCounts,
    /// Ids written by `--export-ids`.
    pub exported_ids: Option<u64>,
}

impl JobReport {
    /// Event lines per second over the run.
    pub fn events_per_s(&self) -> f64 {
        if self.elapsed_s > 0.0 {
            self.lines as f64 / self.elapsed_s
        } else {
            0.0
        }
    }
}

fn progress_bar(enabled: bool) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} events ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Runs the job until the API's log is committed to its end.
///
/// # Errors
///
/// An unreachable database (with the advice to run `just pg-up`), an API
/// that keeps failing past the retries or rejects the key, a failed
/// segment (rolled back; a rerun resumes before it), or a failed export.
///
/// # Cancel safety
///
/// Cancel safe for the data: a dropped run leaves the last committed
/// segment as the position, like a crash.
pub async fn run_job(config: &JobConfig) -> Result<JobReport, crate::Error> {
    if config.segment_events == 0 || config.frame_bytes == 0 {
        return Err(crate::Error::Config(
            "segment_events and frame_bytes must be at least 1".to_owned(),
        ));
    }
    let started = Instant::now();
    let db = Db::connect(&config.database_url, &config.schema).await?;
    db.ensure_schema().await?;
    let state = db.load_state(&config.job).await?;
    let client = ApiClient::new(&config.api_url, config.api_key.clone(), config.retry)?;
    let mut report = JobReport {
        resumed: state.resume.cursor.is_some() || state.done,
        done: state.done,
        ..JobReport::default()
    };
    tracing::info!(
        job = config.job,
        schema = config.schema,
        resumed = report.resumed,
        segments_before = state.segments,
        rows_before = state.rows_inserted,
        "job starting"
    );
    let bar = progress_bar(config.progress);
    // Segment k+1 reads, parses and COPYs while segment k finishes its COPY
    // and commits: one connection per segment in flight, commits in order.
    let depth = match config.sink {
        SinkKind::Copy => config.pipeline_depth.max(1),
        SinkKind::RowByRow | SinkKind::RowByRowAutocommit => 1,
    };
    let mut connections = vec![db];
    for _ in 1..depth {
        let extra = Db::connect(&config.database_url, &config.schema).await?;
        extra.ensure_schema().await?;
        connections.push(extra);
    }
    let window = Arc::new(DedupWindow::new(depth + 2));
    let mut committed = match &config.start {
        Some(start) if state.resume == Resume::default() && !state.done => start.clone(),
        _ => state.resume,
    };
    let mut running = FuturesOrdered::new();
    let mut next: Option<(Resume, CopyTarget)> = (!report.done).then(|| (committed.clone(), CopyTarget::Staging));
    let mut prev_turn: Option<oneshot::Receiver<()>> = None;
    let mut parsing: Option<Segment> = None;
    let mut failure: Option<crate::Error> = None;
    let mut started_segments = 0usize;
    loop {
        if failure.is_none()
            && running.len() < depth
            && let Some((resume, target)) = next.take()
        {
            let segment = Segment::new(&config.job).until(config.until_ms);
            let (release, after) = oneshot::channel();
            let turn = match prev_turn.replace(after) {
                Some(prev) => Turn::after(prev, release),
                None => Turn::first(release),
            };
            // A staging segment (the first of a run, or a redo) is kept
            // short: it is the slow path.
            let lines = match target {
                CopyTarget::Staging if config.fast_target == CopyTarget::Events => {
                    config.segment_events.min(FIRST_SEGMENT_EVENTS)
                }
                _ => config.segment_events,
            };
            let plan = SegmentPlan {
                resume,
                target,
                lines,
                turn,
                window: Arc::clone(&window),
            };
            let db = &connections[started_segments % depth];
            started_segments += 1;
            parsing = Some(segment.clone());
            let client = &client;
            running.push_back(async move {
                let started = Instant::now();
                let result = committed_segment(config, db, client, &segment, plan).await;
                (segment, target, started, result)
            });
            continue;
        }
        if running.is_empty() {
            if failure.is_none() && next.is_some() {
                continue;
            }
            break;
        }
        let end = parsing.as_ref().map(|s| Arc::clone(&s.end));
        tokio::select! {
            Some((segment, target, segment_started, result)) = running.next() => {
                match result {
                    Ok(()) => {}
                    Err(error) if target == CopyTarget::Events && failure.is_none() && is_unique_violation(&error) => {
                        // A repeat the window did not know: redo this
                        // segment (and drop any started after it) through
                        // the staging table.
                        report.conflict_retries += 1;
                        tracing::info!(%error, "an id was already stored; retrying the segment through staging");
                        window.clear();
                        parsing = None;
                        prev_turn = None;
                        next = Some((committed.clone(), CopyTarget::Staging));
                        drain_failed(&mut running).await;
                        continue;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "segment failed and was rolled back");
                        failure.get_or_insert(error);
                        next = None;
                        continue;
                    }
                }
                let progress = segment.progress.lock().map(|p| p.clone()).unwrap_or_default();
                let Some(checkpoint) = progress.checkpoint else {
                    failure.get_or_insert(DbError::NoCheckpoint.into());
                    continue;
                };
                let tally = segment.committed().unwrap_or_default();
                let repeats = segment.tally.lock().map_or(0, |t| t.repeats_dropped);
                committed = Resume {
                    cursor: Some(checkpoint.next_cursor.clone()),
                    watermark: checkpoint.watermark.clone(),
                };
                report.done = checkpoint.ends(config.until_ms);
                report.segments += 1;
                report.lines += progress.lines;
                report.rows_staged += tally.rows_staged;
                report.rows_inserted += tally.rows_inserted;
                report.repeats_dropped += repeats;
                report.dead_letters += tally.dead_letters;
                let elapsed = started.elapsed().as_secs_f64();
                let fetch = client.stats().snapshot();
                tracing::info!(
                    segment = report.segments,
                    target = ?target,
                    lines = progress.lines,
                    rows_inserted = tally.rows_inserted,
                    duplicates = repeats + tally.rows_staged - tally.rows_inserted,
                    dead_letters = tally.dead_letters,
                    lag_events = checkpoint.remaining,
                    segment_s = segment_started.elapsed().as_secs_f64(),
                    events_per_s = (report.lines as f64 / elapsed).round(),
                    retries_total = fetch.retries,
                    rate_limited_total = fetch.rate_limited,
                    "segment committed"
                );
                bar.set_length(report.lines + checkpoint.remaining);
                bar.set_position(report.lines);
            }
            () = async { if let Some(end) = &end { end.notified().await } }, if end.is_some() && next.is_none() && failure.is_none() => {
                // The segment being parsed is parsed to its last checkpoint:
                // the next one may start reading from there.
                let checkpoint = parsing.take().and_then(|s| s.progress.lock().ok().and_then(|p| p.checkpoint.clone()));
                if let Some(checkpoint) = checkpoint.filter(|c| !c.ends(config.until_ms)) {
                    let resume = Resume {
                        cursor: Some(checkpoint.next_cursor),
                        watermark: checkpoint.watermark,
                    };
                    next = Some((resume, config.fast_target));
                }
            }
        }
    }
    if let Some(error) = failure {
        return Err(error);
    }
    let db = &connections[0];
    bar.finish_and_clear();
    if let Some(path) = &config.export_ids {
        let exported = db.export_ids(path).await?;
        tracing::info!(path = %path.display(), ids = exported, "ids exported");
        report.exported_ids = Some(exported);
    }
    report.elapsed_s = started.elapsed().as_secs_f64();
    report.fetch = client.stats().snapshot();
    tracing::info!(
        segments = report.segments,
        lines = report.lines,
        rows_inserted = report.rows_inserted,
        dead_letters = report.dead_letters,
        elapsed_s = report.elapsed_s,
        events_per_s = report.events_per_s().round(),
        retries_total = report.fetch.retries,
        "job finished"
    );
    Ok(report)
}

/// Event lines of a segment that goes through staging while later ones go
/// straight into `events`.
const FIRST_SEGMENT_EVENTS: u64 = 10_000;

/// How one segment runs.
struct SegmentPlan {
    resume: Resume,
    target: CopyTarget,
    /// Event lines to read.
    lines: u64,
    turn: Turn,
    window: Arc<DedupWindow>,
}

/// Waits for the segments still in flight after a failure (each fails on
/// its turn and rolls back).
async fn drain_failed<F: std::future::Future>(running: &mut FuturesOrdered<F>) {
    while running.next().await.is_some() {}
}

/// `true` when a unique index refused a row somewhere in `error`'s chain.
pub fn is_unique_violation(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(pg) = error.downcast_ref::<tokio_postgres::Error>()
            && pg.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
        {
            return true;
        }
        current = error.source();
    }
    false
}

/// Runs one segment through weir into one transaction.
async fn committed_segment(
    config: &JobConfig,
    db: &Db,
    client: &ApiClient,
    segment: &Segment,
    plan: SegmentPlan,
) -> Result<(), crate::Error> {
    let source = ApiSource::new(client, plan.resume, plan.lines, Arc::clone(&segment.progress)).until(config.until_ms);
    let parse = ParseEvents::new(RowFormat::BinaryCopy, config.frame_bytes, Arc::clone(&segment.tally))
        .dedup(plan.window)
        .notify_end(Arc::clone(&segment.end))
        .within(config.since_ms(), config.until_ms);
    let options = IngestOptions::builder()
        .chunk_size(config.chunk_size)
        .max_in_flight(config.max_in_flight)
        .transform(parse)
        .build();
    let client = Arc::clone(db.client());
    match config.sink {
        SinkKind::Copy => {
            let sink = PgCopySink::begin(client, segment.clone(), CopyFormat::Binary, plan.target, plan.turn).await?;
            weir::ingest(source.into_stream(), sink, options).await?;
        }
        SinkKind::RowByRow | SinkKind::RowByRowAutocommit => {
            let autocommit = config.sink == SinkKind::RowByRowAutocommit;
            let sink = RowByRowSink::begin(client, segment.clone(), plan.turn, autocommit).await?;
            weir::ingest(source.into_stream(), sink, options).await?;
        }
    }
    Ok(())
}
