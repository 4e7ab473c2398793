//! PostgreSQL for the job: finding `DATABASE_URL` (or the `.pg/env` file
//! that `just pg-up` writes), connecting with errors that say what to do,
//! the schema (events, dead letters, ingest state, the staging table), the
//! per-segment commit, and the read-backs tests and `--export-ids` use.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt as _, TryStreamExt as _};
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};

use crate::client::Resume;
use crate::parse::DeadLetter;
use crate::protocol::Checkpoint;

/// The file `just pg-up` writes, relative to the workspace root.
pub const ENV_FILE: &str = ".pg/env";

/// A database failure, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// Neither `DATABASE_URL` nor the env file.
    #[error(
        "DATABASE_URL is not set and no {ENV_FILE} was found above {0}: start PostgreSQL with `just pg-up` (or set DATABASE_URL)"
    )]
    NoUrl(String),
    /// The URL does not parse.
    #[error("invalid DATABASE_URL {url}: {source}")]
    BadUrl {
        /// The URL, password hidden.
        url: String,
        /// Why.
        source: tokio_postgres::Error,
    },
    /// No connection.
    #[error("cannot reach PostgreSQL at {url}: {source}; start it with `just pg-up` (or fix DATABASE_URL)")]
    Unreachable {
        /// The URL, password hidden.
        url: String,
        /// Why.
        source: tokio_postgres::Error,
    },
    /// A statement failed.
    #[error("postgres {context}: {source}")]
    Query {
        /// What was being done.
        context: &'static str,
        /// Why.
        source: tokio_postgres::Error,
    },
    /// The schema name is not a plain identifier.
    #[error("invalid schema name {0:?}: use lowercase letters, digits and underscores")]
    BadSchema(String),
    /// The segment has nothing to commit its position with.
    #[error("the segment ended without a checkpoint")]
    NoCheckpoint,
}

/// Adds context to a driver error (for `map_err` on a query).
pub fn query(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> DbError {
    move |source| DbError::Query { context, source }
}

/// `url` with its password replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// The database URL: `DATABASE_URL` when set, else the `DATABASE_URL=` line
/// of the first `.pg/env` found in `start` or above it.
///
/// # Errors
///
/// [`DbError::NoUrl`] when there is neither.
pub fn database_url(start: &Path) -> Result<String, DbError> {
    if let Ok(url) = std::env::var("DATABASE_URL")
        && !url.trim().is_empty()
    {
        return Ok(url.trim().to_owned());
    }
    env_file_url(start).ok_or_else(|| DbError::NoUrl(start.display().to_string()))
}

/// The `DATABASE_URL` of the first `.pg/env` in `start` or above.
pub fn env_file_url(start: &Path) -> Option<String> {
    let mut dir: Option<PathBuf> = Some(start.to_path_buf());
    while let Some(current) = dir {
        if let Ok(text) = std::fs::read_to_string(current.join(ENV_FILE)) {
            for line in text.lines() {
                let line = line.trim().trim_start_matches("export ");
                if let Some(value) = line.strip_prefix("DATABASE_URL=") {
                    return Some(value.trim().trim_matches(['"', '\'']).to_owned());
                }
            }
        }
        dir = current.parent().map(Path::to_path_buf);
    }
    None
}

fn check_schema(schema: &str) -> Result<(), DbError> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(DbError::BadSchema(schema.to_owned()))
    }
}

/// One connection, working in one schema.
#[derive(Debug)]
pub struct Db {
    client: Arc<Client>,
    driver: JoinHandle<()>,
    schema: String,
}

impl Drop for Db {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// The job's position, as committed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobState {
    /// Where to resume.
    pub resume: Resume,
    /// The log was read to its end.
    pub done: bool,
    /// Segments committed.
    pub segments: i64,
    /// Rows inserted (duplicates excluded).
    pub rows_inserted: i64,
    /// Dead letters inserted (repeats excluded).
    pub dead_letters: i64,
}

