//! DataSync over NATS JetStream, for when one machine is not enough: a
//! planner splits the API's log into time ranges, published as work items
//! onto a replicated work-queue stream; any number of workers (processes,
//! on any machine) take one item at a time and run the exactly-once job
//! ([`run_job`]) over its range; an item is acked only after its job
//! committed to the range's end.
//!
//! Exactly once, item by item:
//! - Each item is a job of its own name (`<job>/<since_ms>`): rows, dead
//!   letters and the item's position commit in one transaction per segment,
//!   so a worker killed mid-item leaves the item's last committed segment,
//!   and whoever takes the item next resumes there.
//! - Ranges touch: a job reads past its range's end to the next checkpoint
//!   (timestamps only rise with the position), and the overlap lands on the
//!   `events` primary key and the dead letters' digest, idempotently.
//! - A redelivered item that was committed (the worker died between commit
//!   and ack) finds its position done and is acked with no new rows.
//! - Re-planning publishes the same message ids (`Nats-Msg-Id` is the item's
//!   job name): inside the stream's duplicate window nothing is queued twice.
//! - A malformed work item is acked and counted (`malformed_items`), never
//!   redelivered forever: it names no events, so nothing is lost.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::stream::{Config as StreamConfig, RetentionPolicy, Stream};
use async_nats::jetstream::{self, Context};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use weir::{BoxError, Cause, IngestOptions, Sink};
use weir_jetstream::{Batch, BatchLimits, PublishSink};

use crate::client::{ApiClient, Resume};
use crate::dataset::{format_ms, parse_ms};
use crate::job::{JobConfig, run_job};

/// One range of the log, the unit a worker takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItem {
    /// The item's job name: its position in `ingest_state`, and its message
    /// id on the queue.
    pub job: String,
    /// The range starts at the first event at or after this (Unix ms).
    pub since_ms: u64,
    /// The range ends before the first event at or after this (`None`: the
    /// log's end).
    pub until_ms: Option<u64>,
}

/// The subject the work items of queue `stream` are published on.
pub fn item_subject(stream: &str) -> String {
    format!("{stream}.items")
}

/// The work-queue stream `name` (created when missing): items are removed
/// once acked, replicated on `replicas` nodes, de-duplicated by message id
/// for ten minutes.
///
/// # Errors
///
/// The server kept refusing the stream for 10 s (for example more replicas
/// than nodes).
pub async fn ensure_queue(js: &Context, name: &str, replicas: usize) -> Result<Stream, crate::Error> {
    let config = StreamConfig {
        name: name.to_owned(),
        subjects: vec![item_subject(name)],
        retention: RetentionPolicy::WorkQueue,
        num_replicas: replicas.max(1),
        duplicate_window: Duration::from_secs(600),
        ..Default::default()
    };
    // A node that just (re)joined is not yet a placement peer ("no suitable
    // peers for placement"): ask again for a few seconds.
    let mut attempt = 0;
    loop {
        match js.get_or_create_stream(config.clone()).await {
            Ok(stream) => return Ok(stream),
            Err(error) if attempt < 20 => {
                attempt += 1;
                tracing::warn!(%error, attempt, "creating the work queue failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => {
                return Err(crate::Error::Queue(format!(
                    "creating the work queue `{name}`: {error}"
                )));
            }
        }
    }
}

/// Splits the API's log into `items` time ranges of equal width, the last
/// one open (it ends at the log's end, wherever that is by then). The log's
/// extent is found with `since` queries of one event each (a binary search
/// for the last event's time, to a thousandth of an item's width), so
/// planning reads a couple of dozen events, not the log. The same log and `items` always give the same plan.
///
/// # Errors
///
/// The API failed past its retries; `items` is zero.
pub async fn plan(client: &ApiClient, job: &str, items: u64) -> Result<Vec<WorkItem>, crate::Error> {
    if items == 0 {
        return Err(crate::Error::Config("a plan needs at least one work item".to_owned()));
    }
    let Some(first) = first_event_ms(client, None).await? else {
        // An empty log: one open item that picks up whatever comes.
        return Ok(vec![item(job, 0, None)]);
    };
    // The last event's time: the largest `t` whose `since t` still finds
    // an event. Grow the bound, then halve the gap.
    let (mut low, mut step) = (first, 1_000u64);
    while first_event_ms(client, Some(low + step)).await?.is_some() {
        low += step;
        step = step.saturating_mul(2);
    }
    let mut high = low + step;
    // The boundaries only need to split the log evenly, and the last range
    // is open: a resolution of a thousandth of an item's width will do.
    let resolution = ((low - first) / items / 1_000).max(1);
    while high - low > resolution {
        let mid = low + (high - low) / 2;
        if first_event_ms(client, Some(mid)).await?.is_some() {
            low = mid;
        } else {
            high = mid;
        }
    }
    let last = low;
    let width = ((last - first) / items).max(1);
    Ok((0..items)
        .map(|i| {
            let since = if i == 0 { 0 } else { first + i * width };
            let until = (i + 1 < items).then(|| first + (i + 1) * width);
            item(job, since, until)
        })
        .collect())
}

fn item(job: &str, since_ms: u64, until_ms: Option<u64>) -> WorkItem {
    WorkItem {
        job: format!("{job}/{since_ms}"),
        since_ms,
        until_ms,
    }
}

/// The time of the first event at or after `since_ms` (`None`: the log's
/// start), or `None` when there is none.
async fn first_event_ms(client: &ApiClient, since_ms: Option<u64>) -> Result<Option<u64>, crate::Error> {
    let resume = Resume {
        cursor: None,
        watermark: since_ms.map(format_ms),
    };
    let page = client.page(&resume, 1).await?;
    // A one-event page's watermark is that event's time.
    Ok(if page.data.is_empty() {
        None
    } else {
        page.watermark.as_deref().and_then(parse_ms)
    })
}

/// What publishing a plan did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PlanReport {
    /// Items queued.
    pub queued: u64,
    /// Items the queue already had (the same message id inside its
    /// duplicate window): a re-plan queues nothing twice.
    pub already_queued: u64,
}

