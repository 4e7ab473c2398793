//! `ProbeSink`: a sink wrapper that behaves slowly, hangs or keeps a pace,
//! and records every call, so that the scenario can count what must never
//! happen: a write called, started or polled after `abort` began, a write
//! future still alive when `abort` began, `finalize` after `abort`, `abort`
//! more than once.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use weir::{BoxError, Cause, ErrorKind, FileSink, MemorySink, NullSink, Sink};
pub use weir_harness::figures::cancellation::ProbeCounts;

/// How a [`ProbeSink`]'s writes behave before they reach the inner sink.
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

/// What a [`ProbeSink`] saw, shared with whoever keeps the [`Probe`].
#[derive(Debug, Default)]
pub struct Probe {
    abort_began: AtomicBool,
    writes_called: AtomicU64,
    writes_acknowledged: AtomicU64,
    bytes_acknowledged: AtomicU64,
    writes_alive: AtomicU64,
    writes_alive_at_abort: AtomicU64,
    write_calls_after_abort: AtomicU64,
    write_starts_after_abort: AtomicU64,
    write_polls_after_abort: AtomicU64,
    finalizes: AtomicU64,
    finalized_ok: AtomicU64,
    finalizes_after_abort: AtomicU64,
    aborts: AtomicU64,
    abort_reason: Mutex<Option<ErrorKind>>,
}

impl Probe {
    /// A snapshot of the counters.
    pub fn counts(&self) -> ProbeCounts {
        let get = |a: &AtomicU64| a.load(Ordering::SeqCst);
        ProbeCounts {
            writes_called: get(&self.writes_called),
            writes_acknowledged: get(&self.writes_acknowledged),
            bytes_acknowledged: get(&self.bytes_acknowledged),
            writes_alive_at_abort: get(&self.writes_alive_at_abort),
            write_calls_after_abort: get(&self.write_calls_after_abort),
            write_starts_after_abort: get(&self.write_starts_after_abort),
            write_polls_after_abort: get(&self.write_polls_after_abort),
            finalizes: get(&self.finalizes),
            finalized_ok: get(&self.finalized_ok),
            finalizes_after_abort: get(&self.finalizes_after_abort),
            aborts: get(&self.aborts),
        }
    }

    /// The cause `abort` received, if it was called.
    pub fn abort_reason(&self) -> Option<ErrorKind> {
        *self.abort_reason.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn aborting(&self) -> bool {
        self.abort_began.load(Ordering::SeqCst)
    }
}

/// Wraps a sink: its writes behave as the [`Behaviour`] says, and every call
/// is counted in a shared [`Probe`].
#[derive(Debug)]
pub struct ProbeSink<S> {
    inner: S,
    behaviour: Behaviour,
    probe: Arc<Probe>,
    next_write: u64,
}

impl<S: Sink + 'static> ProbeSink<S> {
    /// Wraps `inner`; returns the sink and its probe.
    pub fn new(inner: S, behaviour: Behaviour) -> (Self, Arc<Probe>) {
        let probe = Arc::new(Probe::default());
        let sink = Self {
            inner,
            behaviour,
            probe: Arc::clone(&probe),
            next_write: 0,
        };
        (sink, probe)
    }
}

type WriteFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

/// A write future under watch: counts polls after the abort began and, on
/// drop, that it is no longer alive.
struct Watched {
    inner: WriteFuture,
    probe: Arc<Probe>,
    len: u64,
    polled: bool,
}

