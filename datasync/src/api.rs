//! The mock DataSync event API: a real HTTP/1.1 server on 127.0.0.1 serving a
//! seeded [`Dataset`] behind an API key and expiring tokens, with cursor
//! pagination, an NDJSON stream, and seeded faults (429 with `Retry-After`,
//! 500, 503, slow responses, truncated bodies, expired cursors).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::stream;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::dataset::{Dataset, Malformation, format_ms, mix, parse_ms, unit};
use crate::protocol::{self, Checkpoint, ErrorBody, TokenResponse};

/// Per-request fault rates (each in `[0, 1]`, drawn once per data request
/// from a seeded sequence, so at most one fault hits a request).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FaultRates {
    /// 429 with `Retry-After`.
    pub rate_limited: f64,
    /// 500.
    pub internal_error: f64,
    /// 503.
    pub unavailable: f64,
    /// The response starts after [`slow_delay`](Self::slow_delay).
    pub slow: f64,
    /// The body stops early, mid-line (a proxy cutting the response).
    pub truncated: f64,
    /// A request with a cursor gets 410 `cursor_expired`.
    pub expired_cursor: f64,
    /// The `Retry-After` of a 429, whole seconds.
    pub retry_after_s: u64,
    /// How late a slow response starts.
    pub slow_delay: Duration,
}

impl FaultRates {
    /// No faults.
    pub fn none() -> Self {
        Self {
            rate_limited: 0.0,
            internal_error: 0.0,
            unavailable: 0.0,
            slow: 0.0,
            truncated: 0.0,
            expired_cursor: 0.0,
            retry_after_s: 1,
            slow_delay: Duration::from_millis(100),
        }
    }

    /// Every fault on: 2 % each of 429, 500, 503 and expired cursors, 3 %
    /// slow (100 ms) and 3 % truncated responses; `Retry-After: 1`.
    pub fn typical() -> Self {
        Self {
            rate_limited: 0.02,
            internal_error: 0.02,
            unavailable: 0.02,
            slow: 0.03,
            truncated: 0.03,
            expired_cursor: 0.02,
            ..Self::none()
        }
    }

    fn total(&self) -> f64 {
        self.rate_limited + self.internal_error + self.unavailable + self.slow + self.truncated + self.expired_cursor
    }

    /// Checks every rate is in `[0, 1]` and they sum to at most 1.
    ///
    /// # Errors
    ///
    /// A message naming the bad rate.
    pub fn validate(&self) -> Result<(), String> {
        let rates = [
            ("rate_limited", self.rate_limited),
            ("internal_error", self.internal_error),
            ("unavailable", self.unavailable),
            ("slow", self.slow),
            ("truncated", self.truncated),
            ("expired_cursor", self.expired_cursor),
        ];
        for (name, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("fault rate {name} must be in [0, 1], got {rate}"));
            }
        }
        if self.total() > 1.0 {
            return Err(format!("fault rates sum to {} > 1", self.total()));
        }
        Ok(())
    }
}

impl Default for FaultRates {
    fn default() -> Self {
        Self::none()
    }
}

/// Everything the mock API serves and how.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiConfig {
    /// The event log.
    pub dataset: Dataset,
    /// The one valid API key.
    pub api_key: String,
    /// How long a bearer token lives.
    pub token_ttl: Duration,
    /// How long a cursor lives.
    pub cursor_ttl: Duration,
    /// Page size when `limit` is absent, page endpoint.
    pub page_default: u64,
    /// Largest accepted `limit`, page endpoint.
    pub page_max: u64,
    /// Events per response when `limit` is absent, stream endpoint.
    pub stream_default: u64,
    /// Largest accepted `limit`, stream endpoint.
    pub stream_max: u64,
    /// A checkpoint line after every this many events, stream endpoint.
    pub checkpoint_every: u64,
    /// Fault rates.
    pub faults: FaultRates,
    /// Seed of the fault sequence (and of token and cursor signatures).
    pub fault_seed: u64,
}

