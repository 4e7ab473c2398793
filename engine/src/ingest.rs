//! The ingest loop: the one place that owns control flow.

use std::future::Future;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{FutureExt, Stream, StreamExt};
use tokio::time::Instant;

use crate::error::{AbortFailure, Cause, IngestError, OptionsError, PanicSite, panic_message};
use crate::in_flight::InFlight;
use crate::lifecycle::{self, Aborting};
use crate::options::IngestOptions;
use crate::report::{AbortReport, IngestReport, Outcome, StageReport, Stats};
use crate::sink::Sink;
use crate::stop::{Stop, StopSignal};
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
/// cancellation, panic in user code, finalize), with the abort's own failure
/// attached as secondary when `abort` failed too.
///
/// # Cancel safety
///
/// Not cancel safe: dropping the returned future drops the sink without a
/// terminal call. Cancel through the options'
/// [`cancel_token`](crate::IngestOptionsBuilder::cancel_token) instead: the
/// ingestion then stops promptly (without waiting for a hung write) and
/// aborts the sink. Cancellation after the commit point (every write
/// acknowledged and `finalize` begun) has no effect.
///
/// # Panics
///
/// Never because of its inputs: panics in the source, transforms and sink
/// are caught and reported as [`Cause::Panic`]. It needs a Tokio runtime
/// with the time driver enabled; polled outside any runtime it returns
/// [`OptionsError::NoRuntime`].
pub async fn ingest<St, Si>(source: St, mut sink: Si, options: IngestOptions) -> Result<IngestReport, IngestError>
where
    St: Stream<Item = io::Result<Bytes>> + Send,
    Si: Sink,
{
    let started = Instant::now();
    let (running, observer) = lifecycle::new();
    let mut stats = Stats::new();

    let in_runtime = tokio::runtime::Handle::try_current().is_ok();
    let refusal = if !in_runtime {
        Some(Cause::InvalidOptions(OptionsError::NoRuntime))
    } else if let Err(error) = options.validate() {
        Some(Cause::InvalidOptions(error))
    } else if options.registry.refused {
        Some(Cause::Refused)
    } else {
        None
    };
    if let Some(cause) = refusal {
        drop(source);
        tracing::debug!(%cause, "refusing to start");
        // Without a runtime there is no timer to bound the abort with.
        let timeout = (in_runtime && !options.abort_timeout.is_zero()).then_some(options.abort_timeout);
        let tally = Tally::new(started, stats, Vec::new(), None);
        return Err(abort(sink, running.abort(), cause, tally, timeout).await);
    }

    let IngestOptions {
        chunk_size,
        max_in_flight,
        write_timeout,
        abort_timeout,
        cancel,
        transforms,
        registry,
    } = options;
    // Without a registry, a token nobody cancels.
    let shutdown = registry.shutdown.unwrap_or_default();
    let mut pipeline = Pipeline::new(source, transforms, chunk_size);
    let mut exhausted = false;
    let mut in_flight = InFlight::new();
    let mut next_chunk: u64 = 0;
    let mut stop = StopSignal::new(shutdown.clone(), cancel.clone());

    let failure: Option<Cause> = loop {
        if exhausted && in_flight.is_empty() {
            break None;
        }
        // An always-ready source and sink would otherwise never yield: spend
        // one unit of the task's coop budget per step, so that other tasks on
        // the same worker still run.
        tokio::task::coop::consume_budget().await;
        let may_pull = !exhausted && in_flight.len() < max_in_flight;
        tokio::select! {
            biased;
            stopped = &mut stop => {
                // The loop still holds `Running`, so the request is accepted
                // and the commit point below refuses to pass.
                let _ = observer.request_cancel();
                break Some(match stopped {
                    Stop::Shutdown => Cause::Shutdown,
                    Stop::Cancelled => Cause::Cancelled,
                });
            }
            Some(done) = in_flight.next(), if !in_flight.is_empty() => match done {
                Ok((bytes, latency)) => stats.record_write(bytes, latency),
                Err(cause) => break Some(cause),
            },
            item = pipeline.next(), if may_pull => match item {
                Some(Ok(chunk)) => {
                    let index = next_chunk;
                    next_chunk += 1;
                    match start_write(&mut sink, chunk, index, write_timeout) {
                        Ok(write) => in_flight.push(write),
                        Err(cause) => break Some(cause),
                    }
                    stats.peak_in_flight = stats.peak_in_flight.max(in_flight.len());
                }
                Some(Err(cause)) => break Some(cause),
                None => exhausted = true,
            },
        }
    };
    // No write is polled or started after this point: every outstanding
    // write future is dropped before any terminal call.
    drop(in_flight);
    stats.bytes_read = pipeline.bytes_read;
    stats.chunks_read = pipeline.chunks_read;
    let stages = pipeline.close().await;
    drop(pipeline);

    if let Some(cause) = failure {
        tracing::debug!(%cause, "ingestion failed, aborting the sink");
        let tally = Tally::new(started, stats, stages, None);
        return Err(abort(sink, running.abort(), cause, tally, Some(abort_timeout)).await);
    }
    // A cancellation that arrived with the last acknowledgement still wins:
    // the commit point has not been passed yet.
    let late_cancel = if shutdown.is_cancelled() {
        Some(Cause::Shutdown)
    } else if cancel.is_cancelled() {
        Some(Cause::Cancelled)
    } else {
        None
    };
    if let Some(cause) = late_cancel {
        let tally = Tally::new(started, stats, stages, None);
        return Err(abort(sink, running.abort(), cause, tally, Some(abort_timeout)).await);
    }
    let finalizing = match running.finalize() {
        Ok(finalizing) => finalizing,
        Err(aborting) => {
            let cause = if shutdown.is_cancelled() {
                Cause::Shutdown
            } else {
                Cause::Cancelled
            };
            let tally = Tally::new(started, stats, stages, None);
            return Err(abort(sink, aborting, cause, tally, Some(abort_timeout)).await);
        }
    };

    let finalize_started = Instant::now();
    let finalized = guarded(|| sink.finalize()).await;
    let finalize_duration = Some(finalize_started.elapsed());
    let cause = match finalized {
        Ok(Ok(())) => {
            finalizing.committed();
            drop(sink);
            let report = stats.into_report(Outcome::Committed, started.elapsed(), stages, finalize_duration, None);
            tracing::debug!(bytes = report.bytes_written, "ingestion committed");
            return Ok(report);
        }
        Ok(Err(error)) => Cause::Finalize { error },
        Err(message) => Cause::Panic {
            site: PanicSite::SinkFinalize,
            message,
        },
    };
    tracing::debug!(%cause, "finalize failed, aborting the sink");
    let tally = Tally::new(started, stats, stages, finalize_duration);
    Err(abort(sink, finalizing.failed(), cause, tally, Some(abort_timeout)).await)
}

