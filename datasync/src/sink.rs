//! The PostgreSQL sinks, one transaction per segment: the rows, the dead
//! letters and the job's new position commit together in `finalize`, or
//! nothing does (`abort` rolls back; a killed process is rolled back by the
//! server). [`PgCopySink`] streams COPY into a staging table and moves the
//! rows with `INSERT ... ON CONFLICT DO NOTHING` (duplicates from the
//! at-least-once API vanish by id); [`RowByRowSink`] is the baseline that
//! sends one `INSERT` per event.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};

use bytes::{Buf as _, Bytes, BytesMut};
use futures_util::SinkExt as _;
use tokio::sync::{Mutex, Notify, oneshot};
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, CopyInSink, Statement};
use weir::{BoxError, Cause, Sink};

use crate::parse::{BINARY_COPY_HEADER, BINARY_COPY_TRAILER, SharedTally};
use crate::pg::{DbError, SegmentCommit, commit_segment, query};
use crate::source::SharedProgress;

/// What one committed segment stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitTally {
    /// Rows the segment handed to PostgreSQL (duplicates included).
    pub rows_staged: u64,
    /// Rows inserted (duplicates excluded).
    pub rows_inserted: u64,
    /// Dead letters inserted (repeats excluded).
    pub dead_letters: u64,
}

/// The shared state of one segment: the source's progress, the
/// transform's tally, and what the sink committed.
#[derive(Debug, Clone)]
pub struct Segment {
    /// The job whose position moves.
    pub job: Arc<str>,
    /// Written by the source.
    pub progress: SharedProgress,
    /// Written by the transform.
    pub tally: SharedTally,
    /// Written by the sink when it commits.
    pub committed: Arc<StdMutex<Option<CommitTally>>>,
    /// Notified by the source when the segment's last checkpoint arrived.
    pub end: Arc<Notify>,
    /// Where the job's range ends (see [`Checkpoint::ends`](crate::protocol::Checkpoint::ends)).
    pub until_ms: Option<u64>,
}

/// The order in which pipelined segments move rows into `events` and
/// commit: a segment waits for its predecessor's commit, and lets its
/// successor go only after its own. A segment that aborts (or is dropped)
/// fails its successor, so that positions only ever commit in order.
#[derive(Debug, Default)]
pub struct Turn {
    prev: Option<oneshot::Receiver<()>>,
    next: Option<oneshot::Sender<()>>,
}

impl Turn {
    /// The first segment's turn: nothing to wait for, `next` to release.
    pub fn first(next: oneshot::Sender<()>) -> Self {
        Self {
            prev: None,
            next: Some(next),
        }
    }

    /// A turn that waits for `prev` and then releases `next`.
    pub fn after(prev: oneshot::Receiver<()>, next: oneshot::Sender<()>) -> Self {
        Self {
            prev: Some(prev),
            next: Some(next),
        }
    }

    async fn wait(&mut self) -> Result<(), BoxError> {
        if let Some(prev) = self.prev.take() {
            prev.await.map_err(|_| "the previous segment did not commit")?;
        }
        Ok(())
    }

    fn pass(&mut self) {
        if let Some(next) = self.next.take() {
            let _ = next.send(());
        }
    }
}

impl Segment {
    /// A fresh segment of `job`.
    pub fn new(job: &str) -> Self {
        Self {
            job: Arc::from(job),
            progress: SharedProgress::default(),
            tally: SharedTally::default(),
            committed: Arc::default(),
            end: Arc::default(),
            until_ms: None,
        }
    }

    /// A segment of a job whose range ends at `until_ms`.
    #[must_use]
    pub fn until(mut self, until_ms: Option<u64>) -> Self {
        self.until_ms = until_ms;
        self
    }

    /// The commit's figures, once committed.
    pub fn committed(&self) -> Option<CommitTally> {
        self.committed.lock().ok().and_then(|c| *c)
    }

    /// Commits the open transaction with `rows_inserted`.
    async fn commit(&self, client: &Client, rows_staged: u64, rows_inserted: u64) -> Result<(), DbError> {
        let checkpoint = self
            .progress
            .lock()
            .ok()
            .and_then(|p| p.checkpoint.clone())
            .ok_or(DbError::NoCheckpoint)?;
        let dead_letters = self
            .tally
            .lock()
            .map(|mut t| std::mem::take(&mut t.dead_letters))
            .unwrap_or_default();
        let dead = commit_segment(
            client,
            SegmentCommit {
                job: &self.job,
                done: checkpoint.ends(self.until_ms),
                checkpoint: &checkpoint,
                rows_inserted,
                dead_letters,
            },
        )
        .await?;
        if let Ok(mut committed) = self.committed.lock() {
            *committed = Some(CommitTally {
                rows_staged,
                rows_inserted,
                dead_letters: dead,
            });
        }
        Ok(())
    }
}

