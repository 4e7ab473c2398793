//! `ChaosSource`: yields a schedule's bytes, failing or hanging where the
//! schedule says, and records when it is dropped.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

use crate::schedule::FailureSchedule;

/// A source following a [`FailureSchedule`].
#[derive(Debug)]
pub struct ChaosSource {
    data: Bytes,
    chunk_size: usize,
    next: usize,
    chunks: usize,
    fails_at: Option<usize>,
    hangs_at: Option<usize>,
    dropped: Arc<AtomicBool>,
}

impl ChaosSource {
    /// The source for `schedule`; `dropped` becomes `true` when it is
    /// dropped.
    pub fn new(schedule: &FailureSchedule, dropped: Arc<AtomicBool>) -> Self {
        Self {
            data: Bytes::from(schedule.source_bytes()),
            chunk_size: schedule.chunk_size,
            next: 0,
            chunks: schedule.chunks,
            fails_at: schedule.source_fails_at,
            hangs_at: schedule.source_hangs_at,
            dropped,
        }
    }
}

impl Stream for ChaosSource {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let i = self.next;
        if self.hangs_at == Some(i) {
            // Never ready and never woken: only cancellation ends this.
            return Poll::Pending;
        }
        if self.fails_at == Some(i) {
            self.next = usize::MAX;
            return Poll::Ready(Some(Err(io::Error::other(format!("chaos: source fails at chunk {i}")))));
        }
        if i >= self.chunks {
            return Poll::Ready(None);
        }
        self.next += 1;
        let chunk = self.data.slice(i * self.chunk_size..(i + 1) * self.chunk_size);
        Poll::Ready(Some(Ok(chunk)))
    }
}

impl Drop for ChaosSource {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}
