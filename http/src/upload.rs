//! Uploads: `PUT` (or `POST`) of a path streams the request body through
//! [`weir::ingest`] into a [`FileSink`] under the served root (visible only
//! on commit, atomically) or an [`ObjectStoreSink`], with a SHA-256 of the
//! body that is returned and, when the client sent a `Content-Digest` or
//! `Repr-Digest`, checked before the commit.
//!
//! Everything that can be refused is refused before the body is read (so an
//! `Expect: 100-continue` client never sends it): write access off (`405`),
//! no valid bearer token (`401`), a content coding (`415`), a bad digest
//! header or path (`400`, `403`, `404`, `409`), a `Content-Length` over the
//! limit (`413`), every slot taken (`503` with `Retry-After`). Once the body
//! flows, a chunked body passing the limit (`413`), a digest mismatch
//! (`400`), an idle body (`408`), a client that hangs up, or a failing sink
//! (`500`) abort the ingestion: the sink removes what it wrote, and the
//! reason is counted in `weir_delivery_uploads_total{outcome}`.
//!
//! The ingestion runs on a task of its own, so that a client hanging up
//! mid-body (which makes hyper drop the request's future) still ends in the
//! engine's abort with its reason recorded, never in a dropped sink.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::Stream;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::BodyExt;
use object_store::ObjectStoreExt as _;
use sha2::Digest as _;
use tokio::sync::Semaphore;
use weir::{BoxError, Cause, FileSink, FileSinkOptions, IngestOptions, Transform};
use weir_object_store::ObjectStoreSink;
use weir_transforms::Sha256;

use crate::body::DeliveryBody;
use crate::config::UploadConfig;
use crate::metrics::{Metrics, UploadOutcome};
use crate::path::{Refusal, Root, relative_path};

/// The suffix of the engine's temporary files: no upload may name one.
const TEMP_SUFFIX: &str = ".weir-tmp";

/// The write side of a server: its limits and its slots.
pub(crate) struct Uploads {
    token_hash: Vec<u8>,
    max_bytes: u64,
    retry_after: Duration,
    idle_timeout: Duration,
    slots: Arc<Semaphore>,
}

impl fmt::Debug for Uploads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Uploads")
            .field("max_bytes", &self.max_bytes)
            .field("free_slots", &self.slots.available_permits())
            .finish_non_exhaustive()
    }
}

/// Where an upload goes.
pub(crate) enum Destination<'a> {
    /// A file under the served root (the URL path below `/files/`, encoded).
    File(&'a Root, &'a str),
    /// An object of a store (the URL path below `/objects/`, encoded).
    Object(&'a Arc<dyn object_store::ObjectStore>, &'a str),
}

/// Why a body stream ended in an error: kept inside the `io::Error` the
/// source yields, so that the aborted ingestion's cause says what happened.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("the upload passed its limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the body sent nothing for {0:?}")]
    Idle(Duration),
    #[error("the body ended after {got} of the {expected} bytes its Content-Length announced")]
    Short { expected: u64, got: u64 },
    #[error("the client's body broke off")]
    Broken(#[source] BoxError),
}

/// The client's digest of the body did not match.
#[derive(Debug, thiserror::Error)]
#[error("{header} says sha-256 {expected}, the body received has {actual}")]
struct DigestMismatch {
    header: &'static str,
    expected: String,
    actual: String,
}

impl Uploads {
    pub(crate) fn new(config: &UploadConfig) -> Self {
        Self {
            token_hash: sha2::Sha256::digest(config.token.as_bytes()).to_vec(),
            max_bytes: config.max_bytes,
            retry_after: config.retry_after,
            idle_timeout: config.idle_timeout,
            slots: Arc::new(Semaphore::new(config.max_concurrent)),
        }
    }