/// The COPY format a [`PgCopySink`] receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    /// Binary tuples ([`RowFormat::BinaryCopy`](crate::parse::RowFormat)); the
    /// sink adds header and trailer.
    Binary,
    /// Text lines ([`RowFormat::Tsv`](crate::parse::RowFormat)).
    Text,
}

/// Where a [`PgCopySink`] COPYs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyTarget {
    /// The session's staging table; `finalize` moves the rows into
    /// `events` with `INSERT ... ON CONFLICT (id) DO NOTHING`. Always
    /// correct, whatever the API repeats.
    Staging,
    /// `events` itself: half the database work, but the COPY fails (and
    /// the segment rolls back) if an id is already stored. For segments
    /// whose repeats were dropped upstream; the job retries a failed one
    /// with `Staging`.
    Events,
}

type Copy = Pin<Box<CopyInSink<Bytes>>>;

/// Streams rows into the session's staging table with COPY, then on
/// `finalize` moves them into `events` (`ON CONFLICT DO NOTHING`), inserts
/// the dead letters, moves the job's position and commits.
pub struct PgCopySink {
    client: Arc<Client>,
    copy: Arc<Mutex<Option<Copy>>>,
    format: CopyFormat,
    target: CopyTarget,
    segment: Segment,
    turn: Turn,
}

impl PgCopySink {
    /// Opens the segment's transaction and its COPY.
    ///
    /// # Errors
    ///
    /// When `BEGIN` or `COPY` fails.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: a dropped call may leave the transaction open;
    /// drop the connection then.
    pub async fn begin(
        client: Arc<Client>,
        segment: Segment,
        format: CopyFormat,
        target: CopyTarget,
        turn: Turn,
    ) -> Result<Self, DbError> {
        client
            .batch_execute("BEGIN")
            .await
            .map_err(query("beginning a segment"))?;
        let statement = match (target, format) {
            (CopyTarget::Staging, CopyFormat::Binary) => {
                "COPY weir_staging (id, type, ts, payload) FROM STDIN (FORMAT binary)"
            }
            (CopyTarget::Staging, CopyFormat::Text) => "COPY weir_staging (id, type, ts, payload) FROM STDIN",
            (CopyTarget::Events, CopyFormat::Binary) => {
                "COPY events (id, type, ts, payload) FROM STDIN (FORMAT binary)"
            }
            (CopyTarget::Events, CopyFormat::Text) => "COPY events (id, type, ts, payload) FROM STDIN",
        };
        let copy = match client.copy_in(statement).await {
            Ok(copy) => copy,
            Err(source) => {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(DbError::Query {
                    context: "starting COPY",
                    source,
                });
            }
        };
        let mut copy: Copy = Box::pin(copy);
        if format == CopyFormat::Binary
            && let Err(source) = copy.feed(Bytes::from_static(BINARY_COPY_HEADER)).await
        {
            drop(copy);
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(DbError::Query {
                context: "starting COPY",
                source,
            });
        }
        Ok(Self {
            client,
            copy: Arc::new(Mutex::new(Some(copy))),
            format,
            target,
            segment,
            turn,
        })
    }
}

impl std::fmt::Debug for PgCopySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCopySink")
            .field("format", &self.format)
            .field("target", &self.target)
            .field("segment", &self.segment)
            .finish_non_exhaustive()
    }
}

impl Sink for PgCopySink {
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<> {
        let copy = Arc::clone(&self.copy);
        async move {
            let mut guard = copy.lock().await;
            let sink = guard.as_mut().ok_or("the COPY is already closed")?;
            sink.send(chunk).await?;
            Ok(())
        }
    }

    async fn finalize(&mut self) -> Result<(), BoxError> {
        let mut copy = self.copy.lock().await.take().ok_or("the COPY is already closed")?;
        if self.format == CopyFormat::Binary {
            copy.feed(Bytes::from_static(BINARY_COPY_TRAILER)).await?;
        }
        let staged = copy.as_mut().finish().await.map_err(query("finishing COPY"))?;
        self.turn.wait().await?;
        let inserted = match self.target {
            CopyTarget::Events => staged,
            CopyTarget::Staging => self
                .client
                .execute(
                    "INSERT INTO events (id, type, ts, payload)
                     SELECT id, type, ts, payload FROM weir_staging
                     ON CONFLICT (id) DO NOTHING",
                    &[],
                )
                .await
                .map_err(query("moving staged rows into events"))?,
        };
        self.segment.commit(&self.client, staged, inserted).await?;
        self.turn.pass();
        Ok(())
    }

    async fn abort(self, cause: &Cause) -> Result<(), BoxError> {
        tracing::debug!(%cause, "rolling the segment back");
        // The successor must not commit past this segment.
        drop(self.turn);
        // Dropping an unfinished COPY aborts it.
        drop(self.copy.lock().await.take());
        self.client.batch_execute("ROLLBACK").await?;
        Ok(())
    }
}

/// A parameter sent as already-encoded binary bytes (a field of a binary
/// COPY tuple), so the row-by-row baseline binds exactly what COPY sends.
#[derive(Debug)]
struct RawParam<'a>(&'a [u8]);

