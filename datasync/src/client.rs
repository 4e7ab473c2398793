//! The job's HTTP client for the DataSync API: one keep-alive HTTP/1.1
//! connection, bearer tokens fetched and refreshed on expiry, expired
//! cursors replaced by `since`, and retries with exponential backoff and
//! jitter (backon) that never come sooner than the server's `Retry-After`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use backon::{ExponentialBackoff, ExponentialBuilder, Retryable as _};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::protocol::{self, ErrorBody, TokenResponse};

/// Where to resume reading the log: the cursor when there is one, else
/// `since` the watermark, else the start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resume {
    /// The last checkpoint's cursor.
    pub cursor: Option<String>,
    /// The last checkpoint's watermark (RFC 3339), used once the cursor has
    /// expired.
    pub watermark: Option<String>,
}

/// How requests are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// First backoff delay.
    pub min_delay: Duration,
    /// Largest backoff delay (a `Retry-After` may ask for more).
    pub max_delay: Duration,
    /// Retries of one request, and failed stream reads in a row, before
    /// giving up.
    pub max_retries: usize,
    /// Longest wait for a response or for the next body bytes.
    pub read_timeout: Duration,
}

impl Default for RetryPolicy {
    /// 20 ms doubling to 2 s, with jitter, 10 retries, 30 s read timeout.
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_secs(2),
            max_retries: 10,
            read_timeout: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The backoff schedule: exponential with jitter.
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .with_jitter()
    }

    /// A fresh backoff iterator (for failures outside one request).
    pub fn backoff_iter(&self) -> ExponentialBackoff {
        backon::BackoffBuilder::build(self.backoff())
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The API URL is not `http://host:port`.
    #[error("invalid api url {0:?}: expected http://host:port")]
    BadUrl(String),
    /// No TCP connection.
    #[error("cannot connect to the api at {addr}: {source}")]
    Connect {
        /// Where.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// The HTTP exchange failed (connection reset, bad framing).
    #[error("http exchange with the api failed: {0}")]
    Http(#[from] hyper::Error),
    /// No response or body bytes within the read timeout.
    #[error("the api sent nothing for {0:?}")]
    Timeout(Duration),
    /// The API rejected the key: retrying cannot help.
    #[error("the api rejected the api key ({0})")]
    InvalidApiKey(String),
    /// An unexpected status.
    #[error("the api answered {status} {code}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The error code of the body (`protocol::ERR_*`), if any.
        code: String,
        /// The error message of the body.
        message: String,
        /// The `Retry-After` the server asked for.
        retry_after: Option<Duration>,
    },
    /// A body that breaks the protocol (truncated JSON, a missing final line).
    #[error("the api sent an invalid body: {0}")]
    Protocol(String),
}

impl FetchError {
    /// `true` when the same request may succeed later.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Connect { .. } | FetchError::Http(_) | FetchError::Timeout(_) | FetchError::Protocol(_) => true,
            FetchError::Status { status, .. } => *status == 429 || *status >= 500,
            FetchError::BadUrl(_) | FetchError::InvalidApiKey(_) => false,
        }
    }

    /// The server's `Retry-After`, if it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// What the client has done, counted (shared, atomics).
#[derive(Debug, Default)]
pub struct FetchStats {
    requests: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    server_errors: AtomicU64,
    transport_errors: AtomicU64,
    token_refreshes: AtomicU64,
    cursor_expired: AtomicU64,
    truncated: AtomicU64,
    waited_ms: AtomicU64,
    largest_wait_ms: AtomicU64,
}

/// A snapshot of [`FetchStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FetchCounts {
    /// Requests sent (token requests included).
    pub requests: u64,
    /// Retries after a transient failure (request or stream).
    pub retries: u64,
    /// 429 answers.
    pub rate_limited: u64,
    /// 5xx answers.
    pub server_errors: u64,
    /// Connection failures, resets and timeouts.
    pub transport_errors: u64,
    /// Tokens fetched (the first one included).
    pub token_refreshes: u64,
    /// 410 `cursor_expired` answers, each resumed with `since`.
    pub cursor_expired: u64,
    /// Stream bodies that ended early or broke mid-line.
    pub truncated: u64,
    /// Total backoff slept, milliseconds.
    pub waited_ms: u64,
    /// Longest single backoff, milliseconds (at least `Retry-After` after a 429).
    pub largest_wait_ms: u64,
}

