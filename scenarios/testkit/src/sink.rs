//! `ChaosSink`: wraps any sink and injects a schedule's faults around it.
//! It records nothing itself: the runner wraps it in a
//! [`Recorded`](crate::Recorded) sink, so that the recorder sees what the
//! engine saw of the faulty sink.

use std::future::Future;

use bytes::Bytes;
use weir::{BoxError, Cause, Sink, TryWrite};

use crate::runner::Clock;
use crate::schedule::{AbortFault, FailureSchedule, FinalizeFault};

/// A sink that wraps `inner` and fails where the schedule says. The inner
/// sink is always aborted before an injected abort fault, so real sinks
/// still clean up.
#[derive(Debug)]
pub struct ChaosSink<S> {
    inner: S,
    schedule: FailureSchedule,
    clock: Clock,
    writes: usize,
}

impl<S> ChaosSink<S> {
    /// Wraps `inner`; delays are measured on `clock`.
    pub fn new(inner: S, schedule: FailureSchedule, clock: Clock) -> Self {
        Self {
            inner,
            schedule,
            clock,
            writes: 0,
        }
    }
}

impl<S> ChaosSink<S> {
    /// The scheduled delay of write `index`, in schedule milliseconds.
    fn delay_ms(&self, index: usize) -> u64 {
        self.schedule
            .write_delays_ms
            .get(index % self.schedule.write_delays_ms.len().max(1))
            .copied()
            .unwrap_or(0)
    }
}

impl<S: Sink> Sink for ChaosSink<S> {
    /// A write with no fault and no delay scheduled is offered to the inner
    /// sink's `try_write`, so that the suite also drives sinks that take
    /// chunks at once; any other goes to `write`, where the fault happens.
    fn try_write(&mut self, chunk: Bytes) -> TryWrite {
        let index = self.writes;
        let schedule = &self.schedule;
        let faulty = schedule.write_panics_at == Some(index)
            || schedule.write_fails_at == Some(index)
            || schedule.write_hangs_at == Some(index)
            || self.delay_ms(index) != 0;
        if faulty {
            return TryWrite::Declined(chunk);
        }
        match self.inner.try_write(chunk) {
            TryWrite::Done(result) => {
                self.writes += 1;
                TryWrite::Done(result)
            }
            declined => declined,
        }
    }

    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<S> {
        let index = self.writes;
        self.writes += 1;
        if self.schedule.write_panics_at == Some(index) {
            panic!("chaos: write {index} panics");
        }
        let fails = self.schedule.write_fails_at == Some(index);
        let hangs = self.schedule.write_hangs_at == Some(index);
        let delay = self.delay_ms(index);
        // The inner sink sees the call now, in order, unless this write is
        // the one that fails or hangs.
        let inner = (!fails && !hangs).then(|| self.inner.write(chunk));
        let delay = self.clock.span(delay);
        async move {
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
            Ok(())
        }
    }

    async fn finalize(&mut self) -> Result<(), BoxError> {
        match self.schedule.finalize {
            FinalizeFault::Fail => Err("chaos: finalize failed".into()),
            FinalizeFault::Panic => panic!("chaos: finalize panics"),
            FinalizeFault::None => self.inner.finalize().await,
        }
    }

    async fn abort(self, cause: &Cause) -> Result<(), BoxError> {
        let inner = self.inner.abort(cause).await;
        match self.schedule.abort {
            AbortFault::None => inner,
            AbortFault::Fail => Err("chaos: abort failed".into()),
            AbortFault::Hang => std::future::pending().await,
            AbortFault::Panic => panic!("chaos: abort panics"),
        }
    }
}
