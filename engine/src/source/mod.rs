//! Sources: any `Stream<Item = io::Result<Bytes>>` is one; these helpers
//! build one from a reader, a file, or a stream with its own error type.

mod file;
mod pool;
mod ready;

pub use file::{FileSource, FileSourceBuilder};
pub use pool::BufferPool;

use std::io;

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use tokio::io::AsyncRead;
use tokio_util::io::ReaderStream;

use crate::error::{BoxError, OptionsError};

/// A source over any [`AsyncRead`] (a socket, an HTTP body, a pipe), yielding
/// chunks of at most `chunk_size` bytes.
///
/// For regular files, [`FileSource`] is much faster: it reads the page cache
/// on the stream's own task and falls back to blocking reads on a thread of
/// its own, instead of one blocking-pool hop per chunk.
///
/// # Errors
///
/// [`OptionsError::ZeroChunkSize`] when `chunk_size` is zero (a zero-sized
/// read would look like the end of the input and lose it).
pub fn from_async_read<R: AsyncRead>(reader: R, chunk_size: usize) -> Result<ReaderStream<R>, OptionsError> {
    if chunk_size == 0 {
        return Err(OptionsError::ZeroChunkSize);
    }
    Ok(ReaderStream::with_capacity(reader, chunk_size))
}

/// A source over any stream of byte chunks with its own error type (an HTTP
/// body's data frames, a channel's receiver, a client library's download
/// stream): each error becomes the source's `io::Error` (kind `Other`), with
/// the original reachable as its inner error.
///
/// ```
/// use bytes::Bytes;
/// use futures_util::stream;
/// use weir::{IngestOptions, MemorySink, ingest, source::from_stream};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// #[derive(Debug, thiserror::Error)]
/// #[error("peer reset the body")]
/// struct BodyError;
///
/// let frames = stream::iter([Ok(Bytes::from("a")), Err(BodyError)]);
/// let error = ingest(from_stream(frames), MemorySink::new(), IngestOptions::default())
///     .await
///     .unwrap_err();
/// assert_eq!(error.kind(), weir::ErrorKind::Source);
/// # Ok(())
/// # }
/// ```
///
/// # Cancel safety
///
/// As the stream's own `poll_next`; `ingest` drops the stream when it ends.
pub fn from_stream<S, E>(stream: S) -> impl Stream<Item = io::Result<Bytes>> + use<S, E>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: Into<BoxError>,
{
    stream.map_err(io::Error::other)
}