impl ApiConfig {
    /// `dataset` behind `api_key`, no faults, tokens for 60 s, cursors for
    /// 5 minutes, pages of 1,000 (max 5,000), streams of 10,000 events (max
    /// 200,000) with a checkpoint every 1,000.
    pub fn new(dataset: Dataset, api_key: impl Into<String>) -> Self {
        Self {
            dataset,
            api_key: api_key.into(),
            token_ttl: Duration::from_secs(60),
            cursor_ttl: Duration::from_secs(300),
            page_default: 1_000,
            page_max: 5_000,
            stream_default: 10_000,
            stream_max: 200_000,
            checkpoint_every: 1_000,
            faults: FaultRates::none(),
            fault_seed: dataset.seed ^ 0xFA17,
        }
    }
}

/// What the server did, counted.
#[derive(Debug, Default)]
struct Stats {
    requests: AtomicU64,
    tokens: AtomicU64,
    unauthorized: AtomicU64,
    rate_limited: AtomicU64,
    internal_error: AtomicU64,
    unavailable: AtomicU64,
    slow: AtomicU64,
    truncated: AtomicU64,
    expired_cursor: AtomicU64,
    events_sent: AtomicU64,
    bytes_sent: AtomicU64,
}

/// A snapshot of the server's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ApiCounts {
    /// Every request.
    pub requests: u64,
    /// Tokens issued.
    pub tokens: u64,
    /// 401 responses.
    pub unauthorized: u64,
    /// 429 responses.
    pub rate_limited: u64,
    /// 500 responses.
    pub internal_error: u64,
    /// 503 responses.
    pub unavailable: u64,
    /// Responses delayed.
    pub slow: u64,
    /// Bodies cut short.
    pub truncated: u64,
    /// 410 `cursor_expired` responses.
    pub expired_cursor: u64,
    /// Event lines sent (repeats included).
    pub events_sent: u64,
    /// Body bytes sent by data endpoints.
    pub bytes_sent: u64,
}

impl Stats {
    fn snapshot(&self) -> ApiCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ApiCounts {
            requests: get(&self.requests),
            tokens: get(&self.tokens),
            unauthorized: get(&self.unauthorized),
            rate_limited: get(&self.rate_limited),
            internal_error: get(&self.internal_error),
            unavailable: get(&self.unavailable),
            slow: get(&self.slow),
            truncated: get(&self.truncated),
            expired_cursor: get(&self.expired_cursor),
            events_sent: get(&self.events_sent),
            bytes_sent: get(&self.bytes_sent),
        }
    }
}

struct State {
    config: ApiConfig,
    secret: u64,
    /// Numbers data requests, in arrival order, for the fault sequence.
    sequence: AtomicU64,
    stats: Stats,
}

/// A running mock API. Stop it with [`shutdown`](MockApi::shutdown);
/// dropping it stops accepting and closes connections too.
#[derive(Debug)]
pub struct MockApi {
    addr: SocketAddr,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
    state: Arc<StateHandle>,
}

/// Keeps `State` out of `Debug`.
struct StateHandle(Arc<State>);

impl std::fmt::Debug for StateHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").finish_non_exhaustive()
    }
}

