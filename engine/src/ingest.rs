//! The ingest loop: the one place that owns control flow.

use std::future::Future;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::task::{Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{FutureExt, Stream, StreamExt as _};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{AbortFailure, Cause, IngestError, OptionsError, PanicSite, panic_message};
use crate::in_flight::InFlight;
use crate::lifecycle::{self, Aborting};
use crate::options::{DEFAULT_ABORT_TIMEOUT, IngestOptions};
use crate::report::{AbortReport, IngestReport, Outcome, StageReport, Stats};
use crate::sink::{Sink, TryWrite};
use crate::stop::StopSignal;
use crate::transform::Pipeline;

/// Moves every byte of `source` through the transforms in `options` into
/// `sink`, then commits (`finalize`) or, on any failure, aborts.
///
/// At most `max_in_flight` writes are outstanding and the source is only
/// polled when a write slot is free, so memory stays bounded by
/// `max_in_flight x chunk_size` plus the source's and transforms' own
/// buffers, whatever the input size.
///
/// The outcome is atomic: `Ok` if and only if `finalize` returned `Ok`;
/// otherwise the sink was aborted exactly once and never finalized
/// successfully. When this returns, the source has been dropped and nothing
/// the ingestion started (writes, offloaded transform work, timers) is
/// still running. See the [`Sink`] docs for the full contract.
///
/// # Errors
///
/// An [`IngestError`] whose [`cause`](IngestError::cause) is the first
/// failure (invalid options, source, transform, write, write timeout,
/// cancellation, panic in user code, finalize, finalize timeout), with the
/// abort's own failure attached as secondary when `abort` failed too.
/// Every timeout is bounded; a zero timeout is invalid options.
///
/// # Cancel safety
///
/// Not cancel safe. Cancel through the options'
/// [`cancel_token`](crate::IngestOptionsBuilder::cancel_token) instead: the
/// ingestion then stops promptly (without waiting for a hung write) and
/// aborts the sink. Cancellation after the commit point (every write
/// acknowledged and `finalize` begun) has no effect.
///
/// Dropping the returned future makes no further call on the sink and drops
/// it, with whatever call was in progress:
///
/// - before the commit point (no `finalize` begun): the sink is dropped
///   after zero or more writes, with no terminal call; what it had staged is
///   the sink's to clean up in `Drop` ([`FileSink`](crate::FileSink)
///   removes its temporary file);
/// - during `finalize`: the finalize future is dropped midway, and the
///   outcome is what the sink had done by then. A sink whose commit cannot
///   be stopped once handed on completes it: [`FileSink`](crate::FileSink)
///   commits the complete file if its writer thread had the commit
///   command, and never a partial one;
/// - during `abort`: the abort future is dropped midway.
///
/// # Panics
///
/// Never because of its inputs: panics in the source, transforms and sink
/// are caught and reported as [`Cause::Panic`]. Polled outside any Tokio
/// runtime it returns [`OptionsError::NoRuntime`], and on a runtime without
/// the time driver [`OptionsError::NoTimeDriver`], in both cases before any
/// byte moves and with the sink aborted (without a timeout: there is no
/// timer to bound it with).
pub async fn ingest<St, Si>(source: St, sink: Si, options: IngestOptions) -> Result<IngestReport, IngestError>
where
    St: Stream<Item = io::Result<Bytes>> + Send,
    Si: Sink,
{
    run(source, sink, options, Membership::None).await
}

/// What a [`Registry`](crate::Registry) tells the loop about one ingestion.
#[derive(Debug)]
pub(crate) enum Membership {
    /// Not run through a registry.
    None,
    /// Admitted: the registry's shutdown token stops it.
    Admitted(CancellationToken),
    /// Refused: the registry is shutting down.
    Refused,
}

/// Why the ingestion cannot start, checked before any byte moves. Returns
/// the cause and whether a timer exists to bound the abort with.
fn refusal(options: &IngestOptions, membership: &Membership) -> Option<(Cause, bool)> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Some((OptionsError::NoRuntime.into(), false));
    }
    if !has_time_driver() {
        return Some((OptionsError::NoTimeDriver.into(), false));
    }
    if let Err(error) = options.validate() {
        return Some((error.into(), true));
    }
    if matches!(membership, Membership::Refused) {
        return Some((Cause::Refused, true));
    }
    None
}

