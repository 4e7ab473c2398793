//! How a client disconnect mid-stream becomes a source error: the upload is
//! length-prefixed (8 bytes, big-endian, then exactly that many bytes), and
//! [`ExactLength`] turns an end of stream before the promised length into an
//! `UnexpectedEof` error.
//!
//! Without a promised length, a peer that closes its side cleanly (FIN)
//! looks exactly like a finished upload: the read returns 0 and the source
//! ends, and the engine would commit a truncated body. A reset (RST) already
//! surfaces as an error from the read; the length turns the clean close into
//! one too. HTTP does the same with `Content-Length` (or chunked encoding's
//! terminating chunk).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest length a prefix may announce (1 TiB): a larger one is taken
/// for garbage, not an upload.
pub const MAX_PROMISED_LENGTH: u64 = 1 << 40;

/// Reads the 8-byte big-endian length prefix.
///
/// # Errors
///
/// When the peer closes or fails before 8 bytes (`UnexpectedEof` or the
/// read's error), or announces more than [`MAX_PROMISED_LENGTH`]
/// (`InvalidData`).
///
/// # Cancel safety
///
/// Not cancel safe: a cancelled read may have consumed part of the prefix.
pub async fn read_length_prefix<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<u64> {
    let mut prefix = [0u8; 8];
    reader.read_exact(&mut prefix).await.map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("the peer closed or failed before the 8-byte length prefix: {error}"),
        )
    })?;
    let length = u64::from_be_bytes(prefix);
    if length > MAX_PROMISED_LENGTH {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the length prefix announces {length} bytes, more than the maximum of {MAX_PROMISED_LENGTH}"),
        ));
    }
    Ok(length)
}

/// The 8-byte big-endian prefix announcing `length` bytes.
pub fn length_prefix(length: u64) -> [u8; 8] {
    length.to_be_bytes()
}

/// A source that must yield exactly `expected` bytes: ending early is an
/// `UnexpectedEof` error naming how many arrived; a read error is passed on
/// with the same context; more than `expected` is an `InvalidData` error
/// (bound the reader with `take(expected)` so that it cannot happen).
#[derive(Debug)]
pub struct ExactLength<S> {
    inner: S,
    expected: u64,
    received: u64,
    done: bool,
}

impl<S> ExactLength<S> {
    /// Wraps `inner`, which must yield exactly `expected` bytes.
    pub fn new(inner: S, expected: u64) -> Self {
        Self {
            inner,
            expected,
            received: 0,
            done: false,
        }
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }
}

impl<S> Stream for ExactLength<S>
where
    S: Stream<Item = io::Result<Bytes>> + Unpin,
{
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        let item = match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(item) => item,
        };
        let (received, expected) = (this.received, this.expected);
        Poll::Ready(match item {
            Some(Ok(chunk)) => {
                this.received += chunk.len() as u64;
                if this.received > expected {
                    this.done = true;
                    Some(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the peer sent more than the {expected} bytes it promised"),
                    )))
                } else {
                    Some(Ok(chunk))
                }
            }
            Some(Err(error)) => {
                this.done = true;
                Some(Err(io::Error::new(
                    error.kind(),
                    format!("the connection failed after {received} of {expected} promised bytes: {error}"),
                )))
            }
            None if received < expected => {
                this.done = true;
                Some(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the peer closed the connection after {received} of {expected} promised bytes"),
                )))
            }
            None => {
                this.done = true;
                None
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{StreamExt, stream};

    use super::*;

    fn of(chunks: &[&'static [u8]]) -> impl Stream<Item = io::Result<Bytes>> + Unpin {
        stream::iter(chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect::<Vec<_>>())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_promised_length_passes() {
        let all: Vec<_> = ExactLength::new(of(&[b"abc", b"de"]), 5).collect().await;
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(Result::is_ok));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn ending_early_is_an_unexpected_eof() {
        let mut source = ExactLength::new(of(&[b"abc"]), 10);
        assert!(source.next().await.unwrap().is_ok());
        let error = source.next().await.unwrap().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(
            error.to_string(),
            "the peer closed the connection after 3 of 10 promised bytes"
        );
        assert!(source.next().await.is_none());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_read_error_keeps_its_kind_and_gains_context() {
        let failing = stream::iter(vec![
            Ok(Bytes::from_static(b"ab")),
            Err(io::Error::from(io::ErrorKind::ConnectionReset)),
        ]);
        let mut source = ExactLength::new(failing, 8);
        source.next().await.unwrap().unwrap();
        let error = source.next().await.unwrap().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);
        assert!(
            error.to_string().starts_with("the connection failed after 2 of 8"),
            "{error}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn more_than_promised_is_invalid_data() {
        let mut source = ExactLength::new(of(&[b"abcdef"]), 4);
        assert_eq!(
            source.next().await.unwrap().unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_prefix_round_trips_and_garbage_is_refused() {
        let mut good: &[u8] = &length_prefix(1234);
        assert_eq!(read_length_prefix(&mut good).await.unwrap(), 1234);
        let mut huge: &[u8] = &length_prefix(u64::MAX);
        assert_eq!(
            read_length_prefix(&mut huge).await.unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        let mut short: &[u8] = &[0, 0, 1];
        assert_eq!(
            read_length_prefix(&mut short).await.unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