    /// `true` when `headers` carry `Authorization: Bearer <the token>`. The
    /// comparison is of SHA-256 digests, so its time says nothing about how
    /// much of the token a guess got right.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Some((scheme, token)) = value.trim().split_once(' ') else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer")
            && sha2::Sha256::digest(token.trim().as_bytes()).as_slice() == self.token_hash
    }

    /// Takes one upload: refusals first, then the body through the engine
    /// into the destination's sink.
    ///
    /// # Cancel safety
    ///
    /// Once the body is being read, the ingestion runs on a task of its own:
    /// dropping this future (the client hung up) lets it end, aborted, with
    /// its reason counted.
    pub(crate) async fn take<B>(
        &self,
        request: Request<B>,
        destination: Destination<'_>,
        chunk_size: usize,
        metrics: &Metrics,
    ) -> Response<DeliveryBody>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        // Counts the outcome however this ends: a refusal sets it, the
        // ingestion's task sets it, and a request dropped before its
        // ingestion started (the client hung up) counts as `client_gone`.
        let mut ending = Ending {
            metrics: metrics.clone(),
            outcome: None,
        };
        let mut refuse = |outcome: UploadOutcome, response: Response<DeliveryBody>| ending.refused(outcome, response);
        let headers = request.headers();
        if !self.authorized(headers) {
            let mut response = text(StatusCode::UNAUTHORIZED, "uploads need a valid bearer token");
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"weir\""),
            );
            return refuse(UploadOutcome::RefusedUnauthorized, response);
        }
        if let Some(coding) = headers.get(header::CONTENT_ENCODING)
            && !coding.as_bytes().eq_ignore_ascii_case(b"identity")
        {
            let response = text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "uploads take the identity coding only (no Content-Encoding)",
            );
            return refuse(UploadOutcome::RefusedBadRequest, response);
        }
        let declared = match declared_length(headers) {
            Ok(declared) => declared,
            Err(message) => return refuse(UploadOutcome::RefusedBadRequest, text(StatusCode::BAD_REQUEST, message)),
        };
        if let Some(declared) = declared
            && declared > self.max_bytes
        {
            let message = format!(
                "the upload's {declared} bytes pass the limit of {} bytes",
                self.max_bytes
            );
            return refuse(
                UploadOutcome::RefusedTooLarge,
                closing(text(StatusCode::PAYLOAD_TOO_LARGE, &message)),
            );
        }
        let expected = match client_digests(headers) {
            Ok(expected) => expected,
            Err(message) => {
                return refuse(
                    UploadOutcome::RefusedBadRequest,
                    text(StatusCode::BAD_REQUEST, &message),
                );
            }
        };
        let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            let mut response = closing(text(StatusCode::SERVICE_UNAVAILABLE, "every upload slot is taken"));
            let seconds = self.retry_after.as_secs().max(1);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            return refuse(UploadOutcome::RefusedBusy, response);
        };
        let opened = match destination {
            Destination::File(root, encoded) => open_file_sink(root, encoded).await,
            Destination::Object(store, encoded) => open_object_sink(store, encoded).await,
        };
        let (sink, existed, shown) = match opened {
            Ok(opened) => opened,
            Err(response) => return refuse(UploadOutcome::RefusedBadRequest, response),
        };
        let source = body_source(
            request.into_body(),
            declared,
            self.max_bytes,
            self.idle_timeout,
            metrics.clone(),
        );
        let options = IngestOptions::builder()
            .chunk_size(chunk_size)
            .transform(CheckDigest::new(expected))
            .build();
        let guard = metrics.upload();
        let task = tokio::spawn(async move {
            let result = match sink {
                OpenedSink::File(sink, dir) => {
                    let result = weir::ingest(source, sink, options).await;
                    // The sink reached its directory through this descriptor.
                    drop(dir);
                    result
                }
                OpenedSink::Object(sink) => weir::ingest(source, sink, options).await,
            };
            drop(slot);
            drop(guard);
            let (outcome, response) = match result {
                Ok(report) => {
                    let digest = weir_transforms::digest_in(&report.stages, "sha256").unwrap_or_default();
                    (
                        UploadOutcome::Committed,
                        committed(&shown, report.bytes_written, digest, existed),
                    )
                }
                Err(error) => {
                    let (outcome, response) = failure(error.cause());
                    tracing::info!(%error, target = %shown, outcome = outcome.as_str(), "upload aborted");
                    (outcome, response)
                }
            };
            ending.outcome = Some(outcome);
            drop(ending);
            response
        });
        match task.await {
            Ok(response) => response,
            Err(join) => {
                tracing::error!(error = %join, "an upload task panicked");
                text(StatusCode::INTERNAL_SERVER_ERROR, "the upload failed")
            }
        }
    }
}

/// Records an upload's outcome when dropped; `client_gone` when none was set.
struct Ending {
    metrics: Metrics,
    outcome: Option<UploadOutcome>,
}

impl Ending {
    fn refused(&mut self, outcome: UploadOutcome, response: Response<DeliveryBody>) -> Response<DeliveryBody> {
        self.outcome = Some(outcome);
        response
    }
}

