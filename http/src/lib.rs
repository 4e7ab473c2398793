//! weir-http: streams files (and any ranged byte source) to HTTP clients
//! with flat memory per connection, byte ranges, conditional requests,
//! compression, throttling, prompt cleanup on disconnect and Prometheus
//! metrics (runtime lag included), and takes uploads into any sink. The lab's
//! delivery scenario (`scenarios/delivery`) measures it against tower-http's
//! `ServeFile` and nginx.
//!
//! ```no_run
//! use weir_http::{DeliveryConfig, Server};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), weir_http::Error> {
//! let config = DeliveryConfig::new("/srv/files");
//! let server = Server::bind("127.0.0.1:0".parse().unwrap(), config).await?;
//! println!("serving on http://{}/files/", server.local_addr());
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! The pieces:
//!
//! - [`Server`]: the HTTP/1.1 server (`GET`/`HEAD` under `/files/`,
//!   under `/objects/` for an `object_store` store, and `/metrics`), with
//!   [`DeliveryConfig`] for chunk size, rates, timeouts and the
//!   [`SendPath`]: plain file bodies by `sendfile(2)` from heads the server
//!   parses itself, everything else through hyper; [`Delivery`] is its
//!   request handler, usable in any hyper or tower server.
//! - [`plan`]: RFC 9110 ranges and conditionals, with the policy written
//!   down (malformed or abusive `Range` ignored, several ranges answered as
//!   `multipart/byteranges`).
//! - [`Representation`] and [`RangeOpen`]: what is served and how a range of
//!   it is read; files and objects ship, anything else plugs in.
//! - Compression: whole responses in zstd or gzip by `Accept-Encoding`,
//!   compressed by weir-transforms inside a `weir::ingest` that a one-slot
//!   channel ties to the response body, so a stalled client holds a
//!   bounded amount; ranges are always of the identity bytes (RFC 9110
//!   policy in the `encoding` module's docs). [`DeliveryConfig::compression`].
//! - Uploads: `PUT`/`POST` under `/files/` (a `FileSink`, visible only on
//!   commit) or `/objects/` (an `ObjectStoreSink`), through `weir::ingest`,
//!   with SHA-256 checked against `Content-Digest`/`Repr-Digest` before the
//!   commit, limits answered before the body (`413`, `503` with
//!   `Retry-After`), and aborts that leave nothing behind. Off unless
//!   [`DeliveryConfig::uploads`] is set; writers need its bearer token.
//! - Rows: `GET /rows/<table>.ndjson` or `.csv` streams a configured
//!   table of a PostgreSQL database by `COPY ... TO STDOUT`, pulled at the
//!   client's pace; a hang-up cancels the query. [`DeliveryConfig::rows`].
//! - [`Metrics`]: the Prometheus registry behind `/metrics`, with upload
//!   outcomes and the [`RuntimeLag`] a probe task on the server's runtime
//!   measures.
//! - [`Server::bind_service`]: any hyper or tower service behind the same
//!   accept loop, timeouts and stall guard (how the lab runs its baseline).
//! - [`client`]: a small HTTP/1.1 client over hyper that counts bytes and
//!   time to first byte, for tests, probes and load generation.
//!
//! # Memory per connection
//!
//! On the default [`SendPath::Sendfile`], a plain file body (the whole
//! file or one range) goes from the file to the socket by `sendfile(2)`:
//! a slow connection holds no buffer of its own, only its task, the
//! socket and the open file. Every other response goes through hyper, as
//! below; [`SendPath::Hyper`] sends every body that way.
//!
//! On the hyper path the body is pull-based: hyper asks for the next chunk only while less than
//! [`connection_buffer`](DeliveryConfig::connection_buffer) bytes are queued,
//! and only then is a chunk read. A client that reads slowly or not at all
//! therefore pins at most two chunk buffers (64 KiB with the defaults),
//! whatever the file size; the kernel's socket buffers absorb the rest.
//! Files are read by the engine's
//! [`FileSource`](weir::source::FileSource) over the requested range, in
//! [pull mode](weir::source::FileSourceBuilder::pull) by default, into one
//! [`BufferPool`](weir::source::BufferPool) the server shares across
//! transfers, so steady streaming neither allocates nor faults in fresh
//! pages. [`FileReader::ReadAhead`] reads ahead instead: reads overlap
//! writes, but a transfer whose file is not cached costs a thread and a few
//! chunks, which is why pull is
//! the default; the scenario measures both.
//!
//! # Disconnects
//!
//! A client that hangs up makes the next write fail (on the sendfile path
//! the next `sendfile`, which ends the transfer as aborted and closes the
//! connection); hyper drops the body,
//! which drops the source at once (closing the file, or the object request)
//! and counts the transfer as aborted. A client that stops reading without
//! hanging up is cut off after
//! [`write_stall_timeout`](DeliveryConfig::write_stall_timeout).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod body;
pub mod client;
mod config;
mod delivery;
mod encoding;
mod error;
mod io;
mod lag;
mod metrics;
mod multipart;
mod objects;
mod path;
pub mod plan;
mod rows;
mod sendfile;
mod server;
mod source;
mod throttle;
mod upload;

pub use body::DeliveryBody;
pub use config::{DeliveryConfig, MIN_TOKEN_LEN, SendPath, UploadConfig};
pub use delivery::{ConnectionLimits, Delivery, FILES_PREFIX, METRICS_PATH, OBJECTS_PREFIX};
pub use error::Error;
pub use metrics::{Metrics, MetricsSnapshot, RuntimeLag, TransferOutcome, UploadOutcome};
pub use rows::{ROWS_PREFIX, RowsConfig};
pub use server::{Server, ServerHandle};
pub use source::{ByteStream, FileReader, RangeOpen, Representation};