impl FetchStats {
    /// The counters now.
    pub fn snapshot(&self) -> FetchCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        FetchCounts {
            requests: get(&self.requests),
            retries: get(&self.retries),
            rate_limited: get(&self.rate_limited),
            server_errors: get(&self.server_errors),
            transport_errors: get(&self.transport_errors),
            token_refreshes: get(&self.token_refreshes),
            cursor_expired: get(&self.cursor_expired),
            truncated: get(&self.truncated),
            waited_ms: get(&self.waited_ms),
            largest_wait_ms: get(&self.largest_wait_ms),
        }
    }

    /// Records a backoff of `delay` before a retry.
    pub(crate) fn record_wait(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.retries.fetch_add(1, Ordering::Relaxed);
        self.waited_ms.fetch_add(ms, Ordering::Relaxed);
        self.largest_wait_ms.fetch_max(ms, Ordering::Relaxed);
    }

    pub(crate) fn record_truncated(&self) {
        self.truncated.fetch_add(1, Ordering::Relaxed);
    }

    fn record_failure(&self, error: &FetchError) {
        let counter = match error {
            FetchError::Status { status: 429, .. } => &self.rate_limited,
            FetchError::Status { status, .. } if *status >= 500 => &self.server_errors,
            FetchError::Connect { .. } | FetchError::Http(_) | FetchError::Timeout(_) => &self.transport_errors,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Which data endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /v1/events`: JSON pages.
    Page,
    /// `GET /v1/events/stream`: NDJSON.
    Stream,
}

/// A client of one DataSync API.
#[derive(Debug)]
pub struct ApiClient {
    inner: Arc<Mutex<Conn>>,
    policy: RetryPolicy,
    stats: Arc<FetchStats>,
}

/// The connection, token and resume point one request attempt works on.
#[derive(Debug)]
struct Conn {
    authority: String,
    api_key: String,
    sender: Option<SendRequest<Empty<Bytes>>>,
    driver: Option<JoinHandle<()>>,
    token: Option<(String, Instant)>,
    resume: Resume,
    read_timeout: Duration,
    stats: Arc<FetchStats>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(driver) = self.driver.take() {
            driver.abort();
        }
    }
}

impl ApiClient {
    /// A client of the API at `url` (`http://host:port`) with `api_key`.
    /// Connects lazily.
    ///
    /// # Errors
    ///
    /// [`FetchError::BadUrl`] when `url` is not `http://host:port`.
    pub fn new(url: &str, api_key: impl Into<String>, policy: RetryPolicy) -> Result<Self, FetchError> {
        let uri: Uri = url.parse().map_err(|_| FetchError::BadUrl(url.to_owned()))?;
        if uri.scheme_str() != Some("http") || !uri.path().trim_end_matches('/').is_empty() {
            return Err(FetchError::BadUrl(url.to_owned()));
        }
        let authority = uri.authority().ok_or_else(|| FetchError::BadUrl(url.to_owned()))?;
        let authority = match authority.port_u16() {
            Some(_) => authority.to_string(),
            None => format!("{}:80", authority.host()),
        };
        let stats = Arc::new(FetchStats::default());
        Ok(Self {
            inner: Arc::new(Mutex::new(Conn {
                authority,
                api_key: api_key.into(),
                sender: None,
                driver: None,
                token: None,
                resume: Resume::default(),
                read_timeout: policy.read_timeout,
                stats: Arc::clone(&stats),
            })),
            policy,
            stats,
        })
    }

    /// The retry policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The client's counters.
    pub fn stats(&self) -> &Arc<FetchStats> {
        &self.stats
    }

    /// Opens a data request from `resume` for at most `limit` events,
    /// retrying transient failures. Returns the response (status 200) and
    /// the resume point actually used (a cursor the API declared expired is
    /// replaced by its watermark).
    ///
    /// # Errors
    ///
    /// The last failure once retries are exhausted, or the first one that
    /// retrying cannot fix (a rejected API key, a bad request).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped call leaves at most a connection to be
    /// re-established.
    pub async fn open(
        &self,
        endpoint: Endpoint,
        resume: &Resume,
        limit: u64,
    ) -> Result<(Response<Incoming>, Resume), FetchError> {
        self.inner.lock().await.resume = resume.clone();
        let stats = Arc::clone(&self.stats);
        let attempt = || {
            let inner = Arc::clone(&self.inner);
            async move {
                let mut conn = inner.lock().await;
                let response = conn.attempt(endpoint, limit).await;
                if let Err(error) = &response {
                    conn.stats.record_failure(error);
                }
                response.map(|r| (r, conn.resume.clone()))
            }
        };
        attempt
            .retry(self.policy.backoff())
            .when(FetchError::is_transient)
            .adjust(|error, delay| delay.map(|d| error.retry_after().map_or(d, |after| after.max(d))))
            .notify(|error, delay| {
                stats.record_wait(delay);
                tracing::warn!(%error, delay_ms = delay.as_millis() as u64, "retrying api request");
            })
            .await
    }

    /// Fetches one page (JSON) from `resume`, retrying transient failures
    /// (a truncated body included).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); a body that never parses ends as
    /// [`FetchError::Protocol`].
    pub async fn page(&self, resume: &Resume, limit: u64) -> Result<protocol::Page, FetchError> {
        let fetch = || async {
            let (response, _) = self.open(Endpoint::Page, resume, limit).await?;
            let body = read_body(response, self.policy.read_timeout).await?;
            serde_json::from_slice::<protocol::Page>(&body).map_err(|e| FetchError::Protocol(e.to_string()))
        };
        let stats = Arc::clone(&self.stats);
        fetch
            .retry(self.policy.backoff())
            .when(|e| matches!(e, FetchError::Protocol(_)))
            .notify(|error, delay| {
                stats.record_wait(delay);
                tracing::warn!(%error, "retrying a broken page");
            })
            .await
    }
}

/// Reads a whole body, bounded by `timeout` per frame.
async fn read_body(response: Response<Incoming>, timeout: Duration) -> Result<Bytes, FetchError> {
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    loop {
        match tokio::time::timeout(timeout, body.frame()).await {
            Err(_) => return Err(FetchError::Timeout(timeout)),
            Ok(None) => return Ok(Bytes::from(bytes)),
            Ok(Some(frame)) => {
                if let Ok(data) = frame?.into_data() {
                    bytes.extend_from_slice(&data);
                }
            }
        }
    }
}

/// Reads the error body of a failed response.
async fn read_error(response: Response<Incoming>, timeout: Duration) -> (u16, String, String, Option<Duration>) {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = read_body(response, timeout).await.unwrap_or_default();
    let (code, message) = match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(error) => (error.error, error.message),
        Err(_) => (String::new(), String::from_utf8_lossy(&body).into_owned()),
    };
    (status, code, message, retry_after)
}

