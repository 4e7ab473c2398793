//! weir moves large byte streams from a source, through optional
//! transforms, into a sink, with flat memory, backpressure, cancellation
//! and an atomic outcome: the sink is either committed (`finalize` returned
//! `Ok`) or aborted exactly once, never half-committed, and nothing the
//! ingestion started outlives it.
//!
//! ```
//! use bytes::Bytes;
//! use futures_util::stream;
//! use weir::{IngestOptions, MemorySink, ingest};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let source = stream::iter(["hello, ", "weir"].map(|s| Ok(Bytes::from(s))));
//! let sink = MemorySink::new();
//! let committed = sink.handle();
//!
//! let report = ingest(source, sink, IngestOptions::default()).await?;
//!
//! assert_eq!(report.bytes_written, 11);
//! assert_eq!(committed.committed().as_deref(), Some(&b"hello, weir"[..]));
//! # Ok(())
//! # }
//! ```
//!
//! The pieces:
//!
//! - [`ingest`]: the loop; see its docs for the guarantees.
//! - [`Sink`]: `write`, `finalize`, `abort`, with its contract; [`BoxSink`]
//!   for dynamic dispatch. Shipped sinks: [`FileSink`] (temporary file,
//!   fsync, rename), [`MemorySink`], [`NullSink`].
//! - Sources: any `Stream<Item = io::Result<Bytes>>`;
//!   [`source::FileSource`] and [`source::from_async_read`] build one.
//! - [`Transform`]: a stage mapping a chunk to zero or more chunks, inline or
//!   off the runtime's workers.
//! - [`IngestOptions`], [`IngestReport`], [`IngestError`] with its root
//!   [`Cause`] and secondary [`AbortFailure`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod in_flight;
mod ingest;
mod lifecycle;
mod options;
mod registry;
mod report;
mod sink;
mod sinks;
pub mod source;
mod stop;
mod sync;
mod transform;

#[cfg(all(test, weir_loom))]
mod loom_registry;
#[cfg(all(test, weir_loom))]
mod loom_stop;

// The README's example is compiled with the doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

pub use error::{AbortFailure, BoxError, Cause, ErrorKind, IngestError, OptionsError, PanicSite};
pub use ingest::ingest;
pub use options::{
    DEFAULT_ABORT_TIMEOUT, DEFAULT_CHUNK_SIZE, DEFAULT_FINALIZE_TIMEOUT, IngestOptions, IngestOptionsBuilder,
    MAX_CHUNK_SIZE, MAX_IN_FLIGHT,
};
pub use registry::{Registry, ShutdownSummary};
pub use report::{AbortReport, IngestReport, LatencySummary, Outcome, StageReport};
pub use sink::{BoxSink, DynSink, Sink, TryWrite};
pub use sinks::{
    COALESCE, FileSink, FileSinkError, FileSinkOptions, MemoryHandle, MemorySink, NullSink, WRITE_BEHIND,
    WRITE_BEHIND_BYTES, WriterSink,
};
pub use tokio_util::sync::CancellationToken;
pub use transform::Transform;