impl MockApi {
    /// Binds `listen` (port 0 for any free port) and serves on the current
    /// Tokio runtime.
    ///
    /// # Errors
    ///
    /// Invalid fault rates, or the address cannot be bound.
    pub async fn start(config: ApiConfig, listen: SocketAddr) -> io::Result<Self> {
        config.faults.validate().map_err(io::Error::other)?;
        if config.checkpoint_every == 0 || config.page_max == 0 || config.stream_max == 0 {
            return Err(io::Error::other(
                "checkpoint_every, page_max and stream_max must be at least 1",
            ));
        }
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            secret: mix(config.fault_seed, 0x5EC2E7, 0),
            config,
            sequence: AtomicU64::new(0),
            stats: Stats::default(),
        });
        let cancel = CancellationToken::new();
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&state), cancel.clone()));
        tracing::info!(%addr, "mock api listening");
        Ok(Self {
            addr,
            cancel,
            task: Some(task),
            state: Arc::new(StateHandle(state)),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The counters so far.
    pub fn counts(&self) -> ApiCounts {
        self.state.0.stats.snapshot()
    }

    /// Stops accepting, closes every connection and waits for them.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the server is stopping once this is first polled.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MockApi {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, cancel: CancellationToken) {
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, _) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let state = Arc::clone(&state);
        let cancel = cancel.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| handle(Arc::clone(&state), request));
            let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service);
            tokio::select! {
                _ = connection => {}
                () = cancel.cancelled() => {}
            }
        });
    }
    connections.close();
    connections.wait().await;
}

