//! Transforms for weir, kept out of the engine so that the engine stays lean:
//! checksums that pass data through, map and filter over user closures, a
//! newline-delimited record splitter, and streaming zstd and gzip
//! compression and decompression.
//!
//! Every transform here implements [`weir::Transform`]; add it with
//! [`IngestOptionsBuilder::transform`](weir::IngestOptionsBuilder::transform).
//! The engine measures each stage (time spent, bytes and chunks in and out,
//! chunks dropped) in [`StageReport`](weir::StageReport).
//!
//! ```
//! use bytes::Bytes;
//! use futures_util::stream;
//! use weir::{IngestOptions, NullSink, ingest};
//! use weir_transforms::{Sha256, digest_in};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let source = stream::iter(["hello, ", "weir"].map(|s| Ok(Bytes::from(s))));
//! let options = IngestOptions::builder().transform(Sha256::new()).build();
//!
//! let report = ingest(source, NullSink, options).await?;
//!
//! assert_eq!(
//!     digest_in(&report.stages, "sha256"),
//!     Some("d00cd3e34894fb8844344e97902f6919c40b62981c8789b774159758fa7558cd")
//! );
//! # Ok(())
//! # }
//! ```
//!
//! The pieces:
//!
//! - Checksums: [`Sha256`], [`Blake3`], [`Crc32c`]; each passes every chunk
//!   through unchanged and reports `"<algorithm>:<hex digest>"` as its
//!   summary once the input is complete ([`digest_in`] finds it).
//! - [`Map`] and [`Filter`]: user closures over chunks.
//! - [`SplitLines`]: newline-delimited records across chunk boundaries, with
//!   a bound on the record length.
//! - [`Compress`] and [`Decompress`]: streaming zstd and gzip, output in
//!   bounded pieces, with a bound on the output of one input chunk.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod checksum;
mod compress;
mod error;
mod map;
mod split;

pub use checksum::{Algorithm, Blake3, Blake3State, Checksum, Crc32c, Crc32cState, Sha256, Sha256State, digest_in};
pub use compress::{
    Codec, Compress, DEFAULT_MAX_OUTPUT_PER_CHUNK, DEFAULT_PIECE_SIZE, DEFAULT_WINDOW_LOG_MAX, Decompress,
};
pub use error::TransformError;
pub use map::{Filter, Map};
pub use split::{DEFAULT_MAX_RECORD, SplitLines};
