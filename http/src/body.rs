//! `DeliveryBody`: the response body. A streamed body pulls one chunk from
//! its source only when hyper asks for one (hyper asks only while its write
//! buffer has room), pays the throttle before reading, and keeps the
//! transfer's metrics; dropping it mid-way (client gone) drops the source at
//! once and counts the transfer as aborted.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::metrics::{TransferGuard, TransferOutcome};
use crate::source::ByteStream;
use crate::throttle::Throttle;

/// Bytes a transfer hands over before letting other tasks on its worker run.
const YIELD_AFTER: usize = 256 << 10;

/// A response body: empty, a few bytes, or a streamed transfer.
#[derive(Debug)]
pub struct DeliveryBody {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Bytes(Option<Bytes>),
    Transfer(Box<Transfer>),
}

struct Transfer {
    /// `None` once the last byte went out or the transfer failed.
    source: Option<ByteStream>,
    /// Bytes still due; `None` for a body of unknown length (an encoded
    /// one), which ends when its source does.
    remaining: Option<u64>,
    /// The size of the next chunk, already paid to the throttle.
    paid: bool,
    /// Bytes handed over since this transfer last let other tasks run.
    since_yield: usize,
    chunk_size: usize,
    throttle: Throttle,
    guard: TransferGuard,
}

impl std::fmt::Debug for Transfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfer")
            .field("remaining", &self.remaining)
            .field("chunk_size", &self.chunk_size)
            .field("throttle", &self.throttle)
            .finish_non_exhaustive()
    }
}

impl DeliveryBody {
    /// No body.
    pub(crate) fn empty() -> Self {
        Self {
            kind: Kind::Bytes(None),
        }
    }

    /// A small in-memory body.
    pub(crate) fn bytes(bytes: impl Into<Bytes>) -> Self {
        let bytes: Bytes = bytes.into();
        Self {
            kind: Kind::Bytes((!bytes.is_empty()).then_some(bytes)),
        }
    }

    /// Exactly `len` bytes from `source`, read in chunks of `chunk_size`
    /// (the size paid to `throttle` before each read).
    pub(crate) fn transfer(
        source: ByteStream,
        len: u64,
        chunk_size: usize,
        throttle: Throttle,
        mut guard: TransferGuard,
    ) -> Self {
        if len == 0 {
            guard.finish(TransferOutcome::Completed);
            return Self::empty();
        }
        Self::streamed(source, Some(len), chunk_size, throttle, guard)
    }

    /// `source` to its end, however long (chunked on the wire).
    pub(crate) fn until_end(source: ByteStream, chunk_size: usize, throttle: Throttle, guard: TransferGuard) -> Self {
        Self::streamed(source, None, chunk_size, throttle, guard)
    }

    fn streamed(
        source: ByteStream,
        remaining: Option<u64>,
        chunk_size: usize,
        throttle: Throttle,
        guard: TransferGuard,
    ) -> Self {
        Self {
            kind: Kind::Transfer(Box::new(Transfer {
                source: Some(source),
                remaining,
                paid: false,
                since_yield: 0,
                chunk_size,
                throttle,
                guard,
            })),
        }
    }
}

