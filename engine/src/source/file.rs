//! `FileSource`: reads a file into recycled buffers, from the page cache on
//! the stream's own task while the data is there, and with plain blocking
//! reads on a thread of its own, a bounded number of chunks ahead, when it
//! is not.
//!
//! On Linux a regular file is read with `preadv2(RWF_NOWAIT)`, which copies
//! what the page cache holds and refuses (`EAGAIN`) instead of waiting for
//! the disk. A refusal hands the file to the reader thread at that offset;
//! the thread reads ahead in batches, and hands the file back once a whole
//! batch came from the page cache again. Pipes, FIFOs, sockets and
//! terminals are read by readiness, with no thread (`ready.rs`). Elsewhere,
//! and for devices, the thread reads everything.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};
use std::thread;

use bytes::Bytes;
use futures_util::Stream;

use super::ready::{Ready, Registered};

/// Chunks are handed from the reader to the stream in batches of about
/// this many bytes (see [`batch_chunks`]).
const BATCH_BYTES: usize = 512 * 1024;
/// Chunks per batch, at most.
const MAX_BATCH: usize = 8;
/// Handed-over chunks the stream has not taken yet, at most, in batches.
const SLOT_BATCHES: usize = 2;
/// Spare buffers kept for reuse, beyond the batches in the pipeline.
const POOL_SLACK: usize = 4;
/// Larger chunks are never read on the stream's task: copying one from the
/// page cache would hold the runtime's thread for more than ~100 us.
const INLINE_MAX_CHUNK: usize = 1 << 20;

/// Chunks per batch: 512 KiB worth, between 1 and 8 chunks.
fn batch_chunks(chunk_size: usize) -> usize {
    (BATCH_BYTES / chunk_size).clamp(1, MAX_BATCH)
}

/// Buffers start on a cache-line boundary: the kernel copies from the
/// page cache measurably faster (~8% here) into an aligned destination than
/// into the 16-byte alignment the allocator usually gives.
const ALIGN: usize = 64;

/// A chunk-sized window of a heap buffer that starts on an [`ALIGN`]
/// boundary.
#[derive(Debug)]
pub(super) struct Buffer {
    storage: Vec<u8>,
    start: usize,
    size: usize,
}

impl Buffer {
    fn new(size: usize) -> Self {
        let storage = vec![0; size + ALIGN - 1];
        let start = storage.as_ptr().align_offset(ALIGN);
        Self {
            start: if start < ALIGN { start } else { 0 },
            storage,
            size,
        }
    }

    pub(super) fn window(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.size]
    }

    fn as_slice(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.size]
    }
}

/// Buffers that come back when the last `Bytes` over them is dropped, so
/// that steady-state reads neither allocate nor zero memory.
#[derive(Debug)]
pub(super) struct Pool {
    spare: Mutex<Vec<Buffer>>,
    keep: usize,
    size: usize,
}

impl Pool {
    pub(super) fn take(&self) -> Buffer {
        let spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner).pop();
        spare.unwrap_or_else(|| Buffer::new(self.size))
    }

    pub(super) fn give(&self, buffer: Buffer) {
        let mut spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner);
        if spare.len() < self.keep {
            spare.push(buffer);
        }
    }

    /// The first `len` bytes of `buffer`, as `Bytes` that return the buffer
    /// here when dropped.
    pub(super) fn wrap(self: &Arc<Self>, buffer: Buffer, len: usize) -> Bytes {
        let owner = Recycled {
            buffer: Some(buffer),
            pool: Arc::clone(self),
        };
        Bytes::from_owner(owner).slice(..len)
    }
}

/// Owner of a pooled buffer inside a `Bytes`; returns it to the pool on drop.
struct Recycled {
    /// Always `Some` until dropped.
    buffer: Option<Buffer>,
    pool: Arc<Pool>,
}

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref().map_or(&[], Buffer::as_slice)
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            self.pool.give(buffer);
        }
    }
}

/// Where reads happen: at the file's own position (pipes, devices, and
/// every file off Linux), or at offsets the source keeps (regular files on
/// Linux), which lets the stream and the thread take turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cursor {
    Stream,
    At(u64),
}

