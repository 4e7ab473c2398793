//! `MemorySink`: collects the bytes in memory and publishes them only on
//! commit.

use std::future::{Future, ready};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::{Bytes, BytesMut};

use crate::error::{BoxError, Cause};
use crate::sink::{Sink, TryWrite};

#[derive(Debug, Default)]
struct Published {
    committed: Option<Bytes>,
    aborted: bool,
}

/// Collects every chunk in memory; the whole content becomes visible through
/// its [`MemoryHandle`] only when `finalize` commits it, and never after an
/// abort.
///
/// It holds the whole input, by design: use it for tests and small payloads,
/// not for measuring memory.
#[derive(Debug, Default)]
pub struct MemorySink {
    chunks: Vec<Bytes>,
    published: Arc<Mutex<Published>>,
}

/// Reads what a [`MemorySink`] committed, after the sink is gone.
#[derive(Debug, Clone)]
pub struct MemoryHandle {
    published: Arc<Mutex<Published>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A handle that sees the committed content.
    pub fn handle(&self) -> MemoryHandle {
        MemoryHandle {
            published: Arc::clone(&self.published),
        }
    }
}

impl MemoryHandle {
    /// The committed content: `Some` only after a successful `finalize`.
    pub fn committed(&self) -> Option<Bytes> {
        self.published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .committed
            .clone()
    }

    /// `true` once the sink was aborted.
    pub fn is_aborted(&self) -> bool {
        self.published.lock().unwrap_or_else(PoisonError::into_inner).aborted
    }
}

impl Sink for MemorySink {
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<> {
        self.chunks.push(chunk);
        ready(Ok(()))
    }

    fn try_write(&mut self, chunk: Bytes) -> TryWrite {
        self.chunks.push(chunk);
        TryWrite::Done(Ok(()))
    }

    fn finalize(&mut self) -> impl Future<Output = Result<(), BoxError>> + Send {
        let total = self.chunks.iter().map(Bytes::len).sum();
        let mut all = BytesMut::with_capacity(total);
        for chunk in self.chunks.drain(..) {
            all.extend_from_slice(&chunk);
        }
        self.published.lock().unwrap_or_else(PoisonError::into_inner).committed = Some(all.freeze());
        ready(Ok(()))
    }

    fn abort(self, _cause: &Cause) -> impl Future<Output = Result<(), BoxError>> + Send {
        let mut published = self.published.lock().unwrap_or_else(PoisonError::into_inner);
        published.committed = None;
        published.aborted = true;
        ready(Ok(()))
    }
}
