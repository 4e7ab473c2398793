//! The `Sink` contract: `write`, then exactly one terminal call.

use std::future::Future;

use bytes::Bytes;
use futures_util::future::BoxFuture;

use crate::error::{BoxError, Cause};

/// Where the bytes go: `write` zero or more times, then exactly one terminal
/// sequence.
///
/// # The contract
///
/// [`ingest`](crate::ingest) drives a sink through exactly one of:
///
/// - `write`\* then `finalize` returning `Ok`: **committed**;
/// - `write`\* then `abort`: **aborted** (exactly once);
/// - `write`\* then `finalize` returning `Err`, then `abort` (exactly once).
///
/// There is never a `write` after a terminal call, never a `finalize` after
/// `abort`, and never an `abort` after a successful `finalize`. `abort` takes
/// `self`, so nothing can follow it; `finalize` takes `&mut self` only so
/// that a failed (or panicking) `finalize` can still be followed by `abort`;
/// after a successful one the sink is dropped.
///
/// - `write` is called in source order. It returns a future that must not
///   borrow the sink: the ingestion may hold up to
///   [`max_in_flight`](crate::IngestOptionsBuilder::max_in_flight) of them at
///   once and they may complete in any order. `Ok` means the sink has taken
///   responsibility for the chunk; it becomes durable or visible only when
///   `finalize` returns `Ok`. A write future may be dropped before it
///   completes (on cancellation, a write timeout or another failure); the
///   sink then receives `abort` and must clean up whatever that write
///   started.
/// - `finalize` is called only after every write future has completed with
///   `Ok`. `Ok` means the data is committed: visible to readers, atomically.
///   `Err` means nothing is committed; `abort` follows.
/// - `abort` receives the root cause. It must undo everything the sink did;
///   its own failure is reported as a secondary error and never replaces the
///   cause. It is bounded by the
///   [abort timeout](crate::IngestOptionsBuilder::abort_timeout).
///
/// A panic inside any of these is caught and treated as a failure of that
/// call.
///
/// A sink that can take a chunk without waiting (it discards, copies or
/// queues it) may also implement [`try_write`](Sink::try_write), which
/// `ingest` calls first: the chunk is then taken without a future.
///
/// For dynamic dispatch, use [`BoxSink`] (a `Box<dyn DynSink>`), which
/// implements `Sink` itself.
pub trait Sink: Send {
    /// Hands one chunk to the sink; returns a future that completes when the
    /// sink has taken responsibility for it.
    ///
    /// # Cancel safety
    ///
    /// The returned future may be dropped before it completes; `abort`
    /// follows.
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<Self>;

    /// Takes one chunk at once if the sink can, without building a future:
    /// [`TryWrite::Done`] is that chunk's write, completed (as a `write`
    /// future that is ready on its first poll); [`TryWrite::Declined`]
    /// hands the chunk back, and the caller passes it to
    /// [`write`](Sink::write) next. The default declines every chunk.
    ///
    /// It is called where `write` would be (in source order, never after a
    /// terminal call) and must not block: a declined chunk goes to `write`,
    /// whose future is what waits and what the write timeout bounds.
    fn try_write(&mut self, chunk: Bytes) -> TryWrite {
        TryWrite::Declined(chunk)
    }

    /// Commits everything written. `Ok` means committed; the sink is then
    /// dropped. `Err` means nothing is committed; `abort` follows.
    ///
    /// # Cancel safety
    ///
    /// `ingest` always drives `finalize` to completion.
    fn finalize(&mut self) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// Undoes everything; `cause` is the root cause of the failure.
    ///
    /// # Cancel safety
    ///
    /// `ingest` drops the future if it outlives the abort timeout; a sink
    /// whose abort can hang should also clean up in `Drop`.
    fn abort(self, cause: &Cause) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// What [`Sink::try_write`] did with a chunk.
#[derive(Debug)]
pub enum TryWrite {
    /// The chunk's write completed at once: `Ok` means the sink has taken
    /// responsibility for it, `Err` is the write's failure.
    Done(Result<(), BoxError>),
    /// Not taken: the chunk, for [`Sink::write`].
    Declined(Bytes),
}

impl<S: Sink> Sink for Box<S> {
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<S> {
        (**self).write(chunk)
    }

    fn try_write(&mut self, chunk: Bytes) -> TryWrite {
        (**self).try_write(chunk)
    }

    fn finalize(&mut self) -> impl Future<Output = Result<(), BoxError>> + Send {
        (**self).finalize()
    }

    fn abort(self, cause: &Cause) -> impl Future<Output = Result<(), BoxError>> + Send {
        (*self).abort(cause)
    }
}

/// The object-safe twin of [`Sink`], implemented for every `Sink + 'static`.
///
/// Use it through [`BoxSink`]; you should not need to implement it.
pub trait DynSink: Send {
    /// See [`Sink::write`].
    fn write_dyn(&mut self, chunk: Bytes) -> BoxFuture<'static, Result<(), BoxError>>;
    /// See [`Sink::try_write`].
    fn try_write_dyn(&mut self, chunk: Bytes) -> TryWrite;
    /// See [`Sink::finalize`].
    fn finalize_dyn(&mut self) -> BoxFuture<'_, Result<(), BoxError>>;
    /// See [`Sink::abort`].
    fn abort_dyn<'a>(self: Box<Self>, cause: &'a Cause) -> BoxFuture<'a, Result<(), BoxError>>;
}

impl<S: Sink + 'static> DynSink for S {
    fn write_dyn(&mut self, chunk: Bytes) -> BoxFuture<'static, Result<(), BoxError>> {
        Box::pin(self.write(chunk))
    }

    fn try_write_dyn(&mut self, chunk: Bytes) -> TryWrite {
        self.try_write(chunk)
    }

    fn finalize_dyn(&mut self) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(self.finalize())
    }

    fn abort_dyn<'a>(self: Box<Self>, cause: &'a Cause) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin((*self).abort(cause))
    }
}

/// A type-erased sink, for choosing a sink at run time.
pub type BoxSink = Box<dyn DynSink>;

impl Sink for Box<dyn DynSink> {
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<> {
        (**self).write_dyn(chunk)
    }

    fn try_write(&mut self, chunk: Bytes) -> TryWrite {
        (**self).try_write_dyn(chunk)
    }

    fn finalize(&mut self) -> impl Future<Output = Result<(), BoxError>> + Send {
        (**self).finalize_dyn()
    }

    fn abort(self, cause: &Cause) -> impl Future<Output = Result<(), BoxError>> + Send {
        self.abort_dyn(cause)
    }
}