/// The hand-over between the reader thread and the stream.
#[derive(Debug, Default)]
struct State {
    /// The stream asks the thread to read from this offset on.
    request: Option<u64>,
    /// Batches read and not yet taken, in file order; an error is last.
    slot: VecDeque<io::Result<Bytes>>,
    /// The thread hands the file back: the stream reads on from here once
    /// it has taken the slot's batches.
    resume_at: Option<u64>,
    /// The consumer's waker while it waits for a batch.
    consumer: Option<Waker>,
    /// The reader is waiting for room in the slot or for a request.
    reader_waiting: bool,
    /// The reader has handed over its last item (end of file or an error).
    finished: bool,
    /// The stream is gone: the reader stops.
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// The reader waits here, for room in the slot or for a request.
    reader: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the reader thread needs.
#[derive(Debug)]
struct Reader {
    file: Arc<File>,
    pool: Arc<Pool>,
    shared: Arc<Shared>,
    batch: usize,
    /// Whether the thread may hand the file back to the stream.
    hand_back: bool,
}

/// A file as a source: chunks of at most `chunk_size` bytes, in order.
///
/// On Linux, a regular file is read straight from the page cache on the
/// stream's own task (`preadv2` with `RWF_NOWAIT`, for chunks up to 1 MiB):
/// no thread hop and no wake-up per chunk, which is what lets the engine
/// keep up with a plain read loop over a cached file. A read that would
/// wait for the disk is refused by the kernel instead; the source then
/// starts (or wakes) its reader thread at that offset, which reads with
/// plain blocking reads, a bounded number of chunks ahead, handing chunks
/// over in batches (512 KiB worth, between 1 and 8 chunks) through a slot
/// that holds up to two batches. When a whole batch came from the page
/// cache again, the thread hands the file back to the stream.
///
/// Pipes, FIFOs, sockets and terminals (on Linux) are read without a thread:
/// the descriptor is switched to `O_NONBLOCK` and read when Tokio's I/O
/// driver reports it readable, one chunk per read, handed over as soon as it
/// is read. Cancelling or dropping such a source therefore never waits for
/// a silent writer: the drop deregisters the descriptor, restores its
/// flags (the file description may be shared, a terminal for one) and
/// closes it. When readiness is unavailable (a runtime without the I/O
/// driver, or a device epoll refuses such as `/dev/zero`, whose reads never
/// wait anyway), and for every file on other systems, the reader thread
/// reads with blocking reads.
///
/// Buffers are recycled: steady-state reads neither allocate nor zero
/// memory. Dropping the source stops the reader thread, if it has one, and
/// waits for it (at most one read, of a regular file or a device), so the
/// file is closed and the thread gone when the drop returns.
#[derive(Debug)]
pub struct FileSource {
    reader: Arc<Reader>,
    /// Inline reads: the offset of the next one while the stream reads the
    /// page cache itself.
    inline: Option<u64>,
    /// The end of the input or an error was yielded.
    done: bool,
    /// The batch being yielded.
    local: VecDeque<io::Result<Bytes>>,
    /// The reader thread, once started (at the first refusal, or at once
    /// when the thread reads everything).
    thread: Option<thread::JoinHandle<()>>,
    /// A pipe, FIFO, socket or terminal read by readiness, with no thread
    /// (Linux; until the first poll finds no I/O driver to register with).
    ready: Option<Ready>,
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
    /// A regular file on Linux is read at offsets, so its own position does
    /// not move (a duplicated descriptor shares that position).
    ///
    /// # Errors
    ///
    /// When `chunk_size` is zero, the position of a regular file cannot be
    /// read, or the reader thread cannot be started.
    pub fn from_std(mut file: File, chunk_size: usize) -> io::Result<Self> {
        if chunk_size == 0 {
            return Err(zero_chunk_size());
        }
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        let cursor = if regular && cfg!(target_os = "linux") {
            Cursor::At(io::Seek::stream_position(&mut file)?)
        } else {
            Cursor::Stream
        };
        let batch = if regular { batch_chunks(chunk_size) } else { 1 };
        let inline_allowed = sys::CAN_READ_CACHED && matches!(cursor, Cursor::At(_)) && chunk_size <= INLINE_MAX_CHUNK;
        let reader = Arc::new(Reader {
            file: Arc::new(file),
            pool: Arc::new(Pool {
                spare: Mutex::new(Vec::new()),
                keep: (2 * SLOT_BATCHES + 1) * batch + POOL_SLACK,
                size: chunk_size,
            }),
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                reader: Condvar::new(),
            }),
            batch,
            hand_back: inline_allowed,
        });
        let ready = if regular { None } else { Ready::new(&reader.file) };
        let mut source = Self {
            reader,
            inline: None,
            done: false,
            local: VecDeque::new(),
            thread: None,
            ready,
        };
        match cursor {
            Cursor::At(offset) if inline_allowed => source.inline = Some(offset),
            // Read by readiness, from the first poll on.
            _ if source.ready.is_some() => {}
            // The thread reads everything: start it now, reading ahead.
            _ => source.start_thread(cursor)?,
        }
        Ok(source)
    }

    /// Starts the reader thread (once) or asks the running one to read on
    /// from `cursor`.
    fn start_thread(&mut self, cursor: Cursor) -> io::Result<()> {
        if let Cursor::At(offset) = cursor {
            self.reader.shared.lock().request = Some(offset);
            self.reader.shared.reader.notify_one();
        }
        if self.thread.is_none() {
            let reader = Arc::clone(&self.reader);
            let thread = thread::Builder::new()
                .name("weir-file-source".to_owned())
                .spawn(move || reader.run(cursor))?;
            self.thread = Some(thread);
        }
        Ok(())
    }

    /// One read from the page cache at `offset`: `None` when the data is
    /// not there (the thread takes over).
    fn read_inline(&mut self, offset: u64) -> Option<io::Result<Bytes>> {
        let mut buffer = self.reader.pool.take();
        match sys::read_cached(&self.reader.file, buffer.window(), offset) {
            Ok(Some(0)) => {
                self.reader.pool.give(buffer);
                self.done = true;
                None
            }
            Ok(Some(n)) => {
                self.inline = Some(offset + n as u64);
                Some(Ok(self.reader.pool.wrap(buffer, n)))
            }
            Ok(None) => {
                self.reader.pool.give(buffer);
                None
            }
            Err(error) => {
                self.reader.pool.give(buffer);
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

fn zero_chunk_size() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "file source chunk size must be at least 1 byte, got 0",
    )
}

impl Reader {
    /// The thread. Reading at the file's own position, it reads to the end.
    /// Reading at offsets, it waits for the stream to ask for an offset,
    /// reads from there until it hands the file back, and waits again; until
    /// the end, an error, or the stream is dropped.
    fn run(&self, cursor: Cursor) {
        if cursor == Cursor::Stream {
            self.read_ahead(cursor);
            return;
        }
        loop {
            let mut state = self.shared.lock();
            while !state.closed && state.request.is_none() {
                state.reader_waiting = true;
                state = self.shared.reader.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
            let requested = match state.request.take() {
                Some(offset) if !state.closed => offset,
                _ => return,
            };
            drop(state);
            if !self.read_ahead(Cursor::At(requested)) {
                return;
            }
        }
    }

    /// Reads batches from `cursor` and hands them over. Returns `true` when
    /// it handed the file back to the stream, `false` once it is done.
    fn read_ahead(&self, mut cursor: Cursor) -> bool {
        let mut filling = VecDeque::with_capacity(self.batch);
        // Whether every read of the batch so far came from the page cache.
        let mut cached = self.hand_back;
        loop {
            let mut buffer = self.pool.take();
            let read = match cursor {
                Cursor::Stream => read_retrying(|| (&*self.file).read(buffer.window())),
                Cursor::At(offset) => {
                    let cached_read = if cached {
                        sys::read_cached(&self.file, buffer.window(), offset)
                    } else {
                        Ok(None)
                    };
                    match cached_read {
                        Ok(Some(n)) => Ok(n),
                        Ok(None) => {
                            cached = false;
                            read_retrying(|| sys::read_at(&self.file, buffer.window(), offset))
                        }
                        Err(error) => Err(error),
                    }
                }
            };
            let last = match read {
                Ok(0) => {
                    self.pool.give(buffer);
                    true
                }
                Ok(n) => {
                    if let Cursor::At(offset) = &mut cursor {
                        *offset += n as u64;
                    }
                    filling.push_back(Ok(self.pool.wrap(buffer, n)));
                    false
                }
                Err(error) => {
                    self.pool.give(buffer);
                    filling.push_back(Err(error));
                    true
                }
            };
            if !last && filling.len() < self.batch {
                continue;
            }
            // A whole batch from the page cache: the stream reads on.
            let hand_back = match cursor {
                Cursor::At(offset) if !last && cached => Some(offset),
                _ => None,
            };

            let mut state = self.shared.lock();
            while !state.closed && state.slot.len() + filling.len() > SLOT_BATCHES * self.batch {
                state.reader_waiting = true;
                state = self.shared.reader.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
            if state.closed {
                return false;
            }
            if state.slot.is_empty() {
                // Swap so that both queues keep their capacity.
                std::mem::swap(&mut state.slot, &mut filling);
            } else {
                state.slot.append(&mut filling);
            }
            state.finished = last;
            state.resume_at = hand_back;
            // A waiting consumer is woken once the slot holds a batch (or at
            // the end, or at a hand-back): with room for another, the reader
            // reads on while it wakes up.
            let wake = last || hand_back.is_some() || state.slot.len() >= self.batch;
            let waker = if wake { state.consumer.take() } else { None };
            drop(state);
            if let Some(waker) = waker {
                waker.wake();
            }
            if last {
                return false;
            }
            if hand_back.is_some() {
                return true;
            }
            cached = self.hand_back;
        }
    }
}

fn read_retrying(mut read: impl FnMut() -> io::Result<usize>) -> io::Result<usize> {
    loop {
        match read() {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

impl Stream for FileSource {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(ready) = &mut this.ready {
            if this.done {
                return Poll::Ready(None);
            }
            match ready.register() {
                Registered::Yes => {
                    let read = ready!(ready.poll_read(cx, &this.reader.pool));
                    return Poll::Ready(match read {
                        Ok(Some(chunk)) => Some(Ok(chunk)),
                        Ok(None) => {
                            this.done = true;
                            None
                        }
                        Err(error) => {
                            this.done = true;
                            Some(Err(error))
                        }
                    });
                }
                Registered::No => {
                    this.ready = None;
                    if let Err(error) = this.start_thread(Cursor::Stream) {
                        this.done = true;
                        return Poll::Ready(Some(Err(error)));
                    }
                }
            }
        }
        loop {
            if let Some(item) = this.local.pop_front() {
                return Poll::Ready(Some(item));
            }
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(offset) = this.inline {
                if let Some(item) = this.read_inline(offset) {
                    return Poll::Ready(Some(item));
                }
                if this.done {
                    return Poll::Ready(None);
                }
                // Not in the page cache: the thread reads from here.
                this.inline = None;
                if let Err(error) = this.start_thread(Cursor::At(offset)) {
                    this.done = true;
                    return Poll::Ready(Some(Err(error)));
                }
            }
            let mut state = this.reader.shared.lock();
            if !state.slot.is_empty() {
                std::mem::swap(&mut state.slot, &mut this.local);
                let notify = std::mem::take(&mut state.reader_waiting);
                drop(state);
                if notify {
                    this.reader.shared.reader.notify_one();
                }
                continue;
            }
            if let Some(offset) = state.resume_at.take() {
                // The thread handed the file back.
                this.inline = Some(offset);
                continue;
            }
            if state.finished {
                drop(state);
                this.done = true;
                return Poll::Ready(None);
            }
            match &mut state.consumer {
                Some(waker) => waker.clone_from(cx.waker()),
                slot @ None => *slot = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
    }
}

impl Drop for FileSource {
    fn drop(&mut self) {
        // Deregisters and restores the flags; nothing to wait for.
        self.ready = None;
        self.local.clear();
        {
            let mut state = self.reader.shared.lock();
            state.closed = true;
            state.slot.clear();
            state.consumer = None;
        }
        self.reader.shared.reader.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The system calls: reads from the page cache only, and positional reads.
#[cfg(target_os = "linux")]
mod sys {
    use std::fs::File;
    use std::io::{self, IoSliceMut};
    use std::os::unix::fs::FileExt as _;

    use rustix::io::{Errno, ReadWriteFlags};

    /// Whether [`read_cached`] can ever return data.
    pub(super) const CAN_READ_CACHED: bool = true;

    /// Reads what the page cache holds at `offset`, up to `buffer.len()`
    /// bytes: `Ok(None)` when that would wait for the disk, or when the
    /// file system cannot tell (the blocking read then decides).
    pub(super) fn read_cached(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<Option<usize>> {
        loop {
            match rustix::io::preadv2(file, &mut [IoSliceMut::new(buffer)], offset, ReadWriteFlags::NOWAIT) {
                Ok(n) => return Ok(Some(n)),
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN | Errno::OPNOTSUPP | Errno::NOSYS | Errno::INVAL) => return Ok(None),
                Err(errno) => return Err(errno.into()),
            }
        }
    }

    pub(super) fn read_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
        file.read_at(buffer, offset)
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::fs::File;
    use std::io;

    pub(super) const CAN_READ_CACHED: bool = false;

    pub(super) fn read_cached(_: &File, _: &mut [u8], _: u64) -> io::Result<Option<usize>> {
        Ok(None)
    }

    /// Never called: off Linux every file is read at its own position.
    pub(super) fn read_at(_: &File, _: &mut [u8], _: u64) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
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

    /// A file of `len` bytes that differ from their neighbours.
    fn test_file(len: usize) -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        (dir, path, data)
    }

    async fn read_all(source: &mut FileSource) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(chunk) = source.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    }

    #[tokio::test(flavor = "current_thread")]
    async fn dropping_a_stalled_source_stops_its_reader() {
        let (_dir, path, _) = test_file(16 << 20);
        // Chunks above the inline limit: the thread reads ahead and stalls
        // once the slot is full.
        let mut source = FileSource::open(&path, INLINE_MAX_CHUNK * 2).unwrap();
        assert!(source.inline.is_none());
        assert_eq!(source.next().await.unwrap().unwrap().len(), INLINE_MAX_CHUNK * 2);
        drop(source);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn hand_overs_between_stream_and_thread_keep_every_byte_in_order() {
        let (_dir, path, data) = test_file(3 << 20);
        let mut source = FileSource::open(&path, 4096).unwrap();
        assert!(source.inline.is_some() || !sys::CAN_READ_CACHED);
        let mut out = Vec::new();
        let mut hand_overs = 0;
        let mut handed_back = 0;
        while let Some(chunk) = source.next().await {
            out.extend_from_slice(&chunk.unwrap());
            // Every 64 chunks, act as if the page cache refused a read.
            if out.len() % (64 * 4096) == 0
                && let Some(offset) = source.inline.take()
            {
                hand_overs += 1;
                source.start_thread(Cursor::At(offset)).unwrap();
            } else if source.inline.is_some() && hand_overs > handed_back {
                handed_back += 1;
            }
        }
        assert_eq!(out.len(), data.len());
        assert!(out == data, "the bytes differ from the file's");
        if sys::CAN_READ_CACHED {
            assert!(hand_overs >= 3, "{hand_overs} hand-overs");
            // The file was just written: the thread finds it cached.
            assert!(handed_back >= 1, "the thread never handed the file back");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn large_chunks_are_read_by_the_thread() {
        let (_dir, path, data) = test_file((5 << 20) + 17);
        let mut source = FileSource::open(&path, INLINE_MAX_CHUNK + 1).unwrap();
        assert!(source.inline.is_none());
        assert!(read_all(&mut source).await == data);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn from_std_starts_at_the_current_position() {
        use std::io::{Seek, SeekFrom};
        let (_dir, path, data) = test_file(100_000);
        let mut file = File::open(&path).unwrap();
        file.seek(SeekFrom::Start(1_000)).unwrap();
        let mut source = FileSource::from_std(file, 4096).unwrap();
        assert!(read_all(&mut source).await == data[1_000..]);
    }

    #[test]
    fn buffers_are_aligned_windows_of_the_chunk_size() {
        for size in [1, 100, 4096, 65_536] {
            let mut buffer = Buffer::new(size);
            let window = buffer.window();
            assert_eq!(window.len(), size);
            assert_eq!(window.as_ptr().align_offset(ALIGN), 0);
        }
    }
}
