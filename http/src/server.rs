//! The accept loop and per-connection driver (hyper HTTP/1.1 over tokio),
//! shared by the delivery [`Server`] and the tower-http baseline, with
//! graceful shutdown: stop accepting, let responses finish for the grace
//! period, then drop what is left.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::HttpService;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{DeliveryConfig, SendPath};
use crate::delivery::{ConnectionLimits, Delivery, service};
use crate::error::Error;
use crate::io::{Rewind, StallGuard};
use crate::metrics::{ConnectionGuard, Metrics};
use crate::source::FileReader;

/// How connections are driven; the same for every server in a run so that
/// comparisons differ only in what they compare.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionSettings {
    /// hyper's write/read buffer ceiling; `None` keeps hyper's default.
    pub(crate) max_buf_size: Option<usize>,
    pub(crate) header_read_timeout: Duration,
    pub(crate) write_stall_timeout: Option<Duration>,
    pub(crate) max_connections: usize,
    pub(crate) shutdown_grace: Duration,
}

impl ConnectionSettings {
    pub(crate) fn from_config(config: &DeliveryConfig) -> Self {
        Self {
            max_buf_size: Some(config.connection_buffer),
            header_read_timeout: config.header_read_timeout,
            write_stall_timeout: config.write_stall_timeout,
            max_connections: config.max_connections,
            shutdown_grace: config.shutdown_grace,
        }
    }

    fn builder(&self) -> http1::Builder {
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .keep_alive(true);
        if let Some(max) = self.max_buf_size {
            builder.max_buf_size(max);
        }
        builder
    }
}

/// One accepted connection's parts, built by the accept loop's `make`.
pub(crate) struct Accepted<S> {
    /// The hyper service.
    pub(crate) service: S,
    /// Its metrics guard, if counted.
    pub(crate) guard: Option<ConnectionGuard>,
    /// The handler and throttle share of the sendfile path, when it is on.
    pub(crate) direct: Option<(Delivery, ConnectionLimits)>,
}

/// Triggers a server's shutdown from anywhere; cheap to clone.
#[derive(Debug, Clone)]
pub struct ServerHandle {
    token: CancellationToken,
}

impl ServerHandle {
    /// Stops accepting and starts the graceful drain.
    pub fn shutdown(&self) {
        self.token.cancel();
    }
}

/// A running HTTP server on a tokio runtime.
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    token: CancellationToken,
    tracker: TaskTracker,
    metrics: Metrics,
}

impl Server {
    /// Binds `addr` and serves `config.root` with the default (pull) file
    /// reader.
    ///
    /// # Errors
    ///
    /// An invalid configuration, an unusable root, or a failed bind.
    pub async fn bind(addr: SocketAddr, config: DeliveryConfig) -> Result<Self, Error> {
        Self::bind_with(addr, config, FileReader::default()).await
    }

    /// Binds `addr` and serves `config.root`, reading files with `reader`.
    ///
    /// # Errors
    ///
    /// An invalid configuration, an unusable root, or a failed bind.
    pub async fn bind_with(addr: SocketAddr, config: DeliveryConfig, reader: FileReader) -> Result<Self, Error> {
        let metrics = Metrics::new();
        let delivery = Delivery::new(&config, reader, metrics.clone())?;
        let settings = ConnectionSettings::from_config(&config);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let local_addr = listener.local_addr().map_err(|source| Error::Bind { addr, source })?;
        let counting = metrics.clone();
        let probe = metrics.clone();
        let sendfile = config.send_path == SendPath::Sendfile;
        let server = Self::start(listener, local_addr, settings, metrics, move || {
            let connection = delivery.connection();
            let direct = sendfile.then(|| (delivery.clone(), connection.clone()));
            Accepted {
                service: service(delivery.clone(), connection),
                guard: Some(counting.connection()),
                direct,
            }
        });
        if let Some(every) = config.lag_probe_every {
            server
                .tracker
                .spawn(crate::lag::probe(probe, every, server.token.clone()));
        }
        tracing::info!(
            %local_addr,
            root = %config.root.display(),
            reader = reader.name(),
            send_path = config.send_path.name(),
            "delivery server listening"
        );
        Ok(server)
    }

