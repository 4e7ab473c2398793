//! The HTTP crate's error type.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// What can go wrong starting a server or making a request with
/// [`client`](crate::client). Serving itself never errors: problems with one
/// request become its status code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration or parameter value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The served root cannot be opened as a directory.
    #[error("cannot serve {}", path.display())]
    Root {
        /// The root asked for.
        path: PathBuf,
        /// Why it cannot be opened.
        source: io::Error,
    },
    /// The listening socket cannot be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed.
        source: io::Error,
    },
    /// A client request failed; the text says which step.
    #[error("{context}")]
    Client {
        /// What was being done.
        context: String,
        /// The underlying failure, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl Error {
    /// A client failure with a cause.
    pub(crate) fn client(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Client {
            context: context.into(),
            source: Some(source.into()),
        }
    }
}