impl Db {
    /// Connects to `url` and works in `schema` (created by
    /// [`ensure_schema`](Self::ensure_schema)).
    ///
    /// # Errors
    ///
    /// A bad URL or schema name, or an unreachable server, with the advice
    /// to run `just pg-up`.
    pub async fn connect(url: &str, schema: &str) -> Result<Self, DbError> {
        check_schema(schema)?;
        let mut config: tokio_postgres::Config = url.parse().map_err(|source| DbError::BadUrl {
            url: redact(url),
            source,
        })?;
        config.connect_timeout(Duration::from_secs(5));
        config.application_name("weir-datasync");
        let (client, connection) = config.connect(NoTls).await.map_err(|source| DbError::Unreachable {
            url: redact(url),
            source,
        })?;
        let driver = tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "postgres connection ended");
            }
        });
        let db = Self {
            client: Arc::new(client),
            driver,
            schema: schema.to_owned(),
        };
        // Temporary buffers are sized before the first temporary table.
        let setup = format!("SET search_path TO \"{schema}\"; SET temp_buffers = '256MB'");
        db.client
            .batch_execute(&setup)
            .await
            .map_err(query("setting up the session"))?;
        Ok(db)
    }

    /// The process id of this connection's backend on the server (for a
    /// local server, a measuring tool finds the postmaster as its parent).
    pub async fn backend_pid(&self) -> Option<u32> {
        let row = self.client.query_one("SELECT pg_backend_pid()", &[]).await.ok()?;
        u32::try_from(row.try_get::<_, i32>(0).ok()?).ok()
    }

    /// The connection.
    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// The schema.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Creates the schema, its tables and this session's staging table,
    /// when missing.
    ///
    /// # Errors
    ///
    /// Any failing statement.
    pub async fn ensure_schema(&self) -> Result<(), DbError> {
        let schema = &self.schema;
        let ddl = format!(
            "BEGIN;
             SELECT pg_advisory_xact_lock(7262);
             CREATE SCHEMA IF NOT EXISTS \"{schema}\";
             -- payload is `json`: the event's payload byte for byte, validated;
             -- `jsonb` costs about 1.6x the server CPU per row on the COPY path.
             CREATE TABLE IF NOT EXISTS events (
                 id uuid PRIMARY KEY,
                 type text NOT NULL,
                 ts timestamptz NOT NULL,
                 payload json NOT NULL
             );
             CREATE TABLE IF NOT EXISTS dead_letters (
                 digest bytea PRIMARY KEY,
                 raw bytea NOT NULL,
                 reason text NOT NULL,
                 first_seen timestamptz NOT NULL DEFAULT now()
             );
             CREATE TABLE IF NOT EXISTS ingest_state (
                 job text PRIMARY KEY,
                 cursor text,
                 watermark text,
                 remaining bigint,
                 done boolean NOT NULL DEFAULT false,
                 segments bigint NOT NULL DEFAULT 0,
                 rows_inserted bigint NOT NULL DEFAULT 0,
                 dead_letters bigint NOT NULL DEFAULT 0,
                 updated_at timestamptz NOT NULL DEFAULT now()
             );
             COMMIT;
             CREATE TEMP TABLE IF NOT EXISTS weir_staging (
                 id uuid, type text, ts timestamptz, payload json
             ) ON COMMIT DELETE ROWS;"
        );
        self.client
            .batch_execute(&ddl)
            .await
            .map_err(query("creating the schema"))
    }

    /// Drops the schema and everything in it.
    ///
    /// # Errors
    ///
    /// When the statement fails.
    pub async fn drop_schema(&self) -> Result<(), DbError> {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
        self.client
            .batch_execute(&sql)
            .await
            .map_err(query("dropping the schema"))
    }

    /// The committed state of `job`, created empty on first use.
    ///
    /// # Errors
    ///
    /// When a statement fails.
    pub async fn load_state(&self, job: &str) -> Result<JobState, DbError> {
        self.client
            .execute(
                "INSERT INTO ingest_state (job) VALUES ($1) ON CONFLICT (job) DO NOTHING",
                &[&job],
            )
            .await
            .map_err(query("creating the job state"))?;
        let row = self
            .client
            .query_one(
                "SELECT cursor, watermark, done, segments, rows_inserted, dead_letters FROM ingest_state WHERE job = $1",
                &[&job],
            )
            .await
            .map_err(query("reading the job state"))?;
        Ok(JobState {
            resume: Resume {
                cursor: row.get(0),
                watermark: row.get(1),
            },
            done: row.get(2),
            segments: row.get(3),
            rows_inserted: row.get(4),
            dead_letters: row.get(5),
        })
    }

    /// Every stored event id.
    ///
    /// # Errors
    ///
    /// When the query fails.
    pub async fn stored_ids(&self) -> Result<Vec<[u8; 16]>, DbError> {
        let rows = self
            .client
            .query("SELECT id FROM events", &[])
            .await
            .map_err(query("reading event ids"))?;
        Ok(rows.iter().map(|r| *r.get::<_, uuid::Uuid>(0).as_bytes()).collect())
    }

    /// Every dead letter, `(raw, reason)`.
    ///
    /// # Errors
    ///
    /// When the query fails.
    pub async fn dead_letters(&self) -> Result<Vec<(Vec<u8>, String)>, DbError> {
        let rows = self
            .client
            .query("SELECT raw, reason FROM dead_letters", &[])
            .await
            .map_err(query("reading dead letters"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Writes every stored id, one per line and sorted, to `path` (through
    /// weir, into a file that appears whole or not at all); returns how many.
    ///
    /// # Errors
    ///
    /// When the query or the file fails.
    pub async fn export_ids(&self, path: &Path) -> Result<u64, crate::Error> {
        let copy = self
            .client
            .copy_out("COPY (SELECT id FROM events ORDER BY id) TO STDOUT")
            .await
            .map_err(query("exporting ids"))?;
        let source = copy.map_err(std::io::Error::other).boxed();
        let sink = weir::FileSink::create(path).map_err(|e| crate::Error::Io {
            context: format!("creating {}", path.display()),
            source: e,
        })?;
        let report = weir::ingest(source, sink, weir::IngestOptions::default()).await?;
        // Every id is 36 characters and a newline.
        Ok(report.bytes_written / 37)
    }
}

/// What one segment commits besides its rows.
#[derive(Debug)]
pub(crate) struct SegmentCommit<'a> {
    pub job: &'a str,
    /// The job's range is complete at this checkpoint.
    pub done: bool,
    pub checkpoint: &'a Checkpoint,
    pub rows_inserted: u64,
    pub dead_letters: Vec<DeadLetter>,
}

/// Inserts the dead letters, moves the job's position to the checkpoint,
/// and commits the open transaction; returns the dead letters inserted.
pub(crate) async fn commit_segment(client: &Client, commit: SegmentCommit<'_>) -> Result<u64, DbError> {
    let mut dead_inserted = 0;
    if !commit.dead_letters.is_empty() {
        let (raw, reason): (Vec<Vec<u8>>, Vec<String>) =
            commit.dead_letters.into_iter().map(|d| (d.raw, d.reason)).unzip();
        dead_inserted = client
            .execute(
                "INSERT INTO dead_letters (digest, raw, reason)
                 SELECT sha256(r), r, why FROM unnest($1::bytea[], $2::text[]) AS d(r, why)
                 ON CONFLICT (digest) DO NOTHING",
                &[&raw, &reason],
            )
            .await
            .map_err(query("inserting dead letters"))?;
    }
    let checkpoint = commit.checkpoint;
    let remaining = i64::try_from(checkpoint.remaining).unwrap_or(i64::MAX);
    let rows = i64::try_from(commit.rows_inserted).unwrap_or(i64::MAX);
    let dead = i64::try_from(dead_inserted).unwrap_or(i64::MAX);
    client
        .execute(
            "UPDATE ingest_state SET cursor = $2, watermark = $3, remaining = $4, done = $5,
                 segments = segments + 1, rows_inserted = rows_inserted + $6,
                 dead_letters = dead_letters + $7, updated_at = now()
             WHERE job = $1",
            &[
                &commit.job,
                &checkpoint.next_cursor,
                &checkpoint.watermark,
                &remaining,
                &commit.done,
                &rows,
                &dead,
            ],
        )
        .await
        .map_err(query("moving the job position"))?;
    client
        .batch_execute("COMMIT")
        .await
        .map_err(query("committing the segment"))?;
    Ok(dead_inserted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact("postgres://weir:secret@127.0.0.1:5432/weir"),
            "postgres://weir:***@127.0.0.1:5432/weir"
        );
        assert_eq!(redact("postgres://127.0.0.1/weir"), "postgres://127.0.0.1/weir");
        assert_eq!(redact("host=/tmp user=x"), "host=/tmp user=x");
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(check_schema("datasync_01").is_ok());
        for bad in ["", "Upper", "a-b", "x\"; DROP", "1abc"] {
            assert!(check_schema(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_env_file_is_found_above_the_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".pg")).unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(
            dir.path().join(ENV_FILE),
            "# written by pg-up\nexport DATABASE_URL='postgres://u:p@h:1/d'\n",
        )
        .unwrap();
        assert_eq!(
            env_file_url(&dir.path().join("a/b")).as_deref(),
            Some("postgres://u:p@h:1/d")
        );
        assert_eq!(env_file_url(Path::new("/nonexistent/x")), None);
    }
}
