//! Shared pieces of weir's criterion benches: the sources and sinks they
//! measure with, and the raw loops they compare against.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::io;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use weir::{BoxError, Cause, Sink};

/// A source that copies `total` bytes out of `data` into fresh chunks of
/// `chunk` bytes, as a read would: the per-byte work a real source does.
pub fn copying_source(data: &Bytes, chunk: usize) -> impl Stream<Item = io::Result<Bytes>> + Send + use<> {
    let data = data.clone();
    let chunks = data.len().div_ceil(chunk);
    stream::iter((0..chunks).map(move |i| {
        let end = ((i + 1) * chunk).min(data.len());
        Ok(Bytes::copy_from_slice(&data[i * chunk..end]))
    }))
}

/// The hand-rolled loop the engine is measured against: pull, write, await,
/// then finalize. No backpressure bound beyond the await, no timeout, no
/// cancellation, no atomic cleanup.
///
/// # Errors
///
/// The first error, with no cleanup.
pub async fn raw_loop<St, Si>(source: St, mut sink: Si) -> Result<u64, BoxError>
where
    St: Stream<Item = io::Result<Bytes>>,
    Si: Sink,
{
    let mut source = std::pin::pin!(source);
    let mut bytes = 0u64;
    while let Some(chunk) = source.next().await {
        let chunk = chunk?;
        bytes += chunk.len() as u64;
        sink.write(chunk).await?;
    }
    sink.finalize().await?;
    Ok(bytes)
}

/// A sink whose every write takes a fixed time (a remote store's latency),
/// and which overlaps writes freely.
#[derive(Debug, Clone, Copy)]
pub struct LatencySink {
    /// Time per write.
    pub latency: Duration,
}

impl Sink for LatencySink {
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<> {
        let latency = self.latency;
        async move {
            drop(chunk);
            tokio::time::sleep(latency).await;
            Ok(())
        }
    }

    async fn finalize(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    async fn abort(self, _cause: &Cause) -> Result<(), BoxError> {
        Ok(())
    }
}
