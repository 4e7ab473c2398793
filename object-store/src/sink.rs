//! `ObjectStoreSink`: a multipart upload as a weir sink; parts on write,
//! complete on finalize, abort on abort.

use std::future::Future;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStore, PutMultipartOptions, PutPayload};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;
use weir::{BoxError, Cause, Sink};

use crate::error::Error;

/// Default size of an uploaded part: 8 MiB.
///
/// S3 and most stores require every part but the last to be at least 5 MiB,
/// and some (R2) require them all to be the same size; this sink cuts parts
/// of exactly the part size, only the last one shorter.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;

type PartResult = Result<(), object_store::Error>;

/// Streams into one object through a multipart upload: nothing is visible
/// at the target until `finalize` completes the upload, and `abort` aborts
/// it, so a reader sees the previous object (or none) or the complete new
/// one, never a partial one.
///
/// - `write` buffers chunks (without copying) into parts of exactly
///   [`part_size`](ObjectStoreSinkBuilder::part_size) bytes and starts the
///   upload of each part as soon as it is full; the write that completes a
///   part returns when that part is uploaded, the others at once. Memory is
///   bounded by one part being filled plus the parts uploading, at most one
///   per in-flight write.
/// - `finalize` uploads the last, shorter part (an empty one when nothing
///   was written, so that an empty object is created), then completes the
///   upload.
/// - `abort` waits for the parts still uploading (a part that lands after
///   an abort can leave storage behind on some stores), then aborts the
///   upload.
///
/// Part uploads run as Tokio tasks, so the sink must be used inside a
/// runtime. Dropped without a terminal call (outside `ingest`, which always
/// ends a sink), it aborts the upload from a spawned task when a runtime is
/// available; otherwise it only drops the upload, which some stores clean
/// up (the local filesystem does) and others do not (S3 needs a lifecycle
/// rule).
#[derive(Debug)]
pub struct ObjectStoreSink {
    location: Path,
    /// `None` once completed or aborted.
    upload: Option<Box<dyn MultipartUpload>>,
    part_size: usize,
    /// The part being filled.
    buffer: Vec<Bytes>,
    buffered: usize,
    parts_started: u64,
    tracker: TaskTracker,
}

/// Configures an [`ObjectStoreSink`] before it starts the upload.
#[derive(Debug)]
pub struct ObjectStoreSinkBuilder {
    location: Path,
    part_size: usize,
    options: PutMultipartOptions,
}

impl ObjectStoreSinkBuilder {
    /// Size of every part but the last, in bytes (default 8 MiB; S3 wants
    /// at least 5 MiB).
    #[must_use]
    pub fn part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes;
        self
    }

    /// Tags and attributes for the object.
    #[must_use]
    pub fn options(mut self, options: PutMultipartOptions) -> Self {
        self.options = options;
        self
    }

    /// Starts the multipart upload on `store`.
    ///
    /// # Errors
    ///
    /// [`Error::ZeroSize`] for a zero part size; [`Error::Store`] when the
    /// store refuses to start the upload.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes may leave a started upload
    /// behind on stores that do not clean up dropped uploads.
    pub async fn create<S: ObjectStore + ?Sized>(self, store: &S) -> Result<ObjectStoreSink, Error> {
        if self.part_size == 0 {
            return Err(Error::ZeroSize { what: "part size" });
        }
        let upload = store
            .put_multipart_opts(&self.location, self.options)
            .await
            .map_err(|e| Error::store("multipart start", &self.location, e))?;
        Ok(ObjectStoreSink {
            location: self.location,
            upload: Some(upload),
            part_size: self.part_size,
            buffer: Vec::new(),
            buffered: 0,
            parts_started: 0,
            tracker: TaskTracker::new(),
        })
    }
}

impl ObjectStoreSink {
    /// A builder for an upload to `location`, with 8 MiB parts.
    pub fn builder(location: impl Into<Path>) -> ObjectStoreSinkBuilder {
        ObjectStoreSinkBuilder {
            location: location.into(),
            part_size: DEFAULT_PART_SIZE,
            options: PutMultipartOptions::default(),
        }
    }

