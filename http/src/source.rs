//! What a response is made of: a [`Representation`] (length, validators,
//! content type) and a way to open any byte range of it as a stream of
//! chunks, from a file (the engine's [`FileSource`] over the range, in pull
//! mode or reading ahead) or from any [`RangeOpen`] a user supplies.

use std::fmt;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::Stream;
use headers::ETag;
use http::HeaderValue;
use weir::source::{BufferPool, FileSource};

/// A stream of chunks, as every weir source is.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send + 'static>>;

/// Opens byte ranges of one representation. Implement it to deliver from a
/// database, an object store or anything else that can read a range.
pub trait RangeOpen: Send + Sync + fmt::Debug + 'static {
    /// A stream of exactly `range.end - range.start` bytes from `range.start`
    /// (a shorter stream is reported to the client as a failed transfer), in
    /// chunks of about `chunk_size` bytes.
    ///
    /// Called when the bytes are about to be sent, one range at a time: any
    /// slow work (connecting, seeking) belongs in the stream, not here.
    ///
    /// # Errors
    ///
    /// When the range cannot be opened at all.
    fn open(&self, range: Range<u64>, chunk_size: usize) -> io::Result<ByteStream>;
}

/// How a file's bytes are read for a response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileReader {
    /// Pull-based (the engine's [`FileSource`] in
    /// [pull mode](weir::source::FileSourceBuilder::pull)): one positional
    /// read of one chunk each time the connection asks for more, on the task
    /// that writes the response. Nothing is read ahead, so a stalled client
    /// holds only what hyper has queued. A read of a cached page costs
    /// microseconds; on a cold disk it holds that runtime worker for one
    /// read.
    #[default]
    Pull,
    /// The engine's [`FileSource`] reading ahead: page-cache reads on the
    /// connection's task, and a reader thread, a bounded number of chunks
    /// ahead, only where the kernel would wait for the disk; costs up to a
    /// thread and a few more chunks per transfer.
    ReadAhead,
}

impl FileReader {
    /// The name used on command lines and in results.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::ReadAhead => "read-ahead",
        }
    }
}

impl std::str::FromStr for FileReader {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "pull" => Ok(Self::Pull),
            "read-ahead" => Ok(Self::ReadAhead),
            other => Err(format!("unknown file reader {other:?} (expected pull or read-ahead)")),
        }
    }
}

/// One servable thing: its length, validators, content type and how to read
/// any range of it.
#[derive(Debug, Clone)]
pub struct Representation {
    len: u64,
    etag: Option<ETag>,
    last_modified: Option<SystemTime>,
    content_type: HeaderValue,
    opener: Arc<dyn RangeOpen>,
    /// The open file behind a file representation (the sendfile path sends
    /// from it); `None` for anything else.
    file: Option<Arc<File>>,
}

impl Representation {
    /// A representation of `len` bytes read through `opener`, with no
    /// validators and `application/octet-stream`.
    pub fn new(len: u64, opener: impl RangeOpen) -> Self {
        Self {
            len,
            etag: None,
            last_modified: None,
            content_type: HeaderValue::from_static("application/octet-stream"),
            opener: Arc::new(opener),
            file: None,
        }
    }

    /// An open regular file: a strong `ETag` from inode, length and
    /// modification time (the same triple means the same bytes for files
    /// changed through normal writes), and `Last-Modified`.
    ///
    /// # Errors
    ///
    /// When the file's metadata cannot be read.
    pub fn from_file(file: File, reader: FileReader) -> io::Result<Self> {
        Self::from_file_pooled(file, reader, None)
    }

    /// [`from_file`](Self::from_file) with reads into `pool`'s buffers.
    pub(crate) fn from_file_pooled(file: File, reader: FileReader, pool: Option<Arc<BufferPool>>) -> io::Result<Self> {
        let meta = file.metadata()?;
        let modified = meta.modified().ok();
        let mtime_ns = modified
            .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let etag = format!("\"{:x}-{:x}-{:x}\"", meta.ino(), meta.len(), mtime_ns)
            .parse::<ETag>()
            .ok();
        let file = Arc::new(file);
        Ok(Self {
            len: meta.len(),
            etag,
            last_modified: modified,
            content_type: HeaderValue::from_static("application/octet-stream"),
            opener: Arc::new(FileOpener {
                file: Arc::clone(&file),
                reader,
                pool,
            }),
            file: Some(file),
        })
    }

    /// Sets the entity tag.
    #[must_use]
    pub fn with_etag(mut self, etag: Option<ETag>) -> Self {
        self.etag = etag;
        self
    }

    /// Sets the modification time.
    #[must_use]
    pub fn with_last_modified(mut self, modified: Option<SystemTime>) -> Self {
        self.last_modified = modified;
        self
    }

