//! `NullSink`: accepts and discards everything.

use std::future::{Future, ready};

use bytes::Bytes;

use crate::error::{BoxError, Cause};
use crate::sink::{Sink, TryWrite};

/// Accepts every chunk at once and discards it; `finalize` and `abort`
/// always succeed. For measuring the engine and sources on their own.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl Sink for NullSink {
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<> {
        drop(chunk);
        ready(Ok(()))
    }

    fn try_write(&mut self, chunk: Bytes) -> TryWrite {
        drop(chunk);
        TryWrite::Done(Ok(()))
    }

    fn finalize(&mut self) -> impl Future<Output = Result<(), BoxError>> + Send {
        ready(Ok(()))
    }

    fn abort(self, _cause: &Cause) -> impl Future<Output = Result<(), BoxError>> + Send {
        ready(Ok(()))
    }
}
