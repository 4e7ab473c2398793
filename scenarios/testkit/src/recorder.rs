//! `Recorder` and `Recorded<S>`: the one call recorder of the lab. A
//! `Recorded` sink wraps any sink and tells its `Recorder` about every
//! lifecycle call, every byte and every poll of a write future; the
//! recorder keeps the event log, counters, the abort's cause, and the
//! violations it noticed while the calls happened.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use weir::{BoxError, Cause, ErrorKind, Sink, TryWrite};

/// One call, in the order the sink saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `write` was called with this chunk (0-based index in sink order).
    Write {
        /// Index of the write.
        index: usize,
        /// The chunk.
        data: Bytes,
    },
    /// A write future completed with `Ok`.
    WriteAcked {
        /// Index of the write.
        index: usize,
    },
    /// `finalize` was called.
    Finalize,
    /// `finalize` returned.
    FinalizeReturned {
        /// Whether it returned `Ok`.
        ok: bool,
    },
    /// `abort` was called with a cause of this kind.
    Abort(ErrorKind),
}

/// What a [`Recorder`] counted: every call, and any after `abort` began.
/// The same type the cancellation scenario's figures carry, so counts go
/// into a result as they are.
pub use weir_harness::figures::cancellation::ProbeCounts as Counts;

#[derive(Debug, Default)]
struct State {
    /// `None` for a [`Recorder::counting`] recorder.
    events: Option<Vec<Event>>,
    counts: Counts,
    /// Write futures created and not yet dropped.
    alive: u64,
    peak_alive: u64,
    /// `finalize` or `abort` was called.
    terminal_started: bool,
    abort_began: bool,
    abort_reason: Option<ErrorKind>,
    violations: Vec<String>,
}

/// Shared record of one sink's calls, kept by a [`Recorded`] sink. Cheap to
/// clone; every clone sees the same record.
#[derive(Debug, Clone)]
pub struct Recorder {
    state: Arc<Mutex<State>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// A recorder that keeps the full event log, every chunk included (what
    /// the invariant [`check`](crate::check) reads).
    pub fn new() -> Self {
        Self::with_log(Some(Vec::new()))
    }

    /// A recorder that counts calls, keeps the abort's cause and notices
    /// violations, but keeps no event log: the log holds on to every chunk,
    /// so a measurement's memory (and a source's buffer pool) would grow
    /// with its input.
    pub fn counting() -> Self {
        Self::with_log(None)
    }

    fn with_log(events: Option<Vec<Event>>) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                events,
                ..State::default()
            })),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn write_called(&self, index: usize, chunk: &Bytes) {
        self.with(|s| {
            if s.terminal_started {
                s.violations.push(format!("write {index} called after a terminal call"));
            }
            s.counts.writes_called += 1;
            if s.abort_began {
                s.counts.write_calls_after_abort += 1;
            }
            s.alive += 1;
            s.peak_alive = s.peak_alive.max(s.alive);
            if let Some(events) = &mut s.events {
                events.push(Event::Write {
                    index,
                    data: chunk.clone(),
                });
            }
        });
    }

    fn write_polled(&self, index: usize, first: bool) {
        self.with(|s| {
            if s.terminal_started {
                s.violations
                    .push(format!("write {index} polled after a terminal call began"));
            }
            if s.abort_began {
                s.counts.write_polls_after_abort += 1;
                if first {
                    s.counts.write_starts_after_abort += 1;
                }
            }
        });
    }

    fn write_acked(&self, index: usize, len: u64) {
        self.with(|s| {
            s.counts.writes_acknowledged += 1;
            s.counts.bytes_acknowledged += len;
            if let Some(events) = &mut s.events {
                events.push(Event::WriteAcked { index });
            }
        });
    }

    fn write_ended(&self) {
        self.with(|s| s.alive = s.alive.saturating_sub(1));
    }

    fn finalize_called(&self) {
        self.with(|s| {
            s.terminal_started = true;
            s.counts.finalizes += 1;
            if s.abort_began {
                s.counts.finalizes_after_abort += 1;
            }
            if let Some(events) = &mut s.events {
                events.push(Event::Finalize);
            }
        });
    }

    fn finalize_returned(&self, ok: bool) {
        self.with(|s| {
            if ok {
                s.counts.finalized_ok += 1;
            }
            if let Some(events) = &mut s.events {
                events.push(Event::FinalizeReturned { ok });
            }
        });
    }

    fn abort_called(&self, kind: ErrorKind) {
        self.with(|s| {
            s.terminal_started = true;
            s.abort_began = true;
            s.counts.writes_alive_at_abort = s.alive;
            s.counts.aborts += 1;
            s.abort_reason = Some(kind);
            if let Some(events) = &mut s.events {
                events.push(Event::Abort(kind));
            }
        });
    }

    /// Every call so far; empty for a [`counting`](Self::counting) recorder.
    pub fn events(&self) -> Vec<Event> {
        self.with(|s| s.events.clone().unwrap_or_default())
    }

    /// Most write futures alive at once, as the sink saw them.
    pub fn peak_in_flight(&self) -> usize {
        self.with(|s| usize::try_from(s.peak_alive).unwrap_or(usize::MAX))
    }

    /// Violations noticed while the calls happened: a write called or
    /// polled after `finalize` or `abort` began.
    pub fn violations(&self) -> Vec<String> {
        self.with(|s| s.violations.clone())
    }

    /// The counters now.
    pub fn counts(&self) -> Counts {
        self.with(|s| s.counts)
    }

    /// The kind of the cause the last `abort` received, if it was called.
    pub fn abort_reason(&self) -> Option<ErrorKind> {
        self.with(|s| s.abort_reason)
    }
}