/// Publishes `items` onto the queue `stream`, each with its job name as
/// `Nats-Msg-Id`, through [`PublishSink`] (one ingestion: every item or a
/// clear error; a retry queues each item once).
///
/// # Errors
///
/// The queue refused a publish.
pub async fn publish_plan(js: &Context, stream: &str, items: &[WorkItem]) -> Result<PlanReport, crate::Error> {
    let mut report = PlanReport::default();
    for item in items {
        // One message per item, its id the item's name.
        let sink = PublishSink::new(js.clone(), item_subject(stream), item.job.clone());
        let counts = sink.counts();
        let payload = Bytes::from(serde_json::to_vec(item).map_err(|e| crate::Error::Config(e.to_string()))?);
        let options = IngestOptions::builder().chunk_size(payload.len().max(1)).build();
        weir::ingest(futures_util::stream::iter([Ok(payload)]), sink, options).await?;
        report.queued += counts.stored.load(std::sync::atomic::Ordering::Relaxed);
        report.already_queued += counts.duplicates.load(std::sync::atomic::Ordering::Relaxed);
    }
    Ok(report)
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The job every item runs (API, database, schema, segment size); each
    /// item gets its own name, start and end.
    pub job: JobConfig,
    /// The work-queue stream.
    pub stream: String,
    /// The durable consumer every worker shares.
    pub consumer: String,
    /// How long an item may go without an ack or an "in progress" signal
    /// before the server gives it to another worker (a dead or stopped
    /// worker's items come back after this).
    pub ack_wait: Duration,
    /// Stop after the queue has answered empty this long (`None`: run
    /// until cancelled); time spent on failing pulls does not count.
    pub idle_exit: Option<Duration>,
    /// Give up with an error once the queue has been unreachable this long
    /// (a stopped cluster); a leader election or a lost node takes seconds.
    pub unreachable_after: Duration,
    /// Fault injection for the crash test: after an item's job committed,
    /// wait this long before the ack, so that a kill lands between commit
    /// and ack. Zero in normal use.
    pub hold_before_ack: Duration,
}

/// What a worker did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkerReport {
    /// Items committed and acked.
    pub items: u64,
    /// Of those, items that had been delivered before (another worker died
    /// or stopped with them, or their ack was lost).
    pub redelivered: u64,
    /// Of those, items found already committed (no new rows).
    pub already_done: u64,
    /// Items whose job failed (naked: they come again).
    pub failed: u64,
    /// Malformed items, acked and dropped.
    pub malformed_items: u64,
    /// Pulls that failed (a lost node, a leader election), retried.
    pub pull_errors: u64,
    /// Rows inserted by this worker.
    pub rows_inserted: u64,
    /// Dead letters inserted by this worker.
    pub dead_letters: u64,
    /// Event lines read by this worker.
    pub lines: u64,
    /// Wall time, seconds.
    pub elapsed_s: f64,
}