impl Conn {
    async fn connect(&mut self) -> Result<&mut SendRequest<Empty<Bytes>>, FetchError> {
        let reusable = self.sender.as_ref().is_some_and(|s| !s.is_closed());
        if !reusable {
            if let Some(driver) = self.driver.take() {
                driver.abort();
            }
            self.sender = None;
            let connect_error = |source| FetchError::Connect {
                addr: self.authority.clone(),
                source,
            };
            let tcp = tokio::time::timeout(self.read_timeout, TcpStream::connect(self.authority.as_str()))
                .await
                .map_err(|_| connect_error(io::Error::from(io::ErrorKind::TimedOut)))?
                .map_err(connect_error)?;
            let _ = tcp.set_nodelay(true);
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
            self.driver = Some(tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "api connection closed");
                }
            }));
            self.sender = Some(sender);
        }
        let sender = self
            .sender
            .as_mut()
            .ok_or_else(|| FetchError::Protocol("no connection".to_owned()))?;
        if let Err(error) = sender.ready().await {
            self.sender = None;
            return Err(error.into());
        }
        self.sender
            .as_mut()
            .ok_or_else(|| FetchError::Protocol("no connection".to_owned()))
    }

    async fn send(&mut self, request: Request<Empty<Bytes>>) -> Result<Response<Incoming>, FetchError> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let timeout = self.read_timeout;
        let sender = self.connect().await?;
        match tokio::time::timeout(timeout, sender.send_request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => {
                self.sender = None;
                Err(error.into())
            }
            Err(_) => {
                self.sender = None;
                Err(FetchError::Timeout(timeout))
            }
        }
    }

    /// A live bearer token, fetched when missing or about to expire.
    async fn token(&mut self) -> Result<String, FetchError> {
        if let Some((token, expires)) = &self.token
            && Instant::now() < *expires
        {
            return Ok(token.clone());
        }
        let request = Request::builder()
            .method(Method::POST)
            .uri(protocol::TOKEN_PATH)
            .header(header::HOST, self.authority.as_str())
            .header(protocol::API_KEY_HEADER, self.api_key.as_str())
            .body(Empty::new())
            .map_err(|e| FetchError::Protocol(e.to_string()))?;
        let response = self.send(request).await?;
        if response.status() != StatusCode::OK {
            let (status, code, message, retry_after) = read_error(response, self.read_timeout).await;
            if code == protocol::ERR_INVALID_API_KEY {
                return Err(FetchError::InvalidApiKey(message));
            }
            return Err(FetchError::Status {
                status,
                code,
                message,
                retry_after,
            });
        }
        let body = read_body(response, self.read_timeout).await?;
        let token: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| FetchError::Protocol(format!("token response: {e}")))?;
        self.stats.token_refreshes.fetch_add(1, Ordering::Relaxed);
        // Refresh a little early: a tenth of the lifetime, at most a second.
        let lifetime = Duration::from_secs(token.expires_in);
        let margin = (lifetime / 10).min(Duration::from_secs(1));
        self.token = Some((token.access_token.clone(), Instant::now() + lifetime - margin));
        Ok(token.access_token)
    }

    fn uri(&self, endpoint: Endpoint, limit: u64) -> String {
        let path = match endpoint {
            Endpoint::Page => protocol::PAGE_PATH,
            Endpoint::Stream => protocol::STREAM_PATH,
        };
        let encode = |v: &str| percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string();
        match (&self.resume.cursor, &self.resume.watermark) {
            (Some(cursor), _) => format!("{path}?cursor={}&limit={limit}", encode(cursor)),
            (None, Some(since)) => format!("{path}?since={}&limit={limit}", encode(since)),
            (None, None) => format!("{path}?limit={limit}"),
        }
    }

    /// One attempt: a token, the request, and the recoveries that need no
    /// backoff (a refreshed token, `since` instead of an expired cursor).
    async fn attempt(&mut self, endpoint: Endpoint, limit: u64) -> Result<Response<Incoming>, FetchError> {
        let mut hops = 0;
        loop {
            hops += 1;
            let token = self.token().await?;
            let request = Request::builder()
                .method(Method::GET)
                .uri(self.uri(endpoint, limit))
                .header(header::HOST, self.authority.as_str())
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Empty::new())
                .map_err(|e| FetchError::Protocol(e.to_string()))?;
            let response = self.send(request).await?;
            if response.status() == StatusCode::OK {
                return Ok(response);
            }
            let (status, code, message, retry_after) = read_error(response, self.read_timeout).await;
            let recoverable = hops < 4;
            match (status, code.as_str()) {
                (401, protocol::ERR_TOKEN_EXPIRED | protocol::ERR_MISSING_TOKEN) if recoverable => {
                    tracing::info!(code, "token rejected, refreshing");
                    self.token = None;
                }
                (410, protocol::ERR_CURSOR_EXPIRED) if recoverable && self.resume.cursor.is_some() => {
                    self.stats.cursor_expired.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(watermark = ?self.resume.watermark, "cursor expired, resuming from the watermark");
                    self.resume.cursor = None;
                }
                (401, protocol::ERR_INVALID_API_KEY) => return Err(FetchError::InvalidApiKey(message)),
                _ => {
                    return Err(FetchError::Status {
                        status,
                        code,
                        message,
                        retry_after,
                    });
                }
            }
        }
    }
}

