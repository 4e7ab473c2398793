//! Errors: the one-line text a result records, and the lab's one I/O error.

/// An I/O step of the lab itself that failed, with what was being done:
/// the `Io` variant of every lab crate's error (`#[error(transparent)]
/// Io(#[from] IoError)`), so that none of them spells its own.
#[derive(Debug, thiserror::Error)]
#[error("{context}")]
pub struct IoError {
    context: String,
    #[source]
    source: std::io::Error,
}

impl IoError {
    /// The failure `source` of the step `context` ("writing a result to ...").
    pub fn new(context: impl Into<String>, source: std::io::Error) -> Self {
        Self {
            context: context.into(),
            source,
        }
    }

    /// What was being done.
    pub fn context(&self) -> &str {
        &self.context
    }
}

/// `map_err(io_error("creating ..."))`: the step's name around an
/// `io::Error`, for `?` into any lab error that has an `Io(IoError)` variant.
pub fn io_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> IoError {
    let context = context.into();
    move |source| IoError { context, source }
}

/// An error and its sources, joined with `": "`, each source skipped when
/// its text is already part of the message.
pub fn error_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        let part = source.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = source.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::fmt;
    use std::io;

    use super::*;

    /// An error whose message may or may not repeat its source's.
    #[derive(Debug)]
    struct Wrapping {
        message: String,
        source: io::Error,
    }

    impl fmt::Display for Wrapping {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.message)
        }
    }

    impl std::error::Error for Wrapping {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn error_text_walks_the_chain_without_repeating_itself() {
        let outer = Wrapping {
            message: "outer: inner".to_owned(),
            source: io::Error::other("inner"),
        };
        let wrapper = Wrapping {
            message: "wrapper".to_owned(),
            source: io::Error::other("inner"),
        };
        assert_eq!(error_text(&outer), "outer: inner");
        assert_eq!(error_text(&wrapper), "wrapper: inner");
    }
}
