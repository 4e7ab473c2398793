//! `Registry`: the running ingestions of a process, and graceful shutdown.
//!
//! The accept/drain race is decided by one mutex-guarded [`Gate`]: an
//! ingestion is either admitted before the gate closes (and is then drained
//! or cancelled by the shutdown) or refused after it closes. Its loom models
//! are in `loom_registry.rs`.

use std::future::Future;
use std::io;
use std::sync::PoisonError;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{ErrorKind, IngestError};
use crate::ingest::{Membership, run};
use crate::options::IngestOptions;
use crate::report::IngestReport;
use crate::sink::Sink;
use crate::sync::Mutex;

/// How an admitted ingestion ended, as the gate counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    Committed,
    ShutDown,
    Failed,
}

/// Counters of the gate, at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct GateState {
    pub(crate) closed: bool,
    pub(crate) active: usize,
    pub(crate) completed: u64,
    pub(crate) shut_down: u64,
    pub(crate) failed: u64,
    pub(crate) refused: u64,
}

/// Admission and accounting, under one lock.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    state: Mutex<GateState>,
}

impl Gate {
    fn with<T>(&self, f: impl FnOnce(&mut GateState) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Admits a new ingestion unless the gate is closed.
    pub(crate) fn admit(&self) -> bool {
        self.with(|s| {
            if s.closed {
                s.refused += 1;
                false
            } else {
                s.active += 1;
                true
            }
        })
    }

    /// Counts an admitted ingestion's end; returns how many are still active.
    pub(crate) fn finish(&self, ended: Ended) -> usize {
        self.with(|s| {
            s.active -= 1;
            match ended {
                Ended::Committed => s.completed += 1,
                Ended::ShutDown => s.shut_down += 1,
                Ended::Failed => s.failed += 1,
            }
            s.active
        })
    }

    /// Closes the gate: from now on every admission is refused.
    pub(crate) fn close(&self) -> GateState {
        self.with(|s| {
            s.closed = true;
            *s
        })
    }

    pub(crate) fn snapshot(&self) -> GateState {
        self.with(|s| *s)
    }
}

/// What a graceful shutdown did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownSummary {
    /// Ingestions that committed (before or during the drain).
    pub completed: u64,
    /// Ingestions cancelled by the shutdown when the grace period ran out;
    /// each was aborted exactly once.
    pub aborted: u64,
    /// Ingestions that failed for another reason.
    pub failed: u64,
    /// Ingestions refused because the registry was shutting down.
    pub refused: u64,
    /// How many were still running when the grace period ended.
    pub cancelled_at_deadline: usize,
    /// From the start of the shutdown to the last ingestion's return.
    pub took: Duration,
}

struct Inner {
    gate: Gate,
    shutdown: CancellationToken,
    idle: Notify,
}

/// The running ingestions of a process, with graceful shutdown.
///
/// Run ingestions through [`Registry::ingest`]; [`Registry::shutdown`]
/// stops admitting new ones (they get [`Cause::Refused`](crate::Cause),
/// their source closed and their sink aborted), lets the running ones finish
/// within a grace period, then cancels the rest (each aborted exactly once,
/// with [`Cause::Shutdown`](crate::Cause)) and returns a summary. Cheap to
/// clone; clones share the same registry.
#[derive(Clone)]
pub struct Registry {
    inner: std::sync::Arc<Inner>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("state", &self.inner.gate.snapshot())
            .finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

/// Counts an admitted ingestion's end even if its future is dropped.
struct Admission {
    inner: std::sync::Arc<Inner>,
    ended: Ended,
}

impl Drop for Admission {
    fn drop(&mut self) {
        if self.inner.gate.finish(self.ended) == 0 {
            self.inner.idle.notify_waiters();
        }
    }
}

impl Registry {
    /// An empty registry, admitting ingestions.
    pub fn new() -> Self {
        Self {
            inner: std::sync::Arc::new(Inner {
                gate: Gate::default(),
                shutdown: CancellationToken::new(),
                idle: Notify::new(),
            }),
        }
    }

