//! NATS JetStream for weir.
//!
//! - [`Batch`]: a source over a durable pull consumer. [`Batch::pull`]
//!   takes up to [`BatchLimits`] messages; [`Batch::ingest`] runs one
//!   [`weir::ingest`] over their payloads and lets the atomic outcome decide
//!   the acks: every message is acked only after the sink's `finalize`
//!   returned `Ok`; an aborted ingestion naks them, so they are
//!   redelivered. While the ingestion runs, the messages are told "in
//!   progress", so a long commit does not look like a dead worker. The
//!   consumer's `max_ack_pending` and the batch limits bound what a worker
//!   holds: the backpressure bound.
//! - [`PublishSink`]: every chunk published as one message with a
//!   `Nats-Msg-Id`, so that a retried ingestion stores each chunk once.
//!
//! Tested against Debian's `nats-server` 2.9.10 (`just nats-up`): the
//! client is built without the `server_2_10` and later features.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use async_nats::jetstream::{self, consumer::pull};
//! use weir::{IngestOptions, MemorySink};
//! use weir_jetstream::{Batch, BatchLimits};
//!
//! let client = async_nats::connect(weir_jetstream::nats_servers()?).await?;
//! let js = jetstream::new(client);
//! let stream = js.get_stream("EVENTS").await?;
//! let consumer = stream
//!     .get_or_create_consumer("loader", pull::Config {
//!         durable_name: Some("loader".into()),
//!         ..Default::default()
//!     })
//!     .await?;
//! let limits = BatchLimits::default();
//! while let Some(batch) = Batch::pull(&consumer, &limits).await? {
//!     let sink = MemorySink::new();
//!     let handle = sink.handle();
//!     // Acked only if this commits; naked (and redelivered) otherwise.
//!     let report = batch.ingest(sink, IngestOptions::default()).await?;
//!     println!("{} messages, {} bytes", report.messages, handle.committed().map_or(0, |b| b.len()));
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod sink;
mod source;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use sink::{PublishCounts, PublishSink};
pub use source::{Batch, BatchLimits, BatchReport, wait_until_ready};

/// A failure of this crate's source or sink.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The batch limits were refused before anything was asked of the
    /// server.
    #[error("invalid batch limits: {0}")]
    InvalidLimits(&'static str),
    /// The pull request failed (a deleted or expired consumer, a cluster
    /// without a leader, a lost connection).
    #[error("pulling a batch failed")]
    Pull(#[source] async_nats::Error),
    /// The consumer's next message alone is larger than the batch's byte
    /// limit: no batch can take it (raise `max_bytes`, or 0 for none).
    #[error("the next message is larger than the batch limit of {max_bytes} bytes")]
    MessageTooLarge {
        /// The batch's byte limit.
        max_bytes: usize,
    },
    /// The consumer cannot serve pulls yet (no leader elected in time).
    #[error("the consumer is not ready: {0}")]
    NotReady(String),
    /// The server did not answer the pull request at all.
    #[error("pulling a batch: no answer within {0:?}")]
    PullTimedOut(Duration),
    /// The ingestion did not commit; its messages were naked.
    #[error(transparent)]
    Ingest(Box<weir::IngestError>),
    /// No NATS address: neither `NATS_URL` nor a `.nats/env` file.
    #[error("no NATS server: set NATS_URL or run `just nats-up` (which writes .nats/env)")]
    NoServer,
}

/// The NATS servers to connect to: `NATS_URL` when set, else the
/// `NATS_URL` line of the `.nats/env` file that `just nats-up` writes
/// (looked for in the working directory, its parents, and this crate's
/// checkout); a comma-separated list, one address each.
///
/// # Errors
///
/// [`Error::NoServer`] when neither is there.
pub fn nats_servers() -> Result<Vec<String>, Error> {
    let list = std::env::var("NATS_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .or_else(|| env_file_value("NATS_URL"))
        .ok_or(Error::NoServer)?;
    parse_servers(&list)
}

/// The addresses of a comma-separated server list (`NATS_URL`'s format),
/// blanks dropped.
///
/// # Errors
///
/// [`Error::NoServer`] when the list names none.
pub fn parse_servers(list: &str) -> Result<Vec<String>, Error> {
    let servers: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if servers.is_empty() {
        Err(Error::NoServer)
    } else {
        Ok(servers)
    }
}

/// A `KEY=value` line of the nearest `.nats/env` (the file `just nats-up`
/// writes), for tests and tools that reach single nodes.
pub fn env_file_value(key: &str) -> Option<String> {
    let file = env_file()?;
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .filter_map(|line| line.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_owned())
}

fn env_file() -> Option<PathBuf> {
    let start = std::env::current_dir().ok()?;
    start
        .ancestors()
        .chain(Path::new(env!("CARGO_MANIFEST_DIR")).ancestors())
        .map(|dir| dir.join(".nats/env"))
        .find(|path| path.is_file())
}
