//! `DeliveryConfig`: what a delivery server serves and how it treats its
//! connections (chunk size, rates, timeouts, limits), validated once.

use std::num::{NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;

use crate::error::Error;

/// Smallest chunk size accepted: below this, per-chunk overhead dominates.
pub const MIN_CHUNK_SIZE: usize = 4 << 10;
/// Largest chunk size accepted: a chunk is what a stalled connection holds.
pub const MAX_CHUNK_SIZE: usize = 8 << 20;
/// hyper's own floor for its connection buffer.
pub const MIN_CONNECTION_BUFFER: usize = 8 << 10;

/// How a delivery server behaves. Build with [`DeliveryConfig::new`] and
/// adjust the public fields; [`Server::bind`](crate::Server::bind) validates.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeliveryConfig {
    /// The directory served under `/files/`. Nothing outside it can be
    /// reached: `..`, encoded separators and symlinks that leave it are refused.
    pub root: PathBuf,
    /// A store served under `/objects/` (any `object_store` backend), read
    /// with weir-object-store's ranged source; `None` answers 404 there.
    pub objects: Option<Arc<dyn ObjectStore>>,
    /// Bytes read from the source per chunk. A stalled connection holds at
    /// most two chunk buffers (one partly written, one queued), so this sets
    /// the memory per slow client; larger chunks mean fewer syscalls for fast
    /// ones (at 32 KiB and 64 KiB the fast-client throughput measured the
    /// same here, the slow-client memory did not). Bodies the sendfile
    /// path sends are not read in chunks: there, only the throttle and a
    /// 1 MiB cap bound each `sendfile(2)`.
    pub chunk_size: usize,
    /// hyper's buffer ceiling per connection: it pulls the next chunk only
    /// while fewer bytes than this are queued, so with a buffer no larger
    /// than a chunk, at most two chunks are queued. hyper's default (about
    /// 400 KiB) would let every stalled connection pin that much; the
    /// kernel's socket buffer already absorbs bursts. Also the largest
    /// request head accepted.
    pub connection_buffer: usize,
    /// Byte rate per connection (all its requests together); `None` is
    /// unthrottled.
    pub per_connection_rate: Option<NonZeroU64>,
    /// Byte rate across all connections; `None` is unthrottled.
    pub global_rate: Option<NonZeroU64>,
    /// Most ranges honoured in one `Range` header; more are ignored (full
    /// `200`), which never costs more than a plain `GET`.
    pub max_ranges: NonZeroUsize,
    /// A connection whose socket accepts no byte for this long while a
    /// response is pending is closed (and its transfer counted as aborted):
    /// a client that stops reading cannot pin a handle forever. `None` waits
    /// forever.
    pub write_stall_timeout: Option<Duration>,
    /// Time allowed to receive a request's headers (slowloris defence).
    pub header_read_timeout: Duration,
    /// Connections served at once; further ones are accepted and closed
    /// straight away.
    pub max_connections: usize,
    /// On shutdown, how long in-flight responses may run before their
    /// connections are dropped.
    pub shutdown_grace: Duration,
    /// Write access (`PUT`/`POST` under `/files/` and `/objects/`); `None`,
    /// the default, answers every upload with `405`.
    pub uploads: Option<UploadConfig>,
    /// Whole-file (and whole-object) responses compressed with zstd or
    /// gzip when the client's `Accept-Encoding` asks for one; ranges are
    /// always of the identity bytes. On by default.
    pub compression: bool,
    /// Rows from PostgreSQL under `/rows/` (`<table>.ndjson`, `<table>.csv`);
    /// `None` answers 404 there.
    pub rows: Option<crate::rows::RowsConfig>,
    /// The runtime-lag probe's period (`weir_delivery_runtime_lag_seconds`
    /// in `/metrics`); `None` runs no probe. Default 100 ms: the lateness
    /// of each wake-up is measured to the millisecond whatever the period,
    /// and a 10 ms probe made a server with 100 slow clients beside a
    /// one-core CPU hog spend 0.55 to 1.1 s of CPU in 4 s instead of
    /// 0.21 s in 2 of 4 server runs (none of 8 at 100 ms, nor of 6 without).
    pub lag_probe_every: Option<Duration>,
    /// How plain file bodies reach the socket: through hyper (a copy of
    /// every chunk through user space) or by `sendfile(2)` on the
    /// connection's socket. See [`SendPath`].
    pub send_path: SendPath,
}

