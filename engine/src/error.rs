//! Errors: the root cause of a failed ingestion, kept apart from a secondary
//! failure of `abort`.

use std::fmt;
use std::time::Duration;

use crate::report::IngestReport;

/// A boxed error, the currency of sinks and transforms (as in tower).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why an [`IngestOptions`](crate::IngestOptions) value was refused.
///
/// Options are validated by [`ingest`](crate::ingest) before any byte moves;
/// an invalid value is reported as [`Cause::InvalidOptions`], never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsError {
    /// `chunk_size` was zero.
    #[error("chunk size must be at least 1 byte, got 0")]
    ZeroChunkSize,
    /// `chunk_size` exceeded [`MAX_CHUNK_SIZE`](crate::MAX_CHUNK_SIZE).
    #[error("chunk size {got} exceeds the maximum of {max} bytes")]
    ChunkSizeTooLarge {
        /// The value given.
        got: usize,
        /// The largest value accepted.
        max: usize,
    },
    /// `max_in_flight` was zero: no write could ever start.
    #[error("max in-flight writes must be at least 1, got 0")]
    ZeroMaxInFlight,
    /// `max_in_flight` exceeded [`MAX_IN_FLIGHT`](crate::MAX_IN_FLIGHT).
    #[error("max in-flight writes {got} exceeds the maximum of {max}")]
    MaxInFlightTooLarge {
        /// The value given.
        got: usize,
        /// The largest value accepted.
        max: usize,
    },
    /// A zero write timeout would fail every write.
    #[error("write timeout must be greater than zero")]
    ZeroWriteTimeout,
    /// A zero abort timeout would give up on every abort.
    #[error("abort timeout must be greater than zero")]
    ZeroAbortTimeout,
    /// A zero finalize timeout would give up on every finalize.
    #[error("finalize timeout must be greater than zero")]
    ZeroFinalizeTimeout,
    /// `ingest` was polled outside a Tokio runtime.
    #[error("ingest must run inside a Tokio runtime (with the time driver enabled)")]
    NoRuntime,
    /// The Tokio runtime has no time driver, which every timeout needs.
    #[error(
        "ingest needs the Tokio runtime's time driver: call `enable_time` (or `enable_all`) on the runtime builder"
    )]
    NoTimeDriver,
}

/// Where a panic was caught.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PanicSite {
    /// The source's `poll_next`.
    Source,
    /// A transform stage, by name.
    Transform(String),
    /// `Sink::write` or the future it returned.
    SinkWrite,
    /// `Sink::finalize`.
    SinkFinalize,
}

impl fmt::Display for PanicSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Source => f.write_str("the source"),
            Self::Transform(name) => write!(f, "transform `{name}`"),
            Self::SinkWrite => f.write_str("the sink's write"),
            Self::SinkFinalize => f.write_str("the sink's finalize"),
        }
    }
}

/// The first failure of an ingestion: the reason the sink was aborted.
///
/// This is what [`Sink::abort`](crate::Sink::abort) receives, and what
/// [`IngestError::cause`] returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Cause {
    /// The options were refused before any byte moved. The message says
    /// which one; the [`OptionsError`] is the payload, not a separate
    /// `source()` (it would repeat the same text).
    #[error("invalid options: {0}")]
    InvalidOptions(OptionsError),
    /// The source yielded an error.
    #[error("source failed after {bytes_read} bytes")]
    Source {
        /// Bytes read from the source before it failed.
        bytes_read: u64,
        /// The source's error.
        #[source]
        error: std::io::Error,
    },
    /// A transform stage returned an error.
    #[error("transform `{stage}` failed")]
    Transform {
        /// The stage's name.
        stage: String,
        /// The transform's error.
        #[source]
        error: BoxError,
    },
    /// A sink write returned an error.
    #[error("sink write of chunk {chunk} failed")]
    Write {
        /// Zero-based index of the chunk handed to the sink.
        chunk: u64,
        /// The sink's error.
        #[source]
        error: BoxError,
    },
    /// A sink write did not complete within the write timeout.
    #[error("sink write of chunk {chunk} did not complete within {timeout:?}")]
    WriteTimeout {
        /// Zero-based index of the chunk handed to the sink.
        chunk: u64,
        /// The configured per-write timeout.
        timeout: Duration,
    },
    /// The cancellation token fired before the commit point.
    #[error("cancelled before commit")]
    Cancelled,
    /// A graceful shutdown ran out of grace and cancelled the ingestion
    /// before the commit point.
    #[error("cancelled by shutdown after the grace period")]
    Shutdown,
    /// The registry was shutting down and refused to start the ingestion.
    #[error("refused: shutting down, no new ingestion is accepted")]
    Refused,
    /// User code panicked; the panic was caught.
    #[error("{site} panicked: {message}")]
    Panic {
        /// Where the panic happened.
        site: PanicSite,
        /// The panic payload, when it was a string.
        message: String,
    },
    /// `Sink::finalize` returned an error; the sink was then aborted.
    #[error("sink finalize failed")]
    Finalize {
        /// The sink's error.
        #[source]
        error: BoxError,
    },
    /// `Sink::finalize` did not complete within the finalize timeout; the
    /// finalize future was dropped and the sink aborted.
    #[error("sink finalize did not complete within {timeout:?}")]
    FinalizeTimeout {
        /// The configured finalize timeout.
        timeout: Duration,
    },
}