    /// Binds `addr` and serves any hyper service (a tower service through
    /// `hyper_util::service::TowerToHyperService`, for example) behind the
    /// same accept loop, header timeout, write-stall guard, connection limit
    /// and graceful shutdown as [`Server::bind`], with hyper's default
    /// connection buffer. `make` builds each connection's service. The
    /// server's metrics stay empty: they are counted by [`Delivery`].
    ///
    /// This is how a comparison runs another file server under identical
    /// connection handling, so that the figures differ only in the handler.
    ///
    /// # Errors
    ///
    /// An invalid configuration or a failed bind.
    pub async fn bind_service<F, S, B>(addr: SocketAddr, config: &DeliveryConfig, make: F) -> Result<Self, Error>
    where
        F: Fn() -> S + Send + 'static,
        S: HttpService<Incoming, ResBody = B> + Send + 'static,
        S::Future: Send,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        config.validate()?;
        let mut settings = ConnectionSettings::from_config(config);
        settings.max_buf_size = None;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let local_addr = listener.local_addr().map_err(|source| Error::Bind { addr, source })?;
        Ok(Self::start(listener, local_addr, settings, Metrics::new(), move || {
            Accepted {
                service: make(),
                guard: None,
                direct: None,
            }
        }))
    }

    /// Runs the accept loop on `listener`; `make` builds each connection's
    /// service (and its metrics guard, if counted).
    pub(crate) fn start<F, S, B>(
        listener: TcpListener,
        local_addr: SocketAddr,
        settings: ConnectionSettings,
        metrics: Metrics,
        make: F,
    ) -> Self
    where
        F: Fn() -> Accepted<S> + Send + 'static,
        S: HttpService<Incoming, ResBody = B> + Send + 'static,
        S::Future: Send,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(accept_loop(
            listener,
            settings,
            token.clone(),
            tracker.clone(),
            metrics.clone(),
            make,
        ));
        Self {
            local_addr,
            token,
            tracker,
            metrics,
        }
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A handle that can trigger shutdown.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            token: self.token.clone(),
        }
    }

    /// Waits until shutdown is triggered (through a [`ServerHandle`]) and
    /// every connection has finished or been dropped.
    ///
    /// # Cancel safety
    ///
    /// Cancelling the wait leaves the server running.
    pub async fn wait(&self) {
        self.token.cancelled().await;
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Stops accepting, lets responses run for the grace period, drops the
    /// rest, and returns once every connection task has ended.
    pub async fn shutdown(self) {
        self.token.cancel();
        self.wait().await;
    }
}

async fn accept_loop<F, S, B>(
    listener: TcpListener,
    settings: ConnectionSettings,
    token: CancellationToken,
    tracker: TaskTracker,
    metrics: Metrics,
    make: F,
) where
    F: Fn() -> Accepted<S> + Send + 'static,
    S: HttpService<Incoming, ResBody = B> + Send + 'static,
    S::Future: Send,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let builder = Arc::new(settings.builder());
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    loop {
        let accepted = tokio::select! {
            () = token.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Out of descriptors or similar: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            metrics.refused_connection();
            drop(stream);
            continue;
        };
        let Accepted { service, guard, direct } = make();
        let builder = Arc::clone(&builder);
        let token = token.clone();
        let settings = settings.clone();
        tracker.spawn(async move {
            drive(stream, service, direct, &builder, &settings, &token).await;
            drop(guard);
            drop(slot);
        });
    }
    drop(listener);
}

async fn drive<S, B>(
    stream: TcpStream,
    service: S,
    direct: Option<(Delivery, ConnectionLimits)>,
    builder: &http1::Builder,
    settings: &ConnectionSettings,
    token: &CancellationToken,
) where
    S: HttpService<Incoming, ResBody = B>,
    B: Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let _ = stream.set_nodelay(true);
    // The sendfile path first, when on: it answers what it can and hands
    // the connection to hyper, with what it read, at the first request it
    // does not answer.
    let (stream, read) = match direct {
        Some((delivery, limits)) => match crate::sendfile::serve(stream, &delivery, &limits, settings, token).await {
            crate::sendfile::Ended::Closed => return,
            crate::sendfile::Ended::Hyper { stream, read } => (stream, read),
        },
        None => (stream, bytes::Bytes::new()),
    };
    let io = TokioIo::new(StallGuard::new(Rewind::new(read, stream), settings.write_stall_timeout));
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = token.cancelled() => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(settings.shutdown_grace, connection.as_mut()).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::debug!("connection outlived the shutdown grace period; dropped");
                    return;
                }
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}
