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
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;
use tokio_util::sync::CancellationToken;

/// Why the loop was told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The registry is shutting down.
    Shutdown,
    /// The caller cancelled.
    Cancelled,
}

/// Resolves once `shutdown` or `cancel` is cancelled (shutdown wins a tie).
pub(crate) struct StopSignal {
    inner: Pin<Box<dyn Future<Output = Stop> + Send>>,
    gate: Arc<Gate>,
    /// The waker the gate holds, to skip registering the same one again.
    registered: Option<Waker>,
}

/// Set by the inner futures' waker; forwards the wake to the loop's task.
#[derive(Default)]
struct Gate {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Gate {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl StopSignal {
    pub(crate) fn new(shutdown: CancellationToken, cancel: CancellationToken) -> Self {
        let inner = Box::pin(async move {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => Stop::Shutdown,
                () = cancel.cancelled() => Stop::Cancelled,
            }
        });
        let gate = Arc::new(Gate::default());
        // The first poll must reach the tokens (they may be cancelled already).
        gate.woken.store(true, Ordering::Relaxed);
        Self {
            inner,
            gate,
            registered: None,
        }
    }
}

impl Future for StopSignal {
    type Output = Stop;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Stop> {
        let this = self.get_mut();
        // Register before looking at the flag: a wake that lands after the
        // look then reaches this task.
        if !this.registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            this.gate.task.register(cx.waker());
            this.registered = Some(cx.waker().clone());
        }
        if !this.gate.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        // A wake takes the waker out of the gate: register afresh next time.
        this.registered = None;
        let waker = Waker::from(Arc::clone(&this.gate));
        this.inner.as_mut().poll(&mut Context::from_waker(&waker))
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
