//! `FileSource`: reads a file with plain blocking reads on a thread of its
//! own, into recycled buffers, a bounded number of chunks ahead, handing
//! chunks over in batches so that neither side locks or wakes the other per
//! chunk.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread;

use bytes::Bytes;
use futures_util::Stream;

/// Chunks are handed from the reader to the stream in batches of about
/// this many bytes (see [`batch_chunks`]).
const BATCH_BYTES: usize = 512 * 1024;
/// Chunks per batch, at most.
const MAX_BATCH: usize = 8;
/// Handed-over chunks the stream has not taken yet, at most, in batches.
const SLOT_BATCHES: usize = 2;
/// Spare buffers kept for reuse, beyond the batches in the pipeline.
const POOL_SLACK: usize = 4;

/// Chunks per batch: 512 KiB worth, between 1 and 8 chunks.
fn batch_chunks(chunk_size: usize) -> usize {
    (BATCH_BYTES / chunk_size).clamp(1, MAX_BATCH)
}

/// Buffers that come back when the last `Bytes` over them is dropped, so
/// that steady-state reads neither allocate nor zero memory.
#[derive(Debug)]
struct Pool {
    spare: Mutex<Vec<Vec<u8>>>,
    keep: usize,
}

impl Pool {
    fn take(&self, size: usize) -> Vec<u8> {
        let spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner).pop();
        spare.unwrap_or_else(|| vec![0; size])
    }

    fn give(&self, buffer: Vec<u8>) {
        let mut spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner);
        if spare.len() < self.keep {
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

/// The hand-over between the reader thread and the stream: a slot that
/// holds at most `SLOT_BATCHES` batches.
#[derive(Debug, Default)]
struct State {
    /// Batches read and not yet taken, in file order; an error is last.
    slot: VecDeque<io::Result<Bytes>>,
    /// The consumer's waker while it waits for a batch.
    consumer: Option<Waker>,
    /// The reader is waiting for room in the slot.
    reader_waiting: bool,
    /// The reader has handed over its last item (end of file or an error).
    finished: bool,
    /// The stream is gone: the reader stops.
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    room: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A file as a source: chunks of at most `chunk_size` bytes, read by a
/// thread the source owns, a bounded number of chunks ahead of the consumer.
///
/// Reading a regular file, the reader hands chunks over in batches (512 KiB
/// worth, between 1 and 8 chunks) through a slot that holds up to two
/// batches: while the stream yields what it last took (at most two
/// batches), the reader fills the next one, so at most five batches are read
/// ahead. Neither side locks, or wakes the other, per chunk: a waiting
/// stream is woken once the slot holds a batch (the reader reads on while it
/// wakes up), a waiting reader once the stream empties the slot. Reading
/// anything else (a pipe, a device), where a read may wait indefinitely for
/// data, every chunk is its own batch, handed over as soon as it is read.
///
/// Dropping the source stops the reader and waits for it (at most one read),
/// so the file is closed when the drop returns.
#[derive(Debug)]
pub struct FileSource {
    shared: Arc<Shared>,
    /// The batch being yielded.
    local: VecDeque<io::Result<Bytes>>,
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
            return Err(zero_chunk_size());
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
            return Err(zero_chunk_size());
        }
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        let batch = if regular { batch_chunks(chunk_size) } else { 1 };
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            room: Condvar::new(),
        });
        let reader_shared = Arc::clone(&shared);
        let reader = thread::Builder::new()
            .name("weir-file-source".to_owned())
            .spawn(move || read_loop(file, chunk_size, batch, &reader_shared))?;
        Ok(Self {
            shared,
            local: VecDeque::new(),
            reader: Some(reader),
        })
    }
}

fn zero_chunk_size() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "file source chunk size must be at least 1 byte, got 0",
    )
}

fn read_loop(mut file: File, chunk_size: usize, batch: usize, shared: &Shared) {
    let pool = Arc::new(Pool {
        spare: Mutex::new(Vec::new()),
        keep: (2 * SLOT_BATCHES + 1) * batch + POOL_SLACK,
    });
    let mut filling = VecDeque::with_capacity(batch);
    loop {
        let mut buffer = pool.take(chunk_size);
        let read = loop {
            match file.read(&mut buffer) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let last = match read {
            Ok(0) => true,
            Ok(n) => {
                let owner = Recycled {
                    buffer,
                    pool: Arc::clone(&pool),
                };
                filling.push_back(Ok(Bytes::from_owner(owner).slice(..n)));
                false
            }
            Err(error) => {
                filling.push_back(Err(error));
                true
            }
        };
        if !last && filling.len() < batch {
            continue;
        }

        let mut state = shared.lock();
        while !state.closed && state.slot.len() + filling.len() > SLOT_BATCHES * batch {
            state.reader_waiting = true;
            state = shared.room.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        if state.closed {
            return;
        }
        if state.slot.is_empty() {
            // Swap so that both queues keep their capacity.
            std::mem::swap(&mut state.slot, &mut filling);
        } else {
            state.slot.append(&mut filling);
        }
        state.finished = last;
        // A waiting consumer is woken once the slot holds a batch (or at the
        // end): with room for another, the reader reads on while it wakes up.
        let wake = last || state.slot.len() >= batch;
        let waker = if wake { state.consumer.take() } else { None };
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        if last {
            return;
        }
    }
}

impl Stream for FileSource {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(item) = this.local.pop_front() {
            return Poll::Ready(Some(item));
        }
        let mut state = this.shared.lock();
        if !state.slot.is_empty() {
            std::mem::swap(&mut state.slot, &mut this.local);
            let notify = std::mem::take(&mut state.reader_waiting);
            drop(state);
            if notify {
                this.shared.room.notify_one();
            }
            return Poll::Ready(this.local.pop_front());
        }
        if state.finished {
            return Poll::Ready(None);
        }
        match &mut state.consumer {
            Some(waker) => waker.clone_from(cx.waker()),
            slot @ None => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for FileSource {
    fn drop(&mut self) {
        self.local.clear();
        {
            let mut state = self.shared.lock();
            state.closed = true;
            state.slot.clear();
            state.consumer = None;
        }
        self.shared.room.notify_all();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[test]
    fn batches_are_bounded_in_chunks_and_bytes() {
        assert_eq!(batch_chunks(1), MAX_BATCH);
        assert_eq!(batch_chunks(64 * 1024), 8);
        assert_eq!(batch_chunks(256 * 1024), 2);
        assert_eq!(batch_chunks(256 << 20), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_pipe_is_handed_over_chunk_by_chunk() {
        let (reader, mut writer) = io::pipe().unwrap();
        let mut source = FileSource::from_std(File::from(std::os::fd::OwnedFd::from(reader)), 4).unwrap();
        std::io::Write::write_all(&mut writer, b"abcd").unwrap();
        // The writer stays open: a batching reader would wait for more.
        assert_eq!(source.next().await.unwrap().unwrap(), Bytes::from_static(b"abcd"));
        drop(writer);
        assert!(source.next().await.is_none());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn dropping_a_stalled_source_stops_its_reader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        std::fs::write(&path, vec![1u8; 1 << 20]).unwrap();
        let mut source = FileSource::open(&path, 1024).unwrap();
        assert_eq!(source.next().await.unwrap().unwrap().len(), 1024);
        // The reader is now waiting for room; dropping must not hang.
        drop(source);
    }
}