/// The durable consumer the workers share (created when missing).
///
/// # Errors
///
/// The queue or the consumer cannot be reached or made.
pub async fn worker_consumer(js: &Context, config: &WorkerConfig) -> Result<PullConsumer, crate::Error> {
    let stream = js
        .get_stream(&config.stream)
        .await
        .map_err(|e| crate::Error::Queue(format!("opening the work queue `{}`: {e}", config.stream)))?;
    let mut consumer: PullConsumer = stream
        .get_or_create_consumer(
            &config.consumer,
            pull::Config {
                durable_name: Some(config.consumer.clone()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: config.ack_wait,
                max_ack_pending: 1_000,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| crate::Error::Queue(format!("opening the consumer `{}`: {e}", config.consumer)))?;
    weir_jetstream::wait_until_ready(&mut consumer, Duration::from_secs(30)).await?;
    Ok(consumer)
}

/// Takes work items one at a time until `stop` fires (or the queue stays
/// empty for `idle_exit`), running each item's job inside the ingestion of
/// its message, so that the item is acked only once its job committed.
///
/// # Errors
///
/// The queue cannot be reached (after 20 attempts half a second apart, which
/// a leader election never outlasts). A failing item is not an error: it is
/// naked, counted, and taken again (by this worker or another).
pub async fn run_worker(
    js: &Context,
    config: &WorkerConfig,
    stop: CancellationToken,
) -> Result<WorkerReport, crate::Error> {
    let started = Instant::now();
    // A leader election (a lost node) makes the first requests time out:
    // keep asking, up to `unreachable_after`, before calling the queue
    // unreachable.
    let mut consumer = {
        let mut attempt = 0u32;
        loop {
            match worker_consumer(js, config).await {
                Ok(consumer) => break consumer,
                Err(error) if started.elapsed() < config.unreachable_after && !stop.is_cancelled() => {
                    attempt += 1;
                    tracing::warn!(%error, attempt, "the work queue is not reachable yet; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(error) => return Err(unreachable(config, started.elapsed(), &error)),
            }
        }
    };
    let limits = BatchLimits {
        max_messages: 1,
        max_bytes: 0,
        expires: Duration::from_secs(1),
        progress_every: (config.ack_wait / 3).max(Duration::from_millis(100)),
        nak_delay: Some(Duration::from_millis(500)),
        ack_concurrency: 1,
    };
    let mut report = WorkerReport::default();
    let mut idle_since = Instant::now();
    // Since when every pull has failed (`None`: the last one answered).
    let mut failing_since: Option<Instant> = None;
    loop {
        let batch = tokio::select! {
            () = stop.cancelled() => break,
            batch = Batch::pull(&consumer, &limits) => batch,
        };
        let batch = match batch {
            Ok(Some(batch)) => batch,
            Ok(None) => {
                failing_since = None;
                if config.idle_exit.is_some_and(|idle| idle_since.elapsed() >= idle) {
                    break;
                }
                continue;
            }
            Err(error) => {
                // A lost node, a leader election, or a consumer that was
                // deleted or expired: wait, open the consumer again (made
                // anew when it is gone) and ask again, until the queue has
                // been unreachable for `unreachable_after`.
                report.pull_errors += 1;
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= config.unreachable_after {
                    return Err(unreachable(config, since.elapsed(), &error));
                }
                tracing::warn!(%error, "pulling a work item failed; retrying");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
                match worker_consumer(js, config).await {
                    Ok(reopened) => consumer = reopened,
                    Err(error) => tracing::warn!(%error, "reopening the consumer failed; retrying"),
                }
                // Time spent failing says nothing of the queue being empty:
                // `idle_exit` counts from the first pull that is answered.
                idle_since = Instant::now();
                continue;
            }
        };
        failing_since = None;
        let outcome = Arc::new(Mutex::new(ItemOutcome::default()));
        let sink = ItemSink {
            job: config.job.clone(),
            hold_before_ack: config.hold_before_ack,
            descriptor: Vec::new(),
            outcome: Arc::clone(&outcome),
        };
        // The item's whole job runs in `finalize`: give it all the time it
        // needs (the in-progress signals keep the item ours meanwhile).
        let options = IngestOptions::builder()
            .chunk_size(MAX_ITEM_BYTES)
            .finalize_timeout(Duration::from_secs(24 * 3600))
            .cancel_token(stop.child_token())
            .build();
        let result = batch.ingest(sink, options).await;
        let outcome = outcome.lock().unwrap_or_else(PoisonError::into_inner).clone();
        match result {
            Ok(batch) => {
                tracing::info!(item = outcome.item, redelivered = batch.redelivered, "item acked");
                report.items += 1;
                report.redelivered += batch.redelivered;
                report.already_done += u64::from(outcome.already_done);
                report.malformed_items += u64::from(outcome.malformed);
                report.rows_inserted += outcome.rows_inserted;
                report.dead_letters += outcome.dead_letters;
                report.lines += outcome.lines;
            }
            Err(error) => {
                report.failed += 1;
                tracing::warn!(error = %weir_error_text(&error), "work item failed; it comes again");
            }
        }
        idle_since = Instant::now();
    }
    report.elapsed_s = started.elapsed().as_secs_f64();
    Ok(report)
}

fn unreachable(config: &WorkerConfig, for_: Duration, error: &dyn std::fmt::Display) -> crate::Error {
    crate::Error::Queue(format!(
        "the work queue `{}` has been unreachable for {:.1} s (limit {:?}): {error}",
        config.stream,
        for_.as_secs_f64(),
        config.unreachable_after
    ))
}

fn weir_error_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        text.push_str(": ");
        text.push_str(&source.to_string());
        next = source.source();
    }
    text
}

/// A work item's message is a small JSON document; anything larger is not
/// one of ours.
const MAX_ITEM_BYTES: usize = 64 << 10;

#[derive(Debug, Clone, Default)]
struct ItemOutcome {
    /// The item's job name (empty until its descriptor parsed).
    item: String,
    already_done: bool,
    malformed: bool,
    rows_inserted: u64,
    dead_letters: u64,
    lines: u64,
}

/// The sink of one work item's message: `write` collects the descriptor,
/// `finalize` runs the item's job to its range's end (the commit the ack
/// waits for); `abort` leaves what the job committed, segment by segment,
/// for whoever takes the item next.
#[derive(Debug)]
struct ItemSink {
    job: JobConfig,
    hold_before_ack: Duration,
    descriptor: Vec<u8>,
    outcome: Arc<Mutex<ItemOutcome>>,
}

impl Sink for ItemSink {
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<> {
        let taken = if self.descriptor.len() + chunk.len() > MAX_ITEM_BYTES {
            Err(format!("a work item is at most {MAX_ITEM_BYTES} bytes").into())
        } else {
            self.descriptor.extend_from_slice(&chunk);
            Ok(())
        };
        std::future::ready(taken)
    }

    async fn finalize(&mut self) -> Result<(), BoxError> {
        let item: WorkItem = match serde_json::from_slice(&self.descriptor) {
            Ok(item) => item,
            Err(error) => {
                // Names no events: acking it loses nothing, redelivering it
                // would loop forever.
                tracing::error!(%error, item = %String::from_utf8_lossy(&self.descriptor), "malformed work item; dropped");
                self.outcome.lock().unwrap_or_else(PoisonError::into_inner).malformed = true;
                return Ok(());
            }
        };
        tracing::info!(item = item.job, "item started");
        self.outcome.lock().unwrap_or_else(PoisonError::into_inner).item = item.job.clone();
        let mut job = self.job.clone();
        job.job = item.job.clone();
        job.start = Some(Resume {
            cursor: None,
            watermark: Some(format_ms(item.since_ms)),
        });
        job.until_ms = item.until_ms;
        job.progress = false;
        job.export_ids = None;
        let report = run_job(&job).await?;
        let already_done = report.resumed && report.segments == 0;
        tracing::info!(
            item = item.job,
            rows_inserted = report.rows_inserted,
            dead_letters = report.dead_letters,
            already_done,
            "item committed"
        );
        {
            let mut outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
            outcome.already_done = already_done;
            outcome.rows_inserted = report.rows_inserted;
            outcome.dead_letters = report.dead_letters;
            outcome.lines = report.lines;
        }
        if !self.hold_before_ack.is_zero() {
            tracing::info!(
                item = item.job,
                hold_ms = self.hold_before_ack.as_millis() as u64,
                "holding before the ack"
            );
            tokio::time::sleep(self.hold_before_ack).await;
        }
        Ok(())
    }

    async fn abort(self, cause: &Cause) -> Result<(), BoxError> {
        tracing::debug!(%cause, "work item aborted; its committed segments stay for the next taker");
        Ok(())
    }
}

/// The items of `stream` its consumer `consumer` has still to deliver or
/// to see acked (what a load waits for; the stream's message count can
/// also hold an acked item whose removal a crashed server lost).
///
/// # Errors
///
/// The queue or the consumer cannot be read.
pub async fn items_left(js: &Context, stream: &str, consumer: &str) -> Result<u64, crate::Error> {
    let stream = js
        .get_stream(stream)
        .await
        .map_err(|e| crate::Error::Queue(format!("opening the work queue `{stream}`: {e}")))?;
    let mut consumer: PullConsumer = stream
        .get_consumer(consumer)
        .await
        .map_err(|e| crate::Error::Queue(format!("opening the consumer `{consumer}`: {e}")))?;
    let info = consumer
        .info()
        .await
        .map_err(|e| crate::Error::Queue(format!("reading the consumer: {e}")))?;
    Ok(info.num_pending + info.num_ack_pending as u64)
}

/// A JetStream context on `servers` (see [`weir_jetstream::nats_servers`]).
///
/// # Errors
///
/// No server answered.
pub async fn connect(servers: &[String]) -> Result<Context, crate::Error> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        // A lost node: reconnect to another, for as long as it takes.
        .max_reconnects(None)
        .connect(servers)
        .await
        .map_err(|e| crate::Error::Queue(format!("connecting to NATS at {servers:?}: {e}")))?;
    Ok(jetstream::new(client))
}
