//! `WriterSink`: a sink over any `AsyncWrite`, committed by a step the
//! user supplies.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{Mutex, oneshot};

use crate::error::{BoxError, Cause};
use crate::sink::Sink;

/// Writes every chunk to an [`AsyncWrite`] (a socket, a file, a compressor,
/// a pipe to a child process), in source order; `finalize` flushes it and
/// hands it to `commit`, whose `Ok` is the commit; `abort` drops it.
///
/// The bytes are written as they come, so this sink is atomic only as far
/// as `commit` makes it: write to a staging place and make it visible in
/// `commit` (rename, a transaction's `COMMIT`, a trailer the reader checks),
/// and leave a writer that needs more than being dropped to undo its writes
/// to a [`Sink`] of its own. Writes may be in flight together
/// ([`max_in_flight`](crate::IngestOptionsBuilder::max_in_flight)): each
/// waits for the one before it, so the writer still sees them in order.
///
/// ```
/// use bytes::Bytes;
/// use futures_util::stream;
/// use weir::{IngestOptions, WriterSink, ingest};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (committed, received) = tokio::sync::oneshot::channel();
/// // The commit step receives the flushed writer.
/// let sink = WriterSink::new(Vec::new(), |written: Vec<u8>| async move {
///     committed.send(written).map_err(|_| "nobody is listening")?;
///     Ok(())
/// });
/// let source = stream::iter(["a", "b", "c"].map(|s| Ok(Bytes::from(s))));
/// ingest(source, sink, IngestOptions::default()).await?;
/// assert_eq!(received.await?, b"abc");
/// # Ok(())
/// # }
/// ```
pub struct WriterSink<W, C> {
    writer: Arc<Mutex<Option<W>>>,
    /// Completes when the last issued write has ended: the next write waits
    /// for it.
    last: Option<oneshot::Receiver<()>>,
    commit: Option<C>,
}

impl<W, C> fmt::Debug for WriterSink<W, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterSink").finish_non_exhaustive()
    }
}

impl<W, C, F> WriterSink<W, C>
where
    W: AsyncWrite + Unpin + Send + 'static,
    C: FnOnce(W) -> F + Send,
    F: Future<Output = Result<(), BoxError>> + Send,
{
    /// A sink writing to `writer`, committed by `commit` (called once, by
    /// `finalize`, with the flushed writer).
    pub fn new(writer: W, commit: C) -> Self {
        Self {
            writer: Arc::new(Mutex::new(Some(writer))),
            last: None,
            commit: Some(commit),
        }
    }
}

impl<W, C, F> Sink for WriterSink<W, C>
where
    W: AsyncWrite + Unpin + Send + 'static,
    C: FnOnce(W) -> F + Send,
    F: Future<Output = Result<(), BoxError>> + Send,
{
    /// # Errors
    ///
    /// The writer's error; every later write fails too.
    ///
    /// # Cancel safety
    ///
    /// A dropped write may leave part of its chunk written; `abort` follows.
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<W, C, F> {
        let before = self.last.take();
        let (done, next) = oneshot::channel();
        self.last = Some(next);
        let writer = Arc::clone(&self.writer);
        async move {
            // The previous write has ended (or was dropped): our turn.
            if let Some(before) = before {
                let _ = before.await;
            }
            let mut writer = writer.lock().await;
            let result = match writer.as_mut() {
                Some(out) => match out.write_all(&chunk).await {
                    Ok(()) => Ok(()),
                    Err(error) => {
                        // Nothing after a failed write may reach the writer.
                        *writer = None;
                        Err(error.into())
                    }
                },
                None => Err("an earlier write to the writer failed".into()),
            };
            drop(done);
            result
        }
    }

    /// # Errors
    ///
    /// The flush's error, or the commit step's.
    ///
    /// # Cancel safety
    ///
    /// Dropped midway, the commit step may or may not have run.
    async fn finalize(&mut self) -> Result<(), BoxError> {
        let writer = self.writer.lock().await.take();
        let mut writer = writer.ok_or("the writer is gone: an earlier write failed")?;
        writer.flush().await?;
        let commit = self.commit.take().ok_or("finalize was already called")?;
        commit(writer).await
    }

    /// Drops the writer.
    ///
    /// # Errors
    ///
    /// None.
    ///
    /// # Cancel safety
    ///
    /// Nothing to cancel.
    async fn abort(self, _cause: &Cause) -> Result<(), BoxError> {
        drop(self.writer.lock().await.take());
        Ok(())
    }
}
