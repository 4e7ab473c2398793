//! The scenario's probe sink: any sink behind a [`Behaved`] layer (writes
//! slow, hung or paced), recorded by the test kit's one recorder
//! ([`weir_testkit::Recorded`]), so that the scenario can count what must
//! never happen: a write called, started or polled after `abort` began, a
//! write future still alive when `abort` began, `finalize` after `abort`,
//! `abort` more than once.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use weir::{BoxError, BoxSink, Cause, Sink};
pub use weir_harness::figures::cancellation::ProbeCounts;
use weir_testkit::{Recorded, Recorder};

/// How a [`Behaved`] sink's writes behave before they reach the inner sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Every write goes straight to the inner sink.
    Immediate,
    /// Every write is acknowledged `delay` later (an async sleep), after the
    /// inner sink's own acknowledgement.
    Slow(Duration),
    /// Writes from this zero-based index on never complete (and never reach
    /// the inner sink): a hung database, a stalled disk.
    HangFrom(u64),
    /// Write `k` is acknowledged at `start + (k + 1) x period` (a deadline,
    /// so that delays do not drift), after the inner sink's acknowledgement.
    Paced {
        /// The common origin.
        start: Instant,
        /// Time per write.
        period: Duration,
    },
}

/// Wraps one of the engine's sinks, chosen at run time: its writes behave
/// as the [`Behaviour`] says; `finalize` and `abort` go straight through.
///
/// Not generic on purpose: a type that names `BoxSink` (`Box<dyn DynSink +
/// 'static>`) in a generic parameter, such as `Recorded<BoxSink>`, cannot be
/// ingested inside a spawned `async` block. The compiler erases the
/// `'static` of the trait object in the block's `Send` check and then finds
/// no `Sink` impl for it:
///
/// ```text
/// error: implementation of `weir::Sink` is not general enough
///   = note: `std::boxed::Box<(dyn weir::DynSink + '0)>` must implement `weir::Sink`, for any lifetime `'0`...
///   = note: ...but `weir::Sink` is actually implemented for the type `std::boxed::Box<(dyn weir::DynSink + 'static)>`
/// ```
///
/// `Recorded<Behaved>` names no lifetime, so the scenario can spawn it.
pub struct Behaved {
    inner: BoxSink,
    behaviour: Behaviour,
    next_write: u64,
}

impl fmt::Debug for Behaved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Behaved")
            .field("behaviour", &self.behaviour)
            .field("next_write", &self.next_write)
            .finish_non_exhaustive()
    }
}

impl Behaved {
    /// Wraps `inner`.
    pub fn new(inner: BoxSink, behaviour: Behaviour) -> Self {
        Self {
            inner,
            behaviour,
            next_write: 0,
        }
    }
}

impl Sink for Behaved {
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<> {
        let index = self.next_write;
        self.next_write += 1;
        let hangs = matches!(self.behaviour, Behaviour::HangFrom(from) if index >= from);
        let inner = (!hangs).then(|| self.inner.write(chunk));
        let behaviour = self.behaviour;
        async move {
            let Some(inner) = inner else {
                return std::future::pending().await;
            };
            inner.await?;
            match behaviour {
                Behaviour::Immediate | Behaviour::HangFrom(_) => {}
                Behaviour::Slow(delay) => tokio::time::sleep(delay).await,
                Behaviour::Paced { start, period } => {
                    let due = start + period.saturating_mul(u32::try_from(index + 1).unwrap_or(u32::MAX));
                    tokio::time::sleep_until(due).await;
                }
            }
            Ok(())
        }
    }

    async fn finalize(&mut self) -> Result<(), BoxError> {
        self.inner.finalize().await
    }

    async fn abort(self, cause: &Cause) -> Result<(), BoxError> {
        self.inner.abort(cause).await
    }
}

/// The sink every part of the scenario ingests into: one of the engine's
/// sinks, chosen at run time, behind a [`Behaved`] layer, recorded.
pub type ProbeSink = Recorded<Behaved>;

/// Wraps `inner` as a [`ProbeSink`]; returns the sink and the recorder that
/// counts its calls (read them with [`Recorder::counts`]).
pub fn probe_sink(inner: BoxSink, behaviour: Behaviour) -> (ProbeSink, Recorder) {
    let recorder = Recorder::counting();
    (
        Recorded::new(Behaved::new(inner, behaviour), recorder.clone()),
        recorder,
    )
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Waker};

    use weir::{ErrorKind, NullSink};

    use super::*;

    fn chunk() -> Bytes {
        Bytes::from_static(b"abcd")
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_write_alive_and_polled_after_abort_is_a_violation() {
        // Drive the sink by hand, the wrong way: the probe must notice.
        let (mut sink, probe) = probe_sink(Box::new(NullSink), Behaviour::HangFrom(0));
        let mut early = Box::pin(sink.write(chunk()));
        let mut late = Box::pin(sink.write(chunk()));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(early.as_mut().poll(&mut cx).is_pending());
        sink.abort(&Cause::Cancelled).await.unwrap();
        assert!(late.as_mut().poll(&mut cx).is_pending());
        assert!(early.as_mut().poll(&mut cx).is_pending());
        let counts = probe.counts();
        assert_eq!(counts.writes_alive_at_abort, 2);
        assert_eq!(counts.write_starts_after_abort, 1);
        assert_eq!(counts.write_polls_after_abort, 2);
        assert_eq!(counts.violations(), 5);
        assert_eq!(probe.abort_reason(), Some(ErrorKind::Cancelled));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn writes_dropped_before_abort_are_clean() {
        let (mut sink, probe) = probe_sink(Box::new(NullSink), Behaviour::HangFrom(1));
        sink.write(chunk()).await.unwrap();
        let hung = sink.write(chunk());
        drop(hung);
        sink.abort(&Cause::Cancelled).await.unwrap();
        let counts = probe.counts();
        assert_eq!(counts.writes_called, 2);
        assert_eq!(counts.writes_acknowledged, 1);
        assert_eq!(counts.bytes_acknowledged, 4);
        assert_eq!(counts.aborts, 1);
        assert_eq!(counts.violations(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn paced_writes_complete_on_their_deadlines() {
        let start = Instant::now();
        let period = Duration::from_millis(20);
        let (mut sink, probe) = probe_sink(Box::new(NullSink), Behaviour::Paced { start, period });
        for k in 1..=3u32 {
            sink.write(chunk()).await.unwrap();
            assert_eq!(start.elapsed(), period * k);
        }
        sink.finalize().await.unwrap();
        assert_eq!(probe.counts().finalized_ok, 1);
    }
}