type Body = BoxBody<Bytes, Infallible>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn error_response(status: StatusCode, code: &str, message: impl Into<String>) -> Response<Body> {
    let body = ErrorBody {
        error: code.to_owned(),
        message: message.into(),
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut response = Response::new(full(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// A fault chosen for one data request.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    RateLimited,
    Internal,
    Unavailable,
    Slow,
    /// Cut the body at this share of its length.
    Truncated(f64),
    ExpiredCursor,
}

const FAULT_SALT: u64 = 0xFA;
const CUT_SALT: u64 = 0xC7;

impl State {
    fn draw_fault(&self) -> Option<Fault> {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        let f = &self.config.faults;
        let mut u = unit(self.config.fault_seed, FAULT_SALT, n);
        let table = [
            (f.rate_limited, Fault::RateLimited),
            (f.internal_error, Fault::Internal),
            (f.unavailable, Fault::Unavailable),
            (f.slow, Fault::Slow),
            (f.truncated, Fault::Truncated(unit(self.config.fault_seed, CUT_SALT, n))),
            (f.expired_cursor, Fault::ExpiredCursor),
        ];
        for (rate, fault) in table {
            if u < rate {
                return Some(fault);
            }
            u -= rate;
        }
        None
    }

    fn sign(&self, kind: u64, a: u64, b: u64) -> u64 {
        mix(self.secret ^ kind, a, b) & 0xFFFF_FFFF_FFFF
    }

    fn token(&self, issued_ms: u64) -> String {
        format!("tok.{issued_ms:x}.{:x}", self.sign(1, issued_ms, 0))
    }

    /// `Ok` when the token is one of ours and alive.
    fn check_token(&self, token: &str) -> Result<(), &'static str> {
        let mut parts = token
            .strip_prefix("tok.")
            .ok_or(protocol::ERR_TOKEN_EXPIRED)?
            .split('.');
        let issued = parts.next().and_then(|p| u64::from_str_radix(p, 16).ok());
        let mac = parts.next().and_then(|p| u64::from_str_radix(p, 16).ok());
        match (issued, mac, parts.next()) {
            (Some(issued), Some(mac), None) if mac == self.sign(1, issued, 0) => {
                let ttl = u64::try_from(self.config.token_ttl.as_millis()).unwrap_or(u64::MAX);
                if now_ms().saturating_sub(issued) < ttl {
                    Ok(())
                } else {
                    Err(protocol::ERR_TOKEN_EXPIRED)
                }
            }
            _ => Err(protocol::ERR_TOKEN_EXPIRED),
        }
    }

    fn cursor(&self, position: u64) -> String {
        let issued = now_ms();
        format!("{position:x}.{issued:x}.{:x}", self.sign(2, position, issued))
    }

    /// The position a cursor stands for, or the error to answer.
    fn check_cursor(&self, cursor: &str) -> Result<u64, (StatusCode, &'static str)> {
        let invalid = (StatusCode::BAD_REQUEST, protocol::ERR_INVALID_CURSOR);
        let mut parts = cursor.split('.');
        let mut next = || parts.next().and_then(|p| u64::from_str_radix(p, 16).ok());
        let (Some(position), Some(issued), Some(mac)) = (next(), next(), next()) else {
            return Err(invalid);
        };
        if mac != self.sign(2, position, issued) || position > self.config.dataset.events {
            return Err(invalid);
        }
        let ttl = u64::try_from(self.config.cursor_ttl.as_millis()).unwrap_or(u64::MAX);
        if now_ms().saturating_sub(issued) >= ttl {
            return Err((StatusCode::GONE, protocol::ERR_CURSOR_EXPIRED));
        }
        Ok(position)
    }

    fn checkpoint(&self, position: u64, last: bool) -> Checkpoint {
        let data = &self.config.dataset;
        Checkpoint {
            next_cursor: self.cursor(position),
            watermark: data.watermark_ms(position).map(format_ms),
            remaining: data.events - position,
            last,
        }
    }
}

/// The parsed query of a data request.
#[derive(Debug, Default)]
struct Query {
    cursor: Option<String>,
    since: Option<String>,
    limit: Option<u64>,
}

fn parse_query(query: Option<&str>) -> Result<Query, String> {
    let mut parsed = Query::default();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| format!("query parameter {key} is not UTF-8"))?
            .into_owned();
        match key {
            "cursor" => parsed.cursor = Some(value),
            "since" => parsed.since = Some(value),
            "limit" => {
                let limit = value
                    .parse::<u64>()
                    .ok()
                    .filter(|&l| l > 0)
                    .ok_or_else(|| format!("limit must be a positive integer, got {value:?}"))?;
                parsed.limit = Some(limit);
            }
            _ => return Err(format!("unknown query parameter {key:?}")),
        }
    }
    if parsed.cursor.is_some() && parsed.since.is_some() {
        return Err("give cursor or since, not both".to_owned());
    }
    Ok(parsed)
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    state.stats.requests.fetch_add(1, Ordering::Relaxed);
    let response = route(&state, &request).await;
    let counter = match response.status() {
        StatusCode::UNAUTHORIZED => Some(&state.stats.unauthorized),
        StatusCode::TOO_MANY_REQUESTS => Some(&state.stats.rate_limited),
        StatusCode::INTERNAL_SERVER_ERROR => Some(&state.stats.internal_error),
        StatusCode::SERVICE_UNAVAILABLE => Some(&state.stats.unavailable),
        StatusCode::GONE => Some(&state.stats.expired_cursor),
        _ => None,
    };
    if let Some(counter) = counter {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    Ok(response)
}

async fn route(state: &Arc<State>, request: &Request<Incoming>) -> Response<Body> {
    let path = request.uri().path();
    match (request.method(), path) {
        (&Method::GET, protocol::HEALTH_PATH) => Response::new(full("ok")),
        (&Method::POST, protocol::TOKEN_PATH) => issue_token(state, request),
        (&Method::GET, protocol::PAGE_PATH | protocol::STREAM_PATH) => {
            let stream = path == protocol::STREAM_PATH;
            data_request(state, request, stream).await
        }
        (_, protocol::TOKEN_PATH | protocol::PAGE_PATH | protocol::STREAM_PATH | protocol::HEALTH_PATH) => {
            error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                protocol::ERR_BAD_REQUEST,
                "method not allowed",
            )
        }
        _ => error_response(
            StatusCode::NOT_FOUND,
            protocol::ERR_BAD_REQUEST,
            format!("no route {path}"),
        ),
    }
}

