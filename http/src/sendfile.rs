//! The sendfile path ([`SendPath::Sendfile`](crate::SendPath::Sendfile)):
//! a connection whose request heads the server reads and parses itself
//! (`httparse`), answered by [`Delivery::direct`] with the same routing and
//! planning as the hyper path; a plain file body goes from the file to the
//! socket by `sendfile(2)`, without passing through user space.
//!
//! The head is written with `TCP_CORK` set, and the socket stays corked
//! until the body's last byte (as nginx's `tcp_nopush` does with
//! `sendfile`), so that the head leaves in the first body segments and
//! every segment is full. Uncorking after the first `sendfile` instead
//! measured 1.05x nginx's single-client throughput in one quick run,
//! corking to the end 1.11x and 1.13x (`weir-lab run delivery --variant
//! fast`); a transfer that fails closes the socket, corked or not.
//!
//! Each `sendfile` is capped ([`SEND_MAX`], or the throttle's chunk) and
//! pays the connection's and the global token buckets
//! first; waiting for the socket goes through tokio's readiness
//! (`writable` + `try_io`), with the write-stall timeout on each wait. A
//! client gone mid-body fails the next call: the transfer is counted as
//! aborted and the connection closed, as on the hyper path.
//!
//! A request this path does not send is handed to hyper on the same
//! connection, the bytes already read replayed first ([`Rewind`]), and the
//! connection stays hyper's to its end.
//!
//! [`Rewind`]: crate::io::Rewind

use std::fs::File;
use std::io;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version, header};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::body::DeliveryBody;
use crate::delivery::{ConnectionLimits, Delivery, Direct, FileBody};
use crate::io::StallGuard;
use crate::metrics::TransferOutcome;
use crate::server::ConnectionSettings;

/// The most one unthrottled `sendfile` call is asked to send: a fast client
/// gets the rest of its body in later calls, after other connections on the
/// same worker had their turn.
const SEND_MAX: usize = 1 << 20;
/// Bytes a transfer sends before letting other tasks on its worker run.
const YIELD_AFTER: usize = 4 << 20;
/// Headers parsed in one request head (hyper's default limit; a head with
/// more is handed to hyper, which refuses it).
const MAX_HEADERS: usize = 100;
/// What the head buffer starts at; it grows up to the head size limit.
const HEAD_BUFFER: usize = 1 << 10;

/// How a connection of the sendfile path ended.
pub(crate) enum Ended {
    /// Closed (or to be closed): the peer left, a deadline passed, the
    /// server shuts down, or the response asked for it.
    Closed,
    /// A request for hyper: serve the connection with `read` replayed first.
    Hyper {
        /// The connection.
        stream: TcpStream,
        /// What was read of it and not consumed.
        read: Bytes,
    },
}

/// Serves `stream` until it closes or a request needs hyper.
///
/// # Cancel safety
///
/// Dropping the future closes the connection; a transfer in progress is
/// counted as aborted.
pub(crate) async fn serve(
    mut stream: TcpStream,
    delivery: &Delivery,
    connection: &ConnectionLimits,
    settings: &ConnectionSettings,
    token: &CancellationToken,
) -> Ended {
    let head_limit = settings.max_buf_size.unwrap_or(crate::config::MIN_CONNECTION_BUFFER);
    loop {
        let (request, raw, requested) =
            match read_head(&mut stream, head_limit, settings.header_read_timeout, token).await {
                Head::Request {
                    request,
                    raw,
                    requested,
                } => (request, raw, requested),
                Head::Hyper(read) => return Ended::Hyper { stream, read },
                Head::Closed => return Ended::Closed,
            };
        let close = wants_close(request.headers());
        // The head as read, for hyper if this path does not answer it;
        // dropped as soon as it does.
        let mut raw = Some(raw);
        let answered = async {
            let direct = delivery.direct(connection, &request, requested).await;
            drop(request);
            if !matches!(direct, Direct::Hyper) {
                raw = None;
            }
            match direct {
                Direct::Hyper => None,
                Direct::Bodiless(head) => {
                    let bytes = serialize(&head, close);
                    drop(head);
                    Some(write_head(&mut stream, bytes, false, settings).await.is_ok())
                }
                Direct::File(body) => Some(send(&mut stream, *body, close, settings).await),
            }
        };
        let Some(reusable) = with_grace(answered, token, settings.shutdown_grace).await else {
            return match raw.take() {
                Some(read) => Ended::Hyper { stream, read },
                None => Ended::Closed,
            };
        };
        if !reusable.unwrap_or(false) || close || token.is_cancelled() {
            return Ended::Closed;
        }
    }
}

