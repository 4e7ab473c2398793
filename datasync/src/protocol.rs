//! The DataSync API's wire format, shared by the mock server and the job:
//! paths, the NDJSON checkpoint line, the page and token bodies, error codes.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// `POST`: exchanges the `x-api-key` header for a bearer token.
pub const TOKEN_PATH: &str = "/v1/auth/token";
/// `GET`: one page of events as JSON (`cursor` or `since`, `limit`).
pub const PAGE_PATH: &str = "/v1/events";
/// `GET`: events as NDJSON with checkpoint lines (`cursor` or `since`, `limit`).
pub const STREAM_PATH: &str = "/v1/events/stream";
/// `GET`: liveness, no authentication.
pub const HEALTH_PATH: &str = "/v1/health";
/// The header carrying the API key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Error code: the API key is missing or wrong (401, not retryable).
pub const ERR_INVALID_API_KEY: &str = "invalid_api_key";
/// Error code: no bearer token (401).
pub const ERR_MISSING_TOKEN: &str = "missing_token";
/// Error code: the bearer token expired or is unknown (401; refresh it).
pub const ERR_TOKEN_EXPIRED: &str = "token_expired";
/// Error code: the cursor expired (410; resume with `since`).
pub const ERR_CURSOR_EXPIRED: &str = "cursor_expired";
/// Error code: the cursor is not one this API issued (400).
pub const ERR_INVALID_CURSOR: &str = "invalid_cursor";
/// Error code: a query parameter is invalid (400).
pub const ERR_BAD_REQUEST: &str = "bad_request";
/// Error code: rate limited (429, with `Retry-After`).
pub const ERR_RATE_LIMITED: &str = "rate_limited";
/// Error code: an internal failure (500).
pub const ERR_INTERNAL: &str = "internal";
/// Error code: temporarily unavailable (503).
pub const ERR_UNAVAILABLE: &str = "unavailable";

/// Every NDJSON checkpoint line starts with these bytes; an event line never
/// does (events start with `{"id":`).
pub const CHECKPOINT_PREFIX: &[u8] = b"{\"next_cursor\":";

/// A checkpoint line of the NDJSON stream: everything before it has been
/// sent, and `next_cursor` resumes right after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Resumes the stream right after this line (expires; see `watermark`).
    pub next_cursor: String,
    /// Timestamp of the last event before this line (RFC 3339); `since` with
    /// it resumes here (re-sending that one event) once the cursor expired.
    pub watermark: Option<String>,
    /// Events the log holds after this point: the job's lag.
    pub remaining: u64,
    /// `true` on the last line of a response. A response that ends without
    /// one was cut short.
    #[serde(rename = "final")]
    pub last: bool,
}

impl Checkpoint {
    /// Whether a job reading up to `until_ms` (Unix milliseconds; `None`:
    /// the log's end) is complete at this checkpoint: the log holds nothing
    /// after it, or the last event before it is at or after `until_ms`
    /// (timestamps increase with the position, so every earlier event has
    /// been read; a job reads past its end to the next checkpoint, which
    /// the next range's rows and dead letters absorb idempotently).
    pub fn ends(&self, until_ms: Option<u64>) -> bool {
        self.remaining == 0
            || until_ms.is_some_and(|until| {
                self.watermark
                    .as_deref()
                    .and_then(crate::dataset::parse_ms)
                    .is_some_and(|last| last >= until)
            })
    }
}

/// The body of a page (`GET /v1/events`).
#[derive(Debug, Serialize, Deserialize)]
pub struct Page {
    /// The events, raw. A malformed event that is not even JSON arrives as
    /// a JSON string holding its text.
    pub data: Vec<Box<RawValue>>,
    /// Resumes after this page; `None` at the end of the log.
    pub next_cursor: Option<String>,
    /// See [`Checkpoint::watermark`].
    pub watermark: Option<String>,
    /// `true` when the log holds more events.
    pub has_more: bool,
}

/// The body of a token response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The bearer token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable code (`ERR_*`).
    pub error: String,
    /// For people.
    pub message: String,
}
