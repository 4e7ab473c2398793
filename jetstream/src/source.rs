//! The pull-consumer source: one batch of messages, one ingestion, and the
//! acks decided by its outcome.

use std::io;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::message::Acker;
use async_nats::jetstream::{AckKind, Message};
use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use tokio::sync::mpsc;
use weir::{IngestOptions, IngestReport, Sink};

use crate::Error;

/// How much one batch takes from the consumer, and how its messages are
/// kept and released.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchLimits {
    /// Messages a batch takes at most.
    pub max_messages: usize,
    /// Payload bytes a batch takes at most (the server stops filling the
    /// batch before this; 0 means no byte limit).
    pub max_bytes: usize,
    /// How long [`Batch::pull`] waits for the first message, and for the
    /// server to fill the batch.
    pub expires: Duration,
    /// While the ingestion runs, every message received so far is told
    /// "in progress" this often, so that a long commit is not taken for a
    /// dead worker. Keep it well under the consumer's `ack_wait`.
    pub progress_every: Duration,
    /// After a failed ingestion every message is negatively acked with this
    /// redelivery delay (`None`: at once).
    pub nak_delay: Option<Duration>,
    /// Acks confirmed at once (each a round trip to the server).
    pub ack_concurrency: usize,
}

impl Default for BatchLimits {
    /// 1,000 messages or 8 MiB, 5 s to fill, progress every 2 s, a failed
    /// batch redelivered after 1 s, 64 acks in flight.
    fn default() -> Self {
        Self {
            max_messages: 1_000,
            max_bytes: 8 << 20,
            expires: Duration::from_secs(5),
            progress_every: Duration::from_secs(2),
            nak_delay: Some(Duration::from_secs(1)),
            ack_concurrency: 64,
        }
    }
}

impl BatchLimits {
    fn validate(&self) -> Result<(), Error> {
        let problem = if self.max_messages == 0 {
            "max_messages must be at least 1"
        } else if self.expires.is_zero() {
            "expires must be greater than zero"
        } else if self.progress_every.is_zero() {
            "progress_every must be greater than zero"
        } else if self.ack_concurrency == 0 {
            "ack_concurrency must be at least 1"
        } else {
            return Ok(());
        };
        Err(Error::InvalidLimits(problem))
    }
}

