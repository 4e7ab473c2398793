//! The comparison point: tower-http's `ServeFile` behind the same accept
//! loop, connection driver, timeouts and stall guard as the delivery
//! server ([`Server::bind_service`]), with hyper's default buffer size, as a
//! user of tower-http would deploy it.

use std::net::SocketAddr;
use std::path::Path;

use hyper_util::service::TowerToHyperService;
use tower_http::services::ServeFile;
use weir_http::{DeliveryConfig, Server};

use crate::error::Error;

/// Serves the one file at `path` for every request path with tower-http's
/// `ServeFile` (64 KiB chunks read through `tokio::fs`), using `config`'s
/// timeouts and connection limit. The returned server's metrics stay empty.
///
/// # Errors
///
/// An invalid configuration or a failed bind.
pub async fn serve_file(addr: SocketAddr, path: &Path, config: &DeliveryConfig) -> Result<Server, Error> {
    let service = ServeFile::new(path);
    let server = Server::bind_service(addr, config, move || TowerToHyperService::new(service.clone())).await?;
    tracing::info!(local_addr = %server.local_addr(), file = %path.display(), "tower-http ServeFile baseline listening");
    Ok(server)
}
