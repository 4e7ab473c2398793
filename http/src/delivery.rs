//! `Delivery`: the request handler, usable inside any hyper or tower server.
//! Routes `/files/...` and `/metrics`, turns a [`Representation`] and a
//! request's headers into a response through [`plan`](crate::plan::plan).

use std::convert::Infallible;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use headers::{AcceptRanges, ContentLength, ContentRange, HeaderMapExt, LastModified};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use weir::source::BufferPool;

use crate::body::DeliveryBody;
use crate::config::DeliveryConfig;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::multipart::Multipart;
use crate::path::{Refusal, Root, relative_path};
use crate::plan::{Plan, plan};
use crate::source::{FileReader, Representation};
use crate::throttle::{RateLimit, Throttle};

/// The route prefix files are served under.
pub const FILES_PREFIX: &str = "/files/";
/// The route prefix objects are served under (when a store is configured).
pub const OBJECTS_PREFIX: &str = "/objects/";
/// The metrics route.
pub const METRICS_PATH: &str = "/metrics";
/// Idle read buffers kept for reuse across all transfers (16 x 32 KiB =
/// 512 KiB at the default chunk size).
const POOL_SPARES: usize = 16;

/// The request handler and everything it shares across connections.
#[derive(Debug, Clone)]
pub struct Delivery {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: Root,
    objects: Option<Arc<dyn object_store::ObjectStore>>,
    chunk_size: usize,
    reader: FileReader,
    max_ranges: NonZeroUsize,
    per_connection_rate: Option<std::num::NonZeroU64>,
    global: Option<Arc<RateLimit>>,
    pool: Arc<BufferPool>,
    metrics: Metrics,
    /// Write access; `None` answers uploads `405`.
    uploads: Option<crate::upload::Uploads>,
    /// Whether whole responses may be encoded (`Accept-Encoding`).
    compression: bool,
    /// Rows from PostgreSQL; `None` answers 404 under `/rows/`.
    rows: Option<crate::rows::Rows>,
}

/// One client connection's share of the throttle; create one per
/// connection with [`Delivery::connection`].
#[derive(Debug, Clone, Default)]
pub struct ConnectionLimits {
    limit: Option<Arc<RateLimit>>,
}