fn issue_token(state: &State, request: &Request<Incoming>) -> Response<Body> {
    let key = request
        .headers()
        .get(protocol::API_KEY_HEADER)
        .and_then(|v| v.to_str().ok());
    if key != Some(state.config.api_key.as_str()) {
        return error_response(
            StatusCode::UNAUTHORIZED,
            protocol::ERR_INVALID_API_KEY,
            format!("missing or wrong {} header", protocol::API_KEY_HEADER),
        );
    }
    state.stats.tokens.fetch_add(1, Ordering::Relaxed);
    let body = TokenResponse {
        access_token: state.token(now_ms()),
        token_type: "Bearer".to_owned(),
        expires_in: state.config.token_ttl.as_secs(),
    };
    let mut response = Response::new(full(serde_json::to_vec(&body).unwrap_or_default()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

async fn data_request(state: &Arc<State>, request: &Request<Incoming>, stream: bool) -> Response<Body> {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = bearer else {
        return error_response(StatusCode::UNAUTHORIZED, protocol::ERR_MISSING_TOKEN, "no bearer token");
    };
    if let Err(code) = state.check_token(token) {
        return error_response(StatusCode::UNAUTHORIZED, code, "the token expired; request a new one");
    }
    let query = match parse_query(request.uri().query()) {
        Ok(query) => query,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, protocol::ERR_BAD_REQUEST, message),
    };
    let fault = state.draw_fault();
    match fault {
        Some(Fault::RateLimited) => {
            let mut response = error_response(StatusCode::TOO_MANY_REQUESTS, protocol::ERR_RATE_LIMITED, "slow down");
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(state.config.faults.retry_after_s),
            );
            return response;
        }
        Some(Fault::Internal) => {
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                protocol::ERR_INTERNAL,
                "injected failure",
            );
        }
        Some(Fault::Unavailable) => {
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                protocol::ERR_UNAVAILABLE,
                "injected outage",
            );
        }
        Some(Fault::ExpiredCursor) if query.cursor.is_some() => {
            return error_response(
                StatusCode::GONE,
                protocol::ERR_CURSOR_EXPIRED,
                "the cursor expired; use since",
            );
        }
        Some(Fault::Slow) => {
            state.stats.slow.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(state.config.faults.slow_delay).await;
        }
        _ => {}
    }
    let data = &state.config.dataset;
    let start = match (&query.cursor, &query.since) {
        (Some(cursor), _) => match state.check_cursor(cursor) {
            Ok(position) => position,
            Err((status, code)) => return error_response(status, code, "cursor not accepted"),
        },
        (None, Some(since)) => match parse_ms(since) {
            Some(ms) => data.position_since(ms),
            None => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    protocol::ERR_BAD_REQUEST,
                    "since must be an RFC 3339 time",
                );
            }
        },
        (None, None) => 0,
    };
    let (default, max) = if stream {
        (state.config.stream_default, state.config.stream_max)
    } else {
        (state.config.page_default, state.config.page_max)
    };
    let end = data
        .events
        .min(start.saturating_add(query.limit.unwrap_or(default).min(max)));
    let cut = match fault {
        Some(Fault::Truncated(share)) => {
            state.stats.truncated.fetch_add(1, Ordering::Relaxed);
            Some(share)
        }
        _ => None,
    };
    if stream {
        stream_response(Arc::clone(state), start, end, cut)
    } else {
        page_response(state, start, end, cut)
    }
}

/// Writes the events of `index` (and the repeat the API sends after it),
/// each on its own line; returns the number of lines.
fn write_position(data: &Dataset, index: u64, out: &mut Vec<u8>) -> u64 {
    data.write_event(index, out);
    out.push(b'\n');
    match data.repeat_after(index) {
        Some(earlier) => {
            data.write_event(earlier, out);
            out.push(b'\n');
            2
        }
        None => 1,
    }
}

