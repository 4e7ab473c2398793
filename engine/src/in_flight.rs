//! The writes in flight, as one stream of their outcomes.
//!
//! Most writes complete on their first poll (a fast sink, or a sink that
//! buffers), and at most one write is in flight by default. Such writes
//! never reach the `FuturesUnordered` (one allocation and a handful of
//! atomic operations each): the first write lives in a pinned slot that is
//! allocated once and reused, and only writes started while that slot is
//! busy go to the `FuturesUnordered`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::stream::FuturesUnordered;
use futures_util::{Stream, StreamExt as _};

pub(crate) struct InFlight<F> {
    /// Polled whenever the stream is; reused once its write completed.
    slot: Pin<Box<Option<F>>>,
    /// Whether the slot holds a write not yet completed. A completed write
    /// stays in the slot until the next one replaces it: one drop per write.
    slot_busy: bool,
    rest: FuturesUnordered<F>,
}

impl<F: Future> InFlight<F> {
    pub(crate) fn new() -> Self {
        Self {
            slot: Box::pin(None),
            slot_busy: false,
            rest: FuturesUnordered::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        usize::from(self.slot_busy) + self.rest.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        !self.slot_busy && self.rest.is_empty()
    }

    pub(crate) fn push(&mut self, write: F) {
        if self.slot_busy {
            self.rest.push(write);
        } else {
            self.slot.set(Some(write));
            self.slot_busy = true;
        }
    }
}

impl<F: Future> Stream for InFlight<F> {
    type Item = F::Output;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        let this = self.get_mut();
        if this.slot_busy
            && let Some(write) = this.slot.as_mut().as_pin_mut()
            && let Poll::Ready(output) = write.poll(cx)
        {
            this.slot_busy = false;
            return Poll::Ready(Some(output));
        }
        // An empty `FuturesUnordered` would still register the waker (an
        // atomic read-modify-write or two) on every poll.
        if this.rest.is_empty() {
            return if this.slot_busy {
                Poll::Pending
            } else {
                Poll::Ready(None)
            };
        }
        match this.rest.poll_next_unpin(cx) {
            Poll::Ready(None) if this.slot_busy => Poll::Pending,
            polled => polled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt as _;

    #[tokio::test]
    async fn yields_every_outcome_and_reuses_the_slot() {
        let mut writes = InFlight::new();
        assert!(writes.is_empty());
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let waiting = async move { rx.await.unwrap() }.boxed();
        writes.push(waiting);
        writes.push(async { 2 }.boxed());
        writes.push(async { 3 }.boxed());
        assert_eq!(writes.len(), 3);
        let mut early = vec![writes.next().await.unwrap(), writes.next().await.unwrap()];
        early.sort_unstable();
        assert_eq!(early, [2, 3]);
        assert!(writes.next().now_or_never().is_none(), "the slot's write is pending");
        tx.send(1).unwrap();
        assert_eq!(writes.next().await, Some(1));
        assert!(writes.is_empty());
        writes.push(async { 4 }.boxed());
        assert_eq!(writes.len(), 1);
        assert_eq!(writes.next().await, Some(4));
        assert_eq!(writes.next().await, None);
    }
}
