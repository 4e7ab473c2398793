//! `ObjectStoreSource`: an object (or a range of it) as a weir source,
//! read with ranged GETs, one window ahead.

use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use futures_util::future::BoxFuture;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};

use crate::error::Error;

/// Default size of one ranged read: 8 MiB.
pub const DEFAULT_REQUEST_SIZE: u64 = 8 * 1024 * 1024;

/// Reads an object, or a range of it, as a stream of chunks of at most
/// [`chunk_size`](ObjectStoreSourceBuilder::chunk_size) bytes.
///
/// `open` asks for the object's metadata once; the data then comes in
/// ranged reads of [`request_size`](ObjectStoreSourceBuilder::request_size)
/// bytes, each conditional on the object's ETag (and version), so an object
/// replaced mid-read fails the stream instead of mixing two versions. The
/// next range is requested while the current one is consumed: memory is at
/// most two requests' worth.
///
/// Dropping the stream drops the request in flight.
pub struct ObjectStoreSource {
    store: Arc<dyn ObjectStore>,
    location: Path,
    e_tag: Option<String>,
    version: Option<String>,
    /// First byte not yet requested.
    next: u64,
    end: u64,
    request_size: u64,
    chunk_size: usize,
    /// Received and not yet yielded.
    current: Bytes,
    /// The ranged read in flight.
    pending: Option<BoxFuture<'static, Result<Bytes, Error>>>,
    /// A finished read, waiting for `current` to be consumed.
    received: Option<Result<Bytes, Error>>,
    failed: bool,
}

impl std::fmt::Debug for ObjectStoreSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStoreSource")
            .field("location", &self.location)
            .field("next", &self.next)
            .field("end", &self.end)
            .field("request_size", &self.request_size)
            .field("chunk_size", &self.chunk_size)
            .field("buffered", &self.current.len())
            .field("requesting", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}

/// Configures an [`ObjectStoreSource`] before it opens the object.
#[derive(Debug)]
pub struct ObjectStoreSourceBuilder {
    store: Arc<dyn ObjectStore>,
    location: Path,
    range: Option<Range<u64>>,
    request_size: u64,
    chunk_size: usize,
}

impl ObjectStoreSourceBuilder {
    /// Reads only `range` (byte offsets) of the object.
    #[must_use]
    pub fn range(mut self, range: Range<u64>) -> Self {
        self.range = Some(range);
        self
    }

    /// Bytes asked for per ranged read (default 8 MiB).
    #[must_use]
    pub fn request_size(mut self, bytes: u64) -> Self {
        self.request_size = bytes;
        self
    }

    /// Largest chunk yielded (default [`weir::DEFAULT_CHUNK_SIZE`]).
    #[must_use]
    pub fn chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes;
        self
    }

    /// Reads the object's metadata and returns the stream.
    ///
    /// # Errors
    ///
    /// [`Error::ZeroSize`] for a zero chunk or request size;
    /// [`Error::Store`] when the object cannot be found or read;
    /// [`Error::InvalidRange`] when the range does not fit in the object.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: nothing is started until it returns.
    pub async fn open(self) -> Result<ObjectStoreSource, Error> {
        if self.chunk_size == 0 {
            return Err(Error::ZeroSize { what: "chunk size" });
        }
        if self.request_size == 0 {
            return Err(Error::ZeroSize { what: "request size" });
        }
        let meta = self
            .store
            .head(&self.location)
            .await
            .map_err(|e| Error::store("head", &self.location, e))?;
        let range = self.range.unwrap_or(0..meta.size);
        if range.start > range.end || range.end > meta.size {
            return Err(Error::InvalidRange {
                location: self.location.to_string(),
                start: range.start,
                end: range.end,
                size: meta.size,
            });
        }
        Ok(ObjectStoreSource {
            store: self.store,
            location: self.location,
            e_tag: meta.e_tag,
            version: meta.version,
            next: range.start,
            end: range.end,
            request_size: self.request_size,
            chunk_size: self.chunk_size,
            current: Bytes::new(),
            pending: None,
            received: None,
            failed: false,
        })
    }
}

impl ObjectStoreSource {
    /// A builder for reading `location` from `store`.
    pub fn builder(store: Arc<dyn ObjectStore>, location: impl Into<Path>) -> ObjectStoreSourceBuilder {
        ObjectStoreSourceBuilder {
            store,
            location: location.into(),
            range: None,
            request_size: DEFAULT_REQUEST_SIZE,
            chunk_size: weir::DEFAULT_CHUNK_SIZE,
        }
    }

    /// Opens the whole object with the defaults.
    ///
    /// # Errors
    ///
    /// See [`ObjectStoreSourceBuilder::open`].
    pub async fn open(store: Arc<dyn ObjectStore>, location: impl Into<Path>) -> Result<Self, Error> {
        Self::builder(store, location).open().await
    }

    /// Starts the ranged read of the next window, if any is left.
    fn request_next(&mut self) {
        if self.pending.is_some() || self.received.is_some() || self.next >= self.end {
            return;
        }
        let window = self.next..self.end.min(self.next.saturating_add(self.request_size));
        self.next = window.end;
        let options = GetOptions {
            range: Some(GetRange::Bounded(window.clone())),
            if_match: self.e_tag.clone(),
            version: self.version.clone(),
            ..GetOptions::default()
        };
        let store = Arc::clone(&self.store);
        let location = self.location.clone();
        self.pending = Some(Box::pin(async move {
            let result = store
                .get_opts(&location, options)
                .await
                .map_err(|e| Error::store("get", &location, e))?;
            let bytes = result.bytes().await.map_err(|e| Error::store("get", &location, e))?;
            let expected = window.end - window.start;
            if bytes.len() as u64 != expected {
                return Err(Error::ShortRead {
                    location: location.to_string(),
                    expected,
                    got: bytes.len() as u64,
                });
            }
            Ok(bytes)
        }));
    }
}

impl Stream for ObjectStoreSource {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.failed {
                return Poll::Ready(None);
            }
            // Drive the read in flight, even while buffered data is yielded,
            // so that the next window arrives while this one is consumed.
            if let Some(pending) = &mut this.pending
                && let Poll::Ready(received) = pending.as_mut().poll(cx)
            {
                this.pending = None;
                this.received = Some(received);
            }
            if !this.current.is_empty() {
                let take = this.chunk_size.min(this.current.len());
                let chunk = this.current.split_to(take);
                this.request_next();
                return Poll::Ready(Some(Ok(chunk)));
            }
            match this.received.take() {
                Some(Ok(bytes)) => {
                    this.current = bytes;
                    continue;
                }
                Some(Err(error)) => {
                    this.failed = true;
                    return Poll::Ready(Some(Err(error.into_io())));
                }
                None => {}
            }
            if this.pending.is_some() {
                // Polled above: the waker is registered.
                return Poll::Pending;
            }
            if this.next >= this.end {
                return Poll::Ready(None);
            }
            this.request_next();
        }
    }
}
