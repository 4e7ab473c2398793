//! Rows from PostgreSQL: `GET /rows/<table>.ndjson` (one JSON object per
//! row, `row_to_json`) or `/rows/<table>.csv` (with a header line), for the
//! tables the configuration names, streamed by `COPY ... TO STDOUT`.
//!
//! The body is pulled: tokio-postgres hands over the next COPY message only
//! when the response body asks for one, its connection stops reading the
//! socket while a message waits, and PostgreSQL's COPY then blocks on its
//! full socket, so a slow client slows the query and the server holds a
//! bounded amount. A client that hangs up drops the body, which sends
//! PostgreSQL a cancel request for the query and closes the connection:
//! the backend ends the query at once instead of running it to the end.
//!
//! Each stream has a connection of its own (at most
//! [`RowsConfig::max_streams`] at once, `503` with `Retry-After` past
//! that); a database that cannot be reached is `503` with the reason, an
//! unknown table or format `404`.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use http::{HeaderValue, Response, StatusCode, header};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{CancelToken, Client, CopyOutStream, NoTls};

use crate::body::DeliveryBody;
use crate::error::Error;
use crate::source::ByteStream;
use crate::upload::text;

/// Bytes of rows gathered into one body chunk.
const GATHER: usize = 16 << 10;

/// The route prefix rows are served under (when a database is configured).
pub const ROWS_PREFIX: &str = "/rows/";

/// Where rows come from, and which tables may be read.
#[derive(Clone)]
#[non_exhaustive]
pub struct RowsConfig {
    /// The database, as a `postgres://` URL.
    pub url: String,
    /// The tables served (`name` or `schema.name`); any other is `404`.
    pub tables: Vec<String>,
    /// Row streams (database connections) at once.
    pub max_streams: usize,
    /// Time allowed to connect before answering `503`.
    pub connect_timeout: Duration,
}

impl fmt::Debug for RowsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RowsConfig")
            .field("url", &"<redacted>")
            .field("tables", &self.tables)
            .field("max_streams", &self.max_streams)
            .finish_non_exhaustive()
    }
}

impl RowsConfig {
    /// Serves `tables` of the database at `url`: 16 streams at once, 5 s to
    /// connect.
    pub fn new(url: impl Into<String>, tables: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            url: url.into(),
            tables: tables.into_iter().map(Into::into).collect(),
            max_streams: 16,
            connect_timeout: Duration::from_secs(5),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        self.url
            .parse::<tokio_postgres::Config>()
            .map_err(|e| Error::Config(format!("rows: invalid database URL: {e}")))?;
        if self.max_streams == 0 || self.connect_timeout.is_zero() {
            return Err(Error::Config(
                "rows: max streams and connect timeout must not be zero".to_owned(),
            ));
        }
        for table in &self.tables {
            let parts: Vec<&str> = table.split('.').collect();
            if parts.len() > 2 || parts.iter().any(|p| p.is_empty() || p.contains('\0')) {
                return Err(Error::Config(format!(
                    "rows: {table:?} is not a table or schema.table name"
                )));
            }
        }
        Ok(())
    }
}

/// The row endpoint of a server.
pub(crate) struct Rows {
    config: tokio_postgres::Config,
    tables: Vec<String>,
    connect_timeout: Duration,
    slots: Arc<Semaphore>,
}

impl fmt::Debug for Rows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rows")
            .field("tables", &self.tables)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy)]
enum Format {
    Ndjson,
    Csv,
}

impl Rows {
    /// The endpoint for a validated `config`.
    pub(crate) fn new(config: &RowsConfig) -> Result<Self, Error> {
        let mut database = config
            .url
            .parse::<tokio_postgres::Config>()
            .map_err(|e| Error::Config(format!("rows: invalid database URL: {e}")))?;
        database.application_name("weir-http rows");
        database.connect_timeout(config.connect_timeout);
        Ok(Self {
            config: database,
            tables: config.tables.clone(),
            connect_timeout: config.connect_timeout,
            slots: Arc::new(Semaphore::new(config.max_streams)),
        })
    }