fn page_response(state: &State, start: u64, end: u64, cut: Option<f64>) -> Response<Body> {
    let data = &state.config.dataset;
    let mut body = Vec::with_capacity(((end - start) * 340) as usize + 256);
    body.extend_from_slice(b"{\"data\":[");
    let mut line = Vec::with_capacity(400);
    let mut events = 0;
    for index in start..end {
        let mut push = |i: u64, body: &mut Vec<u8>| {
            if events > 0 {
                body.push(b',');
            }
            events += 1;
            line.clear();
            data.write_event(i, &mut line);
            if data.malformation(i) == Some(Malformation::Truncated) {
                let text = String::from_utf8_lossy(&line);
                let _ = serde_json::to_writer(&mut *body, &text);
            } else {
                body.extend_from_slice(&line);
            }
        };
        push(index, &mut body);
        if let Some(earlier) = data.repeat_after(index) {
            push(earlier, &mut body);
        }
    }
    body.extend_from_slice(b"],");
    let checkpoint = state.checkpoint(end, true);
    let tail = serde_json::json!({
        "next_cursor": (end < data.events).then_some(checkpoint.next_cursor),
        "watermark": checkpoint.watermark,
        "has_more": end < data.events,
    });
    let tail = tail.to_string();
    body.extend_from_slice(&tail.as_bytes()[1..]);
    if let Some(share) = cut {
        body.truncate(((body.len() as f64) * share) as usize);
    }
    state.stats.events_sent.fetch_add(events, Ordering::Relaxed);
    state.stats.bytes_sent.fetch_add(body.len() as u64, Ordering::Relaxed);
    let mut response = Response::new(full(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// Generates a stream response chunk by chunk, as the client reads it.
struct StreamGen {
    state: Arc<State>,
    position: u64,
    end: u64,
    since_checkpoint: u64,
    /// Stop after this many body bytes (a cut response).
    cut_at: Option<u64>,
    sent: u64,
    done: bool,
}

/// Target size of one generated chunk.
const STREAM_CHUNK: usize = 64 * 1024;

impl StreamGen {
    fn next_chunk(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let data = self.state.config.dataset;
        let every = self.state.config.checkpoint_every;
        let mut buf = Vec::with_capacity(STREAM_CHUNK + 1024);
        let mut lines = 0;
        while buf.len() < STREAM_CHUNK {
            if self.position >= self.end {
                let checkpoint = self.state.checkpoint(self.position, true);
                let _ = serde_json::to_writer(&mut buf, &checkpoint);
                buf.push(b'\n');
                self.done = true;
                break;
            }
            lines += write_position(&data, self.position, &mut buf);
            self.position += 1;
            self.since_checkpoint += 1;
            if self.since_checkpoint == every && self.position < self.end {
                self.since_checkpoint = 0;
                let checkpoint = self.state.checkpoint(self.position, false);
                let _ = serde_json::to_writer(&mut buf, &checkpoint);
                buf.push(b'\n');
            }
        }
        if let Some(cut_at) = self.cut_at {
            let room = cut_at.saturating_sub(self.sent);
            if (buf.len() as u64) >= room {
                buf.truncate(room as usize);
                self.done = true;
            }
        }
        self.sent += buf.len() as u64;
        let stats = &self.state.stats;
        stats.events_sent.fetch_add(lines, Ordering::Relaxed);
        stats.bytes_sent.fetch_add(buf.len() as u64, Ordering::Relaxed);
        (!buf.is_empty()).then(|| Bytes::from(buf))
    }
}

fn stream_response(state: Arc<State>, start: u64, end: u64, cut: Option<f64>) -> Response<Body> {
    // Roughly where to cut: a share of the response's expected size.
    let cut_at = cut.map(|share| (((end - start) as f64) * 330.0 * share) as u64);
    let generator = StreamGen {
        state,
        position: start,
        end,
        since_checkpoint: 0,
        cut_at,
        sent: 0,
        done: false,
    };
    let chunks = stream::unfold(generator, |mut generator| async move {
        let chunk = generator.next_chunk()?;
        Some((Ok::<_, Infallible>(Frame::data(chunk)), generator))
    });
    let mut response = Response::new(StreamBody::new(chunks).boxed());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_rates_are_validated() {
        assert!(FaultRates::typical().validate().is_ok());
        let negative = FaultRates {
            slow: -0.1,
            ..FaultRates::none()
        };
        assert!(negative.validate().unwrap_err().contains("slow"));
        let too_many = FaultRates {
            rate_limited: 0.6,
            truncated: 0.6,
            ..FaultRates::none()
        };
        assert!(too_many.validate().unwrap_err().contains("sum"));
    }

    #[test]
    fn queries_are_parsed_strictly() {
        let q = parse_query(Some("cursor=ab.cd.ef&limit=10")).unwrap();
        assert_eq!((q.cursor.as_deref(), q.limit), (Some("ab.cd.ef"), Some(10)));
        let q = parse_query(Some("since=2024-01-01T00%3A00%3A00.000Z")).unwrap();
        assert_eq!(q.since.as_deref(), Some("2024-01-01T00:00:00.000Z"));
        assert!(parse_query(Some("limit=0")).is_err());
        assert!(parse_query(Some("limit=x")).is_err());
        assert!(parse_query(Some("cursor=a&since=b")).is_err());
        assert!(parse_query(Some("page=2")).is_err());
    }

    fn state(config: ApiConfig) -> State {
        State {
            secret: 99,
            config,
            sequence: AtomicU64::new(0),
            stats: Stats::default(),
        }
    }

    #[test]
    fn cursors_and_tokens_are_signed_and_expire() {
        let mut config = ApiConfig::new(Dataset::new(1, 100), "k");
        let live = state(config.clone());
        let cursor = live.cursor(42);
        assert_eq!(live.check_cursor(&cursor), Ok(42));
        let forged = cursor.replacen("2a", "2b", 1);
        assert_eq!(live.check_cursor(&forged).unwrap_err().1, protocol::ERR_INVALID_CURSOR);
        assert!(live.check_token(&live.token(now_ms())).is_ok());
        assert!(live.check_token("tok.1.2").is_err());

        config.cursor_ttl = Duration::ZERO;
        config.token_ttl = Duration::ZERO;
        let expired = state(config);
        let cursor = expired.cursor(1);
        assert_eq!(
            expired.check_cursor(&cursor),
            Err((StatusCode::GONE, protocol::ERR_CURSOR_EXPIRED))
        );
        assert_eq!(
            expired.check_token(&expired.token(now_ms())),
            Err(protocol::ERR_TOKEN_EXPIRED)
        );
    }

    #[test]
    fn faults_follow_their_rates() {
        let mut config = ApiConfig::new(Dataset::new(1, 100), "k");
        config.faults = FaultRates {
            rate_limited: 0.1,
            truncated: 0.2,
            ..FaultRates::none()
        };
        let state = state(config);
        let draws: Vec<_> = (0..10_000).map(|_| state.draw_fault()).collect();
        let limited = draws.iter().filter(|f| **f == Some(Fault::RateLimited)).count();
        let cut = draws.iter().filter(|f| matches!(f, Some(Fault::Truncated(_)))).count();
        assert!((800..1200).contains(&limited), "{limited}");
        assert!((1700..2300).contains(&cut), "{cut}");
    }

    #[test]
    fn a_stream_has_checkpoints_and_ends_with_a_final_one() {
        let mut config = ApiConfig::new(Dataset::new(5, 2_500), "k");
        config.checkpoint_every = 1_000;
        let mut generator = StreamGen {
            state: Arc::new(state(config)),
            position: 0,
            end: 2_500,
            since_checkpoint: 0,
            cut_at: None,
            sent: 0,
            done: false,
        };
        let mut body = Vec::new();
        while let Some(chunk) = generator.next_chunk() {
            body.extend_from_slice(&chunk);
        }
        let checkpoints: Vec<Checkpoint> = body
            .split(|&b| b == b'\n')
            .filter(|l| l.starts_with(protocol::CHECKPOINT_PREFIX))
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(checkpoints.len(), 3);
        assert_eq!(
            checkpoints.iter().map(|c| (c.remaining, c.last)).collect::<Vec<_>>(),
            vec![(1_500, false), (500, false), (0, true)]
        );
    }
}
