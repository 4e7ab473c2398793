//! `ChaosSink`: wraps any sink, injects a schedule's faults around it, and
//! records every call.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use weir::{BoxError, Cause, Sink};

use crate::recorder::{Event, Recorder};
use crate::runner::Clock;
use crate::schedule::{AbortFault, FailureSchedule, FinalizeFault};

/// A sink that wraps `inner`, fails where the schedule says, and records
/// every call in its [`Recorder`]. The inner sink is always aborted before
/// an injected abort fault, so real sinks still clean up.
#[derive(Debug)]
pub struct ChaosSink<S> {
    inner: S,
    schedule: FailureSchedule,
    recorder: Recorder,
    clock: Clock,
    writes: usize,
}

impl<S> ChaosSink<S> {
    /// Wraps `inner`; delays are measured on `clock`.
    pub fn new(inner: S, schedule: FailureSchedule, recorder: Recorder, clock: Clock) -> Self {
        Self {
            inner,
            schedule,
            recorder,
            clock,
            writes: 0,
        }
    }
}

/// Tells the recorder when a write future is polled and when it ends.
struct Watched<F> {
    future: Pin<Box<F>>,
    index: usize,
    recorder: Recorder,
}

impl<F: Future> Future for Watched<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.recorder.polled(self.index);
        self.future.as_mut().poll(cx)
    }
}

impl<F> Drop for Watched<F> {
    fn drop(&mut self) {
        self.recorder.write_ended();
    }
}

impl<S: Sink> Sink for ChaosSink<S> {
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<S> {
        let index = self.writes;
        self.writes += 1;
        self.recorder.push(Event::Write {
            index,
            data: chunk.clone(),
        });
        if self.schedule.write_panics_at == Some(index) {
            panic!("chaos: write {index} panics");
        }
        let fails = self.schedule.write_fails_at == Some(index);
        let hangs = self.schedule.write_hangs_at == Some(index);
        let delay = self
            .schedule
            .write_delays_ms
            .get(index % self.schedule.write_delays_ms.len().max(1))
            .copied()
            .unwrap_or(0);
        // The inner sink sees the call now, in order, unless this write is
        // the one that fails or hangs.
        let inner = (!fails && !hangs).then(|| self.inner.write(chunk));
        let recorder = self.recorder.clone();
        let delay = self.clock.span(delay);
        let future = async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if hangs {
                std::future::pending::<()>().await;
            }
            if fails {
                return Err(format!("chaos: write {index} failed: Database Connection Lost").into());
            }
            if let Some(inner) = inner {
                inner.await?;
            }
            recorder.push(Event::WriteAcked { index });
            Ok(())
        };
        Watched {
            future: Box::pin(future),
            index,
            recorder: self.recorder.clone(),
        }
    }

    async fn finalize(&mut self) -> Result<(), BoxError> {
        self.recorder.push(Event::Finalize);
        let result = match self.schedule.finalize {
            FinalizeFault::Fail => Err("chaos: finalize failed".into()),
            FinalizeFault::Panic => panic!("chaos: finalize panics"),
            FinalizeFault::None => self.inner.finalize().await,
        };
        self.recorder.push(Event::FinalizeReturned { ok: result.is_ok() });
        result
    }

    async fn abort(self, cause: &Cause) -> Result<(), BoxError> {
        self.recorder.push(Event::Abort(cause.kind()));
        let inner = self.inner.abort(cause).await;
        match self.schedule.abort {
            AbortFault::None => inner,
            AbortFault::Fail => Err("chaos: abort failed".into()),
            AbortFault::Hang => std::future::pending().await,
            AbortFault::Panic => panic!("chaos: abort panics"),
        }
    }
}