impl Drop for Ending {
    fn drop(&mut self) {
        self.metrics
            .upload_ended(self.outcome.unwrap_or(UploadOutcome::ClientGone));
    }
}

/// A sink ready for the body, and what it needs kept alive.
enum OpenedSink {
    /// The file sink and the directory descriptor its path goes through.
    File(FileSink, File),
    Object(ObjectStoreSink),
}

type Opened = Result<(OpenedSink, bool, String), Response<DeliveryBody>>;

/// Uploads arrive at their clients' pace, many at once: each one's sink
/// gathers 16 KiB before a write (not the engine's 64 KiB) and queues at
/// most 128 KiB ahead of the disk (not 512 KiB), so a hundred slow uploads
/// hold a quarter of the buffers. The writes stay large enough that the
/// disk never is the bottleneck at network speed.
const UPLOAD_SINK: FileSinkOptions = FileSinkOptions::new()
    .coalesce(16 * 1024)
    .write_behind_bytes(128 * 1024);

/// Opens the target's directory beneath the root (`openat2`, as reads do)
/// and a [`FileSink`] in it, reached through `/proc/self/fd`, so that no
/// path component can be swapped for a symlink out of the root between
/// the check and the write.
async fn open_file_sink(root: &Root, encoded: &str) -> Opened {
    let relative = relative_path(encoded).map_err(|r| refused(&r, encoded))?;
    let name = relative
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| text(StatusCode::NOT_FOUND, "the path names no file"))?;
    if name.ends_with(TEMP_SUFFIX) {
        return Err(text(
            StatusCode::FORBIDDEN,
            "names ending in .weir-tmp are the server's temporary files",
        ));
    }
    let parent = relative.parent().map(Path::to_path_buf).unwrap_or_default();
    let dir = root.open_dir(&parent).map_err(|r| match r {
        Refusal::NotFound => text(StatusCode::CONFLICT, "the directory of the upload does not exist"),
        other => refused(&other, encoded),
    })?;
    let shown = relative.display().to_string();
    let opened = tokio::task::spawn_blocking(move || {
        let existed = match rustix::fs::statat(&dir, name.as_str(), rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) if rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Directory => {
                return Err((StatusCode::CONFLICT, "the path names a directory"));
            }
            Ok(_) => true,
            Err(_) => false,
        };
        let through = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
        let sink = FileSink::create_with(through.join(&name), UPLOAD_SINK).map_err(|error| {
            tracing::warn!(%error, "creating an upload's temporary file failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "the upload cannot be stored")
        })?;
        Ok((OpenedSink::File(sink, dir), existed))
    })
    .await;
    match opened {
        Ok(Ok((sink, existed))) => Ok((sink, existed, shown)),
        Ok(Err((code, message))) => Err(text(code, message)),
        Err(join) => {
            tracing::error!(error = %join, "opening an upload panicked");
            Err(text(StatusCode::INTERNAL_SERVER_ERROR, "the upload cannot be stored"))
        }
    }
}

async fn open_object_sink(store: &Arc<dyn object_store::ObjectStore>, encoded: &str) -> Opened {
    let key = crate::objects::object_path(encoded).map_err(|r| refused(&r, encoded))?;
    let existed = store.head(&key).await.is_ok();
    let shown = key.to_string();
    let sink = ObjectStoreSink::create(store.as_ref(), key).await.map_err(|error| {
        tracing::warn!(%error, "starting an object upload failed");
        text(StatusCode::INTERNAL_SERVER_ERROR, "the upload cannot be stored")
    })?;
    Ok((OpenedSink::Object(sink), existed, shown))
}

fn refused(refusal: &Refusal, what: &str) -> Response<DeliveryBody> {
    match refusal {
        Refusal::NotFound => text(StatusCode::NOT_FOUND, "the path names no file under the root"),
        Refusal::Forbidden => {
            tracing::info!(path = what, "refused an upload path that leaves the served root");
            text(StatusCode::FORBIDDEN, "the path leaves the served root")
        }
        Refusal::Io(error) => {
            tracing::warn!(%error, path = what, "opening an upload's directory failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "the upload cannot be stored")
        }
    }
}

/// `Content-Length`, when sent (hyper has refused a malformed one already;
/// this is for callers that are not hyper).
fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, &'static str> {
    match headers.get(header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or("malformed Content-Length"),
    }
}

