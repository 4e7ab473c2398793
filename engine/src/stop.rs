//! The ingest loop's stop signal: the caller's cancellation or the
//! registry's shutdown, whichever comes first.
//!
//! The loop asks for it on every step, ahead of the writes and the source.
//! Polling a `CancellationToken`'s future takes two uncontended locks, and
//! with two tokens that was about a third of the loop's own cost per chunk.
//! [`StopSignal`] polls them only after one of them woke it: between wake-ups
//! a poll is one atomic swap and a waker registration.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use tokio_util::sync::CancellationToken;

use crate::error::Cause;
use crate::sync::{AtomicBool, AtomicWaker, Ordering};

/// Why the loop was told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The registry is shutting down.
    Shutdown,
    /// The caller cancelled.
    Cancelled,
}

impl Stop {
    /// The one place that says which stop wins: a shutdown beats the
    /// caller's cancellation when both have fired.
    fn of(shutdown: &CancellationToken, cancel: &CancellationToken) -> Option<Self> {
        if shutdown.is_cancelled() {
            Some(Self::Shutdown)
        } else if cancel.is_cancelled() {
            Some(Self::Cancelled)
        } else {
            None
        }
    }
}

impl From<Stop> for Cause {
    fn from(stop: Stop) -> Self {
        match stop {
            Stop::Shutdown => Self::Shutdown,
            Stop::Cancelled => Self::Cancelled,
        }
    }
}

/// Resolves once `shutdown` or `cancel` is cancelled (shutdown wins a tie).
pub(crate) struct StopSignal {
    /// Resolves when either token has fired.
    inner: Pin<Box<dyn Future<Output = ()> + Send>>,
    gate: Arc<Gate>,
    shutdown: CancellationToken,
    cancel: CancellationToken,
}

/// Between the inner futures and the loop's task: their waker sets the
/// flag and forwards the wake to the task. Checked by loom
/// (`loom_stop.rs`): a wake is never lost between two looks.
#[derive(Default)]
pub(crate) struct Gate {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Gate {
    /// A gate whose first look finds it woken.
    pub(crate) fn woken() -> Self {
        let gate = Self::default();
        gate.woken.store(true, Ordering::Relaxed);
        gate
    }

    /// The inner futures' side: something changed.
    pub(crate) fn wake_up(&self) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }

    /// The loop's side, once per poll: registers `waker` for the next wake,
    /// then tells whether a wake came since the last look.
    ///
    /// The waker is registered on every look, never cached: a wake takes
    /// the registered waker out of the gate, and if that happens while the
    /// task is running, a look that skipped registering finds the flag
    /// cleared and the gate empty, and a later wake reaches nobody. The
    /// loom model in `loom_stop.rs` fails for such a cache.
    pub(crate) fn look(&self, waker: &Waker) -> bool {
        // Register before looking at the flag: a wake that lands after the
        // look then reaches the task.
        self.task.register_by_ref(waker);
        self.woken.swap(false, Ordering::AcqRel)
    }

    /// Whether a wake is waiting for the next look: one atomic load, no
    /// registration. The loop looks fully once per turn and between steps
    /// asks only this (a wake after the full look sets it).
    pub(crate) fn is_woken(&self) -> bool {
        self.woken.load(Ordering::Acquire)
    }
}

impl Wake for Gate {
    fn wake(self: Arc<Self>) {
        self.wake_up();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wake_up();
    }
}

impl StopSignal {
    pub(crate) fn new(shutdown: CancellationToken, cancel: CancellationToken) -> Self {
        let (watched_shutdown, watched_cancel) = (shutdown.clone(), cancel.clone());
        let inner = Box::pin(async move {
            tokio::select! {
                () = watched_shutdown.cancelled() => {}
                () = watched_cancel.cancelled() => {}
            }
        });
        Self {
            inner,
            // The first poll must reach the tokens (they may be cancelled
            // already).
            gate: Arc::new(Gate::woken()),
            shutdown,
            cancel,
        }
    }

    /// Whether a token woke the signal since its last poll: then the next
    /// poll must look at the tokens. One atomic load; valid between two
    /// polls of the same turn, because each poll registers the task first.
    pub(crate) fn woken(&self) -> bool {
        self.gate.is_woken()
    }

    /// Whether a stop has fired by now, without waiting: the loop's last
    /// look before its commit point.
    pub(crate) fn fired(&self) -> Option<Stop> {
        Stop::of(&self.shutdown, &self.cancel)
    }
}

impl Future for StopSignal {
    type Output = Stop;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Stop> {
        let this = self.get_mut();
        if !this.gate.look(cx.waker()) {
            return Poll::Pending;
        }
        let waker = Waker::from(Arc::clone(&this.gate));
        match this.inner.as_mut().poll(&mut Context::from_waker(&waker)) {
            // A fired token stays fired: `fired` sees it, and decides which.
            Poll::Ready(()) => Poll::Ready(this.fired().unwrap_or(Stop::Cancelled)),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt as _;

    #[tokio::test]
    async fn resolves_for_either_token_and_prefers_shutdown() {
        let (shutdown, cancel) = (CancellationToken::new(), CancellationToken::new());
        let mut signal = StopSignal::new(shutdown.clone(), cancel.clone());
        assert!((&mut signal).now_or_never().is_none());
        assert!((&mut signal).now_or_never().is_none(), "idle polls stay pending");
        cancel.cancel();
        assert_eq!(signal.await, Stop::Cancelled);

        let (shutdown, cancel) = (CancellationToken::new(), CancellationToken::new());
        cancel.cancel();
        shutdown.cancel();
        assert_eq!(StopSignal::new(shutdown, cancel).await, Stop::Shutdown);
    }

    #[tokio::test]
    async fn a_waiting_task_is_woken_by_a_later_cancel() {
        let (shutdown, cancel) = (CancellationToken::new(), CancellationToken::new());
        let signal = StopSignal::new(shutdown.clone(), cancel);
        let waiter = tokio::spawn(signal);
        tokio::task::yield_now().await;
        shutdown.cancel();
        assert_eq!(waiter.await.unwrap(), Stop::Shutdown);
    }
}