impl From<OptionsError> for Cause {
    fn from(error: OptionsError) -> Self {
        Self::InvalidOptions(error)
    }
}

/// The kind of a [`Cause`], for matching and reporting without the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// See [`Cause::InvalidOptions`].
    InvalidOptions,
    /// See [`Cause::Source`].
    Source,
    /// See [`Cause::Transform`].
    Transform,
    /// See [`Cause::Write`].
    Write,
    /// See [`Cause::WriteTimeout`].
    WriteTimeout,
    /// See [`Cause::Cancelled`].
    Cancelled,
    /// See [`Cause::Shutdown`].
    Shutdown,
    /// See [`Cause::Refused`].
    Refused,
    /// See [`Cause::Panic`].
    Panic,
    /// See [`Cause::Finalize`].
    Finalize,
    /// See [`Cause::FinalizeTimeout`].
    FinalizeTimeout,
}

impl ErrorKind {
    /// A stable lowercase name, for logs and result files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidOptions => "invalid_options",
            Self::Source => "source",
            Self::Transform => "transform",
            Self::Write => "write",
            Self::WriteTimeout => "write_timeout",
            Self::Cancelled => "cancelled",
            Self::Shutdown => "shutdown",
            Self::Refused => "refused",
            Self::Panic => "panic",
            Self::Finalize => "finalize",
            Self::FinalizeTimeout => "finalize_timeout",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Cause {
    /// The kind of this cause.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidOptions(_) => ErrorKind::InvalidOptions,
            Self::Source { .. } => ErrorKind::Source,
            Self::Transform { .. } => ErrorKind::Transform,
            Self::Write { .. } => ErrorKind::Write,
            Self::WriteTimeout { .. } => ErrorKind::WriteTimeout,
            Self::Cancelled => ErrorKind::Cancelled,
            Self::Shutdown => ErrorKind::Shutdown,
            Self::Refused => ErrorKind::Refused,
            Self::Panic { .. } => ErrorKind::Panic,
            Self::Finalize { .. } => ErrorKind::Finalize,
            Self::FinalizeTimeout { .. } => ErrorKind::FinalizeTimeout,
        }
    }

    pub(crate) fn panic(site: PanicSite, payload: Box<dyn std::any::Any + Send>) -> Self {
        Self::Panic {
            site,
            message: panic_message(payload.as_ref()),
        }
    }
}

/// How `abort` itself failed: the secondary failure, never the root cause.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AbortFailure {
    /// `Sink::abort` returned an error.
    #[error("abort failed: {0}")]
    Failed(#[source] BoxError),
    /// `Sink::abort` did not return within the abort timeout.
    #[error("abort did not complete within {0:?}")]
    TimedOut(Duration),
    /// `Sink::abort` panicked.
    #[error("abort panicked: {0}")]
    Panicked(String),
}

/// A failed ingestion: the root [`Cause`], the optional secondary
/// [`AbortFailure`], and the report of what happened up to the failure.
///
/// `Display` prints the cause (and the abort failure, when there is one).
/// `Error::source` walks the root cause's own error first (the source's
/// `io::Error`, the sink's write error, ...). The abort failure is always
/// [`abort_failure`](Self::abort_failure); it is also the `source` when the
/// cause has no error of its own (cancellation, timeouts, invalid options,
/// panics), so that a chain printer shows it. A chain has one line of
/// descent: when both exist, the root cause's error wins it.
#[derive(Debug)]
pub struct IngestError {
    cause: Cause,
    abort_failure: Option<AbortFailure>,
    report: Box<IngestReport>,
}

impl IngestError {
    pub(crate) fn new(cause: Cause, abort_failure: Option<AbortFailure>, report: IngestReport) -> Self {
        Self {
            cause,
            abort_failure,
            report: Box::new(report),
        }
    }

    /// The first failure: why the sink was aborted.
    pub fn cause(&self) -> &Cause {
        &self.cause
    }

    /// The kind of the root cause.
    pub fn kind(&self) -> ErrorKind {
        self.cause.kind()
    }

    /// The failure of `abort` itself, if it failed, timed out or panicked.
    pub fn abort_failure(&self) -> Option<&AbortFailure> {
        self.abort_failure.as_ref()
    }

    /// What happened before the failure: bytes, chunks, latencies, and how
    /// the abort went.
    pub fn report(&self) -> &IngestReport {
        &self.report
    }

    /// Splits the error into its parts.
    pub fn into_parts(self) -> (Cause, Option<AbortFailure>, IngestReport) {
        (self.cause, self.abort_failure, *self.report)
    }

    /// `true` when the ingestion stopped because its token was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.kind() == ErrorKind::Cancelled
    }
}

impl fmt::Display for IngestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ingestion failed: {}", self.cause)?;
        if let Some(abort) = &self.abort_failure {
            write!(f, " (and the sink's {abort})")?;
        }
        Ok(())
    }
}

impl std::error::Error for IngestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.cause).or_else(|| self.abort_failure.as_ref().map(|f| f as _))
    }
}

/// Best-effort text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
