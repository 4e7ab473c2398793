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
use std::ops::Range;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};
use std::thread;

use bytes::Bytes;
use futures_util::Stream;

use super::pool::BufferPool;
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
    pool: Arc<BufferPool>,
    shared: Arc<Shared>,
    batch: usize,
    /// Whether the thread may hand the file back to the stream.
    hand_back: bool,
    /// Bytes per read, at most (no more than the pool's buffer size).
    chunk: usize,
    /// Reads at offsets stop here (the end of a byte range).
    end: Option<u64>,
}

impl Reader {
    /// Bytes to ask for at `offset`: a whole chunk, or what is left of the
    /// range (zero at its end).
    fn want(&self, offset: u64) -> usize {
        let size = self.chunk;
        match self.end {
            Some(end) => usize::try_from(end.saturating_sub(offset)).map_or(size, |left| left.min(size)),
            None => size,
        }
    }
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
///
/// [`FileSource::builder`] reads a byte range of a regular file
/// ([`range`](FileSourceBuilder::range)), into a [`BufferPool`] shared with
/// other sources ([`pool`](FileSourceBuilder::pool)), or only when polled
/// ([`pull`](FileSourceBuilder::pull): one positional read per poll on the
/// polling task, no thread and nothing read ahead), which is what a server
/// with many slow clients wants.
///
/// # Cancel safety
///
/// As a stream it is cancel safe: all its state lives in the struct, so a
/// `next()` future dropped midway loses nothing. Dropping the source ends
/// every read it started before the drop returns.
#[derive(Debug)]
pub struct FileSource {
    reader: Arc<Reader>,
    /// Pull mode: the offset of the next read, made when the stream is
    /// polled, on the polling task.
    pull: Option<u64>,
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

    /// Opens `path` and reads the bytes of `range` (half-open, in bytes
    /// from the start of the file), in chunks of at most `chunk_size`
    /// bytes. The stream ends at the end of the range, or earlier at the end
    /// of the file.
    ///
    /// ```
    /// use futures_util::TryStreamExt;
    /// use weir::source::FileSource;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.bin");
    /// std::fs::write(&path, b"0123456789")?;
    /// let chunks: Vec<_> = FileSource::open_range(&path, 2..7, 4)?.try_collect().await?;
    /// assert_eq!(chunks.concat(), b"23456");
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// When `chunk_size` is zero, `range` ends before it starts, the file
    /// cannot be opened or is not a regular file, or the reader thread
    /// cannot be started.
    pub fn open_range(path: impl AsRef<Path>, range: Range<u64>, chunk_size: usize) -> io::Result<Self> {
        if chunk_size == 0 {
            return Err(zero_chunk_size());
        }
        Self::builder(File::open(path)?, chunk_size).range(range).build()
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
    pub fn from_std(file: File, chunk_size: usize) -> io::Result<Self> {
        Self::builder(file, chunk_size).build()
    }

    /// A builder for a source over an open file (owned, or shared with an
    /// `Arc` by several sources, each reading its own range at offsets),
    /// in chunks of at most `chunk_size` bytes. Without a
    /// [`range`](FileSourceBuilder::range) it reads from the file's current
    /// position to its end, as [`from_std`](Self::from_std) does.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use futures_util::TryStreamExt;
    /// use weir::source::{BufferPool, FileSource};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.bin");
    /// std::fs::write(&path, b"0123456789")?;
    /// let file = Arc::new(std::fs::File::open(&path)?);
    /// let pool = Arc::new(BufferPool::new(4, 8)?);
    /// // Reads one chunk per poll, on this task, into the shared pool.
    /// let source = FileSource::builder(Arc::clone(&file), 4)
    ///     .range(5..10)
    ///     .pull()
    ///     .pool(pool)
    ///     .build()?;
    /// let chunks: Vec<_> = source.try_collect().await?;
    /// assert_eq!(chunks, [&b"5678"[..], &b"9"[..]]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(file: impl Into<Arc<File>>, chunk_size: usize) -> FileSourceBuilder {
        FileSourceBuilder {
            file: file.into(),
            chunk_size,
            range: None,
            pull: false,
            pool: None,
        }
    }

