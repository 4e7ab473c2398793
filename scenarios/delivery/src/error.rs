//! The delivery scenario's error type.

/// What can go wrong running the delivery scenario or a server process.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A parameter value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The HTTP server or client failed.
    #[error(transparent)]
    Http(#[from] weir_http::Error),
    /// A scenario step failed; the text says which.
    #[error("{context}")]
    Scenario {
        /// What was being done.
        context: String,
        /// The underlying failure, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl Error {
    /// A scenario failure with a cause.
    pub(crate) fn scenario(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Scenario {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// A scenario failure without an underlying error.
    pub(crate) fn check(context: impl Into<String>) -> Self {
        Self::Scenario {
            context: context.into(),
            source: None,
        }
    }
}