/// The SHA-256 digests the client sent, as lowercase hex, with the header
/// each came from (RFC 9530: `sha-256=:<base64>:`; other algorithms are
/// ignored, a malformed field or value is refused).
fn client_digests(headers: &HeaderMap) -> Result<Vec<(&'static str, String)>, String> {
    let mut digests = Vec::new();
    for name in ["content-digest", "repr-digest"] {
        for value in headers.get_all(name) {
            let value = value.to_str().map_err(|_| format!("{name} is not visible ASCII"))?;
            for member in value.split(',') {
                let (algorithm, encoded) = member
                    .trim()
                    .split_once('=')
                    .ok_or_else(|| format!("{name}: {member:?} is not algorithm=:base64:"))?;
                if !algorithm.trim().eq_ignore_ascii_case("sha-256") {
                    continue;
                }
                let bytes = encoded
                    .trim()
                    .strip_prefix(':')
                    .and_then(|e| e.strip_suffix(':'))
                    .and_then(|e| base64::engine::general_purpose::STANDARD.decode(e).ok())
                    .filter(|b| b.len() == 32)
                    .ok_or_else(|| {
                        format!("{name}: the sha-256 value is not a base64 32-byte digest between colons")
                    })?;
                digests.push((
                    if name == "content-digest" {
                        "Content-Digest"
                    } else {
                        "Repr-Digest"
                    },
                    hex(&bytes),
                ));
            }
        }
    }
    Ok(digests)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    text.len()
        .is_multiple_of(2)
        .then(|| {
            (0..text.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
                .collect()
        })
        .flatten()
}

/// The request body as the engine's source: counted, limited, timed.
fn body_source<B>(
    body: B,
    declared: Option<u64>,
    limit: u64,
    idle: Duration,
    metrics: Metrics,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let state = (body, 0u64, false);
    futures_util::stream::unfold(state, move |(mut body, mut seen, done)| {
        let metrics = metrics.clone();
        async move {
            if done {
                return None;
            }
            loop {
                let frame = match tokio::time::timeout(idle, body.frame()).await {
                    Err(_) => return Some((Err(io::Error::other(BodyError::Idle(idle))), (body, seen, true))),
                    Ok(None) => {
                        if let Some(expected) = declared
                            && seen < expected
                        {
                            let error = io::Error::other(BodyError::Short { expected, got: seen });
                            return Some((Err(error), (body, seen, true)));
                        }
                        return None;
                    }
                    Ok(Some(Err(error))) => {
                        let error = io::Error::other(BodyError::Broken(error.into()));
                        return Some((Err(error), (body, seen, true)));
                    }
                    Ok(Some(Ok(frame))) => frame,
                };
                let Ok(data) = frame.into_data() else { continue };
                if data.is_empty() {
                    continue;
                }
                metrics.received(data.len());
                seen += data.len() as u64;
                if seen > limit {
                    let error = io::Error::other(BodyError::TooLarge { limit });
                    return Some((Err(error), (body, seen, true)));
                }
                return Some((Ok(data), (body, seen, false)));
            }
        }
    })
}

/// SHA-256 of the body (weir-transforms' [`Sha256`], which the response
/// reports), checked at the end of the input against the client's digests:
/// a mismatch fails the ingestion before the commit point, so the sink is
/// aborted and nothing becomes visible.
struct CheckDigest {
    sha256: Sha256,
    expected: Vec<(&'static str, String)>,
}

impl CheckDigest {
    fn new(expected: Vec<(&'static str, String)>) -> Self {
        Self {
            sha256: Sha256::new(),
            expected,
        }
    }
}

impl Transform for CheckDigest {
    fn name(&self) -> &str {
        self.sha256.name()
    }

    fn transform(&mut self, chunk: Bytes, out: &mut Vec<Bytes>) -> Result<(), BoxError> {
        self.sha256.transform(chunk, out)
    }

    fn finish(&mut self, out: &mut Vec<Bytes>) -> Result<(), BoxError> {
        self.sha256.finish(out)?;
        let summary = self.sha256.summary().unwrap_or_default();
        let actual = summary.split_once(':').map_or("", |(_, hex)| hex);
        for (header, expected) in &self.expected {
            if expected != actual {
                return Err(Box::new(DigestMismatch {
                    header,
                    expected: expected.clone(),
                    actual: actual.to_owned(),
                }));
            }
        }
        Ok(())
    }

    fn summary(&self) -> Option<String> {
        self.sha256.summary()
    }
}

/// What an aborted upload answers, and the outcome counted.
fn failure(cause: &Cause) -> (UploadOutcome, Response<DeliveryBody>) {
    match cause {
        Cause::Source { error, .. } => match error.get_ref().and_then(|e| e.downcast_ref::<BodyError>()) {
            Some(too_large @ BodyError::TooLarge { .. }) => (
                UploadOutcome::TooLarge,
                closing(text(StatusCode::PAYLOAD_TOO_LARGE, &too_large.to_string())),
            ),
            Some(idle @ BodyError::Idle(_)) => (
                UploadOutcome::IdleTimeout,
                closing(text(StatusCode::REQUEST_TIMEOUT, &idle.to_string())),
            ),
            Some(other) => (
                UploadOutcome::ClientGone,
                closing(text(StatusCode::BAD_REQUEST, &other.to_string())),
            ),
            None => (
                UploadOutcome::ClientGone,
                closing(text(StatusCode::BAD_REQUEST, "the body could not be read")),
            ),
        },
        Cause::Transform { error, .. } if error.downcast_ref::<DigestMismatch>().is_some() => (
            UploadOutcome::DigestMismatch,
            text(StatusCode::BAD_REQUEST, &format!("digest mismatch: {error}")),
        ),
        _ => (
            UploadOutcome::Failed,
            text(StatusCode::INTERNAL_SERVER_ERROR, "the upload could not be stored"),
        ),
    }
}

/// `201 Created` (or `200` for a replaced file): the path, the bytes and
/// their SHA-256 as JSON, the digest also as `Repr-Digest`.
fn committed(shown: &str, bytes: u64, sha256: &str, existed: bool) -> Response<DeliveryBody> {
    let code = if existed { StatusCode::OK } else { StatusCode::CREATED };
    let path: String = shown.chars().flat_map(char::escape_default).collect();
    let json = format!("{{\"path\":\"{path}\",\"bytes\":{bytes},\"sha256\":\"{sha256}\"}}\n");
    let mut response = with_body(code, "application/json", json);
    if let Some(raw) = unhex(sha256) {
        let value = format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(raw));
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert("repr-digest", value);
        }
    }
    response
}

fn with_body(code: StatusCode, content_type: &'static str, body: String) -> Response<DeliveryBody> {
    let len = body.len();
    let mut response = Response::new(DeliveryBody::bytes(body));
    *response.status_mut() = code;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    response
}

/// A status with a one-line plain-text reason.
pub(crate) fn text(code: StatusCode, message: &str) -> Response<DeliveryBody> {
    with_body(code, "text/plain; charset=utf-8", format!("{message}\n"))
}

/// Asks hyper to close the connection after the response: what is left of
/// the body is not read.
fn closing(mut response: Response<DeliveryBody>) -> Response<DeliveryBody> {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn digests_are_parsed_and_malformed_ones_refused() {
        let empty = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        let parsed = client_digests(&headers(&[(
            "content-digest",
            &format!("sha-512=:AAAA:, sha-256=:{empty}:"),
        )]))
        .unwrap();
        assert_eq!(
            parsed,
            vec![(
                "Content-Digest",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_owned()
            )]
        );
        assert!(client_digests(&headers(&[("repr-digest", "sha-256=:bm90IDMyIGJ5dGVz:")])).is_err());
        assert!(client_digests(&headers(&[("repr-digest", "sha-256=nocolons")])).is_err());
        assert!(client_digests(&headers(&[("repr-digest", "garbage")])).is_err());
        assert!(client_digests(&headers(&[("repr-digest", "sha-256=:!!!!:")])).is_err());
        assert!(client_digests(&headers(&[])).unwrap().is_empty());
        assert_eq!(unhex("00ff10").unwrap(), vec![0, 255, 16]);
        assert!(unhex("0").is_none() && unhex("zz").is_none());
    }

    #[test]
    fn only_the_exact_bearer_token_is_accepted() {
        let uploads = Uploads::new(&UploadConfig::new("0123456789abcdef"));
        assert!(uploads.authorized(&headers(&[("authorization", "Bearer 0123456789abcdef")])));
        assert!(uploads.authorized(&headers(&[("authorization", "bearer 0123456789abcdef")])));
        for bad in [
            "Bearer 0123456789abcde",
            "Basic 0123456789abcdef",
            "Bearer",
            "0123456789abcdef",
            "",
        ] {
            assert!(!uploads.authorized(&headers(&[("authorization", bad)])), "{bad:?}");
        }
        assert!(!uploads.authorized(&HeaderMap::new()));
    }
}