/// The socket address of `url`'s authority, resolved (for logs and tests).
///
/// # Errors
///
/// When the URL is invalid or does not resolve.
pub async fn resolve(url: &str) -> Result<SocketAddr, FetchError> {
    let uri: Uri = url.parse().map_err(|_| FetchError::BadUrl(url.to_owned()))?;
    let authority = uri
        .authority()
        .ok_or_else(|| FetchError::BadUrl(url.to_owned()))?
        .to_string();
    tokio::net::lookup_host(authority.as_str())
        .await
        .map_err(|source| FetchError::Connect {
            addr: authority.clone(),
            source,
        })?
        .next()
        .ok_or_else(|| FetchError::BadUrl(url.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        let past = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH);
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let wait = parse_retry_after(&later).unwrap();
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn only_http_urls_with_an_authority_are_accepted() {
        let policy = RetryPolicy::default();
        assert!(ApiClient::new("http://127.0.0.1:8787", "k", policy).is_ok());
        assert!(ApiClient::new("http://127.0.0.1:8787/", "k", policy).is_ok());
        for bad in ["https://127.0.0.1:1", "127.0.0.1:8787", "http://h:1/api", "nonsense"] {
            assert!(
                matches!(ApiClient::new(bad, "k", policy), Err(FetchError::BadUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn transient_failures_are_told_apart() {
        let status = |status| FetchError::Status {
            status,
            code: String::new(),
            message: String::new(),
            retry_after: None,
        };
        assert!(status(429).is_transient());
        assert!(status(503).is_transient());
        assert!(!status(400).is_transient());
        assert!(!FetchError::InvalidApiKey(String::new()).is_transient());
        assert!(FetchError::Protocol(String::new()).is_transient());
    }
}
