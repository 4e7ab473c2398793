//! Helpers shared by the integration tests: sources, digests, listings, and
//! a store whose part uploads fail on demand.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, TryStreamExt, stream};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, UploadPart,
};

/// `data` as a source of chunks of `chunk` bytes.
pub fn chunked(data: &[u8], chunk: usize) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let chunks: Vec<io::Result<Bytes>> = data.chunks(chunk).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    stream::iter(chunks)
}

/// `data` as chunks of `chunk` bytes, then an error.
pub fn failing_after(data: &[u8], chunk: usize) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    chunked(data, chunk).chain(stream::iter([Err(io::Error::other("source broke"))]))
}

use futures_util::StreamExt as _;

/// SHA-256 of `data`, in hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Every object in `store`, with its size.
pub async fn list_all(store: &dyn ObjectStore) -> Vec<(String, u64)> {
    let mut objects: Vec<(String, u64)> = store
        .list(None)
        .map_ok(|meta| (meta.location.to_string(), meta.size))
        .try_collect()
        .await
        .unwrap();
    objects.sort();
    objects
}

/// The whole content of `location`, or `None` when there is no object.
pub async fn read(store: &dyn ObjectStore, location: &str) -> Option<Bytes> {
    use object_store::ObjectStoreExt as _;
    match store.get(&Path::from(location)).await {
        Ok(result) => Some(result.bytes().await.unwrap()),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(other) => panic!("get {location}: {other}"),
    }
}

/// Counts of what the uploads of a [`FlakyStore`] were asked to do.
#[derive(Debug, Default)]
pub struct Calls {
    pub parts: AtomicUsize,
    pub completes: AtomicUsize,
    pub aborts: AtomicUsize,
}

/// An in-memory store whose multipart uploads fail the part with index
/// `fail_part` (0-based, across the upload), and count their calls.
#[derive(Debug)]
pub struct FlakyStore {
    pub inner: object_store::memory::InMemory,
    pub fail_part: Option<usize>,
    pub fail_complete: bool,
    pub calls: Arc<Calls>,
}

impl FlakyStore {
    pub fn new(fail_part: Option<usize>, fail_complete: bool) -> Self {
        Self {
            inner: object_store::memory::InMemory::new(),
            fail_part,
            fail_complete,
            calls: Arc::default(),
        }
    }
}

impl fmt::Display for FlakyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FlakyStore({})", self.inner)
    }
}

fn injected(what: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "flaky",
        source: format!("injected {what} failure").into(),
    }
}

#[derive(Debug)]
struct FlakyUpload {
    inner: Box<dyn MultipartUpload>,
    fail_part: Option<usize>,
    fail_complete: bool,
    calls: Arc<Calls>,
}

#[async_trait::async_trait]
impl MultipartUpload for FlakyUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let index = self.calls.parts.fetch_add(1, Ordering::SeqCst);
        if self.fail_part == Some(index) {
            return Box::pin(async { Err(injected("part")) });
        }
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.calls.completes.fetch_add(1, Ordering::SeqCst);
        if self.fail_complete {
            return Err(injected("complete"));
        }
        self.inner.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.calls.aborts.fetch_add(1, Ordering::SeqCst);
        self.inner.abort().await
    }
}

#[async_trait::async_trait]
impl ObjectStore for FlakyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(FlakyUpload {
            inner,
            fail_part: self.fail_part,
            fail_complete: self.fail_complete,
            calls: Arc::clone(&self.calls),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
