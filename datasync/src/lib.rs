//! DataSync for weir: a mock event API and a resumable, exactly-once job
//! that ingests its events into PostgreSQL. The lab's `scenarios/datasync-lab`
//! measures it against row-by-row `INSERT` and a two-stage "TSV file, then
//! COPY" design.
//!
//! - [`api`]: the mock API (`MockApi`): a seeded [`dataset::Dataset`]
//!   behind an API key and expiring tokens, cursor pages, an NDJSON stream
//!   with checkpoint lines, and seeded faults.
//! - [`job`]: the job ([`run_job`]): per segment one [`weir::ingest`] with
//!   [`source::ApiSource`] as the source, [`parse::ParseEvents`] as the
//!   transform and [`sink::PgCopySink`] (binary COPY into a staging table,
//!   then `INSERT ... ON CONFLICT DO NOTHING`) as the sink; the rows, the
//!   dead letters and the API position commit in one transaction.
//! - [`work`]: the job spread over NATS JetStream: a planner's time ranges
//!   as work items on a replicated work queue, workers that run the job per
//!   item and ack it only after its commit.
//! - [`cli`]: the command lines of `weir-lab datasync` and
//!   `weir-lab datasync-api`.
//!
//! PostgreSQL comes from `DATABASE_URL`, or from the `.pg/env` file that
//! `just pg-up` writes ([`pg::database_url`]).
//!
//! ```
//! use weir_datasync::dataset::Dataset;
//! use weir_datasync::parse::parse_event;
//!
//! let data = Dataset { malformed_rate: 0.0, ..Dataset::new(42, 10) };
//! let line = data.event_line(3);
//! let event = parse_event(&line).unwrap();
//! assert_eq!(event.id.as_bytes(), &data.id(3));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod cli;
pub mod client;
pub mod dataset;
pub mod job;
pub mod parse;
pub mod pg;
pub mod protocol;
pub mod sink;
pub mod source;
pub mod work;

pub use job::{JobConfig, JobReport, SinkKind, run_job};

/// A failure of the job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// PostgreSQL.
    #[error(transparent)]
    Db(#[from] pg::DbError),
    /// The API.
    #[error(transparent)]
    Fetch(#[from] client::FetchError),
    /// A segment's ingestion (rolled back).
    #[error(transparent)]
    Ingest(#[from] weir::IngestError),
    /// A file or socket.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why.
        source: std::io::Error,
    },
    /// Invalid parameters.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The NATS work queue (connecting, the stream, the consumer).
    #[error("work queue: {0}")]
    Queue(String),
    /// A work item's batch.
    #[error(transparent)]
    Batch(#[from] weir_jetstream::Error),
}

/// Checks the exactly-once outcome: `None` when the ids stored in `db` and
/// its dead letters are exactly `dataset`'s (every well-formed event once,
/// every malformed one as a dead letter); otherwise what differs.
///
/// # Errors
///
/// When the tables cannot be read.
pub async fn verify(db: &pg::Db, dataset: &dataset::Dataset) -> Result<Option<String>, Error> {
    let expected = dataset.expected();
    let stored = db.stored_ids().await?;
    let stored_count = stored.len();
    let stored: std::collections::BTreeSet<[u8; 16]> = stored.into_iter().collect();
    let missing = expected.ids.difference(&stored).count();
    let unexpected = stored.difference(&expected.ids).count();
    let duplicates = stored_count - stored.len();
    let dead: std::collections::BTreeSet<Vec<u8>> = db.dead_letters().await?.into_iter().map(|(raw, _)| raw).collect();
    let dead_missing = expected.dead_letters.difference(&dead).count();
    let dead_unexpected = dead.difference(&expected.dead_letters).count();
    if missing + unexpected + duplicates + dead_missing + dead_unexpected == 0 {
        Ok(None)
    } else {
        Ok(Some(format!(
            "stored ids differ from the log: {missing} missing, {unexpected} unexpected, {duplicates} duplicated; \
             dead letters: {dead_missing} missing, {dead_unexpected} unexpected"
        )))
    }
}