/// How a delivery server sends the body of a plain file request.
///
/// [`SendPath::Sendfile`] reads and parses each request head itself and,
/// for an HTTP/1.1 `GET` or `HEAD` under `/files/` answered with the whole
/// file or one range (identity bytes), writes the head and sends the body
/// with `sendfile(2)` from the file to the socket, throttled and capped per
/// call; every other request (multipart ranges, compressed bodies, uploads,
/// `/metrics`, objects, rows, HTTP/1.0, `Expect`, a body, pipelined bytes)
/// is handed to hyper on the same connection with the bytes already read
/// replayed first. Both paths decide with the same planning code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendPath {
    /// Every request through hyper; file bodies are read in chunks and
    /// copied to the socket.
    Hyper,
    /// Plain file bodies by `sendfile(2)`, the rest through hyper.
    #[default]
    Sendfile,
}

impl SendPath {
    /// Every path.
    pub const ALL: [Self; 2] = [Self::Hyper, Self::Sendfile];

    /// The name used on command lines and in results.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hyper => "hyper",
            Self::Sendfile => "sendfile",
        }
    }
}

impl std::str::FromStr for SendPath {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|path| path.name() == text)
            .ok_or_else(|| format!("unknown send path {text:?} (expected hyper or sendfile)"))
    }
}

/// How uploads are taken: who may write, and how much at once.
///
/// Write access needs a bearer token: a request without
/// `Authorization: Bearer <token>` is answered `401` before its body is read.
#[derive(Clone)]
#[non_exhaustive]
pub struct UploadConfig {
    /// The token a writer must present (visible ASCII, at least 16 bytes).
    pub token: String,
    /// Largest body accepted, bytes: a larger `Content-Length` is answered
    /// `413` before the body is read; a chunked body that passes it is
    /// aborted with `413`.
    pub max_bytes: u64,
    /// Uploads running at once; one more is answered `503` with
    /// `Retry-After` before its body is read.
    pub max_concurrent: usize,
    /// The `Retry-After` of a `503`.
    pub retry_after: Duration,
    /// A body that sends nothing for this long is aborted (`408`): a client
    /// that stops sending cannot hold an upload slot forever.
    pub idle_timeout: Duration,
}

impl std::fmt::Debug for UploadConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadConfig")
            .field("token", &"<redacted>")
            .field("max_bytes", &self.max_bytes)
            .field("max_concurrent", &self.max_concurrent)
            .field("retry_after", &self.retry_after)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

/// The shortest upload token accepted.
pub const MIN_TOKEN_LEN: usize = 16;

impl UploadConfig {
    /// Uploads for holders of `token`: at most 1 GiB each, 64 at once,
    /// `Retry-After: 1`, 30 s idle timeout.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            max_bytes: 1 << 30,
            max_concurrent: 64,
            retry_after: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(30),
        }
    }

    /// Sets the largest body accepted.
    #[must_use]
    pub fn with_max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Sets how many uploads may run at once.
    #[must_use]
    pub fn with_max_concurrent(mut self, uploads: usize) -> Self {
        self.max_concurrent = uploads;
        self
    }

    fn validate(&self) -> Result<(), Error> {
        if self.token.len() < MIN_TOKEN_LEN || !self.token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::Config(format!(
                "upload token must be at least {MIN_TOKEN_LEN} visible ASCII characters"
            )));
        }
        if self.max_concurrent == 0 {
            return Err(Error::Config("max concurrent uploads must be at least 1".to_owned()));
        }
        if self.idle_timeout.is_zero() {
            return Err(Error::Config("upload idle timeout must not be zero".to_owned()));
        }
        Ok(())
    }
}