impl Delivery {
    /// A handler for `config` (validated), reading files with `reader`,
    /// recording into `metrics`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an invalid configuration, [`Error::Root`] when
    /// the root cannot be opened as a directory.
    pub fn new(config: &DeliveryConfig, reader: FileReader, metrics: Metrics) -> Result<Self, Error> {
        config.validate()?;
        let root = Root::open(&config.root).map_err(|source| Error::Root {
            path: config.root.clone(),
            source,
        })?;
        // The engine's pool: every file transfer of this server reads into it.
        let pool = BufferPool::new(config.chunk_size, POOL_SPARES).map_err(|error| Error::Config(error.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                root,
                objects: config.objects.clone(),
                chunk_size: config.chunk_size,
                reader,
                max_ranges: config.max_ranges,
                per_connection_rate: config.per_connection_rate,
                global: config.global_rate.map(|rate| Arc::new(RateLimit::new(rate))),
                pool: Arc::new(pool),
                metrics,
                uploads: config.uploads.as_ref().map(crate::upload::Uploads::new),
                compression: config.compression,
                rows: config.rows.as_ref().map(crate::rows::Rows::new).transpose()?,
            }),
        })
    }

    /// The metrics this handler records into.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The throttle share for a new connection.
    pub fn connection(&self) -> ConnectionLimits {
        ConnectionLimits {
            limit: self
                .inner
                .per_connection_rate
                .map(|rate| Arc::new(RateLimit::new(rate))),
        }
    }

    /// Answers one request. Never fails: every problem is a status code.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes leaves nothing behind (the
    /// file, if opened, is closed; an upload whose body is being read is
    /// aborted, its temporary file removed).
    pub async fn handle<B>(&self, connection: &ConnectionLimits, request: Request<B>) -> Response<DeliveryBody>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
        B::Error: Into<weir::BoxError>,
    {
        let requested = Instant::now();
        let path = request.uri().path().to_owned();
        let path = path.as_str();
        let writing = request.method() == Method::PUT || request.method() == Method::POST;
        let response = if writing && (path.starts_with(FILES_PREFIX) || path.starts_with(OBJECTS_PREFIX)) {
            self.upload(request, path).await
        } else if path == METRICS_PATH {
            self.metrics_response(request.method())
        } else if let Some(rest) = path.strip_prefix(FILES_PREFIX) {
            self.file_response(connection, &request, rest, requested).await
        } else if let (Some(rest), Some(store)) = (path.strip_prefix(OBJECTS_PREFIX), &self.inner.objects) {
            self.object_response(connection, &request, store, rest, requested).await
        } else if let (Some(rest), Some(rows)) = (path.strip_prefix(crate::rows::ROWS_PREFIX), &self.inner.rows) {
            self.rows_response(connection, &request, rows, rest, requested).await
        } else {
            status(StatusCode::NOT_FOUND)
        };
        self.inner.metrics.response(response.status().as_u16());
        response
    }

    async fn upload<B>(&self, request: Request<B>, path: &str) -> Response<DeliveryBody>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
        B::Error: Into<weir::BoxError>,
    {
        let inner = &self.inner;
        let Some(uploads) = &inner.uploads else {
            return method_not_allowed(false);
        };
        let destination = if let Some(rest) = path.strip_prefix(FILES_PREFIX) {
            crate::upload::Destination::File(&inner.root, rest)
        } else if let (Some(rest), Some(store)) = (path.strip_prefix(OBJECTS_PREFIX), &inner.objects) {
            crate::upload::Destination::Object(store, rest)
        } else {
            return status(StatusCode::NOT_FOUND);
        };
        uploads
            .take(request, destination, inner.chunk_size, &inner.metrics)
            .await
    }

    fn metrics_response(&self, method: &Method) -> Response<DeliveryBody> {
        if method != Method::GET && method != Method::HEAD {
            return method_not_allowed(false);
        }
        let text = self.inner.metrics.render();
        let mut response = Response::new(if method == Method::HEAD {
            DeliveryBody::empty()
        } else {
            DeliveryBody::bytes(text.clone())
        });
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        );
        response.headers_mut().typed_insert(ContentLength(text.len() as u64));
        response
    }

    async fn file_response<B>(
        &self,
        connection: &ConnectionLimits,
        request: &Request<B>,
        encoded: &str,
        requested: Instant,
    ) -> Response<DeliveryBody> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return method_not_allowed(self.inner.uploads.is_some());
        }
        match self.open_file(encoded).await {
            Ok(representation) => self.respond(connection, request, &representation, requested),
            Err(refusal) => refusal,
        }
    }

    /// Opens the file `encoded` (a URL path below [`FILES_PREFIX`]) names
    /// beneath the root, or the response that refuses it.
    async fn open_file(&self, encoded: &str) -> Result<Representation, Response<DeliveryBody>> {
        let relative = match relative_path(encoded) {
            Ok(relative) => relative,
            Err(refusal) => return Err(refused(&refusal, encoded)),
        };
        let this = self.clone();
        let opened = tokio::task::spawn_blocking(move || {
            let file = this
                .inner
                .root
                .open_file(&relative)
                .map_err(|r| (r, relative.clone()))?;
            let pool = Some(Arc::clone(&this.inner.pool));
            Representation::from_file_pooled(file, this.inner.reader, pool).map_err(|e| (Refusal::Io(e), relative))
        })
        .await;
        match opened {
            Ok(Ok(representation)) => Ok(representation),
            Ok(Err((refusal, relative))) => Err(refused(&refusal, &relative.display().to_string())),
            Err(join) => {
                tracing::error!(error = %join, "opening a file panicked or was cancelled");
                Err(status(StatusCode::INTERNAL_SERVER_ERROR))
            }
        }
    }

    /// Decides a request the sendfile path parsed itself, with the same
    /// routing, containment and planning as [`handle`](Self::handle): a
    /// response without a body, a head followed by a range of an open file,
    /// or [`Direct::Hyper`] for anything this path does not send (the caller
    /// then hands the request to hyper, which answers it through `handle`).
    /// A response it decides is counted in the metrics here.
    pub(crate) async fn direct(
        &self,
        connection: &ConnectionLimits,
        request: &Request<()>,
        requested: Instant,
    ) -> Direct {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return Direct::Hyper;
        }
        let Some(encoded) = request.uri().path().strip_prefix(FILES_PREFIX) else {
            return Direct::Hyper;
        };
        let direct = match self.open_file(encoded).await {
            Err(refusal) => Direct::Bodiless(refusal),
            Ok(representation) => {
                let (head, body_plan) = self.head(request, &representation);
                match (body_plan, representation.file()) {
                    (None, _) => Direct::Bodiless(head),
                    (Some(BodyPlan::Range(range)), Some(file)) => {
                        let mut guard = self.inner.metrics.transfer(requested);
                        if range.is_empty() {
                            guard.finish(crate::metrics::TransferOutcome::Completed);
                            Direct::Bodiless(head)
                        } else {
                            Direct::File(Box::new(FileBody {
                                head,
                                file: Arc::clone(file),
                                range,
                                throttle: self.throttle(connection),
                                guard,
                            }))
                        }
                    }
                    // Multipart and encoded bodies are hyper's.
                    (Some(_), _) => return Direct::Hyper,
                }
            }
        };
        let code = match &direct {
            Direct::Bodiless(head) => head.status(),
            Direct::File(body) => body.head.status(),
            Direct::Hyper => return direct,
        };
        self.inner.metrics.response(code.as_u16());
        direct
    }

    async fn object_response<B>(
        &self,
        connection: &ConnectionLimits,
        request: &Request<B>,
        store: &Arc<dyn object_store::ObjectStore>,
        encoded: &str,
        requested: Instant,
    ) -> Response<DeliveryBody> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return method_not_allowed(self.inner.uploads.is_some());
        }
        let key = match crate::objects::object_path(encoded) {
            Ok(key) => key,
            Err(refusal) => return refused(&refusal, encoded),
        };
        match crate::objects::representation(store, key).await {
            Ok(representation) => self.respond(connection, request, &representation, requested),
            Err(refusal) => refused(&refusal, encoded),
        }
    }

    async fn rows_response<B>(
        &self,
        connection: &ConnectionLimits,
        request: &Request<B>,
        rows: &crate::rows::Rows,
        rest: &str,
        requested: Instant,
    ) -> Response<DeliveryBody> {
        if request.method() != Method::GET {
            let mut response = status(StatusCode::METHOD_NOT_ALLOWED);
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET"));
            return response;
        }
        match rows.open(rest).await {
            Ok((stream, content_type)) => {
                let throttle = self.throttle(connection);
                let chunk_size = throttle.chunk_size(self.inner.chunk_size);
                let guard = self.inner.metrics.transfer(requested);
                let mut response = Response::new(DeliveryBody::until_end(stream, chunk_size, throttle, guard));
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                response
            }
            Err(refused) => refused,
        }
    }

    fn throttle(&self, connection: &ConnectionLimits) -> Throttle {
        let limits: Vec<Arc<RateLimit>> = connection
            .limit
            .iter()
            .chain(self.inner.global.iter())
            .cloned()
            .collect();
        Throttle::new(limits)
    }

    /// Answers `request` with `representation`: conditionals, ranges,
    /// throttled streaming body. Use it to serve representations the file
    /// route does not know (objects, database rows).
    pub fn respond<B>(
        &self,
        connection: &ConnectionLimits,
        request: &Request<B>,
        representation: &Representation,
        requested: Instant,
    ) -> Response<DeliveryBody> {
        let (mut response, body_plan) = self.head(request, representation);
        if let Some(body_plan) = body_plan {
            *response.body_mut() = self.body(connection, representation, body_plan, requested);
        }
        response
    }

    /// The status and headers of the answer to `request` with
    /// `representation`, and the body to send (`None` for `HEAD` and for
    /// answers without one): the one place both send paths decide.
    fn head<B>(
        &self,
        request: &Request<B>,
        representation: &Representation,
    ) -> (Response<DeliveryBody>, Option<BodyPlan>) {
        let inner = &self.inner;
        let len = representation.len();
        let decision = plan(
            request.method(),
            request.headers(),
            representation,
            inner.max_ranges,
            SystemTime::now(),
        );
        // Only a whole representation is ever encoded; a `Range` request
        // gets identity bytes (see `encoding`).
        let coding = (inner.compression
            && len > 0
            && matches!(decision, Plan::Full)
            && !request.headers().contains_key(header::RANGE))
        .then(|| crate::encoding::negotiate(request.headers()))
        .flatten();
        let mut response = Response::new(DeliveryBody::empty());
        let headers = response.headers_mut();
        headers.typed_insert(AcceptRanges::bytes());
        if inner.compression {
            headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        if let Some(etag) = representation.etag() {
            headers.typed_insert(etag.clone());
            if let Some(codec) = coding {
                encoded_etag(headers, codec.as_str());
            }
        }
        if let Some(modified) = representation.last_modified() {
            headers.typed_insert(LastModified::from(modified));
        }
        let is_head = request.method() == Method::HEAD;
        let (status, body_plan) = match decision {
            Plan::NotModified => (StatusCode::NOT_MODIFIED, None),
            Plan::PreconditionFailed => {
                headers.typed_insert(ContentLength(0));
                (StatusCode::PRECONDITION_FAILED, None)
            }
            Plan::Unsatisfiable => {
                headers.typed_insert(ContentRange::unsatisfied_bytes(len));
                headers.typed_insert(ContentLength(0));
                (StatusCode::RANGE_NOT_SATISFIABLE, None)
            }
            Plan::Full => {
                headers.insert(header::CONTENT_TYPE, representation.content_type().clone());
                if let Some(codec) = coding {
                    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(codec.as_str()));
                    (StatusCode::OK, Some(BodyPlan::Encoded(codec)))
                } else {
                    headers.typed_insert(ContentLength(len));
                    (StatusCode::OK, Some(BodyPlan::Range(0..len)))
                }
            }
            Plan::Single(range) => {
                headers.insert(header::CONTENT_TYPE, representation.content_type().clone());
                headers.typed_insert(ContentLength(range.end - range.start));
                if let Ok(content_range) = ContentRange::bytes(range.clone(), len) {
                    headers.typed_insert(content_range);
                }
                (StatusCode::PARTIAL_CONTENT, Some(BodyPlan::Range(range)))
            }
            Plan::Multi(ranges) => {
                let multipart = Multipart::new(&ranges, len, representation.content_type());
                headers.insert(header::CONTENT_TYPE, multipart.content_type());
                headers.typed_insert(ContentLength(multipart.len()));
                (StatusCode::PARTIAL_CONTENT, Some(BodyPlan::Multipart(multipart)))
            }
        };
        *response.status_mut() = status;
        (response, body_plan.filter(|_| !is_head))
    }

    fn body(
        &self,
        connection: &ConnectionLimits,
        representation: &Representation,
        body_plan: BodyPlan,
        requested: Instant,
    ) -> DeliveryBody {
        let inner = &self.inner;
        let throttle = self.throttle(connection);
        let chunk_size = throttle.chunk_size(inner.chunk_size);
        let guard = inner.metrics.transfer(requested);
        let (source, len) = match body_plan {
            BodyPlan::Range(range) => {
                let len = range.end - range.start;
                match representation.open(range, chunk_size) {
                    Ok(source) => (source, len),
                    Err(error) => {
                        // The headers promise `len` bytes: a body that fails
                        // at once makes hyper close the connection.
                        tracing::warn!(%error, "opening a range failed");
                        (
                            Box::pin(futures_util::stream::iter([Err(error)])) as crate::source::ByteStream,
                            len,
                        )
                    }
                }
            }
            BodyPlan::Multipart(multipart) => {
                let len = multipart.len();
                (multipart.into_stream(representation.opener(), chunk_size), len)
            }
            BodyPlan::Encoded(codec) => {
                let source = match representation.open(0..representation.len(), inner.chunk_size) {
                    Ok(source) => crate::encoding::compressed(source, codec, inner.chunk_size),
                    Err(error) => {
                        tracing::warn!(%error, "opening a file to compress failed");
                        Box::pin(futures_util::stream::iter([Err(error)])) as crate::source::ByteStream
                    }
                };
                return DeliveryBody::until_end(source, chunk_size, throttle, guard);
            }
        };
        DeliveryBody::transfer(source, len, chunk_size, throttle, guard)
    }
}

