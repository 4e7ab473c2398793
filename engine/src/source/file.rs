//! `FileSource`: reads a file with plain blocking reads on a thread of its
//! own, into recycled buffers, a bounded number of chunks ahead.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::thread;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;

/// Chunks read ahead of the consumer, besides the one being read.
const READ_AHEAD: usize = 2;
/// Spare buffers kept for reuse.
const POOL_SIZE: usize = READ_AHEAD + 6;

/// Buffers that come back when the last `Bytes` over them is dropped, so
/// that steady-state reads neither allocate nor zero memory.
#[derive(Debug, Default)]
struct Pool {
    spare: Mutex<Vec<Vec<u8>>>,
}

impl Pool {
    fn take(&self, size: usize) -> Vec<u8> {
        let spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner).pop();
        spare.unwrap_or_else(|| vec![0; size])
    }

    fn give(&self, buffer: Vec<u8>) {
        let mut spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner);
        if spare.len() < POOL_SIZE {
            spare.push(buffer);
        }
    }
}

/// Owner of a pooled buffer inside a `Bytes`; returns it to the pool on drop.
struct Recycled {
    buffer: Vec<u8>,
    pool: Arc<Pool>,
}

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buffer));
    }
}

/// A file as a source: chunks of at most `chunk_size` bytes, read by a
/// thread the source owns, at most two chunks ahead of the consumer.
///
/// Dropping the source stops the reader and waits for it (at most one read),
/// so the file is closed when the drop returns.
#[derive(Debug)]
pub struct FileSource {
    chunks: mpsc::Receiver<io::Result<Bytes>>,
    reader: Option<thread::JoinHandle<()>>,
}

impl FileSource {
    /// Opens `path` and starts reading it.
    ///
    /// # Errors
    ///
    /// When `chunk_size` is zero, the file cannot be opened, or the reader
    /// thread cannot be started.
    pub fn open(path: impl AsRef<Path>, chunk_size: usize) -> io::Result<Self> {
        if chunk_size == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "file source chunk size must be at least 1 byte, got 0",
            ));
        }
        Self::from_std(File::open(path)?, chunk_size)
    }

    /// Reads an already open file from its current position.
    ///
    /// # Errors
    ///
    /// When `chunk_size` is zero or the reader thread cannot be started.
    pub fn from_std(file: File, chunk_size: usize) -> io::Result<Self> {
        if chunk_size == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "file source chunk size must be at least 1 byte, got 0",
            ));
        }
        let (sender, chunks) = mpsc::channel(READ_AHEAD);
        let reader = thread::Builder::new()
            .name("weir-file-source".to_owned())
            .spawn(move || read_loop(file, chunk_size, &sender))?;
        Ok(Self {
            chunks,
            reader: Some(reader),
        })
    }
}

fn read_loop(mut file: File, chunk_size: usize, sender: &mpsc::Sender<io::Result<Bytes>>) {
    let pool = Arc::new(Pool::default());
    loop {
        let mut buffer = pool.take(chunk_size);
        let read = loop {
            match file.read(&mut buffer) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let item = match read {
            Ok(0) => return,
            Ok(n) => Ok(Bytes::from_owner(Recycled {
                buffer,
                pool: Arc::clone(&pool),
            })
            .slice(..n)),
            Err(error) => Err(error),
        };
        let failed = item.is_err();
        if sender.blocking_send(item).is_err() || failed {
            return;
        }
    }
}

impl Stream for FileSource {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.chunks.poll_recv(cx)
    }
}

impl Drop for FileSource {
    fn drop(&mut self) {
        self.chunks.close();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}