impl ToSql for RawParam<'_> {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0);
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Splits binary COPY tuples `(id, type, ts, payload)` into their fields.
fn tuples(mut data: &[u8]) -> Result<Vec<[&[u8]; 4]>, BoxError> {
    let mut rows = Vec::new();
    while !data.is_empty() {
        if data.len() < 2 || data.get_i16() != 4 {
            return Err("malformed binary tuple: expected 4 fields".into());
        }
        let mut fields: [&[u8]; 4] = [&[]; 4];
        for field in &mut fields {
            if data.len() < 4 {
                return Err("malformed binary tuple: truncated length".into());
            }
            let len = usize::try_from(data.get_i32()).map_err(|_| "malformed binary tuple: null field")?;
            if data.len() < len {
                return Err("malformed binary tuple: truncated field".into());
            }
            *field = &data[..len];
            data = &data[len..];
        }
        rows.push(fields);
    }
    Ok(rows)
}

/// The baseline: one `INSERT ... ON CONFLICT DO NOTHING` per event, each
/// awaited before the next, in the segment's transaction (or, with
/// `autocommit`, each its own transaction, the position committed after the
/// segment: the common at-least-once design, made idempotent by the
/// conflict clause). It receives the same binary tuples as [`PgCopySink`]
/// and binds their fields as they are.
#[derive(Debug)]
pub struct RowByRowSink {
    client: Arc<Client>,
    insert: Statement,
    staged: Arc<AtomicU64>,
    inserted: Arc<AtomicU64>,
    segment: Segment,
    turn: Turn,
    autocommit: bool,
}

impl RowByRowSink {
    /// Opens the segment's transaction and prepares the `INSERT`.
    ///
    /// # Errors
    ///
    /// When `BEGIN` or `PREPARE` fails.
    pub async fn begin(client: Arc<Client>, segment: Segment, turn: Turn, autocommit: bool) -> Result<Self, DbError> {
        if !autocommit {
            client
                .batch_execute("BEGIN")
                .await
                .map_err(query("beginning a segment"))?;
        }
        let insert = client
            .prepare_typed(
                "INSERT INTO events (id, type, ts, payload) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
                &[Type::UUID, Type::TEXT, Type::TIMESTAMPTZ, Type::JSON],
            )
            .await
            .map_err(query("preparing the row insert"))?;
        Ok(Self {
            client,
            insert,
            staged: Arc::default(),
            inserted: Arc::default(),
            segment,
            turn,
            autocommit,
        })
    }
}

impl Sink for RowByRowSink {
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<> {
        let client = Arc::clone(&self.client);
        let insert = self.insert.clone();
        let staged = Arc::clone(&self.staged);
        let inserted = Arc::clone(&self.inserted);
        async move {
            for [id, kind, ts, payload] in tuples(&chunk)? {
                let params = [RawParam(id), RawParam(kind), RawParam(ts), RawParam(payload)];
                let refs: [&(dyn ToSql + Sync); 4] = [&params[0], &params[1], &params[2], &params[3]];
                let n = client.execute(&insert, &refs).await?;
                staged.fetch_add(1, Ordering::Relaxed);
                inserted.fetch_add(n, Ordering::Relaxed);
            }
            Ok(())
        }
    }

    async fn finalize(&mut self) -> Result<(), BoxError> {
        let staged = self.staged.load(Ordering::Relaxed);
        let inserted = self.inserted.load(Ordering::Relaxed);
        self.turn.wait().await?;
        if self.autocommit {
            self.client
                .batch_execute("BEGIN")
                .await
                .map_err(query("beginning the position commit"))?;
        }
        self.segment.commit(&self.client, staged, inserted).await?;
        self.turn.pass();
        Ok(())
    }

    async fn abort(self, cause: &Cause) -> Result<(), BoxError> {
        tracing::debug!(%cause, "rolling the segment back");
        // With autocommit the rows stay; a rerun re-inserts them idempotently.
        self.client.batch_execute("ROLLBACK").await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Dataset;
    use crate::parse::{encode_binary, parse_event};

    #[test]
    fn binary_tuples_split_back_into_their_fields() {
        let data = Dataset {
            malformed_rate: 0.0,
            ..Dataset::new(2, 3)
        };
        let mut frame = Vec::new();
        let lines: Vec<_> = (0..3).map(|i| data.event_line(i)).collect();
        for line in &lines {
            encode_binary(&parse_event(line).unwrap(), &mut frame);
        }
        let rows = tuples(&frame).unwrap();
        assert_eq!(rows.len(), 3);
        for (index, row) in rows.iter().enumerate() {
            assert_eq!(row[0], &data.id(index as u64)[..]);
            assert_eq!(row[3][0], b'{', "json payload text");
        }
        assert!(tuples(&frame[..frame.len() - 1]).is_err());
        assert!(tuples(&[0, 3]).is_err());
    }
}