    /// Starts a multipart upload to `location` on `store`, with the
    /// defaults.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store refuses to start the upload.
    ///
    /// # Cancel safety
    ///
    /// See [`ObjectStoreSinkBuilder::create`].
    pub async fn create<S: ObjectStore + ?Sized>(store: &S, location: impl Into<Path>) -> Result<Self, Error> {
        Self::builder(location).create(store).await
    }

    /// Where the object goes.
    pub fn location(&self) -> &Path {
        &self.location
    }

    /// Parts whose upload has started so far.
    pub fn parts_started(&self) -> u64 {
        self.parts_started
    }

    fn finished(&self) -> Error {
        Error::Finished {
            location: self.location.to_string(),
        }
    }

    /// Hands the buffered part to the store and tracks its upload.
    fn start_part(&mut self) -> Result<JoinHandle<PartResult>, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let Some(upload) = self.upload.as_mut() else {
            return Err(self.finished());
        };
        let payload: PutPayload = self.buffer.drain(..).collect();
        self.buffered = 0;
        self.parts_started += 1;
        tracing::debug!(location = %self.location, part = self.parts_started, bytes = payload.content_length(), "uploading part");
        Ok(self.tracker.spawn_on(upload.put_part(payload), &runtime))
    }

    /// Buffers `chunk`, starting the upload of every part it completes.
    fn stage(&mut self, mut chunk: Bytes) -> Result<Vec<JoinHandle<PartResult>>, Error> {
        if self.upload.is_none() {
            return Err(self.finished());
        }
        let mut started = Vec::new();
        while !chunk.is_empty() {
            let take = (self.part_size - self.buffered).min(chunk.len());
            self.buffer.push(chunk.split_to(take));
            self.buffered += take;
            if self.buffered == self.part_size {
                started.push(self.start_part()?);
            }
        }
        Ok(started)
    }
}

/// Waits for part uploads, turning their failures into the sink's error.
async fn parts_done(location: Path, parts: Vec<JoinHandle<PartResult>>) -> Result<(), BoxError> {
    for part in parts {
        match part.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::store("part upload", &location, e).into()),
            Err(e) => {
                return Err(Error::PartTask {
                    location: location.to_string(),
                    message: e.to_string(),
                }
                .into());
            }
        }
    }
    Ok(())
}

impl Sink for ObjectStoreSink {
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<> {
        let staged = self.stage(chunk);
        let location = self.location.clone();
        async move { parts_done(location, staged?).await }
    }

    async fn finalize(&mut self) -> Result<(), BoxError> {
        if self.upload.is_none() {
            return Err(self.finished().into());
        }
        if self.buffered > 0 || self.parts_started == 0 {
            let tail = self.start_part()?;
            parts_done(self.location.clone(), vec![tail]).await?;
        }
        // Every write completed before `finalize`, so this returns at once;
        // it makes sure that no part is still in flight at `complete`.
        self.tracker.close();
        self.tracker.wait().await;
        let Some(upload) = self.upload.as_mut() else {
            return Err(self.finished().into());
        };
        upload
            .complete()
            .await
            .map_err(|e| Error::store("multipart complete", &self.location, e))?;
        self.upload = None;
        tracing::debug!(location = %self.location, parts = self.parts_started, "upload completed");
        Ok(())
    }

    async fn abort(mut self, cause: &Cause) -> Result<(), BoxError> {
        tracing::debug!(location = %self.location, cause = %cause, "aborting upload");
        self.tracker.close();
        self.tracker.wait().await;
        self.buffer.clear();
        let Some(mut upload) = self.upload.take() else {
            return Ok(());
        };
        upload
            .abort()
            .await
            .map_err(|e| Error::store("multipart abort", &self.location, e).into())
    }
}

impl Drop for ObjectStoreSink {
    fn drop(&mut self) {
        let Some(mut upload) = self.upload.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let tracker = self.tracker.clone();
        let location = self.location.clone();
        runtime.spawn(async move {
            tracker.close();
            tracker.wait().await;
            if let Err(error) = upload.abort().await {
                tracing::warn!(%error, %location, "could not abort a dropped upload");
            }
        });
    }
}
