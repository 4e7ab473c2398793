//! The comparison point: tower-http's `ServeFile` behind the same accept
//! loop, connection driver, timeouts and stall guard as the delivery
//! server, with hyper's default buffer size, as a user of tower-http would
//! deploy it.

use std::net::SocketAddr;
use std::path::Path;

use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower_http::services::ServeFile;

use crate::config::DeliveryConfig;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::server::{ConnectionSettings, Server};

/// Serves the one file at `path` for every request path with tower-http's
/// `ServeFile` (64 KiB chunks read through `tokio::fs`), using `config`'s
/// timeouts and connection limit. The returned server's metrics stay empty.
///
/// # Errors
///
/// An invalid configuration or a failed bind.
pub async fn serve_file(addr: SocketAddr, path: &Path, config: &DeliveryConfig) -> Result<Server, Error> {
    config.validate()?;
    let mut settings = ConnectionSettings::from_config(config);
    settings.max_buf_size = None;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let local_addr = listener.local_addr().map_err(|source| Error::Bind { addr, source })?;
    let service = ServeFile::new(path);
    tracing::info!(%local_addr, file = %path.display(), "tower-http ServeFile baseline listening");
    Ok(Server::start(
        listener,
        local_addr,
        settings,
        Metrics::new(),
        move || (TowerToHyperService::new(service.clone()), None),
    ))
}