    /// Opens the COPY for `/rows/<rest>`: the body's stream and its content
    /// type, or the response that refuses it.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the connection, which ends the query.
    pub(crate) async fn open(&self, rest: &str) -> Result<(ByteStream, &'static str), Response<DeliveryBody>> {
        let decoded =
            crate::path::relative_path(rest).map_err(|_| text(StatusCode::NOT_FOUND, "no such row source"))?;
        let name = decoded.to_str().unwrap_or_default();
        let (table, format) = if let Some(table) = name.strip_suffix(".ndjson") {
            (table, Format::Ndjson)
        } else if let Some(table) = name.strip_suffix(".csv") {
            (table, Format::Csv)
        } else {
            return Err(text(
                StatusCode::NOT_FOUND,
                "rows are served as <table>.ndjson or <table>.csv",
            ));
        };
        if !self.tables.iter().any(|t| t == table) {
            return Err(text(StatusCode::NOT_FOUND, "no such table is served"));
        }
        let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            let mut response = text(StatusCode::SERVICE_UNAVAILABLE, "every row stream is taken");
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1));
            return Err(response);
        };
        let connected = tokio::time::timeout(self.connect_timeout, self.config.connect(NoTls)).await;
        let (client, connection) = match connected {
            Ok(Ok(pair)) => pair,
            Ok(Err(error)) => {
                tracing::warn!(%error, "connecting to the rows database failed");
                return Err(unavailable(&error.to_string()));
            }
            Err(_) => return Err(unavailable("connecting timed out")),
        };
        let driver = tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "rows connection ended with an error");
            }
        });
        let cancel = client.cancel_token();
        let mut guard = Guard {
            client: Some(client),
            cancel: Some(cancel),
            driver,
            _slot: slot,
        };
        let quoted: Vec<String> = table
            .split('.')
            .map(|p| format!("\"{}\"", p.replace('"', "\"\"")))
            .collect();
        let quoted = quoted.join(".");
        let sql = match format {
            // CSV quoting with a quote and a delimiter no JSON text holds:
            // each line is the JSON as it is (text COPY would escape its
            // backslashes).
            Format::Ndjson => format!(
                "COPY (SELECT row_to_json(t) FROM {quoted} t) TO STDOUT WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
            ),
            Format::Csv => format!("COPY (SELECT * FROM {quoted}) TO STDOUT WITH (FORMAT csv, HEADER)"),
        };
        let client = guard.client.as_ref().ok_or_else(|| unavailable("no connection"))?;
        let copy = match client.copy_out(&sql).await {
            Ok(copy) => copy,
            Err(error) => {
                guard.cancel = None;
                tracing::warn!(%error, table, "starting a row COPY failed");
                let missing = error.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE);
                return Err(if missing {
                    text(StatusCode::NOT_FOUND, "the table does not exist in the database")
                } else {
                    text(StatusCode::BAD_GATEWAY, "the database refused the query")
                });
            }
        };
        let content_type = match format {
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
        };
        let stream: ByteStream = Box::pin(CopyBody {
            copy: Box::pin(copy),
            guard,
            done: false,
        });
        Ok((stream, content_type))
    }
}

fn unavailable(reason: &str) -> Response<DeliveryBody> {
    let mut response = text(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("the database is unavailable: {reason}"),
    );
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(5));
    response
}

/// What a row stream holds: its connection, and what ends its query.
struct Guard {
    client: Option<Client>,
    /// `Some` while the query may still run: dropped unfinished, the guard
    /// sends PostgreSQL a cancel request.
    cancel: Option<CancelToken>,
    driver: tokio::task::JoinHandle<()>,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(cancel) = self.cancel.take() {
            tracing::debug!("a row stream was dropped mid-way: cancelling its query");
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    if let Err(error) = cancel.cancel_query(NoTls).await {
                        tracing::debug!(%error, "cancelling a row query failed");
                    }
                });
            }
        }
        // Closing the socket makes a backend blocked on it fail its write.
        drop(self.client.take());
        self.driver.abort();
    }
}

/// The COPY's data as a body stream.
struct CopyBody {
    copy: Pin<Box<CopyOutStream>>,
    guard: Guard,
    /// The COPY ended (or failed).
    done: bool,
}

impl Stream for CopyBody {
    type Item = io::Result<Bytes>;

    /// COPY sends one message per row: the rows already received are
    /// gathered into one chunk of up to [`GATHER`] bytes, so a row is not a
    /// frame (and a write) of its own; nothing is read ahead for it.
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let mut gathered = BytesMut::new();
        loop {
            match self.copy.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(row))) => {
                    if gathered.is_empty() && row.len() >= GATHER {
                        return Poll::Ready(Some(Ok(row)));
                    }
                    gathered.extend_from_slice(&row);
                    if gathered.len() >= GATHER {
                        return Poll::Ready(Some(Ok(gathered.freeze())));
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    self.guard.cancel = None;
                    self.done = true;
                    // What was gathered is lost with the failed body anyway.
                    return Poll::Ready(Some(Err(io::Error::other(error))));
                }
                Poll::Ready(None) => {
                    self.guard.cancel = None;
                    // The COPY stream is not polled again after its end.
                    self.done = true;
                    return Poll::Ready((!gathered.is_empty()).then(|| Ok(gathered.freeze())));
                }
                Poll::Pending if gathered.is_empty() => return Poll::Pending,
                Poll::Pending => return Poll::Ready(Some(Ok(gathered.freeze()))),
            }
        }
    }
}
