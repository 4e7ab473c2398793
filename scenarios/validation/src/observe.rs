//! What a row observes: the sink's calls (counted by the test kit's
//! recorder), a source wrapper noticing its drop, the TCP peer that notices the close,
//! descriptors open on a path, temporary files, and a minimal executor for
//! polling `ingest` outside any runtime.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use bytes::Bytes;
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_testkit::Recorder;

/// A snapshot of what a row's sink saw, counted by the test kit's
/// recorder ([`weir_testkit::Recorded`] over the row's sink).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallCounts {
    /// `write` calls.
    pub writes: u64,
    /// `finalize` calls.
    pub finalizes: u64,
    /// `finalize` calls that returned `Ok`.
    pub finalized_ok: u64,
    /// `abort` calls.
    pub aborts: u64,
}

impl CallCounts {
    /// The counts `recorder` holds now.
    pub fn of(recorder: &Recorder) -> Self {
        let counts = recorder.counts();
        Self {
            writes: counts.writes_called,
            finalizes: counts.finalizes,
            finalized_ok: counts.finalized_ok,
            aborts: counts.aborts,
        }
    }
}

/// A source that records when it is dropped.
#[derive(Debug)]
pub struct DropWatched<S> {
    inner: S,
    dropped: Arc<AtomicBool>,
}

impl<S> DropWatched<S> {
    /// Wraps `inner`; the flag turns `true` when the wrapper is dropped.
    pub fn new(inner: S) -> (Self, Arc<AtomicBool>) {
        let dropped = Arc::new(AtomicBool::new(false));
        (
            Self {
                inner,
                dropped: Arc::clone(&dropped),
            },
            dropped,
        )
    }
}

impl<S: Stream + Unpin> Stream for DropWatched<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

impl<S> Drop for DropWatched<S> {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

/// What the TCP peer saw after sending its upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerSaw {
    /// The server closed its side: the read returned 0.
    Eof,
    /// The server closed with unread data, which resets the connection.
    Reset,
    /// The server sent bytes (it never should).
    Data,
    /// Nothing within the wait: the connection is still open (a leak).
    StillOpen,
    /// The peer failed before it could tell.
    Failed,
}

impl PeerSaw {
    /// `true` when the server's side is closed.
    pub fn closed(self) -> bool {
        matches!(self, Self::Eof | Self::Reset)
    }
}

/// The client of a TCP row: connects, sends `body`, closes its write side,
/// then reads until the server closes.
pub async fn peer(address: SocketAddr, body: Bytes) -> PeerSaw {
    let Ok(mut stream) = TcpStream::connect(address).await else {
        return PeerSaw::Failed;
    };
    // The server may close without reading: a failed write is expected.
    if stream.write_all(&body).await.is_ok() {
        let _ = stream.shutdown().await;
    }
    let mut buffer = [0u8; 64];
    match stream.read(&mut buffer).await {
        Ok(0) => PeerSaw::Eof,
        Ok(_) => PeerSaw::Data,
        Err(error) if error.kind() == io::ErrorKind::ConnectionReset => PeerSaw::Reset,
        Err(_) => PeerSaw::Failed,
    }
}

/// Descriptors of this process open on `path`.
pub fn fds_on(path: &Path) -> usize {
    let Ok(canonical) = path.canonicalize() else {
        return 0;
    };
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| {
        dir.filter_map(Result::ok)
            .filter_map(|entry| std::fs::read_link(entry.path()).ok())
            .filter(|target| *target == canonical)
            .count()
    })
}

/// Every file under `dir` (recursively), as paths relative to it.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap_or(&path);
                found.push(relative.display().to_string());
            }
        }
    }
    found.sort();
    found
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` to completion on this thread, parking between polls: a
/// plain executor with no Tokio runtime, to show what `ingest` does
/// outside one.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        thread::park();
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    #[test]
    fn block_on_runs_futures_woken_from_other_threads() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sender = thread::spawn(move || {
            thread::sleep(std::time::Duration::from_millis(10));
            tx.send(7).unwrap();
        });
        assert_eq!(block_on(rx).unwrap(), 7);
        sender.join().unwrap();
    }

    #[test]
    fn descriptors_on_a_path_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        std::fs::write(&path, b"x").unwrap();
        assert_eq!(fds_on(&path), 0);
        let file = std::fs::File::open(&path).unwrap();
        assert_eq!(fds_on(&path), 1);
        drop(file);
        assert_eq!(fds_on(&path), 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_dropped_source_is_noticed() {
        let (mut source, dropped) = DropWatched::new(futures_util::stream::iter([1, 2]));
        assert_eq!(source.next().await, Some(1));
        assert!(!dropped.load(Ordering::SeqCst));
        drop(source);
        assert!(dropped.load(Ordering::SeqCst));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_peer_sees_the_server_close() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = tokio::spawn(peer(listener.local_addr().unwrap(), Bytes::from_static(b"hello")));
        let (mut server, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hello");
        drop(server);
        assert_eq!(peer.await.unwrap(), PeerSaw::Eof);
    }
}
