//! A minimal HTTP/1.1 client over one keep-alive connection (hyper's
//! `client::conn`), for the tests and the scenario: real requests over real
//! sockets, nothing pooled or retried behind the caller's back.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::error::Error;

/// One client connection.
#[derive(Debug)]
pub struct Client {
    sender: SendRequest<Empty<Bytes>>,
    driver: JoinHandle<()>,
    addr: SocketAddr,
}

/// A response read in full.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Status code.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Fetched {
    /// A header's value as text (empty when missing or not text).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

impl Client {
    /// Connects to `addr`.
    ///
    /// # Errors
    ///
    /// When the connection or the HTTP handshake fails.
    pub async fn connect(addr: SocketAddr) -> Result<Self, Error> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| Error::client(format!("connecting to {addr}"), e))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Error::client("HTTP handshake", e))?;
        let driver = tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "client connection ended with an error");
            }
        });
        Ok(Self { sender, driver, addr })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends `request` and returns the response with its body unread.
    ///
    /// # Errors
    ///
    /// When the connection is closed or the exchange fails.
    pub async fn send(&mut self, request: Request<Empty<Bytes>>) -> Result<Response<Incoming>, Error> {
        self.sender
            .ready()
            .await
            .map_err(|e| Error::client("connection not ready", e))?;
        self.sender
            .send_request(request)
            .await
            .map_err(|e| Error::client("sending a request", e))
    }

    /// `method path` with `headers` (name, value bytes; appended in order,
    /// so a name may repeat); reads the whole body.
    ///
    /// # Errors
    ///
    /// An invalid header, or a failed exchange.
    pub async fn fetch(&mut self, method: &str, path: &str, headers: &[(&str, &[u8])]) -> Result<Fetched, Error> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, self.addr.to_string());
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Empty::new())
            .map_err(|e| Error::client("building a request", e))?;
        let response = self.send(request).await?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| Error::client("reading a body", e))?
            .to_bytes();
        Ok(Fetched {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// `GET path` with text headers.
    ///
    /// # Errors
    ///
    /// As [`fetch`](Self::fetch).
    pub async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Result<Fetched, Error> {
        let headers: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        self.fetch("GET", path, &headers).await
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Sends `method path` on a fresh connection with `headers` and a body
/// streamed from `body` (with `Content-Length: len` when given, chunked
/// otherwise), and reads the whole response. The body is pulled as the
/// connection takes it, so a paced stream paces the upload.
///
/// # Errors
///
/// A failed connection, an invalid header, or a failed exchange (the server
/// may answer before the body is sent and close the connection: that
/// response is returned when hyper saw it).
pub async fn upload<S>(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: S,
    len: Option<u64>,
) -> Result<Fetched, Error>
where
    S: futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
{
    use futures_util::TryStreamExt as _;
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| Error::client(format!("connecting to {addr}"), e))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| Error::client("HTTP handshake", e))?;
    let driver = tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "upload connection ended with an error");
        }
    });
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, addr.to_string());
    if let Some(len) = len {
        builder = builder.header(http::header::CONTENT_LENGTH, len);
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = http_body_util::StreamBody::new(body.map_ok(hyper::body::Frame::data));
    let request = builder.body(body).map_err(|e| Error::client("building a request", e))?;
    let exchanged = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| Error::client("sending an upload", e))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| Error::client("reading an upload's response", e))?
            .to_bytes();
        Ok(Fetched {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
    .await;
    driver.abort();
    exchanged
}

/// What one download saw.
#[derive(Debug, Clone, Copy, Default)]
pub struct Download {
    /// Body bytes received.
    pub bytes: u64,
    /// From sending the request to the first body byte.
    pub first_byte: Option<Duration>,
    /// From sending the request to the end (or the hang-up).
    pub elapsed: Duration,
}

/// Downloads `path` on a fresh connection, reading at most `rate` bytes per
/// second (`None`: as fast as possible), stopping (and hanging up) after
/// `stop_after` bytes or at `deadline`, whichever comes first.
///
/// # Errors
///
/// A failed connection or exchange, or a status other than 200/206.
pub async fn download(
    addr: SocketAddr,
    path: &str,
    rate: Option<u64>,
    stop_after: Option<u64>,
    deadline: Option<Instant>,
) -> Result<Download, Error> {
    let mut client = Client::connect(addr).await?;
    let request = Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .body(Empty::new())
        .map_err(|e| Error::client("building a request", e))?;
    let started = Instant::now();
    let response = client.send(request).await?;
    if !response.status().is_success() {
        return Err(Error::Client {
            context: format!("GET {path}: status {}", response.status()),
            source: None,
        });
    }
    let mut body = response.into_body();
    let mut seen = Download::default();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::client("reading a download", e))?;
        let Ok(data) = frame.into_data() else { continue };
        seen.first_byte.get_or_insert_with(|| started.elapsed());
        seen.bytes += data.len() as u64;
        if stop_after.is_some_and(|limit| seen.bytes >= limit) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if let Some(rate) = rate {
            // Sleep until the bytes so far are due at `rate`.
            let due = Duration::from_secs_f64(seen.bytes as f64 / rate as f64);
            let ahead = due.saturating_sub(started.elapsed());
            let ahead = deadline.map_or(ahead, |d| ahead.min(d.saturating_duration_since(Instant::now())));
            tokio::time::sleep(ahead).await;
        }
    }
    seen.elapsed = started.elapsed();
    Ok(seen)
}