/// A sink that forwards every call to `inner` and records it in its
/// [`Recorder`]: what the engine asked of the sink, as seen from outside
/// it. Wrap a fault or behaviour layer (such as [`ChaosSink`](crate::ChaosSink))
/// to record what the engine saw of that layer.
///
/// Over a [`weir::BoxSink`], `tokio::spawn(ingest(source, sink, options))`
/// compiles, but awaiting that ingestion inside a spawned `async` block does
/// not: the block's `Send` check erases the trait object's `'static`
/// ("implementation of `weir::Sink` is not general enough ...
/// `Box<(dyn weir::DynSink + '0)>` must implement `weir::Sink`, for any
/// lifetime `'0`"). Put the `BoxSink` inside a non-generic sink first (as
/// the cancellation scenario's `Behaved` does), so that the type names no
/// lifetime.
#[derive(Debug)]
pub struct Recorded<S> {
    inner: S,
    recorder: Recorder,
    writes: usize,
}

impl<S> Recorded<S> {
    /// Wraps `inner`; its calls go to `recorder`.
    pub fn new(inner: S, recorder: Recorder) -> Self {
        Self {
            inner,
            recorder,
            writes: 0,
        }
    }

    /// The recorder this sink reports to.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// The wrapped sink.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// One write future's life, as the recorder sees it: ends when dropped.
struct WriteLife {
    recorder: Recorder,
    index: usize,
    len: u64,
    polled: bool,
}

impl Drop for WriteLife {
    fn drop(&mut self) {
        self.recorder.write_ended();
    }
}

/// A write future under watch: reports every poll, the acknowledgement, and
/// (through its [`WriteLife`]) when it is no longer alive.
struct Watched<F> {
    future: Pin<Box<F>>,
    life: WriteLife,
}

impl<F: Future<Output = Result<(), BoxError>>> Future for Watched<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let life = &mut this.life;
        life.recorder.write_polled(life.index, !life.polled);
        life.polled = true;
        let result = this.future.as_mut().poll(cx);
        if let Poll::Ready(Ok(())) = &result {
            life.recorder.write_acked(life.index, life.len);
        }
        result
    }
}

impl<S: Sink> Sink for Recorded<S> {
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<S> {
        let index = self.writes;
        self.writes += 1;
        self.recorder.write_called(index, &chunk);
        // Made before the inner call, so that a write that panics still
        // ends its life.
        let life = WriteLife {
            recorder: self.recorder.clone(),
            index,
            len: chunk.len() as u64,
            polled: false,
        };
        Watched {
            future: Box::pin(self.inner.write(chunk)),
            life,
        }
    }

    /// Only a chunk the inner sink took is recorded here, as a write that
    /// was called, polled once and (on `Ok`) acknowledged; a declined one
    /// comes back through `write`.
    fn try_write(&mut self, chunk: Bytes) -> TryWrite {
        let offered = chunk.clone();
        match self.inner.try_write(chunk) {
            TryWrite::Declined(chunk) => TryWrite::Declined(chunk),
            TryWrite::Done(result) => {
                let index = self.writes;
                self.writes += 1;
                self.recorder.write_called(index, &offered);
                self.recorder.write_polled(index, true);
                if result.is_ok() {
                    self.recorder.write_acked(index, offered.len() as u64);
                }
                self.recorder.write_ended();
                TryWrite::Done(result)
            }
        }
    }

    async fn finalize(&mut self) -> Result<(), BoxError> {
        self.recorder.finalize_called();
        let result = self.inner.finalize().await;
        self.recorder.finalize_returned(result.is_ok());
        result
    }