/// Whether the current runtime has a time driver, which every timeout
/// needs. Tokio offers no query: creating a timer where there is none
/// panics, so the probe creates one (never polled, so never registered)
/// under `catch_unwind`. Only a runtime without timers pays the panic, and
/// its message goes to the panic hook once per refused ingestion.
fn has_time_driver() -> bool {
    catch_unwind(|| drop(tokio::time::sleep(Duration::ZERO))).is_ok()
}

pub(crate) async fn run<St, Si>(
    source: St,
    mut sink: Si,
    options: IngestOptions,
    membership: Membership,
) -> Result<IngestReport, IngestError>
where
    St: Stream<Item = io::Result<Bytes>> + Send,
    Si: Sink,
{
    let running = lifecycle::new();
    let mut tally = Tally::new();

    if let Some((cause, timer)) = refusal(&options, &membership) {
        drop(source);
        tracing::debug!(%cause, "refusing to start");
        // Invalid options may hold an invalid abort timeout: the default
        // bounds the abort then. Without a timer nothing can bound it.
        let limit = if options.abort_timeout.is_zero() {
            DEFAULT_ABORT_TIMEOUT
        } else {
            options.abort_timeout
        };
        return Err(abort(sink, running.abort(), cause, tally, timer.then_some(limit)).await);
    }

    let IngestOptions {
        chunk_size,
        max_in_flight,
        write_timeout,
        abort_timeout,
        finalize_timeout,
        cancel,
        transforms,
    } = options;
    // Without a registry, a token nobody cancels.
    let shutdown = match membership {
        Membership::Admitted(token) => token,
        Membership::None | Membership::Refused => CancellationToken::new(),
    };
    let mut pipeline = Pipeline::new(source, transforms, chunk_size);
    let mut exhausted = false;
    let mut in_flight = InFlight::new();
    let mut next_chunk: u64 = 0;
    let mut stop = StopSignal::new(shutdown, cancel);

    // One poll of this closure runs as many steps as are ready, so an
    // always-ready source and sink move many chunks per turn of the task
    // (up to Tokio's coop budget, one unit per chunk pulled), and the stop
    // signal's full look (a waker registration) happens once per turn: in
    // between, one atomic load per step tells whether a token woke it.
    let failure: Option<Cause> = std::future::poll_fn(|cx| {
        let mut look = true;
        loop {
            if exhausted && in_flight.is_empty() {
                return Poll::Ready(None);
            }
            // Stop first, then write outcomes, then the source.
            if look || stop.woken() {
                look = false;
                if let Poll::Ready(stopped) = Pin::new(&mut stop).poll(cx) {
                    return Poll::Ready(Some(stopped.into()));
                }
            }
            if !in_flight.is_empty()
                && let Poll::Ready(Some(done)) = in_flight.poll_next_unpin(cx)
            {
                match done {
                    Ok((bytes, latency)) => tally.stats.record_write(bytes, latency),
                    Err(cause) => return Poll::Ready(Some(cause)),
                }
                continue;
            }
            if exhausted || in_flight.len() >= max_in_flight {
                // Every write in flight was polled with this task's waker.
                return Poll::Pending;
            }
            // An always-ready source and sink would otherwise never yield:
            // one unit of the task's coop budget per chunk pulled, so that
            // other tasks on the same worker still run. Out of budget, this
            // registers the task to be polled again.
            let coop = ready!(tokio::task::coop::poll_proceed(cx));
            match pipeline.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    coop.made_progress();
                    let index = next_chunk;
                    next_chunk += 1;
                    // A sink that takes the chunk at once needs no future:
                    // its write completed on the spot, with zero latency.
                    let chunk = match try_write(&mut sink, chunk, index) {
                        Ok(Taken::Done(len)) => {
                            tally.stats.peak_in_flight = tally.stats.peak_in_flight.max(in_flight.len() + 1);
                            tally.stats.record_write(len, Duration::ZERO);
                            continue;
                        }
                        Ok(Taken::Declined(chunk)) => chunk,
                        Err(cause) => return Poll::Ready(Some(cause)),
                    };
                    match start_write(&mut sink, chunk, index, write_timeout) {
                        Ok(write) => in_flight.push(write),
                        Err(cause) => return Poll::Ready(Some(cause)),
                    }
                    tally.stats.peak_in_flight = tally.stats.peak_in_flight.max(in_flight.len());
                    // Polled at once, with this task's waker: most writes
                    // (a fast or a write-behind sink) complete right here.
                    if let Poll::Ready(Some(done)) = in_flight.poll_next_unpin(cx) {
                        match done {
                            Ok((bytes, latency)) => tally.stats.record_write(bytes, latency),
                            Err(cause) => return Poll::Ready(Some(cause)),
                        }
                    }
                }
                Poll::Ready(Some(Err(cause))) => return Poll::Ready(Some(cause)),
                Poll::Ready(None) => exhausted = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await;
    // No write is polled or started after this point: every outstanding
    // write future is dropped before any terminal call.
    drop(in_flight);
    tally.stats.bytes_read = pipeline.bytes_read;
    tally.stats.chunks_read = pipeline.chunks_read;
    tally.stages = pipeline.close().await;
    drop(pipeline);

    // A stop that arrived with the last acknowledgement still wins: the
    // commit point has not been passed yet.
    if let Some(cause) = failure.or_else(|| stop.fired().map(Cause::from)) {
        tracing::debug!(%cause, "ingestion failed, aborting the sink");
        return Err(abort(sink, running.abort(), cause, tally, Some(abort_timeout)).await);
    }
    // The commit point: from here on the tokens have no effect.
    let finalizing = running.finalize();
    drop(stop);

    let finalize_started = Instant::now();
    let finalized = tokio::time::timeout(finalize_timeout, guarded(|| sink.finalize())).await;
    tally.finalize_duration = Some(finalize_started.elapsed());
    let cause = match finalized {
        Ok(Ok(Ok(()))) => {
            finalizing.committed();
            drop(sink);
            let report = tally.into_report(Outcome::Committed, None);
            tracing::debug!(bytes = report.bytes_written, "ingestion committed");
            return Ok(report);
        }
        Ok(Ok(Err(error))) => Cause::Finalize { error },
        Ok(Err(message)) => Cause::Panic {
            site: PanicSite::SinkFinalize,
            message,
        },
        Err(_) => Cause::FinalizeTimeout {
            timeout: finalize_timeout,
        },
    };
    tracing::debug!(%cause, "finalize failed, aborting the sink");
    Err(abort(sink, finalizing.failed(), cause, tally, Some(abort_timeout)).await)
}

/// What [`try_write`] did with a chunk.
enum Taken {
    /// Written at once: its length.
    Done(usize),
    /// Declined: for `start_write`.
    Declined(Bytes),
}

/// Offers the chunk to `sink.try_write`, catching a panic in it.
#[inline]
fn try_write<Si: Sink>(sink: &mut Si, chunk: Bytes, index: u64) -> Result<Taken, Cause> {
    let len = chunk.len();
    match catch_unwind(AssertUnwindSafe(|| sink.try_write(chunk))) {
        Ok(TryWrite::Done(Ok(()))) => Ok(Taken::Done(len)),
        Ok(TryWrite::Declined(chunk)) => Ok(Taken::Declined(chunk)),
        Ok(TryWrite::Done(Err(error))) => Err(Cause::Write { chunk: index, error }),
        Err(payload) => Err(Cause::panic(PanicSite::SinkWrite, payload)),
    }
}

/// Calls `sink.write` (catching a panic in the call itself) and wraps the
/// returned future with its timeout, panic catching and latency measurement.
///
/// A write that completes on its first poll waited for nothing: its latency
/// is zero and no clock is read. Only a write still pending after its first
/// poll reads the clock (once then, once at its acknowledgement) and starts
/// its timeout, so the common case (a fast or a write-behind sink) pays for
/// neither.
fn start_write<Si: Sink>(
    sink: &mut Si,
    chunk: Bytes,
    index: u64,
    timeout: Option<Duration>,
) -> Result<impl Future<Output = Result<(usize, Duration), Cause>> + use<Si>, Cause> {
    let len = chunk.len();
    let write = catch_unwind(AssertUnwindSafe(|| sink.write(chunk)))
        .map_err(|payload| Cause::panic(PanicSite::SinkWrite, payload))?;
    Ok(async move {
        let mut write = pin!(AssertUnwindSafe(write).catch_unwind());
        // Created by the first poll that finds the write pending; boxed, so
        // that a write done on its first poll (no clock read, no timer) moves
        // a small future into its slot.
        let mut waiting: Option<Box<Waiting>> = None;
        let polled = std::future::poll_fn(|cx| {
            if let Poll::Ready(output) = write.as_mut().poll(cx) {
                return Poll::Ready(Ok(output));
            }
            let waiting = waiting.get_or_insert_with(|| Box::new(Waiting::start(timeout)));
            match waiting.timed_out(cx) {
                Some(limit) => Poll::Ready(Err(limit)),
                None => Poll::Pending,
            }
        })
        .await;
        let latency = waiting.map_or(Duration::ZERO, |waiting| waiting.since.elapsed());
        match polled {
            Ok(Ok(Ok(()))) => Ok((len, latency)),
            Ok(Ok(Err(error))) => Err(Cause::Write { chunk: index, error }),
            Ok(Err(payload)) => Err(Cause::panic(PanicSite::SinkWrite, payload)),
            Err(limit) => Err(Cause::WriteTimeout {
                chunk: index,
                timeout: limit,
            }),
        }
    })
}

/// A write that was still pending after its first poll: since when, and
/// its timeout, which starts then.
struct Waiting {
    /// The wall clock, not Tokio's: with Tokio's `test-util` feature
    /// anywhere in the build, its `Instant::now` takes a lock.
    since: std::time::Instant,
    deadline: Option<(Pin<Box<tokio::time::Sleep>>, Duration)>,
}

impl Waiting {
    fn start(timeout: Option<Duration>) -> Self {
        Self {
            since: std::time::Instant::now(),
            deadline: timeout.map(|limit| (Box::pin(tokio::time::sleep(limit)), limit)),
        }
    }

    /// The timeout, once it has fired; registers `cx` with the timer.
    fn timed_out(&mut self, cx: &mut std::task::Context<'_>) -> Option<Duration> {
        let (sleep, limit) = self.deadline.as_mut()?;
        sleep.as_mut().poll(cx).is_ready().then_some(*limit)
    }
}

/// Runs a call that returns a future, and the future, catching panics in
/// both; a panic comes back as its message.
async fn guarded<F, T>(call: impl FnOnce() -> F) -> Result<T, String>
where
    F: Future<Output = T>,
{
    let future = catch_unwind(AssertUnwindSafe(call)).map_err(|payload| panic_message(payload.as_ref()))?;
    AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .map_err(|payload| panic_message(payload.as_ref()))
}

/// The figures of an ingestion, gathered as it runs, for its report: one
/// value per ingestion, handed to whichever terminal path it takes.
struct Tally {
    started: Instant,
    stats: Stats,
    stages: Vec<StageReport>,
    finalize_duration: Option<Duration>,
}

impl Tally {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            stats: Stats::new(),
            stages: Vec::new(),
            finalize_duration: None,
        }
    }

    fn into_report(self, outcome: Outcome, abort: Option<AbortReport>) -> IngestReport {
        self.stats.into_report(
            outcome,
            self.started.elapsed(),
            self.stages,
            self.finalize_duration,
            abort,
        )
    }
}

