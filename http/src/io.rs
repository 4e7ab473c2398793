//! `StallGuard`: a socket wrapper that fails a write which has made no
//! progress for the write-stall timeout, so a client that stops reading
//! cannot hold its connection (and the transfer's handle) forever; and
//! `Rewind`, which hands bytes already read from a socket back to the next
//! reader (hyper, when the sendfile path passes a connection on).

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Wraps `io`; writes pending for longer than `timeout` fail with
/// [`io::ErrorKind::TimedOut`]. Reads are untouched (hyper's header-read
/// timeout covers idle and slow requests).
#[derive(Debug)]
pub(crate) struct StallGuard<T> {
    io: T,
    timeout: Option<Duration>,
    /// Allocated once; re-armed when a write starts waiting.
    deadline: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl<T> StallGuard<T> {
    pub(crate) fn new(io: T, timeout: Option<Duration>) -> Self {
        Self {
            io,
            timeout,
            deadline: None,
            armed: false,
        }
    }

    /// Called when a write is pending: Ready(error) once the deadline passed.
    fn poll_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let Some(timeout) = self.timeout else {
            return Poll::Pending;
        };
        if !self.armed {
            self.armed = true;
            let at = Instant::now() + timeout;
            match self.deadline.as_mut() {
                Some(deadline) => deadline.as_mut().reset(at),
                None => self.deadline = Some(Box::pin(tokio::time::sleep_until(at))),
            }
        }
        match self.deadline.as_mut().map(|d| d.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => {
                self.armed = false;
                Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("client accepted no bytes for {timeout:?}"),
                ))
            }
            _ => Poll::Pending,
        }
    }

    fn on_write<R>(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        match result {
            Poll::Ready(result) => {
                self.armed = false;
                Poll::Ready(result)
            }
            Poll::Pending => self.poll_stall(cx).map(Err),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.io).poll_write(cx, buf);
        this.on_write(cx, result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.on_write(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.io).poll_flush(cx);
        this.on_write(cx, result)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Reads `prefix` first, then `io`; writes go straight to `io`.
#[derive(Debug)]
pub(crate) struct Rewind<T> {
    prefix: bytes::Bytes,
    io: T,
}

impl<T> Rewind<T> {
    pub(crate) fn new(prefix: bytes::Bytes, io: T) -> Self {
        Self { prefix, io }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.prefix.is_empty() {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        let n = this.prefix.len().min(buf.remaining());
        buf.put_slice(&this.prefix.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_write_nobody_reads_times_out() {
        let (client, _server) = tokio::io::duplex(1024);
        let mut guarded = StallGuard::new(client, Some(Duration::from_secs(5)));
        guarded.write_all(&[0; 1024]).await.unwrap();
        let error = guarded.write_all(&[0; 10]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn rewind_reads_the_prefix_before_the_stream_and_writes_through() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut rewound = Rewind::new(bytes::Bytes::from_static(b"GET / HT"), client);
        server.write_all(b"TP/1.1\r\n").await.unwrap();
        let mut first = [0u8; 3];
        rewound.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"GET");
        let mut rest = [0u8; 12];
        rewound.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b" / HTTP/1.1\r");
        rewound.write_all(b"ok").await.unwrap();
        let mut answer = [0u8; 2];
        server.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"ok");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_is_not_cut_off() {
        let (client, mut server) = tokio::io::duplex(1024);
        let reader = tokio::spawn(async move {
            let mut total = 0;
            let mut buffer = [0u8; 1024];
            while total < 8 << 10 {
                tokio::time::sleep(Duration::from_secs(4)).await;
                total += server.read(&mut buffer).await.unwrap();
            }
            total
        });
        let mut guarded = StallGuard::new(client, Some(Duration::from_secs(5)));
        guarded.write_all(&[7; 8 << 10]).await.unwrap();
        assert_eq!(reader.await.unwrap(), 8 << 10);
    }
}
