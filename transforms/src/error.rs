//! `TransformError`: why one of these transforms refused its input.

use std::io;

/// Why a transform in this crate failed. The engine reports it as
/// [`Cause::Transform`](weir::Cause) with the stage's name; downcast the
/// boxed error to this type to match on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransformError {
    /// A record grew past the splitter's limit before its newline arrived.
    #[error("record {record} is longer than the limit of {limit} bytes")]
    RecordTooLong {
        /// Zero-based index of the record.
        record: u64,
        /// The limit, in bytes (the newline excluded).
        limit: usize,
    },
    /// One input chunk decompressed to more than the per-chunk output
    /// limit: a guard against decompression bombs.
    #[error("{codec} input chunk {chunk} decompresses to more than {limit} bytes")]
    OutputLimit {
        /// The codec's name.
        codec: &'static str,
        /// Zero-based index of the input chunk.
        chunk: u64,
        /// The per-chunk output limit, in bytes.
        limit: u64,
    },
    /// The codec refused the data (corrupt or truncated input, a frame
    /// needing a larger window than allowed) or could not be set up.
    #[error("{codec} {operation} failed")]
    Codec {
        /// The codec's name.
        codec: &'static str,
        /// `"compression"` or `"decompression"`.
        operation: &'static str,
        /// The codec's error.
        #[source]
        source: io::Error,
    },
}