    /// One read in pull mode at `position`, on the polling task.
    fn read_pull(&mut self, position: u64) -> Option<io::Result<Bytes>> {
        if self.done {
            return None;
        }
        let want = self.reader.want(position);
        if want == 0 {
            self.done = true;
            return None;
        }
        let mut buffer = self.reader.pool.take();
        match read_retrying(|| sys::read_at(&self.reader.file, buffer.window(want), position)) {
            Ok(0) => {
                self.reader.pool.give(buffer);
                self.done = true;
                None
            }
            Ok(n) => {
                self.pull = Some(position + n as u64);
                Some(Ok(self.reader.pool.wrap(buffer, n)))
            }
            Err(error) => {
                self.reader.pool.give(buffer);
                self.done = true;
                Some(Err(error))
            }
        }
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
        let want = self.reader.want(offset);
        if want == 0 {
            // The end of the range.
            self.done = true;
            return None;
        }
        let mut buffer = self.reader.pool.take();
        match sys::read_cached(&self.reader.file, buffer.window(want), offset) {
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

/// Builds a [`FileSource`]: from [`FileSource::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until built"]
pub struct FileSourceBuilder {
    file: Arc<File>,
    chunk_size: usize,
    range: Option<Range<u64>>,
    pull: bool,
    pool: Option<Arc<BufferPool>>,
}

impl FileSourceBuilder {
    /// Reads only the bytes of `range` (half-open, in bytes from the start
    /// of the file), at offsets: the file's own position is neither used nor
    /// moved, so sources over one shared file can read their ranges at the
    /// same time. The stream ends at the end of the range, or earlier at
    /// the end of the file (a consumer that needs the whole range checks
    /// the count). Regular files only.
    pub fn range(mut self, range: Range<u64>) -> Self {
        self.range = Some(range);
        self
    }

    /// Reads only when polled: each poll makes one positional read of one
    /// chunk on the polling task, with no reader thread and nothing read
    /// ahead, so the source holds no buffer between polls and a consumer
    /// that stops polling pins only the chunks it already holds. A read of
    /// cached pages costs microseconds; on a cold disk it holds the polling
    /// runtime worker for the duration of one read. Regular files only.
    pub fn pull(mut self) -> Self {
        self.pull = true;
        self
    }

    /// Reads into `pool`'s buffers, shared with other sources, instead of a
    /// pool of the source's own. The chunk size must not exceed the pool's
    /// [`buffer_size`](BufferPool::buffer_size).
    pub fn pool(mut self, pool: Arc<BufferPool>) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Builds the source; in read-ahead mode it may start reading (a reader
    /// thread starts at once for files that only it can read).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] when the chunk size is zero or
    /// exceeds the pool's buffer size, when the range ends before it
    /// starts, or when a range or pull mode is asked of a file that is not
    /// a regular file; [`io::ErrorKind::Unsupported`] for a range or pull
    /// mode off Unix; otherwise when the position of a regular file cannot
    /// be read or the reader thread cannot be started.
    pub fn build(self) -> io::Result<FileSource> {
        let Self {
            file,
            chunk_size,
            range,
            pull,
            pool,
        } = self;
        if chunk_size == 0 {
            return Err(zero_chunk_size());
        }
        if let Some(pool) = &pool
            && chunk_size > pool.buffer_size()
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "file source chunk size {chunk_size} exceeds the pool's buffer size {}",
                    pool.buffer_size()
                ),
            ));
        }
        if let Some(range) = &range
            && range.end < range.start
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("file source range {range:?} ends before it starts"),
            ));
        }
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        let positional = range.is_some() || pull;
        if positional && !regular {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "file source ranges and pull mode need a regular file",
            ));
        }
        if positional && !sys::CAN_READ_AT {
            return Err(io::ErrorKind::Unsupported.into());
        }
        let cursor = if regular && (positional || cfg!(target_os = "linux")) {
            match &range {
                Some(range) => Cursor::At(range.start),
                None => Cursor::At(io::Seek::stream_position(&mut &*file)?),
            }
        } else {
            Cursor::Stream
        };
        let batch = if regular { batch_chunks(chunk_size) } else { 1 };
        let inline_allowed = sys::CAN_READ_CACHED && matches!(cursor, Cursor::At(_)) && chunk_size <= INLINE_MAX_CHUNK;
        // Pull mode: one buffer being read, one the consumer holds.
        let keep = if pull {
            2
        } else {
            (2 * SLOT_BATCHES + 1) * batch + POOL_SLACK
        };
        let reader = Arc::new(Reader {
            file,
            pool: pool.unwrap_or_else(|| Arc::new(BufferPool::sized(chunk_size, keep))),
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                reader: Condvar::new(),
            }),
            batch,
            hand_back: inline_allowed,
            chunk: chunk_size,
            end: range.map(|range| range.end),
        });
        let ready = if regular { None } else { Ready::new(&reader.file) };
        let mut source = FileSource {
            reader,
            pull: None,
            inline: None,
            done: false,
            local: VecDeque::new(),
            thread: None,
            ready,
        };
        match cursor {
            Cursor::At(offset) if pull => source.pull = Some(offset),
            Cursor::At(offset) if inline_allowed => source.inline = Some(offset),
            // Read by readiness, from the first poll on.
            _ if source.ready.is_some() => {}
            // The thread reads everything: start it now, reading ahead.
            _ => source.start_thread(cursor)?,
        }
        Ok(source)
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
                Cursor::Stream => read_retrying(|| (&*self.file).read(buffer.window(self.chunk))),
                // The end of the range reads as the end of the file.
                Cursor::At(offset) if self.want(offset) == 0 => Ok(0),
                Cursor::At(offset) => {
                    let want = self.want(offset);
                    let cached_read = if cached {
                        sys::read_cached(&self.file, buffer.window(want), offset)
                    } else {
                        Ok(None)
                    };
                    match cached_read {
                        Ok(Some(n)) => Ok(n),
                        Ok(None) => {
                            cached = false;
                            read_retrying(|| sys::read_at(&self.file, buffer.window(want), offset))
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
        if let Some(position) = this.pull {
            return Poll::Ready(this.read_pull(position));
        }
        if let Some(ready) = &mut this.ready {
            if this.done {
                return Poll::Ready(None);
            }
            match ready.register() {
                Registered::Yes => {
                    let read = ready!(ready.poll_read(cx, &this.reader.pool, this.reader.chunk));
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
    /// Whether [`read_at`] reads.
    pub(super) const CAN_READ_AT: bool = true;

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
    pub(super) const CAN_READ_AT: bool = cfg!(unix);

    pub(super) fn read_cached(_: &File, _: &mut [u8], _: u64) -> io::Result<Option<usize>> {
        Ok(None)
    }

    /// Used by ranges and pull mode only (other files off Linux are read at
    /// their own position).
    #[cfg(unix)]
    pub(super) fn read_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(file, buffer, offset)
    }

    #[cfg(not(unix))]
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
}

#[cfg(test)]
mod range_tests {
    use super::*;
    use futures_util::StreamExt;

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
            let chunk = chunk.unwrap();
            assert!(!chunk.is_empty());
            out.extend_from_slice(&chunk);
        }
        out
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_range_yields_exactly_its_bytes_in_every_mode() {
        let (_dir, path, data) = test_file(300_000);
        let file = Arc::new(File::open(&path).unwrap());
        for (range, chunk) in [
            (0..300_000u64, 65_536),
            (10..11, 4096),
            (299_000..300_000, 333),
            (5_000..70_000, 4096),
        ] {
            let expected = &data[range.start as usize..range.end as usize];
            let mut ahead = FileSource::builder(Arc::clone(&file), chunk)
                .range(range.clone())
                .build()
                .unwrap();
            assert!(read_all(&mut ahead).await == expected, "read-ahead {range:?}");
            let mut pull = FileSource::builder(Arc::clone(&file), chunk)
                .range(range.clone())
                .pull()
                .build()
                .unwrap();
            assert!(read_all(&mut pull).await == expected, "pull {range:?}");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_range_read_by_the_thread_stops_at_its_end() {
        let (_dir, path, data) = test_file(5 << 20);
        let range = 100..(3 << 20) + 5;
        let mut source = FileSource::open_range(&path, range.clone(), INLINE_MAX_CHUNK * 2).unwrap();
        assert!(source.inline.is_none(), "chunks this large are read by the thread");
        assert!(read_all(&mut source).await == data[range.start as usize..range.end as usize]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_range_past_the_end_of_the_file_ends_with_the_file() {
        let (_dir, path, data) = test_file(10_000);
        for pull in [false, true] {
            let builder = FileSource::builder(File::open(&path).unwrap(), 4096).range(9_000..20_000);
            let mut source = if pull { builder.pull() } else { builder }.build().unwrap();
            assert!(read_all(&mut source).await == data[9_000..], "pull: {pull}");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn pull_mode_reads_one_chunk_per_poll_and_nothing_ahead() {
        let (_dir, path, data) = test_file(100_000);
        let mut source = FileSource::builder(File::open(&path).unwrap(), 4096)
            .range(1_000..100_000)
            .pull()
            .build()
            .unwrap();
        assert!(source.thread.is_none() && source.inline.is_none());
        assert_eq!(source.pull, Some(1_000), "nothing read before the first poll");
        let first = source.next().await.unwrap().unwrap();
        assert!(first[..] == data[1_000..5_096]);
        assert_eq!(source.pull, Some(5_096), "exactly one chunk read");
        assert!(source.thread.is_none());
        assert_eq!(source.reader.pool.idle(), 0, "the source holds no buffer between polls");
        drop(first);
        assert_eq!(source.reader.pool.idle(), 1, "the chunk's buffer came back");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn sources_sharing_a_pool_reuse_its_buffers() {
        let (_dir, path, _) = test_file(64 * 1024);
        let pool = Arc::new(BufferPool::new(4096, 4).unwrap());
        let file = Arc::new(File::open(&path).unwrap());
        for _ in 0..3 {
            let mut source = FileSource::builder(Arc::clone(&file), 4096)
                .range(0..64 * 1024)
                .pull()
                .pool(Arc::clone(&pool))
                .build()
                .unwrap();
            assert_eq!(read_all(&mut source).await.len(), 64 * 1024);
            // Each chunk was dropped before the next read: one buffer served all.
            assert_eq!(pool.idle(), 1);
        }
    }

    #[test]
    fn invalid_ranges_pools_and_files_are_refused() {
        let (_dir, path, _) = test_file(100);
        let open = || File::open(&path).unwrap();
        let kind = |built: io::Result<FileSource>| built.unwrap_err().kind();
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = 50..10;
        assert_eq!(
            kind(FileSource::builder(open(), 10).range(reversed).build()),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(FileSource::builder(open(), 0).pull().build()),
            io::ErrorKind::InvalidInput
        );
        let pool = Arc::new(BufferPool::new(8, 1).unwrap());
        assert_eq!(
            kind(FileSource::builder(open(), 16).pool(pool).build()),
            io::ErrorKind::InvalidInput
        );
        let (reader, _writer) = io::pipe().unwrap();
        let pipe = File::from(std::os::fd::OwnedFd::from(reader));
        assert_eq!(
            kind(FileSource::builder(pipe, 16).pull().build()),
            io::ErrorKind::InvalidInput
        );
    }
}
