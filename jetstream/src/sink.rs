//! The publish sink: every chunk one message, with a `Nats-Msg-Id` that
//! makes a retried ingestion publish each chunk once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_nats::HeaderMap;
use async_nats::jetstream::Context;
use bytes::Bytes;
use tokio::sync::watch;
use weir::{BoxError, Cause, Sink};

/// What a [`PublishSink`] did, shared with its creator.
#[derive(Debug, Default)]
pub struct PublishCounts {
    /// Messages the stream stored.
    pub stored: AtomicU64,
    /// Messages the stream recognised as duplicates (same `Nats-Msg-Id`
    /// inside its duplicate window) and did not store again.
    pub duplicates: AtomicU64,
}

/// A sink that publishes every chunk as one message to `subject` on a
/// JetStream stream, with the header `Nats-Msg-Id: <id_prefix>.<chunk
/// index>`, and waits for the stream's acknowledgement.
///
/// Publishes leave in chunk order even with several writes in flight (each
/// write takes a ticket when it is made; acknowledgements overlap).
///
/// **Not atomic.** JetStream 2.9 has no transactional publish: what an
/// aborted ingestion published stays in the stream. What the sink gives
/// instead is idempotence: an ingestion retried with the same `id_prefix`
/// (the same input, chunked the same way) inside the stream's duplicate
/// window stores every chunk exactly once. Consumers that must not see a
/// partial batch should read a batch only after a commit marker of their
/// own, or use a [`Batch`](crate::Batch) into an atomic sink.
#[derive(Debug)]
pub struct PublishSink {
    jetstream: Context,
    subject: String,
    id_prefix: String,
    next: u64,
    turn: Arc<watch::Sender<u64>>,
    counts: Arc<PublishCounts>,
}

impl PublishSink {
    /// A sink publishing to `subject` (which a stream must capture), with
    /// message ids `<id_prefix>.0`, `<id_prefix>.1`, ...
    pub fn new(jetstream: Context, subject: impl Into<String>, id_prefix: impl Into<String>) -> Self {
        Self {
            jetstream,
            subject: subject.into(),
            id_prefix: id_prefix.into(),
            next: 0,
            turn: Arc::new(watch::Sender::new(0)),
            counts: Arc::default(),
        }
    }

    /// The counters, readable while and after the sink runs.
    pub fn counts(&self) -> Arc<PublishCounts> {
        Arc::clone(&self.counts)
    }
}

/// Passes the turn to the next write when dropped, published or not (a
/// dropped write means the ingestion is failing; the gap is harmless).
struct Turn {
    turn: Arc<watch::Sender<u64>>,
    mine: u64,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let next = self.mine + 1;
        self.turn.send_if_modified(|t| {
            let moved = *t < next;
            if moved {
                *t = next;
            }
            moved
        });
    }
}

impl Sink for PublishSink {
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<> {
        let mine = self.next;
        self.next += 1;
        let id = format!("{}.{mine}", self.id_prefix);
        let jetstream = self.jetstream.clone();
        let subject = self.subject.clone();
        let counts = Arc::clone(&self.counts);
        let turn = Turn {
            turn: Arc::clone(&self.turn),
            mine,
        };
        async move {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", id.as_str());
            let mut at = turn.turn.subscribe();
            at.wait_for(|t| *t >= mine).await?;
            let ack = jetstream.publish_with_headers(subject, headers, chunk).await;
            // Sent (or failed to send): the next write may go.
            drop(turn);
            let ack = ack?.await?;
            if ack.duplicate {
                counts.duplicates.fetch_add(1, Ordering::Relaxed);
            } else {
                counts.stored.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }
    }

    async fn finalize(&mut self) -> Result<(), BoxError> {
        // Every write was acknowledged by the stream before the engine
        // calls this.
        Ok(())
    }

    async fn abort(self, cause: &Cause) -> Result<(), BoxError> {
        tracing::debug!(%cause, published = self.counts.stored.load(Ordering::Relaxed), "publish sink aborted; what it published stays");
        Ok(())
    }
}