/// Calls `sink.write` (catching a panic in the call itself) and wraps the
/// returned future with its timeout, panic catching and latency measurement.
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
        // The wall clock, not Tokio's: with Tokio's `test-util` feature
        // anywhere in the build, its `Instant::now` takes a lock.
        let issued = std::time::Instant::now();
        let write = AssertUnwindSafe(write).catch_unwind();
        let result = match timeout {
            Some(limit) => match tokio::time::timeout(limit, write).await {
                Ok(result) => result,
                Err(_) => {
                    return Err(Cause::WriteTimeout {
                        chunk: index,
                        timeout: limit,
                    });
                }
            },
            None => write.await,
        };
        match result {
            Ok(Ok(())) => Ok((len, issued.elapsed())),
            Ok(Err(error)) => Err(Cause::Write { chunk: index, error }),
            Err(payload) => Err(Cause::panic(PanicSite::SinkWrite, payload)),
        }
    })
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

/// The figures of an ended ingestion, for its report.
struct Tally {
    started: Instant,
    stats: Stats,
    stages: Vec<StageReport>,
    finalize_duration: Option<Duration>,
}

impl Tally {
    fn new(started: Instant, stats: Stats, stages: Vec<StageReport>, finalize_duration: Option<Duration>) -> Self {
        Self {
            started,
            stats,
            stages,
            finalize_duration,
        }
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
    let Tally {
        started,
        stats,
        stages,
        finalize_duration,
    } = tally;
    let abort_report = AbortReport {
        reason: cause.kind(),
        at,
        bytes_acknowledged: stats.bytes_written,
        duration: abort_started.elapsed(),
        clean: failure.is_none(),
    };
    let report = stats.into_report(
        Outcome::Aborted(cause.kind()),
        started.elapsed(),
        stages,
        finalize_duration,
        Some(abort_report),
    );
    IngestError::new(cause, failure, report)
}
