//! Ingestion options and their builder; validated by `ingest` before any
//! byte moves.

use std::fmt;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::OptionsError;
use crate::transform::Transform;

/// Default largest chunk handed to the sink: 64 KiB.
pub const DEFAULT_CHUNK_SIZE: usize = 64 * 1024;
/// Largest accepted `chunk_size`: 256 MiB.
pub const MAX_CHUNK_SIZE: usize = 256 * 1024 * 1024;
/// Largest accepted `max_in_flight`.
pub const MAX_IN_FLIGHT: usize = 4096;
/// Default time `abort` may take before it is reported as timed out.
pub const DEFAULT_ABORT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time `finalize` may take before the ingestion gives up on it and
/// aborts the sink: 5 minutes, room for the fsync of a large file on a slow
/// disk or an object store's multipart completion.
pub const DEFAULT_FINALIZE_TIMEOUT: Duration = Duration::from_secs(300);

/// How one ingestion runs. Build with [`IngestOptions::builder`].
///
/// Nothing here is checked when it is built: [`ingest`](crate::ingest)
/// validates the options first and, when they are invalid, closes the source,
/// aborts the sink and returns [`Cause::InvalidOptions`](crate::Cause).
/// [`IngestOptions::validate`] runs the same check up front.
///
/// Every timeout is bounded: a zero timeout is refused as invalid options
/// (it would fail every write, finalize or abort at once), never read as
/// "no limit". When the options are refused, the sink's abort is bounded by
/// the abort timeout given, or by [`DEFAULT_ABORT_TIMEOUT`] when that one is
/// itself invalid.
pub struct IngestOptions {
    pub(crate) chunk_size: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) abort_timeout: Duration,
    pub(crate) finalize_timeout: Duration,
    pub(crate) cancel: CancellationToken,
    pub(crate) transforms: Vec<Box<dyn Transform>>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_in_flight: 1,
            write_timeout: None,
            abort_timeout: DEFAULT_ABORT_TIMEOUT,
            finalize_timeout: DEFAULT_FINALIZE_TIMEOUT,
            cancel: CancellationToken::new(),
            transforms: Vec::new(),
        }
    }
}

