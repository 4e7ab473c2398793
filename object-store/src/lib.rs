//! Object stores for weir, over the `object_store` crate: a sink that
//! streams into one object through a multipart upload (nothing visible
//! until `finalize`, everything undone by `abort`), and a source that reads
//! an object, or a range of it, with ranged reads.
//!
//! ```
//! use std::sync::Arc;
//!
//! use bytes::Bytes;
//! use futures_util::{TryStreamExt, stream};
//! use object_store::memory::InMemory;
//! use object_store::ObjectStore;
//! use weir::{IngestOptions, ingest};
//! use weir_object_store::{ObjectStoreSink, ObjectStoreSource};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
//!
//! let source = stream::iter(["hello, ", "weir"].map(|s| Ok(Bytes::from(s))));
//! let sink = ObjectStoreSink::create(store.as_ref(), "greeting.txt").await?;
//! ingest(source, sink, IngestOptions::default()).await?;
//!
//! let read: Vec<Bytes> = ObjectStoreSource::builder(Arc::clone(&store), "greeting.txt")
//!     .range(7..11)
//!     .open()
//!     .await?
//!     .try_collect()
//!     .await?;
//! assert_eq!(read.concat(), b"weir");
//! # Ok(())
//! # }
//! ```
//!
//! The sink's lifecycle follows weir's contract: parts are uploaded as they
//! fill, `finalize` completes the upload, `abort` aborts it. Both are tested
//! against `object_store`'s in-memory and local-filesystem backends; cloud
//! backends are features of `object_store` that this crate does not enable.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod sink;
mod source;

pub use error::Error;
pub use sink::{DEFAULT_PART_SIZE, ObjectStoreSink, ObjectStoreSinkBuilder};
pub use source::{DEFAULT_REQUEST_SIZE, ObjectStoreSource, ObjectStoreSourceBuilder};

/// The `object_store` crate, re-exported so that callers name the same
/// version.
pub use object_store;