/// Aborts the sink exactly once (the `Aborting` permission is consumed),
/// bounded by `timeout`, and builds the error with the root cause first and
/// any abort failure as secondary.
async fn abort<Si: Sink>(
    sink: Si,
    aborting: Aborting,
    cause: Cause,
    tally: Tally,
    timeout: Option<Duration>,
) -> IngestError {
    let at = tally.started.elapsed();
    let abort_started = Instant::now();
    let attempt = guarded(|| sink.abort(&cause));
    let result = match timeout {
        Some(limit) => tokio::time::timeout(limit, attempt).await.map_err(|_| limit),
        None => Ok(attempt.await),
    };
    let failure = match result {
        Ok(Ok(Ok(()))) => None,
        Ok(Ok(Err(error))) => Some(AbortFailure::Failed(error)),
        Ok(Err(message)) => Some(AbortFailure::Panicked(message)),
        Err(limit) => Some(AbortFailure::TimedOut(limit)),
    };
    aborting.aborted();
    if let Some(failure) = &failure {
        tracing::warn!(%cause, %failure, "sink abort failed");
    }
    let abort_report = AbortReport {
        reason: cause.kind(),
        at,
        bytes_acknowledged: tally.stats.bytes_written,
        duration: abort_started.elapsed(),
        clean: failure.is_none(),
    };
    let report = tally.into_report(Outcome::Aborted(cause.kind()), Some(abort_report));
    IngestError::new(cause, failure, report)
}