    /// Sets the content type.
    #[must_use]
    pub fn with_content_type(mut self, content_type: HeaderValue) -> Self {
        self.content_type = content_type;
        self
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// `true` for a zero-length representation.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entity tag, if any.
    pub fn etag(&self) -> Option<&ETag> {
        self.etag.as_ref()
    }

    /// The modification time, if known.
    pub fn last_modified(&self) -> Option<SystemTime> {
        self.last_modified
    }

    /// The content type.
    pub fn content_type(&self) -> &HeaderValue {
        &self.content_type
    }

    /// Opens `range` (half-open), bounded to exactly its length.
    pub(crate) fn open(&self, range: Range<u64>, chunk_size: usize) -> io::Result<ByteStream> {
        let len = range.end.saturating_sub(range.start);
        let inner = self.opener.open(range, chunk_size)?;
        Ok(Box::pin(bounded(inner, len)))
    }

    /// The open file, when this represents one.
    pub(crate) fn file(&self) -> Option<&Arc<File>> {
        self.file.as_ref()
    }

    /// The opener, for composing parts lazily.
    pub(crate) fn opener(&self) -> Arc<dyn RangeOpen> {
        Arc::clone(&self.opener)
    }
}

/// File ranges, read either way [`FileReader`] says.
#[derive(Debug)]
struct FileOpener {
    file: Arc<File>,
    reader: FileReader,
    pool: Option<Arc<BufferPool>>,
}

impl RangeOpen for FileOpener {
    fn open(&self, range: Range<u64>, chunk_size: usize) -> io::Result<ByteStream> {
        let len = range.end.saturating_sub(range.start);
        let chunk_size = usize::try_from(len)
            .map_or(chunk_size, |len| chunk_size.min(len))
            .max(1);
        // Positional reads of the shared file: ranges never move its offset,
        // so any number of them can be read at once.
        let mut builder = FileSource::builder(Arc::clone(&self.file), chunk_size).range(range);
        if self.reader == FileReader::Pull {
            builder = builder.pull();
        }
        if let Some(pool) = &self.pool
            && chunk_size <= pool.buffer_size()
        {
            builder = builder.pool(Arc::clone(pool));
        }
        Ok(Box::pin(builder.build()?))
    }
}

/// Exactly `len` bytes of `inner`: see [`Bounded`].
pub(crate) fn bounded(inner: ByteStream, len: u64) -> Bounded {
    Bounded {
        inner: Some(inner),
        remaining: len,
    }
}

/// Yields exactly `remaining` bytes of `inner`, then drops it (closing its
/// handle) without waiting for the consumer to drop the stream; a source that
/// ends early is an error.
pub(crate) struct Bounded {
    inner: Option<ByteStream>,
    remaining: u64,
}

impl Stream for Bounded {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let Some(inner) = this.inner.as_mut() else {
                return Poll::Ready(None);
            };
            if this.remaining == 0 {
                this.inner = None;
                return Poll::Ready(None);
            }
            match ready!(inner.as_mut().poll_next(cx)) {
                Some(Ok(chunk)) if chunk.is_empty() => {}
                Some(Ok(mut chunk)) => {
                    if chunk.len() as u64 > this.remaining {
                        chunk.truncate(usize::try_from(this.remaining).unwrap_or(usize::MAX));
                    }
                    this.remaining -= chunk.len() as u64;
                    if this.remaining == 0 {
                        this.inner = None;
                    }
                    return Poll::Ready(Some(Ok(chunk)));
                }
                Some(Err(error)) => {
                    this.inner = None;
                    return Poll::Ready(Some(Err(error)));
                }
                None => {
                    this.inner = None;
                    let missing = this.remaining;
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("source ended {missing} bytes early (did it shrink while being served?)"),
                    ))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use futures_util::TryStreamExt;

    use super::*;

    fn file_with(bytes: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file
    }

    async fn read_range(rep: &Representation, range: Range<u64>, chunk: usize) -> io::Result<Vec<u8>> {
        let chunks: Vec<Bytes> = rep.open(range, chunk)?.try_collect().await?;
        Ok(chunks.concat())
    }

    #[tokio::test]
    async fn both_readers_return_exactly_the_range() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for reader in [FileReader::Pull, FileReader::ReadAhead] {
            let rep = Representation::from_file(file_with(&data), reader).unwrap();
            assert_eq!(rep.len(), 100_000);
            for (range, chunk) in [
                (0..100_000, 4096),
                (10..11, 4096),
                (99_000..100_000, 333),
                (5000..70_000, 65536),
            ] {
                let got = read_range(&rep, range.clone(), chunk).await.unwrap();
                assert_eq!(
                    got,
                    data[range.start as usize..range.end as usize],
                    "{reader:?} {range:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_file_that_shrank_is_an_error_not_a_short_body() {
        let file = file_with(&[1; 1000]);
        let rep = Representation::from_file(file.try_clone().unwrap(), FileReader::ReadAhead).unwrap();
        file.set_len(10).unwrap();
        let error = read_range(&rep, 0..1000, 4096).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        let pull = Representation::from_file(file, FileReader::Pull).unwrap();
        let error = read_range(&pull, 0..1000, 4096).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn file_validators_are_strong_and_present() {
        let rep = Representation::from_file(file_with(b"abc"), FileReader::Pull).unwrap();
        let mut headers = http::HeaderMap::new();
        headers::HeaderMapExt::typed_insert(&mut headers, rep.etag().unwrap().clone());
        assert!(headers["etag"].to_str().unwrap().starts_with('"'));
        assert!(rep.last_modified().is_some());
        assert_eq!("read-ahead".parse::<FileReader>(), Ok(FileReader::ReadAhead));
        assert!("mmap".parse::<FileReader>().is_err());
    }
}