impl Body for DeliveryBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match &mut self.get_mut().kind {
            Kind::Bytes(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Transfer(transfer) => transfer.poll_chunk(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Bytes(bytes) => bytes.is_none(),
            Kind::Transfer(transfer) => transfer.source.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Bytes(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Transfer(transfer) => transfer.remaining.map_or_else(SizeHint::new, SizeHint::with_exact),
        }
    }
}

impl Transfer {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let Some(source) = self.source.as_mut() else {
            return Poll::Ready(None);
        };
        if self.since_yield >= YIELD_AFTER {
            // A pull source is always ready and a fast socket rarely blocks:
            // without this, one fast client would keep its worker for
            // megabytes while every other connection waits.
            self.since_yield = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if !self.paid && !self.throttle.is_unlimited() {
            let next = self.remaining.unwrap_or(u64::MAX).min(self.chunk_size as u64);
            if self.throttle.poll_acquire(cx, next).is_pending() {
                return Poll::Pending;
            }
            self.paid = true;
        }
        loop {
            match source.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) if chunk.is_empty() => {}
                Poll::Ready(Some(Ok(mut chunk))) => {
                    self.paid = false;
                    match self.remaining {
                        Some(remaining) if chunk.len() as u64 >= remaining => {
                            chunk.truncate(usize::try_from(remaining).unwrap_or(usize::MAX));
                            self.remaining = Some(0);
                            // Close the handle now, not when hyper drops the body.
                            self.source = None;
                            self.guard.finish(TransferOutcome::Completed);
                        }
                        Some(remaining) => self.remaining = Some(remaining - chunk.len() as u64),
                        None => {}
                    }
                    self.guard.sent(chunk.len());
                    self.since_yield += chunk.len();
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
                Poll::Ready(Some(Err(error))) => {
                    self.source = None;
                    self.guard.finish(TransferOutcome::Failed);
                    tracing::warn!(%error, remaining = self.remaining, "delivery source failed mid-transfer");
                    return Poll::Ready(Some(Err(error)));
                }
                Poll::Ready(None) if self.remaining.is_none() => {
                    self.source = None;
                    self.guard.finish(TransferOutcome::Completed);
                    return Poll::Ready(None);
                }
                Poll::Ready(None) => {
                    self.source = None;
                    self.guard.finish(TransferOutcome::Failed);
                    let error = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("source ended {} bytes early", self.remaining.unwrap_or(0)),
                    );
                    tracing::warn!(%error, "delivery source ended early");
                    return Poll::Ready(Some(Err(error)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use http_body_util::BodyExt;

    use super::*;
    use crate::metrics::Metrics;

    fn chunks(parts: Vec<io::Result<Bytes>>) -> ByteStream {
        Box::pin(futures_util::stream::iter(parts))
    }

    #[tokio::test]
    async fn a_complete_transfer_counts_bytes_and_completes() {
        let metrics = Metrics::new();
        let source = chunks(vec![
            Ok(Bytes::from_static(b"abc")),
            Ok(Bytes::new()),
            Ok(Bytes::from_static(b"def")),
        ]);
        let body = DeliveryBody::transfer(source, 6, 3, Throttle::default(), metrics.transfer(Instant::now()));
        assert_eq!(body.size_hint().exact(), Some(6));
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"abcdef");
        let snapshot = metrics.snapshot();
        assert_eq!((snapshot.sent_bytes, snapshot.completed, snapshot.aborted), (6, 1, 0));
    }

    #[tokio::test]
    async fn an_unsized_body_completes_when_its_source_ends() {
        let metrics = Metrics::new();
        let source = chunks(vec![Ok(Bytes::from_static(b"abc")), Ok(Bytes::from_static(b"de"))]);
        let body = DeliveryBody::until_end(source, 3, Throttle::default(), metrics.transfer(Instant::now()));
        assert_eq!(body.size_hint().exact(), None);
        assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"abcde");
        let snapshot = metrics.snapshot();
        assert_eq!((snapshot.sent_bytes, snapshot.completed, snapshot.failed), (5, 1, 0));
    }

    #[tokio::test]
    async fn a_dropped_body_is_aborted_and_a_short_source_fails() {
        let metrics = Metrics::new();
        let source = chunks(vec![Ok(Bytes::from_static(b"abc")), Ok(Bytes::from_static(b"def"))]);
        let mut body = DeliveryBody::transfer(source, 6, 3, Throttle::default(), metrics.transfer(Instant::now()));
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), Bytes::from_static(b"abc"));
        drop(body);
        let short = chunks(vec![Ok(Bytes::from_static(b"abc"))]);
        let body = DeliveryBody::transfer(short, 6, 3, Throttle::default(), metrics.transfer(Instant::now()));
        assert_eq!(body.collect().await.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        let snapshot = metrics.snapshot();
        assert_eq!((snapshot.completed, snapshot.aborted, snapshot.failed), (0, 1, 1));
        assert_eq!(snapshot.active_transfers, 0);
    }
}