/// Runs `answer`; once shutdown begins, lets it run for `grace` more and
/// then gives up (`Some(None)`: the connection is dropped). `None` when
/// `answer` declined the request.
async fn with_grace<T>(
    answer: impl Future<Output = Option<T>>,
    token: &CancellationToken,
    grace: Duration,
) -> Option<Option<T>> {
    tokio::pin!(answer);
    let outcome = tokio::select! {
        outcome = answer.as_mut() => outcome,
        () = token.cancelled() => match tokio::time::timeout(grace, answer.as_mut()).await {
            Ok(outcome) => outcome,
            Err(_) => {
                tracing::debug!("connection outlived the shutdown grace period; dropped");
                return Some(None);
            }
        },
    };
    outcome.map(Some)
}

enum Head {
    /// A complete request this path may answer, its bytes, and when its
    /// head was read.
    Request {
        request: Box<Request<()>>,
        raw: Bytes,
        requested: Instant,
    },
    /// Bytes read that hyper must see.
    Hyper(Bytes),
    /// Nothing to answer.
    Closed,
}

/// Reads one request head within `timeout` (the slowloris defence hyper's
/// header-read timeout gives the other path) and at most `limit` bytes.
async fn read_head(stream: &mut TcpStream, limit: usize, timeout: Duration, token: &CancellationToken) -> Head {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buffer = BytesMut::new();
    loop {
        if !buffer.is_empty() {
            match parse(&buffer) {
                Parsed::Partial => {}
                Parsed::Request(request) => {
                    return Head::Request {
                        request,
                        raw: buffer.freeze(),
                        requested: Instant::now(),
                    };
                }
                Parsed::Hyper => return Head::Hyper(buffer.freeze()),
            }
        }
        if buffer.len() >= limit {
            // Too large for this path: hyper refuses it with its own status.
            return Head::Hyper(buffer.freeze());
        }
        buffer.reserve(HEAD_BUFFER.min(limit - buffer.len()));
        let read = tokio::select! {
            () = token.cancelled() => return Head::Closed,
            read = tokio::time::timeout_at(deadline, stream.read_buf(&mut buffer)) => read,
        };
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => return Head::Closed,
            Ok(Ok(_)) => {}
            Err(_) => {
                tracing::debug!(?timeout, "request head not received in time; connection closed");
                return Head::Closed;
            }
        }
    }
}

enum Parsed {
    Partial,
    Request(Box<Request<()>>),
    Hyper,
}

/// A complete head this path may answer, as an `http::Request`; anything
/// else (a parse error included) is hyper's to answer.
fn parse(buffer: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut headers);
    let consumed = match head.parse(buffer) {
        Ok(httparse::Status::Complete(consumed)) => consumed,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Hyper,
    };
    // Pipelined bytes after the head stay hyper's, as does HTTP/1.0.
    if consumed != buffer.len() || head.version != Some(1) {
        return Parsed::Hyper;
    }
    let method = match head.method {
        Some("GET") => Method::GET,
        Some("HEAD") => Method::HEAD,
        _ => return Parsed::Hyper,
    };
    let Some(Ok(uri)) = head.path.map(str::parse::<http::Uri>) else {
        return Parsed::Hyper;
    };
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    let map = request.headers_mut();
    for field in head.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(field.name.as_bytes()),
            HeaderValue::from_bytes(field.value),
        ) else {
            return Parsed::Hyper;
        };
        // A body, an expectation or an upgrade: hyper's.
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || name == header::EXPECT
            || name == header::UPGRADE
        {
            return Parsed::Hyper;
        }
        map.append(name, value);
    }
    Parsed::Request(Box::new(request))
}