    /// Runs [`ingest`](crate::ingest()) as a member of this registry, or refuses it when the
    /// registry is shutting down (the source is dropped and the sink aborted
    /// with [`Cause::Refused`](crate::Cause), like invalid options).
    ///
    /// Admission is decided when this is **called**, not when the returned
    /// future is first polled: an ingestion handed to `tokio::spawn` before
    /// a shutdown begins is drained by it, never refused. The future does
    /// not borrow the registry.
    ///
    /// # Errors
    ///
    /// As [`ingest`](crate::ingest()), plus `Refused` and `Shutdown`.
    ///
    /// # Cancel safety
    ///
    /// As [`ingest`](crate::ingest()): not cancel safe; cancel through the options' token.
    /// Dropping the future still counts the ingestion as ended.
    pub fn ingest<St, Si>(
        &self,
        source: St,
        sink: Si,
        options: IngestOptions,
    ) -> impl Future<Output = Result<IngestReport, IngestError>> + use<St, Si>
    where
        St: Stream<Item = io::Result<Bytes>> + Send,
        Si: Sink,
    {
        let admission = self.inner.gate.admit().then(|| Admission {
            inner: std::sync::Arc::clone(&self.inner),
            ended: Ended::Failed,
        });
        let membership = match &admission {
            Some(_) => Membership::Admitted(self.inner.shutdown.clone()),
            None => Membership::Refused,
        };
        async move {
            let result = run(source, sink, options, membership).await;
            if let Some(mut admission) = admission {
                admission.ended = match &result {
                    Ok(_) => Ended::Committed,
                    Err(error) if error.kind() == ErrorKind::Shutdown => Ended::ShutDown,
                    Err(_) => Ended::Failed,
                };
            }
            result
        }
    }

    /// Ingestions running now.
    pub fn active(&self) -> usize {
        self.inner.gate.snapshot().active
    }

    /// `true` once a shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.gate.snapshot().closed
    }

    /// Stops admitting, waits up to `grace` for the running ingestions to
    /// finish, cancels the rest, waits for them to return (promptly: they do
    /// not wait for hung writes, and their aborts are bounded by the abort
    /// timeout), and returns what happened.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping it leaves the registry closed; the ingestions
    /// it had cancelled still abort.
    pub async fn shutdown(&self, grace: Duration) -> ShutdownSummary {
        let started = Instant::now();
        let at_close = self.inner.gate.close();
        tracing::info!(active = at_close.active, ?grace, "shutdown: draining");
        let deadline = started + grace;
        let drained = self.wait_idle(Some(deadline)).await;
        let cancelled_at_deadline = if drained {
            0
        } else {
            let still = self.active();
            tracing::warn!(still, "shutdown: grace period over, cancelling");
            self.inner.shutdown.cancel();
            self.wait_idle(None).await;
            still
        };
        let end = self.inner.gate.snapshot();
        let summary = ShutdownSummary {
            completed: end.completed,
            aborted: end.shut_down,
            failed: end.failed,
            refused: end.refused,
            cancelled_at_deadline,
            took: started.elapsed(),
        };
        tracing::info!(?summary, "shutdown: done");
        summary
    }

    /// Waits until no ingestion is active, or until `deadline`; `true` when
    /// idle.
    async fn wait_idle(&self, deadline: Option<Instant>) -> bool {
        loop {
            let notified = self.inner.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.active() == 0 {
                return true;
            }
            match deadline {
                Some(deadline) => {
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        return self.active() == 0;
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Waits for SIGTERM or SIGINT, then runs [`shutdown`](Self::shutdown).
    ///
    /// Tokio keeps its signal handlers installed for the life of the
    /// process: after this returns, SIGTERM and SIGINT no longer end the
    /// process by default, so exit once the summary is handled.
    ///
    /// # Errors
    ///
    /// When the signal handlers cannot be installed.
    #[cfg(feature = "signal")]
    pub async fn shutdown_on_signal(&self, grace: Duration) -> io::Result<ShutdownSummary> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
        Ok(self.shutdown(grace).await)
    }
}