/// What [`Delivery::direct`] decided for a request of the sendfile path.
pub(crate) enum Direct {
    /// Write this response; it has no body.
    Bodiless(Response<DeliveryBody>),
    /// Write the head, then send the range of the file.
    File(Box<FileBody>),
    /// Not for the sendfile path: hyper answers it.
    Hyper,
}

/// A file body for the sendfile path: the head to write first, the range
/// to send, the throttle it pays and the transfer's accounting.
pub(crate) struct FileBody {
    pub(crate) head: Response<DeliveryBody>,
    pub(crate) file: Arc<std::fs::File>,
    pub(crate) range: std::ops::Range<u64>,
    pub(crate) throttle: Throttle,
    pub(crate) guard: crate::metrics::TransferGuard,
}

enum BodyPlan {
    Range(std::ops::Range<u64>),
    Multipart(Multipart),
    /// The whole representation, compressed.
    Encoded(weir_transforms::Codec),
}

/// Gives the encoded representation a strong tag of its own: the identity
/// tag with `-<coding>` appended inside the quotes.
fn encoded_etag(headers: &mut http::HeaderMap, coding: &str) {
    let Some(tag) = headers.get(header::ETAG).and_then(|v| v.to_str().ok()) else {
        return;
    };
    let Some(open) = tag.strip_suffix('"') else { return };
    if let Ok(value) = HeaderValue::from_str(&format!("{open}-{coding}\"")) {
        headers.insert(header::ETAG, value);
    }
}