/// Waits until `consumer` can serve pulls: on a cluster, until its RAFT
/// group has elected a leader (a pull sent before is lost without an
/// answer); a single server's consumer is ready at once.
///
/// # Errors
///
/// [`Error::NotReady`] when no leader came within `within`, or the consumer
/// cannot be asked.
pub async fn wait_until_ready(consumer: &mut PullConsumer, within: Duration) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let ready = match consumer.info().await {
            Ok(info) => info.cluster.as_ref().is_none_or(|c| c.leader.is_some()),
            Err(error) if tokio::time::Instant::now() >= deadline => {
                return Err(Error::NotReady(format!("{error}")));
            }
            Err(_) => false,
        };
        if ready {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::NotReady(format!("no consumer leader within {within:?}")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What one committed batch did.
#[derive(Debug, Clone)]
pub struct BatchReport {
    /// The engine's report of the ingestion.
    pub ingest: IngestReport,
    /// Messages ingested (and then acked).
    pub messages: u64,
    /// Of those, messages the server had delivered before (a redelivery
    /// after a crash, a timeout or a nak).
    pub redelivered: u64,
    /// Acks the server confirmed.
    pub acked: u64,
    /// Acks that failed after the commit: those messages come again, and
    /// the sink must recognise them (an idempotent sink does).
    pub ack_failures: u64,
    /// "In progress" signals sent while the ingestion ran.
    pub progress_sent: u64,
    /// Time from the commit to the last confirmed ack.
    pub ack_elapsed: Duration,
}

/// One batch of messages pulled from a durable pull consumer, not yet
/// ingested. Its first message has arrived; the rest stream in while the
/// ingestion runs.
pub struct Batch {
    first: Message,
    rest: pull::Batch,
    limits: BatchLimits,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("first_subject", &self.first.subject)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Batch {
    /// Asks `consumer` for a batch and waits up to `limits.expires` for its
    /// first message: `None` when none came (nothing to do, and no sink
    /// needs to be made).
    ///
    /// # Errors
    ///
    /// Invalid limits; the pull request cannot be sent or the server
    /// refuses it (a deleted or expired consumer, a cluster without a
    /// leader): never a hang past `expires` plus the client's request
    /// timeout.
    pub async fn pull(consumer: &PullConsumer, limits: &BatchLimits) -> Result<Option<Self>, Error> {
        limits.validate()?;
        let mut request = consumer
            .batch()
            .max_messages(limits.max_messages)
            .expires(limits.expires);
        if limits.max_bytes > 0 {
            request = request.max_bytes(limits.max_bytes);
        }
        let mut rest = request.messages().await.map_err(|e| Error::Pull(Box::new(e)))?;
        // A live server ends the batch at `expires` itself. No answer at
        // all means the request was lost (sent while the consumer had no
        // leader, for example): say so soon, so that the caller asks again.
        let patience = limits.expires + (limits.expires / 2).max(Duration::from_secs(1));
        let first = tokio::time::timeout(patience, rest.next()).await;
        match first {
            Err(_) => Err(Error::PullTimedOut(patience)),
            Ok(None) => Ok(None),
            Ok(Some(Err(error))) if is_full_by_bytes(&error) => Err(Error::MessageTooLarge {
                max_bytes: limits.max_bytes,
            }),
            Ok(Some(Err(error))) => Err(Error::Pull(error)),
            Ok(Some(Ok(first))) => Ok(Some(Self {
                first,
                rest,
                limits: limits.clone(),
            })),
        }
    }

    /// Ingests the batch into `sink`, each message's payload one chunk, in
    /// delivery order. The outcome decides the acks:
    ///
    /// - `finalize` returned `Ok` (the ingestion committed): every message
    ///   is acked, and each ack is confirmed by the server. An ack that
    ///   fails is counted, not an error: the commit stands, the message
    ///   comes again, and the sink must recognise it.
    /// - anything else (the sink was aborted): every message of the batch,
    ///   taken by the ingestion or not, is negatively acked with
    ///   `nak_delay`, so the whole batch is redelivered, and the engine's
    ///   error is returned. The naks wait for the batch's pull request to
    ///   end (at most `expires`): a nak before it would hand the message
    ///   straight back to that request.
    ///
    /// Within a batch the sink sees the payloads in delivery order.
    /// JetStream does not promise that a redelivery keeps the first
    /// delivery's order: a sink for which order matters across batches
    /// must carry its own sequence (DataSync's work items are independent).
    ///
    /// While the ingestion runs, every message received so far is told "in
    /// progress" every `progress_every`.
    ///
    /// # Errors
    ///
    /// [`Error::Ingest`] with the engine's error (root cause first) when the
    /// ingestion did not commit.
    pub async fn ingest<S: Sink>(self, sink: S, options: IngestOptions) -> Result<BatchReport, Error> {
        let Self { first, rest, limits } = self;
        let (pending_tx, mut pending_rx) = mpsc::unbounded_channel();
        let rest = Arc::new(Mutex::new(rest));
        let source = payloads(first, Arc::clone(&rest), pending_tx);
        let mut ingest = pin!(weir::ingest(source, sink, options));
        let mut pending: Vec<Pending> = Vec::new();
        let mut progress = tokio::time::interval_at(
            tokio::time::Instant::now() + limits.progress_every,
            limits.progress_every,
        );
        progress.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut progress_sent = 0u64;
        let outcome = loop {
            tokio::select! {
                biased;
                outcome = &mut ingest => break outcome,
                Some(message) = pending_rx.recv() => pending.push(message),
                _ = progress.tick() => {
                    for message in &pending {
                        // A lost signal costs at most a redelivery, which
                        // the sink recognises.
                        match message.acker.ack_with(AckKind::Progress).await {
                            Ok(()) => progress_sent += 1,
                            Err(error) => tracing::warn!(%error, "in-progress signal failed"),
                        }
                    }
                }
            }
        };
        while let Ok(message) = pending_rx.try_recv() {
            pending.push(message);
        }
        let redelivered = pending.iter().filter(|m| m.delivered > 1).count() as u64;
        match outcome {
            Ok(report) => {
                let started = Instant::now();
                // The futures are made here, not by a closure inside the
                // stream: a closure over borrowed messages would make this
                // future impossible to spawn (not general enough).
                let confirms: Vec<_> = pending.iter().map(|m| m.acker.double_ack()).collect();
                let acks: Vec<Result<(), async_nats::Error>> = stream::iter(confirms)
                    .buffer_unordered(limits.ack_concurrency)
                    .collect()
                    .await;
                let ack_failures = acks.iter().filter(|r| r.is_err()).count() as u64;
                if let Some(Err(error)) = acks.iter().find(|r| r.is_err()) {
                    tracing::warn!(%error, ack_failures, "acks failed after the commit; those messages come again");
                }
                Ok(BatchReport {
                    ingest: report,
                    messages: pending.len() as u64,
                    redelivered,
                    acked: acks.len() as u64 - ack_failures,
                    ack_failures,
                    progress_sent,
                    ack_elapsed: started.elapsed(),
                })
            }
            Err(error) => {
                // What the server sent but the ingestion never took is
                // naked too, so that the whole batch comes again at once.
                let unread = drain(&rest, limits.expires).await;
                pending.extend(unread);
                for message in &pending {
                    if let Err(nak) = message.acker.ack_with(AckKind::Nak(limits.nak_delay)).await {
                        tracing::warn!(error = %nak, "nak failed; the message comes again after ack_wait");
                    }
                }
                Err(Error::Ingest(Box::new(error)))
            }
        }
    }
}

/// The messages of a failed batch that the ingestion never took, until
/// the batch ends (full, or its pull request expired). Naking before the
/// pull request is over would hand the naked messages straight back to it,
/// where nobody takes them any more.
async fn drain(rest: &Mutex<pull::Batch>, expires: Duration) -> Vec<Pending> {
    let mut unread = Vec::new();
    // The server ends the batch at `expires`; the margin covers a server
    // that never says so.
    let deadline = tokio::time::Instant::now() + expires + Duration::from_secs(1);
    loop {
        let next = std::future::poll_fn(|cx| rest.lock().unwrap_or_else(PoisonError::into_inner).poll_next_unpin(cx));
        match tokio::time::timeout_at(deadline, next).await {
            Ok(Some(Ok(message))) => unread.push(pending(message).0),
            Ok(Some(Err(_)) | None) | Err(_) => return unread,
        }
    }
}

/// Whether a batch's error is only the server saying the batch is full by
/// bytes (status 409 "Message Size Exceeds MaxBytes"): the batch's end.
fn is_full_by_bytes(error: &async_nats::Error) -> bool {
    error.to_string().contains("Exceeds MaxBytes")
}

/// A message taken: what acks it (with its delivery count) and its payload.
fn pending(message: Message) -> (Pending, Bytes) {
    let delivered = message.info().map_or(1, |info| info.delivered);
    let (message, acker) = message.split();
    (Pending { acker, delivered }, message.payload)
}

/// A message the ingestion has taken: what acks it, and how often the
/// server had delivered it.
struct Pending {
    acker: Acker,
    delivered: i64,
}

/// The batch as the engine's source: payloads in delivery order; each
/// message's acker goes to the driver as it is taken. The rest of the batch
/// stays behind a lock the driver can reach after the ingestion.
fn payloads(
    first: Message,
    rest: Arc<Mutex<pull::Batch>>,
    pending_tx: mpsc::UnboundedSender<Pending>,
) -> impl Stream<Item = io::Result<Bytes>> + Send {
    let rest =
        stream::poll_fn(
            move |cx| match rest.lock().unwrap_or_else(PoisonError::into_inner).poll_next_unpin(cx) {
                Poll::Ready(Some(Err(error))) if is_full_by_bytes(&error) => Poll::Ready(None),
                other => other,
            },
        );
    stream::once(std::future::ready(Ok(first)))
        .chain(rest)
        .map(move |message| {
            let (taken, payload) = pending(message.map_err(io::Error::other)?);
            // The driver outlives the source; a closed channel means the batch
            // is over and nothing will ack anyway.
            let _ = pending_tx.send(taken);
            Ok(payload)
        })
}
