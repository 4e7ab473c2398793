//! `Error`: what the object-store sink and source report.

use std::io;

/// A failure of [`ObjectStoreSink`](crate::ObjectStoreSink) or
/// [`ObjectStoreSource`](crate::ObjectStoreSource).
///
/// The sink's `write`, `finalize` and `abort` return it boxed, so the engine
/// reports it as the cause's source; the source stream yields it inside an
/// [`io::Error`] (see [`Error::into_io`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A request to the object store failed.
    #[error("object store {operation} of {location} failed")]
    Store {
        /// What was asked: `"multipart start"`, `"part upload"`, `"get"`...
        operation: &'static str,
        /// The object's path in the store.
        location: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// The requested range does not fit in the object.
    #[error("range {start}..{end} does not fit in {location} ({size} bytes)")]
    InvalidRange {
        /// The object's path in the store.
        location: String,
        /// First byte asked for.
        start: u64,
        /// One past the last byte asked for.
        end: u64,
        /// The object's size.
        size: u64,
    },
    /// A ranged read returned fewer bytes than asked for.
    #[error("ranged read of {location} returned {got} bytes, expected {expected}")]
    ShortRead {
        /// The object's path in the store.
        location: String,
        /// Bytes asked for.
        expected: u64,
        /// Bytes received.
        got: u64,
    },
    /// A size option was zero.
    #[error("{what} must be at least 1 byte, got 0")]
    ZeroSize {
        /// Which option: `"part size"`, `"chunk size"`, `"request size"`.
        what: &'static str,
    },
    /// The sink was used outside a Tokio runtime (its part uploads run as
    /// tasks).
    #[error("the object store sink must run inside a Tokio runtime")]
    NoRuntime,
    /// The upload was already completed or aborted.
    #[error("the multipart upload of {location} is already completed or aborted")]
    Finished {
        /// The object's path in the store.
        location: String,
    },
    /// A part upload task ended without a result (it panicked or was
    /// cancelled).
    #[error("a part upload of {location} did not complete: {message}")]
    PartTask {
        /// The object's path in the store.
        location: String,
        /// What the runtime said.
        message: String,
    },
}

impl Error {
    pub(crate) fn store(
        operation: &'static str,
        location: &object_store::path::Path,
        source: object_store::Error,
    ) -> Self {
        Self::Store {
            operation,
            location: location.to_string(),
            source,
        }
    }

    /// Wraps the error in an [`io::Error`] for a source stream, keeping the
    /// kind when the store said the object is missing
    /// ([`io::ErrorKind::NotFound`]).
    pub fn into_io(self) -> io::Error {
        let kind = match &self {
            Self::Store {
                source: object_store::Error::NotFound { .. },
                ..
            } => io::ErrorKind::NotFound,
            Self::InvalidRange { .. } | Self::ZeroSize { .. } => io::ErrorKind::InvalidInput,
            Self::ShortRead { .. } => io::ErrorKind::UnexpectedEof,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, self)
    }
}