impl fmt::Debug for IngestOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IngestOptions")
            .field("chunk_size", &self.chunk_size)
            .field("max_in_flight", &self.max_in_flight)
            .field("write_timeout", &self.write_timeout)
            .field("abort_timeout", &self.abort_timeout)
            .field("finalize_timeout", &self.finalize_timeout)
            .field("cancelled", &self.cancel.is_cancelled())
            .field(
                "transforms",
                &self.transforms.iter().map(|t| t.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl IngestOptions {
    /// A builder starting from the defaults: 64 KiB chunks, one write in
    /// flight, no write timeout, a 30 s abort timeout, a 5 min finalize
    /// timeout, a fresh token, no transforms.
    pub fn builder() -> IngestOptionsBuilder {
        IngestOptionsBuilder {
            options: Self::default(),
        }
    }

    /// Checks every option; `ingest` runs the same check first.
    ///
    /// # Errors
    ///
    /// The first invalid option found.
    pub fn validate(&self) -> Result<(), OptionsError> {
        if self.chunk_size == 0 {
            return Err(OptionsError::ZeroChunkSize);
        }
        if self.chunk_size > MAX_CHUNK_SIZE {
            return Err(OptionsError::ChunkSizeTooLarge {
                got: self.chunk_size,
                max: MAX_CHUNK_SIZE,
            });
        }
        if self.max_in_flight == 0 {
            return Err(OptionsError::ZeroMaxInFlight);
        }
        if self.max_in_flight > MAX_IN_FLIGHT {
            return Err(OptionsError::MaxInFlightTooLarge {
                got: self.max_in_flight,
                max: MAX_IN_FLIGHT,
            });
        }
        if self.write_timeout == Some(Duration::ZERO) {
            return Err(OptionsError::ZeroWriteTimeout);
        }
        if self.abort_timeout.is_zero() {
            return Err(OptionsError::ZeroAbortTimeout);
        }
        if self.finalize_timeout.is_zero() {
            return Err(OptionsError::ZeroFinalizeTimeout);
        }
        Ok(())
    }

    /// Largest chunk handed to the sink; larger source chunks are split
    /// without copying.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// How many sink writes may be outstanding at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// The per-write timeout, if any.
    pub fn write_timeout(&self) -> Option<Duration> {
        self.write_timeout
    }

    /// How long `abort` may take before it is given up on.
    pub fn abort_timeout(&self) -> Duration {
        self.abort_timeout
    }

    /// How long `finalize` may take before the ingestion gives up on it.
    pub fn finalize_timeout(&self) -> Duration {
        self.finalize_timeout
    }

    /// The token that cancels this ingestion.
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }
}

/// Builds [`IngestOptions`]. Setters never fail: validation happens in
/// [`ingest`](crate::ingest) (or [`IngestOptions::validate`]).
#[derive(Debug)]
pub struct IngestOptionsBuilder {
    options: IngestOptions,
}

impl IngestOptionsBuilder {
    /// Largest chunk handed to the sink, in bytes (1 ..= 256 MiB). Source
    /// chunks larger than this are split without copying; smaller ones pass
    /// as they are.
    pub fn chunk_size(mut self, bytes: usize) -> Self {
        self.options.chunk_size = bytes;
        self
    }

    /// How many sink writes may be outstanding at once (1 ..= 4096). With
    /// more than one, writes overlap, but the sink still receives the
    /// `write` calls in source order. Memory is bounded by this times the
    /// chunk size, plus the source's and transforms' own buffers.
    pub fn max_in_flight(mut self, writes: usize) -> Self {
        self.options.max_in_flight = writes;
        self
    }

    /// Fails a write that has not completed within `timeout` with
    /// [`Cause::WriteTimeout`](crate::Cause); the hung write is dropped,
    /// not awaited.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.options.write_timeout = Some(timeout);
        self
    }

    /// How long `abort` may take before the ingestion gives up on it and
    /// reports [`AbortFailure::TimedOut`](crate::AbortFailure) (default 30 s).
    /// Zero is invalid: every abort is bounded.
    pub fn abort_timeout(mut self, timeout: Duration) -> Self {
        self.options.abort_timeout = timeout;
        self
    }

    /// How long `finalize` may take (default 5 min) before the ingestion
    /// fails with [`Cause::FinalizeTimeout`](crate::Cause) and aborts the
    /// sink; the hung finalize future is dropped. Zero is invalid.
    ///
    /// The timeout does not undo what a sink's finalize already started: a
    /// sink whose commit cannot be stopped midway reports from `abort` that
    /// it had committed (see [`FileSink`](crate::FileSink)).
    pub fn finalize_timeout(mut self, timeout: Duration) -> Self {
        self.options.finalize_timeout = timeout;
        self
    }

    /// The token whose cancellation stops the ingestion and aborts the sink.
    pub fn cancel_token(mut self, token: CancellationToken) -> Self {
        self.options.cancel = token;
        self
    }

    /// Appends a transform stage; stages run in the order added.
    pub fn transform(mut self, transform: impl Transform) -> Self {
        self.options.transforms.push(Box::new(transform));
        self
    }

    /// Appends an already boxed transform stage.
    pub fn boxed_transform(mut self, transform: Box<dyn Transform>) -> Self {
        self.options.transforms.push(transform);
        self
    }

    /// The options, unvalidated.
    pub fn build(self) -> IngestOptions {
        self.options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(IngestOptions::default().validate(), Ok(()));
    }

    #[test]
    fn each_invalid_value_is_named() {
        let cases = [
            (IngestOptions::builder().chunk_size(0), OptionsError::ZeroChunkSize),
            (
                IngestOptions::builder().chunk_size(MAX_CHUNK_SIZE + 1),
                OptionsError::ChunkSizeTooLarge {
                    got: MAX_CHUNK_SIZE + 1,
                    max: MAX_CHUNK_SIZE,
                },
            ),
            (IngestOptions::builder().max_in_flight(0), OptionsError::ZeroMaxInFlight),
            (
                IngestOptions::builder().max_in_flight(MAX_IN_FLIGHT + 1),
                OptionsError::MaxInFlightTooLarge {
                    got: MAX_IN_FLIGHT + 1,
                    max: MAX_IN_FLIGHT,
                },
            ),
            (
                IngestOptions::builder().write_timeout(Duration::ZERO),
                OptionsError::ZeroWriteTimeout,
            ),
            (
                IngestOptions::builder().abort_timeout(Duration::ZERO),
                OptionsError::ZeroAbortTimeout,
            ),
            (
                IngestOptions::builder().finalize_timeout(Duration::ZERO),
                OptionsError::ZeroFinalizeTimeout,
            ),
        ];
        for (builder, expected) in cases {
            assert_eq!(builder.build().validate(), Err(expected));
        }
    }
}