impl Future for Watched {
    type Output = Result<(), BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if this.probe.aborting() {
            this.probe.write_polls_after_abort.fetch_add(1, Ordering::SeqCst);
            if !this.polled {
                this.probe.write_starts_after_abort.fetch_add(1, Ordering::SeqCst);
            }
        }
        this.polled = true;
        let result = this.inner.as_mut().poll(cx);
        if let Poll::Ready(Ok(())) = &result {
            this.probe.writes_acknowledged.fetch_add(1, Ordering::SeqCst);
            this.probe.bytes_acknowledged.fetch_add(this.len, Ordering::SeqCst);
        }
        result
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.probe.writes_alive.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<S: Sink + 'static> Sink for ProbeSink<S> {
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<S> {
        let index = self.next_write;
        self.next_write += 1;
        let probe = &self.probe;
        probe.writes_called.fetch_add(1, Ordering::SeqCst);
        probe.writes_alive.fetch_add(1, Ordering::SeqCst);
        if probe.aborting() {
            probe.write_calls_after_abort.fetch_add(1, Ordering::SeqCst);
        }
        let len = chunk.len() as u64;
        let inner: WriteFuture = match self.behaviour {
            Behaviour::Immediate => Box::pin(self.inner.write(chunk)),
            Behaviour::Slow(delay) => {
                let write = self.inner.write(chunk);
                Box::pin(async move {
                    write.await?;
                    tokio::time::sleep(delay).await;
                    Ok(())
                })
            }
            Behaviour::HangFrom(from) if index >= from => Box::pin(std::future::pending()),
            Behaviour::HangFrom(_) => Box::pin(self.inner.write(chunk)),
            Behaviour::Paced { start, period } => {
                let due = start + period.saturating_mul(u32::try_from(index + 1).unwrap_or(u32::MAX));
                let write = self.inner.write(chunk);
                Box::pin(async move {
                    write.await?;
                    tokio::time::sleep_until(due).await;
                    Ok(())
                })
            }
        };
        Watched {
            inner,
            probe: Arc::clone(probe),
            len,
            polled: false,
        }
    }

    async fn finalize(&mut self) -> Result<(), BoxError> {
        self.probe.finalizes.fetch_add(1, Ordering::SeqCst);
        if self.probe.aborting() {
            self.probe.finalizes_after_abort.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.finalize().await?;
        self.probe.finalized_ok.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn abort(self, cause: &Cause) -> Result<(), BoxError> {
        let probe = &self.probe;
        probe.abort_began.store(true, Ordering::SeqCst);
        probe
            .writes_alive_at_abort
            .store(probe.writes_alive.load(Ordering::SeqCst), Ordering::SeqCst);
        probe.aborts.fetch_add(1, Ordering::SeqCst);
        *probe.abort_reason.lock().unwrap_or_else(PoisonError::into_inner) = Some(cause.kind());
        self.inner.abort(cause).await
    }
}

/// One of the engine's shipped sinks, chosen at run time.
///
/// An enum rather than a [`weir::BoxSink`]: a `Box<dyn DynSink>` inside a
/// generic sink wrapper loses its `'static` bound in the `Send` check of
/// `tokio::spawn(ingest(..))` ("implementation of `Sink` is not general
/// enough"), a compiler limitation with higher-ranked lifetimes.
#[derive(Debug)]
pub enum AnySink {
    /// [`NullSink`].
    Null(NullSink),
    /// [`MemorySink`].
    Memory(MemorySink),
    /// [`FileSink`].
    File(FileSink),
}

impl Sink for AnySink {
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<> {
        let write: WriteFuture = match self {
            Self::Null(sink) => Box::pin(sink.write(chunk)),
            Self::Memory(sink) => Box::pin(sink.write(chunk)),
            Self::File(sink) => Box::pin(sink.write(chunk)),
        };
        write
    }

    async fn finalize(&mut self) -> Result<(), BoxError> {
        match self {
            Self::Null(sink) => sink.finalize().await,
            Self::Memory(sink) => sink.finalize().await,
            Self::File(sink) => sink.finalize().await,
        }
    }

    async fn abort(self, cause: &Cause) -> Result<(), BoxError> {
        match self {
            Self::Null(sink) => sink.abort(cause).await,
            Self::Memory(sink) => sink.abort(cause).await,
            Self::File(sink) => sink.abort(cause).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use weir::NullSink;

    use super::*;

    fn chunk() -> Bytes {
        Bytes::from_static(b"abcd")
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_write_alive_and_polled_after_abort_is_a_violation() {
        // Drive the sink by hand, the wrong way: the probe must notice.
        let (mut sink, probe) = ProbeSink::new(NullSink, Behaviour::HangFrom(0));
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
        let (mut sink, probe) = ProbeSink::new(NullSink, Behaviour::HangFrom(1));
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
        let (mut sink, probe) = ProbeSink::new(NullSink, Behaviour::Paced { start, period });
        for k in 1..=3u32 {
            sink.write(chunk()).await.unwrap();
            assert_eq!(start.elapsed(), period * k);
        }
        sink.finalize().await.unwrap();
        assert_eq!(probe.counts().finalized_ok, 1);
    }
}