impl DeliveryConfig {
    /// Defaults for serving `root`: 32 KiB chunks, a 16 KiB connection buffer
    /// (so a stalled connection pins at most two 32 KiB buffers), no
    /// throttling, at most 16 ranges, 60 s write-stall timeout, 30 s to send
    /// a request head.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            objects: None,
            chunk_size: 32 << 10,
            connection_buffer: 16 << 10,
            per_connection_rate: None,
            global_rate: None,
            max_ranges: NonZeroUsize::new(16).unwrap_or(NonZeroUsize::MIN),
            write_stall_timeout: Some(Duration::from_secs(60)),
            header_read_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            shutdown_grace: Duration::from_secs(5),
            uploads: None,
            compression: true,
            rows: None,
            lag_probe_every: Some(Duration::from_millis(100)),
            send_path: SendPath::default(),
        }
    }

    /// Sets how plain file bodies are sent.
    #[must_use]
    pub fn with_send_path(mut self, path: SendPath) -> Self {
        self.send_path = path;
        self
    }

    /// Turns write access on with `uploads`.
    #[must_use]
    pub fn with_uploads(mut self, uploads: UploadConfig) -> Self {
        self.uploads = Some(uploads);
        self
    }

    /// Serves `store` under `/objects/`.
    #[must_use]
    pub fn with_objects(mut self, store: Arc<dyn ObjectStore>) -> Self {
        self.objects = Some(store);
        self
    }

    /// Sets the chunk size.
    #[must_use]
    pub fn with_chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes;
        self
    }

    /// Sets the per-connection byte rate (`None`: unthrottled).
    #[must_use]
    pub fn with_per_connection_rate(mut self, bytes_per_second: Option<NonZeroU64>) -> Self {
        self.per_connection_rate = bytes_per_second;
        self
    }

    /// Sets the global byte rate (`None`: unthrottled).
    #[must_use]
    pub fn with_global_rate(mut self, bytes_per_second: Option<NonZeroU64>) -> Self {
        self.global_rate = bytes_per_second;
        self
    }

    /// Sets the write-stall timeout (`None`: wait forever).
    #[must_use]
    pub fn with_write_stall_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.write_stall_timeout = timeout;
        self
    }

    /// Checks every field; the server calls this before binding.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), Error> {
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&self.chunk_size) {
            return Err(Error::Config(format!(
                "chunk size must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE} bytes, got {}",
                self.chunk_size
            )));
        }
        if self.connection_buffer < MIN_CONNECTION_BUFFER {
            return Err(Error::Config(format!(
                "connection buffer must be at least {MIN_CONNECTION_BUFFER} bytes, got {}",
                self.connection_buffer
            )));
        }
        for (name, rate) in [
            ("per-connection", self.per_connection_rate),
            ("global", self.global_rate),
        ] {
            if let Some(rate) = rate
                && rate.get() < crate::throttle::MIN_RATE
            {
                return Err(Error::Config(format!(
                    "{name} rate must be at least {} bytes/s, got {rate}",
                    crate::throttle::MIN_RATE
                )));
            }
        }
        if self.max_connections == 0 {
            return Err(Error::Config("max connections must be at least 1".to_owned()));
        }
        if self.write_stall_timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::Config("write-stall timeout must not be zero".to_owned()));
        }
        if self.header_read_timeout.is_zero() {
            return Err(Error::Config("header read timeout must not be zero".to_owned()));
        }
        if self.lag_probe_every.is_some_and(|every| every.is_zero()) {
            return Err(Error::Config("lag probe period must not be zero".to_owned()));
        }
        if let Some(uploads) = &self.uploads {
            uploads.validate()?;
        }
        if let Some(rows) = &self.rows {
            rows.validate()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_fields_are_named() {
        let config = DeliveryConfig::new("/tmp");
        assert!(config.validate().is_ok());
        let small = config.clone().with_chunk_size(10);
        assert!(small.validate().unwrap_err().to_string().contains("chunk size"));
        let slow = config.clone().with_global_rate(NonZeroU64::new(1));
        assert!(slow.validate().unwrap_err().to_string().contains("global rate"));
        let mut buffer = config;
        buffer.connection_buffer = 100;
        assert!(buffer.validate().unwrap_err().to_string().contains("connection buffer"));
        let short = DeliveryConfig::new("/tmp").with_uploads(UploadConfig::new("short"));
        assert!(short.validate().unwrap_err().to_string().contains("upload token"));
        let uploads = UploadConfig::new("a-token-of-twenty-chars");
        assert!(!format!("{uploads:?}").contains("twenty"), "the token is not logged");
        assert!(DeliveryConfig::new("/tmp").with_uploads(uploads).validate().is_ok());
    }
}