/// `Connection: close` among the request's connection options.
fn wants_close(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|option| option.trim().eq_ignore_ascii_case("close"))
}

/// The response head as hyper writes it: status line, the headers, `date`,
/// `connection: close` when closing, and `content-length: 0` where a
/// bodiless answer has none (not on a `304`).
fn serialize(head: &Response<DeliveryBody>, close: bool) -> Vec<u8> {
    let status = head.status();
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut field = |name: &[u8], value: &[u8]| {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    for (name, value) in head.headers() {
        field(name.as_str().as_bytes(), value.as_bytes());
    }
    if !head.headers().contains_key(header::DATE) {
        field(
            b"date",
            httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes(),
        );
    }
    if !head.headers().contains_key(header::CONTENT_LENGTH) && status != StatusCode::NOT_MODIFIED {
        field(b"content-length", b"0");
    }
    if close {
        field(b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Writes `head` (corked when a body follows), within the write-stall
/// timeout.
async fn write_head(
    stream: &mut TcpStream,
    bytes: Vec<u8>,
    cork: bool,
    settings: &ConnectionSettings,
) -> io::Result<()> {
    if cork {
        // Best effort: without the cork the head goes out on its own.
        let _ = rustix::net::sockopt::set_tcp_cork(&*stream, true);
    }
    StallGuard::new(&mut *stream, settings.write_stall_timeout)
        .write_all(&bytes)
        .await
}

/// Writes the head and sends the file range; `true` when the connection
/// can serve another request.
async fn send(stream: &mut TcpStream, body: FileBody, close: bool, settings: &ConnectionSettings) -> bool {
    let FileBody {
        head,
        file,
        range,
        mut throttle,
        mut guard,
    } = body;
    guard.by_sendfile();
    let bytes = serialize(&head, close);
    // Nothing of the response but the file is kept while the body goes out.
    drop(head);
    if let Err(error) = write_head(stream, bytes, true, settings).await {
        tracing::debug!(%error, "writing a response head failed");
        guard.finish(TransferOutcome::Aborted);
        return false;
    }
    let per_call = throttle.chunk_size(SEND_MAX) as u64;
    let (mut offset, end) = (range.start, range.end);
    let mut since_yield = 0usize;
    while offset < end {
        let due = (end - offset).min(per_call);
        if !throttle.is_unlimited() {
            std::future::poll_fn(|cx| throttle.poll_acquire(cx, due)).await;
        }
        let paid_until = offset + due;
        while offset < paid_until {
            let count = paid_until - offset;
            match send_some(stream, &file, &mut offset, count, settings.write_stall_timeout).await {
                Ok(0) => {
                    guard.finish(TransferOutcome::Failed);
                    tracing::warn!(
                        offset,
                        end,
                        "file ended before its range (did it shrink while being served?)"
                    );
                    return false;
                }
                Ok(sent) => {
                    guard.sent(sent);
                    since_yield += sent;
                }
                Err(error) if client_gone(&error) => {
                    guard.finish(TransferOutcome::Aborted);
                    tracing::debug!(%error, offset, end, "client gone mid-body");
                    return false;
                }
                Err(error) => {
                    // A read error of the file (EIO, say): the source failed.
                    guard.finish(TransferOutcome::Failed);
                    tracing::warn!(%error, offset, end, "sendfile failed mid-body");
                    return false;
                }
            }
        }
        if since_yield >= YIELD_AFTER {
            since_yield = 0;
            tokio::task::yield_now().await;
        }
    }
    // Counted before the uncork lets the last partial segment go, so that
    // a client that has read the whole body finds the transfer completed,
    // as on the hyper path (which counts it when it hands over the last
    // chunk).
    guard.finish(TransferOutcome::Completed);
    drop(guard);
    // The last partial segment goes out now, not when the cork times out.
    let _ = rustix::net::sockopt::set_tcp_cork(&*stream, false);
    true
}

/// Whether a failed send means the client is gone (hung up, reset, or
/// stalled past the write-stall timeout) rather than the file failing.
fn client_gone(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
            | io::ErrorKind::TimedOut
    )
}

/// One `sendfile` of at most `count` bytes from `offset` (advanced by what
/// was sent), once the socket is writable; a wait longer than `stall` is an
/// error.
async fn send_some(
    stream: &TcpStream,
    file: &File,
    offset: &mut u64,
    count: u64,
    stall: Option<Duration>,
) -> io::Result<usize> {
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    loop {
        match stall {
            Some(stall) => tokio::time::timeout(stall, stream.writable()).await.map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("client accepted no bytes for {stall:?}"),
                )
            })??,
            None => stream.writable().await?,
        }
        match stream.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(stream, file, Some(&mut *offset), count).map_err(io::Error::from)
        }) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            outcome => return outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(head: &[u8]) -> Option<Request<()>> {
        match parse(head) {
            Parsed::Request(request) => Some(*request),
            Parsed::Partial | Parsed::Hyper => None,
        }
    }

    #[test]
    fn only_complete_plain_get_and_head_requests_are_this_paths() {
        let get = request(b"GET /files/a%20b?x=1 HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\nRange: bytes=5-6\r\n\r\n")
            .unwrap();
        assert_eq!(get.method(), Method::GET);
        assert_eq!(get.uri().path(), "/files/a%20b");
        assert_eq!(
            get.headers().get_all(header::RANGE).iter().count(),
            2,
            "repeated headers stay"
        );
        assert_eq!(
            request(b"HEAD /files/a HTTP/1.1\r\n\r\n").map(|r| r.method().clone()),
            Some(Method::HEAD)
        );
        assert!(matches!(
            parse(b"GET /files/a HTTP/1.1\r\nHost: x\r\n"),
            Parsed::Partial
        ));
        for hyper in [
            &b"POST /files/a HTTP/1.1\r\n\r\n"[..],
            b"GET /files/a HTTP/1.0\r\n\r\n",
            b"GET /files/a HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            b"GET /files/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET /files/a HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            b"GET /files/a HTTP/1.1\r\nUpgrade: h2c\r\n\r\n",
            b"GET /files/a HTTP/1.1\r\n\r\nGET /files/b HTTP/1.1\r\n\r\n",
            b"GET /files/a HTTP/1.1\r\nBad Header\r\n\r\n",
        ] {
            assert!(
                matches!(parse(hyper), Parsed::Hyper),
                "{}",
                String::from_utf8_lossy(hyper)
            );
        }
    }

    #[test]
    fn a_hang_up_or_a_stall_is_the_client_and_an_io_error_the_file() {
        for kind in [
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::TimedOut,
        ] {
            assert!(client_gone(&io::Error::from(kind)), "{kind:?}");
        }
        assert!(!client_gone(&io::Error::from_raw_os_error(5)), "EIO is the file's");
    }

    #[test]
    fn connection_close_is_found_among_the_options() {
        let mut headers = http::HeaderMap::new();
        assert!(!wants_close(&headers));
        headers.append(header::CONNECTION, HeaderValue::from_static("keep-alive, Close"));
        assert!(wants_close(&headers));
    }

    #[test]
    fn heads_are_written_as_hyper_writes_them() {
        let mut not_modified = Response::new(DeliveryBody::empty());
        *not_modified.status_mut() = StatusCode::NOT_MODIFIED;
        not_modified
            .headers_mut()
            .insert(header::ETAG, HeaderValue::from_static("\"v1\""));
        let text = String::from_utf8(serialize(&not_modified, true)).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 304 Not Modified\r\netag: \"v1\"\r\ndate: "),
            "{text}"
        );
        assert!(text.ends_with("connection: close\r\n\r\n"), "{text}");
        assert!(!text.contains("content-length"), "a 304 announces no length: {text}");
        let missing = Response::new(DeliveryBody::empty());
        let text = String::from_utf8(serialize(&missing, false)).unwrap();
        assert!(
            text.contains("\r\ncontent-length: 0\r\n") && !text.contains("connection"),
            "{text}"
        );
    }
}