fn status(code: StatusCode) -> Response<DeliveryBody> {
    let mut response = Response::new(DeliveryBody::empty());
    *response.status_mut() = code;
    response.headers_mut().typed_insert(ContentLength(0));
    response
}

fn method_not_allowed(writable: bool) -> Response<DeliveryBody> {
    let mut response = status(StatusCode::METHOD_NOT_ALLOWED);
    let allow = if writable { "GET, HEAD, PUT, POST" } else { "GET, HEAD" };
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

fn refused(refusal: &Refusal, what: &str) -> Response<DeliveryBody> {
    match refusal {
        Refusal::NotFound => status(StatusCode::NOT_FOUND),
        Refusal::Forbidden => {
            tracing::info!(path = what, "refused a path that leaves the served root");
            status(StatusCode::FORBIDDEN)
        }
        Refusal::Io(error) => {
            tracing::warn!(%error, path = what, "opening a file failed");
            status(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// A `hyper` service over a [`Delivery`] for one connection.
pub(crate) fn service(
    delivery: Delivery,
    connection: ConnectionLimits,
) -> impl hyper::service::Service<
    Request<hyper::body::Incoming>,
    Response = Response<DeliveryBody>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<DeliveryBody>, Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |request| {
        let delivery = delivery.clone();
        let connection = connection.clone();
        async move { Ok(delivery.handle(&connection, request).await) }
    })
}