    async fn abort(self, cause: &Cause) -> Result<(), BoxError> {
        self.recorder.abort_called(cause.kind());
        self.inner.abort(cause).await
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use weir::{MemorySink, NullSink};

    use super::*;

    fn chunk() -> Bytes {
        Bytes::from_static(b"abcd")
    }

    /// A sink whose writes never complete.
    struct Hung;

    impl Sink for Hung {
        fn write(&mut self, _chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<> {
            std::future::pending()
        }

        async fn finalize(&mut self) -> Result<(), BoxError> {
            Ok(())
        }

        async fn abort(self, _cause: &Cause) -> Result<(), BoxError> {
            Ok(())
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_write_alive_and_polled_after_abort_is_counted_and_noticed() {
        // Drive the sink by hand, the wrong way: the recorder must notice.
        let recorder = Recorder::new();
        let mut sink = Recorded::new(Hung, recorder.clone());
        let mut early = Box::pin(sink.write(chunk()));
        let mut late = Box::pin(sink.write(chunk()));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(early.as_mut().poll(&mut cx).is_pending());
        sink.abort(&Cause::Cancelled).await.unwrap();
        assert!(late.as_mut().poll(&mut cx).is_pending());
        assert!(early.as_mut().poll(&mut cx).is_pending());
        let counts = recorder.counts();
        assert_eq!(counts.writes_alive_at_abort, 2);
        assert_eq!(counts.write_starts_after_abort, 1);
        assert_eq!(counts.write_polls_after_abort, 2);
        assert_eq!(recorder.abort_reason(), Some(ErrorKind::Cancelled));
        assert_eq!(
            recorder.violations(),
            vec![
                "write 1 polled after a terminal call began".to_owned(),
                "write 0 polled after a terminal call began".to_owned(),
            ]
        );
        assert_eq!(recorder.peak_in_flight(), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_committed_run_is_logged_in_order() {
        let recorder = Recorder::new();
        let memory = MemorySink::new();
        let handle = memory.handle();
        let mut sink = Recorded::new(memory, recorder.clone());
        sink.write(chunk()).await.unwrap();
        sink.write(Bytes::from_static(b"ef")).await.unwrap();
        sink.finalize().await.unwrap();
        assert_eq!(handle.committed().unwrap(), b"abcdef".as_slice());
        assert_eq!(
            recorder.events(),
            vec![
                Event::Write {
                    index: 0,
                    data: chunk()
                },
                Event::WriteAcked { index: 0 },
                Event::Write {
                    index: 1,
                    data: Bytes::from_static(b"ef")
                },
                Event::WriteAcked { index: 1 },
                Event::Finalize,
                Event::FinalizeReturned { ok: true },
            ]
        );
        let counts = recorder.counts();
        assert_eq!(
            (
                counts.writes_called,
                counts.writes_acknowledged,
                counts.bytes_acknowledged
            ),
            (2, 2, 6)
        );
        assert_eq!((counts.finalizes, counts.finalized_ok, counts.aborts), (1, 1, 0));
        assert_eq!(recorder.peak_in_flight(), 1);
        assert!(recorder.violations().is_empty());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_recorded_box_sink_can_be_spawned() {
        let recorder = Recorder::counting();
        let sink: weir::BoxSink = Box::new(NullSink);
        let source = futures_util::stream::iter([Ok::<_, std::io::Error>(chunk())]);
        let ingestion = weir::ingest(
            source,
            Recorded::new(sink, recorder.clone()),
            weir::IngestOptions::default(),
        );
        let report = tokio::spawn(ingestion).await.unwrap().unwrap();
        assert_eq!(report.bytes_written, 4);
        assert_eq!(recorder.counts().finalized_ok, 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_counting_recorder_counts_without_a_log() {
        let recorder = Recorder::counting();
        let mut sink = Recorded::new(NullSink, recorder.clone());
        sink.write(chunk()).await.unwrap();
        sink.finalize().await.unwrap();
        sink.write(chunk()).await.unwrap();
        sink.abort(&Cause::Shutdown).await.unwrap();
        assert!(recorder.events().is_empty());
        let counts = recorder.counts();
        assert_eq!((counts.writes_called, counts.bytes_acknowledged), (2, 8));
        assert_eq!(
            (counts.finalized_ok, counts.aborts, counts.writes_alive_at_abort),
            (1, 1, 0)
        );
        assert_eq!(recorder.abort_reason(), Some(ErrorKind::Shutdown));
        assert_eq!(
            recorder.violations(),
            vec![
                "write 1 called after a terminal call".to_owned(),
                "write 1 polled after a terminal call began".to_owned(),
            ]
        );
    }
}
