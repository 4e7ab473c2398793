//! The broken way, kept here so it never reaches the engine: every chunk is
//! read as fast as the source allows and its write spawned as a task of its
//! own, without waiting for earlier writes. Nothing pushes back on the
//! source, so memory grows with the speed mismatch, up to the input size.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::task::JoinSet;
use tokio::time::Instant;
use weir::{BoxError, Cause, Sink};

use crate::case::UnboundedCap;

/// What an unbounded run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnboundedReport {
    /// Bytes taken from the source.
    pub bytes_read: u64,
    /// Bytes whose write completed.
    pub bytes_written: u64,
    /// Writes spawned.
    pub spawned: u64,
    /// Most bytes held by unfinished writes at once.
    pub peak_outstanding_bytes: u64,
    /// Why the safety net stopped the run early, if it did.
    pub capped: Option<String>,
}

/// Why an unbounded run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnboundedError {
    /// The source failed.
    #[error("source failed after {bytes_read} bytes")]
    Source {
        /// Bytes read before the failure.
        bytes_read: u64,
        /// The source's error.
        #[source]
        error: io::Error,
    },
    /// A write, `finalize` or the spawned task failed.
    #[error("sink failed: {0}")]
    Sink(#[source] BoxError),
}

/// Reads `source` to the end, spawning every write without waiting, then
/// waits for the writes and finalizes the sink (aborts it on failure).
///
/// The only limits are the safety net in `cap`: reading stops once
/// `cap.max_outstanding_bytes` are held by unfinished writes, and writes
/// still pending after `cap.max_millis` are cancelled. Either is reported in
/// [`UnboundedReport::capped`]; the sink is then aborted, not finalized.
///
/// # Errors
///
/// The first source or sink failure.
///
/// # Panics
///
/// Outside a Tokio runtime with the time driver.
pub async fn run_unbounded<St, Si>(
    source: St,
    mut sink: Si,
    cap: UnboundedCap,
) -> Result<UnboundedReport, UnboundedError>
where
    St: Stream<Item = io::Result<Bytes>> + Send,
    Si: Sink + 'static,
{
    let deadline = Instant::now() + Duration::from_millis(cap.max_millis);
    let outstanding = Arc::new(AtomicU64::new(0));
    let mut report = UnboundedReport::default();
    let mut tasks = JoinSet::new();
    let mut failure = None;
    // Boxed so that it can be dropped (closing it) before the writes drain.
    let mut source = Box::pin(source);

    while let Some(item) = source.next().await {
        let chunk = match item {
            Ok(chunk) => chunk,
            Err(error) => {
                failure = Some(UnboundedError::Source {
                    bytes_read: report.bytes_read,
                    error,
                });
                break;
            }
        };
        let len = chunk.len() as u64;
        report.bytes_read += len;
        report.spawned += 1;
        let held = outstanding.fetch_add(len, Ordering::Relaxed) + len;
        report.peak_outstanding_bytes = report.peak_outstanding_bytes.max(held);
        let write = sink.write(chunk);
        let counter = Arc::clone(&outstanding);
        tasks.spawn(async move {
            let result = write.await;
            counter.fetch_sub(len, Ordering::Relaxed);
            result.map(|()| len)
        });
        // Reap what has finished, without waiting for anything.
        while let Some(done) = tasks.try_join_next() {
            match flatten(done) {
                Ok(n) => report.bytes_written += n,
                Err(error) => failure = Some(error),
            }
        }
        if failure.is_some() {
            break;
        }
        if held >= cap.max_outstanding_bytes {
            report.capped = Some(format!("stopped reading at {held} bytes outstanding (cap)"));
            break;
        }
        if Instant::now() >= deadline {
            report.capped = Some(format!("stopped reading after {} ms (cap)", cap.max_millis));
            break;
        }
        // Fairness only (the engine does the same): this bounds nothing.
        tokio::task::coop::consume_budget().await;
    }
    drop(source);

    while failure.is_none() {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(done)) => match flatten(done) {
                Ok(n) => report.bytes_written += n,
                Err(error) => failure = Some(error),
            },
            Ok(None) => break,
            Err(_) => {
                report.capped = Some(format!(
                    "gave up on {} pending writes after {} ms (cap)",
                    tasks.len(),
                    cap.max_millis
                ));
                break;
            }
        }
    }
    tasks.shutdown().await;

    if let Some(error) = failure {
        let _ = sink.abort(&Cause::Cancelled).await;
        return Err(error);
    }
    if report.capped.is_some() {
        let _ = sink.abort(&Cause::Cancelled).await;
        return Ok(report);
    }
    sink.finalize().await.map_err(UnboundedError::Sink)?;
    Ok(report)
}

fn flatten(done: Result<Result<u64, BoxError>, tokio::task::JoinError>) -> Result<u64, UnboundedError> {
    match done {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(error)) => Err(UnboundedError::Sink(error)),
        Err(join) => Err(UnboundedError::Sink(Box::new(join))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SlowSink;
    use crate::case::DelayModel;
    use weir::MemorySink;

    fn chunks(n: usize) -> impl Stream<Item = io::Result<Bytes>> + Send {
        futures_util::stream::iter((0..n).map(|i| Ok(Bytes::from(vec![u8::try_from(i % 251).unwrap_or(0); 1024]))))
    }

    #[tokio::test(flavor = "current_thread")]
    async fn every_byte_is_written_when_nothing_is_capped() {
        let sink = MemorySink::new();
        let handle = sink.handle();
        let report = run_unbounded(chunks(64), sink, UnboundedCap::default()).await.unwrap();
        assert_eq!(report.bytes_read, 64 * 1024);
        assert_eq!(report.bytes_written, 64 * 1024);
        assert_eq!(report.capped, None);
        assert_eq!(handle.committed().map(|c| c.len()), Some(64 * 1024));
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn the_outstanding_cap_stops_reading() {
        let cap = UnboundedCap {
            max_outstanding_bytes: 10 * 1024,
            max_millis: 60_000,
        };
        let sink = SlowSink::new(DelayModel::Fixed { micros: 1000 });
        let report = run_unbounded(chunks(64), sink, cap).await.unwrap();
        assert_eq!(report.bytes_read, 10 * 1024);
        assert!(report.capped.as_deref().is_some_and(|c| c.contains("outstanding")));
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn the_time_cap_gives_up_on_pending_writes() {
        let cap = UnboundedCap {
            max_outstanding_bytes: u64::MAX,
            max_millis: 10,
        };
        let sink = SlowSink::new(DelayModel::Fixed { micros: 1000 });
        let report = run_unbounded(chunks(64), sink, cap).await.unwrap();
        assert_eq!(report.bytes_read, 64 * 1024);
        assert!(report.bytes_written < 64 * 1024);
        assert!(report.capped.as_deref().is_some_and(|c| c.contains("pending")));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_source_error_is_returned() {
        let source = futures_util::stream::iter([Ok(Bytes::from_static(b"ab")), Err(io::Error::other("boom"))]);
        let error = run_unbounded(source, MemorySink::new(), UnboundedCap::default())
            .await
            .unwrap_err();
        assert!(matches!(error, UnboundedError::Source { bytes_read: 2, .. }), "{error}");
    }
}
