//! Sources: any `Stream<Item = io::Result<Bytes>>` is one; these helpers
//! build one from a reader or a file.

mod file;
mod ready;

pub use file::FileSource;

use tokio::io::AsyncRead;
use tokio_util::io::ReaderStream;

use crate::error::OptionsError;

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
