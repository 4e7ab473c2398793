//! `FileSink`: writes to a temporary file beside the target and renames it
//! over the target on commit, so the target never holds a partial file.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::future::Future;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use tokio::sync::{oneshot, watch};

use crate::error::{BoxError, Cause};
use crate::sink::{Sink, TryWrite};

type Ack = oneshot::Sender<Result<(), FileSinkError>>;

/// Writes a `FileSink` accepts ahead of the disk: a write is acknowledged
/// once at most this many writes (itself included) are still queued.
pub const WRITE_BEHIND: u64 = 8;

/// Bytes a `FileSink` accepts ahead of the disk whatever the chunk count:
/// a write is also acknowledged once at most this many bytes (its own
/// included) are still queued, so that small chunks do not wait for the
/// writer thread every [`WRITE_BEHIND`] chunks.
pub const WRITE_BEHIND_BYTES: u64 = 512 * 1024;

/// Acknowledgements are released in groups of this many, so the writer
/// thread wakes the ingestion once per group rather than once per write.
const ACK_BATCH: u64 = 4;

/// Chunks smaller than this are gathered into one buffer of this size and
/// written together; larger ones are written as they are. The default of
/// [`FileSinkOptions::coalesce`].
pub const COALESCE: usize = 64 * 1024;

/// The largest [`FileSinkOptions::coalesce`].
const MAX_COALESCE: usize = 16 * 1024 * 1024;

/// Chunks smaller than this are gathered on the ingestion's side, into
/// [`COALESCE`] bytes per queued write. Above it the channel send and the
/// writer thread's wake-up cost less than the copy on the ingestion's task,
/// so such chunks are queued as they are (and coalesced by the writer).
const GATHER_BELOW: usize = 16 * 1024;

/// How a [`FileSink`] gathers small chunks and how far it writes ahead of
/// the disk; [`FileSink::create`] takes the defaults.
///
/// A sink holds up to three gather buffers' worth of bytes (one filling on
/// the ingestion's side, one queued, one filling on the writer thread) plus
/// what it writes ahead: with the defaults about 192 KiB beside the
/// write-behind. That is noise for one large copy, and most of the memory
/// of a server that keeps a hundred slow uploads open at once; such a
/// server gathers less (16 KiB: a quarter of the memory, in writes a
/// quarter of the size).
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let dir = tempfile::tempdir()?;
/// let options = weir::FileSinkOptions::new().coalesce(16 * 1024).write_behind_bytes(64 * 1024);
/// let sink = weir::FileSink::create_with(dir.path().join("upload.bin"), options)?;
/// # drop(sink);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSinkOptions {
    coalesce: usize,
    write_behind_bytes: u64,
}

impl Default for FileSinkOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl FileSinkOptions {
    /// The defaults: [`COALESCE`] and [`WRITE_BEHIND_BYTES`].
    pub const fn new() -> Self {
        Self {
            coalesce: COALESCE,
            write_behind_bytes: WRITE_BEHIND_BYTES,
        }
    }

    /// Chunks smaller than `bytes` are gathered and written `bytes` at a
    /// time; larger ones are written as they come. `0` gathers nothing
    /// (one `write(2)` per chunk, however small). At most 16 MiB:
    /// [`FileSink::create_with`] refuses more.
    #[must_use]
    pub const fn coalesce(mut self, bytes: usize) -> Self {
        self.coalesce = bytes;
        self
    }

    /// A write is acknowledged once at most `bytes` bytes (its own
    /// included) are queued ahead of the disk, or at most [`WRITE_BEHIND`]
    /// writes, whichever allows more.
    #[must_use]
    pub const fn write_behind_bytes(mut self, bytes: u64) -> Self {
        self.write_behind_bytes = bytes;
        self
    }
}

/// The suffix of every temporary file (`.<name>.<random>.weir-tmp`).
const TEMP_SUFFIX: &str = ".weir-tmp";

enum Command {
    /// Chunks in source order: one chunk, or small ones gathered on the
    /// ingestion's side, whose lengths are `lens` (empty for one chunk).
    Write {
        data: Bytes,
        lens: Vec<usize>,
    },
    Commit(Ack),
    Discard(Ack),
}

/// What the writer thread has done, published to the write futures.
#[derive(Debug, Default)]
struct Progress {
    /// Writes taken off the queue (written, gathered, or skipped after a
    /// failure).
    done: u64,
    /// Their bytes.
    done_bytes: u64,
    /// The first write failure.
    failed: Option<FileSinkError>,
}

/// What a [`FileSink`] was doing when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    CreateTemp,
    Write,
    RefuseCommit,
    Sync,
    Rename,
    WriterGone,
    CommittedBeforeAbort,
    Remove,
}

/// A [`FileSink`] failure: it names the target, the step, and for a failed
/// write the first chunk that did not reach the file and how many bytes the
/// temporary file really holds. The original `io::Error` (with its
/// [`raw_os_error`](io::Error::raw_os_error)) is kept as the
/// [`source`](std::error::Error::source), not rebuilt.
///
/// `FileSink`'s write, finalize and abort futures fail with this error
/// (boxed); [`FileSink::create`] returns an `io::Error` of the same kind
/// that carries it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let error = weir::FileSink::create("/no/such/dir/out.bin").unwrap_err();
/// assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
/// let detail = error.get_ref().and_then(|e| e.downcast_ref::<weir::FileSinkError>()).unwrap();
/// assert_eq!(detail.target(), std::path::Path::new("/no/such/dir/out.bin"));
/// assert!(error.to_string().contains("/no/such/dir/out.bin"));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct FileSinkError {
    target: PathBuf,
    step: Step,
    chunk: Option<u64>,
    bytes_in_file: Option<u64>,
    error: Option<Arc<io::Error>>,
}

impl FileSinkError {
    fn new(target: &Path, step: Step, error: Option<io::Error>) -> Self {
        Self {
            target: target.to_path_buf(),
            step,
            chunk: None,
            bytes_in_file: None,
            error: error.map(Arc::new),
        }
    }

    /// The path the sink commits to.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// For a failed write: the zero-based index of the first chunk that did
    /// not reach the file. The write that *reported* it may be a later one
    /// (the sink writes behind its acknowledgements).
    pub fn chunk(&self) -> Option<u64> {
        self.chunk
    }

    /// For a failed write: the bytes the temporary file really holds, which
    /// may be fewer than the bytes the sink acknowledged.
    pub fn bytes_in_file(&self) -> Option<u64> {
        self.bytes_in_file
    }

    /// The operating system's error, as it was returned (so
    /// [`raw_os_error`](io::Error::raw_os_error) still works), when there was
    /// one.
    pub fn io_error(&self) -> Option<&io::Error> {
        self.error.as_deref()
    }

    /// The kind of the operating system's error (`Other` without one).
    pub fn kind(&self) -> io::ErrorKind {
        self.error.as_ref().map_or(io::ErrorKind::Other, |e| e.kind())
    }

    fn into_io(self) -> io::Error {
        io::Error::new(self.kind(), self)
    }
}

impl fmt::Display for FileSinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "file sink {}: ", self.target.display())?;
        let chunk = self
            .chunk
            .map_or_else(|| "a chunk".to_owned(), |c| format!("chunk {c}"));
        match self.step {
            Step::CreateTemp => f.write_str("creating the temporary file beside the target failed"),
            Step::Write => write!(
                f,
                "writing {chunk} to the temporary file failed ({} bytes reached it)",
                self.bytes_in_file.unwrap_or(0)
            ),
            Step::RefuseCommit => write!(f, "not committing: writing {chunk} had failed"),
            Step::Sync => f.write_str("syncing the temporary file failed"),
            Step::Rename => f.write_str("renaming the temporary file onto the target failed"),
            Step::WriterGone => f.write_str("the writer thread is gone"),
            Step::CommittedBeforeAbort => {
                f.write_str("the commit had completed before the abort: the target holds the new file")
            }
            Step::Remove => f.write_str("removing the temporary file failed"),
        }
    }
}

impl std::error::Error for FileSinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.as_deref().map(|e| e as _)
    }
}

/// Writes to a temporary file in the target's directory; `finalize` flushes,
/// fsyncs, renames it over the target and fsyncs the directory; `abort`
/// removes it. A reader of the target sees the old file or the complete new
/// one, never a partial one.
///
/// The writes run on a thread the sink owns, in the order they were
/// issued, write-behind: a write is acknowledged (`Ok`: the sink has taken
/// responsibility for it) once at most [`WRITE_BEHIND`] writes are queued
/// ahead of the disk (or at most [`WRITE_BEHIND_BYTES`], for small chunks),
/// so reading, the engine and writing all overlap, and memory stays bounded
/// by the in-flight writes plus [`WRITE_BEHIND`] chunks or
/// [`WRITE_BEHIND_BYTES`], whichever is more, plus 64 KiB gathered (both
/// set by [`FileSinkOptions`]).
///
/// Small chunks cost neither a `write(2)` nor a hand-over to the thread
/// each: chunks under 16 KiB are copied into a 64 KiB buffer on the
/// ingestion's side (taken at once, through [`Sink::try_write`]) and queued
/// as one write when it is full or on `finalize`; larger chunks under 64 KiB
/// are gathered by the writer thread and written 64 KiB at a time (or when
/// its queue runs dry).
///
/// A failed disk write fails a later write, or `finalize`, with a
/// [`FileSinkError`] naming the first chunk that did not reach the file;
/// nothing is committed after one. The thread ends on the terminal call,
/// which joins it: when `finalize` or `abort` returns, the thread is gone.
/// If the sink is dropped without a terminal call, the thread removes the
/// temporary file and ends on its own; if it is dropped during `finalize`
/// (the ingestion's future dropped, or its finalize timeout), the commit
/// already handed to the thread completes, and a later `abort` reports
/// [that it came too late](FileSinkError).
///
/// The temporary file is locked (`flock`) by its writer for its whole life,
/// which is what lets [`FileSink::sweep_stale`] remove the ones a killed
/// process left behind without touching a live one.
#[derive(Debug)]
pub struct FileSink {
    target: PathBuf,
    commands: Option<mpsc::Sender<Command>>,
    progress: watch::Receiver<Progress>,
    /// Chunks handed to the sink (queued or gathered), and their bytes.
    issued: u64,
    issued_bytes: u64,
    /// Small chunks gathered on the ingestion's side, queued as one write
    /// once [`COALESCE`] bytes are there (or on `finalize`): a channel send
    /// and a wake-up of the writer thread per 64 KiB, not per chunk.
    gathered: BytesMut,
    /// The lengths of the chunks in `gathered`.
    gathered_lens: Vec<usize>,
    /// The commit's acknowledgement while a `finalize` waits for it; kept
    /// here so that an abort after a dropped finalize learns how it ended.
    commit: Option<oneshot::Receiver<Result<(), FileSinkError>>>,
    worker: Option<thread::JoinHandle<()>>,
    options: FileSinkOptions,
}

impl FileSink {
    /// Creates the temporary file beside `target` (named
    /// `.<name>.<random>.weir-tmp`, mode 0600), locks it, and starts the
    /// writer thread.
    ///
    /// # Errors
    ///
    /// When `target` has no file name, or the temporary file or the thread
    /// cannot be created. The error has the kind of the operating system's
    /// error and carries a [`FileSinkError`] naming the target.
    pub fn create(target: impl AsRef<Path>) -> io::Result<Self> {
        Self::create_with(target, FileSinkOptions::new())
    }

    /// [`FileSink::create`] with [`FileSinkOptions`] of one's own.
    ///
    /// # Errors
    ///
    /// As [`FileSink::create`]; and `InvalidInput` naming the target when
    /// [`FileSinkOptions::coalesce`] is over 16 MiB.
    pub fn create_with(target: impl AsRef<Path>, options: FileSinkOptions) -> io::Result<Self> {
        let target = target.as_ref().to_path_buf();
        if options.coalesce > MAX_COALESCE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "file sink {}: coalesce of {} bytes is over the largest, {MAX_COALESCE}",
                    target.display(),
                    options.coalesce
                ),
            ));
        }
        let name = target.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("file sink target {} has no file name", target.display()),
            )
        })?;
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let failed = |error| FileSinkError::new(&target, Step::CreateTemp, Some(error)).into_io();
        let (file, temp) = create_temp(&dir, &name.to_string_lossy()).map_err(failed)?;
        lock::hold(&file).map_err(failed)?;
        let (commands, inbox) = mpsc::channel();
        let (report, progress) = watch::channel(Progress::default());
        let worker_target = target.clone();
        let worker = thread::Builder::new()
            .name("weir-file-sink".to_owned())
            .spawn(move || run_worker(file, temp, &worker_target, &dir, &inbox, &report, options.coalesce))
            .map_err(failed)?;
        Ok(Self {
            target,
            commands: Some(commands),
            progress,
            issued: 0,
            issued_bytes: 0,
            gathered: BytesMut::new(),
            gathered_lens: Vec::new(),
            commit: None,
            worker: Some(worker),
            options,
        })
    }

    /// The path the data is committed to.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Removes the temporary files in `dir` that no live `FileSink` is
    /// writing (left by a process that was killed) and whose last change is
    /// older than `older_than`; returns their paths.
    ///
    /// A live sink holds an exclusive `flock` on its temporary file from
    /// right after creating it until it ends, and the kernel drops the lock
    /// with the process, so a file whose lock can be taken has no writer.
    /// `older_than` covers the moment between a sink creating its file and
    /// locking it: anything of a second or more is safe; minutes are usual.
    /// Files of other programs are never touched: only names of the form
    /// `.<name>.<random>.weir-tmp` are considered.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let dir = tempfile::tempdir()?;
    /// let live = weir::FileSink::create(dir.path().join("out.bin"))?;
    /// let removed = weir::FileSink::sweep_stale(dir.path(), std::time::Duration::ZERO)?;
    /// assert!(removed.is_empty(), "a live sink's file is never swept");
    /// # drop(live);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// When `dir` cannot be read. A file that vanishes or cannot be
    /// inspected meanwhile is skipped.
    pub fn sweep_stale(dir: impl AsRef<Path>, older_than: Duration) -> io::Result<Vec<PathBuf>> {
        let now = SystemTime::now();
        let mut removed = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !(name.starts_with('.') && name.ends_with(TEMP_SUFFIX)) {
                continue;
            }
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            let age = meta.modified().ok().and_then(|m| now.duration_since(m).ok());
            if !meta.is_file() || age.is_none_or(|age| age < older_than) {
                continue;
            }
            let Ok(file) = File::open(&path) else { continue };
            // Held by a live writer: not stale.
            if !lock::try_take(&file) {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "removed a stale temporary file");
                    removed.push(path);
                }
                Err(error) => {
                    tracing::debug!(%error, path = %path.display(), "could not remove a stale temporary file")
                }
            }
        }
        Ok(removed)
    }

    fn send(&self, command: impl FnOnce(Ack) -> Command) -> oneshot::Receiver<Result<(), FileSinkError>> {
        let (ack, done) = oneshot::channel();
        if let Some(commands) = &self.commands {
            // A send error drops the ack, which the receiver reports.
            let _ = commands.send(command(ack));
        }
        done
    }

    /// Queues chunks; `false` when the writer thread is gone.
    fn queue(&self, data: Bytes, lens: Vec<usize>) -> bool {
        self.commands
            .as_ref()
            .is_some_and(|commands| commands.send(Command::Write { data, lens }).is_ok())
    }

    /// Gathers a small chunk when it fits beside those already gathered;
    /// otherwise hands it back. The chunk is then the sink's: counted as
    /// issued, queued with the others.
    fn gather(&mut self, chunk: Bytes) -> Option<Bytes> {
        let coalesce = self.options.coalesce;
        if chunk.len() >= GATHER_BELOW.min(coalesce) || self.gathered.len() + chunk.len() > coalesce {
            return Some(chunk);
        }
        if self.gathered.capacity() == 0 {
            self.gathered.reserve(coalesce);
        }
        self.issued += 1;
        self.issued_bytes += chunk.len() as u64;
        self.gathered.extend_from_slice(&chunk);
        self.gathered_lens.push(chunk.len());
        None
    }

    /// Queues what is gathered; `false` when the writer thread is gone.
    fn queue_gathered(&mut self) -> bool {
        if self.gathered_lens.is_empty() {
            return true;
        }
        let data = self.gathered.split().freeze();
        let lens = std::mem::take(&mut self.gathered_lens);
        self.queue(data, lens)
    }

    fn gone(&self) -> FileSinkError {
        FileSinkError::new(&self.target, Step::WriterGone, None)
    }

    /// Closes the queue after the terminal acknowledgement and waits for the
    /// thread to end. The worker sends that acknowledgement as its last act
    /// (after closing and, on abort, removing the temporary file); the end
    /// of its closure then drops the progress sender, which this awaits, so
    /// that only the thread's exit is left for the join. Awaiting rather
    /// than spinning matters: a task polling `is_finished` in a loop holds a
    /// core that the exiting thread may need, and on two cores that cost
    /// up to a scheduler time slice (5 ms at the p99 of the cancellation
    /// scenario's file-sink trials).
    async fn release_worker(&mut self) {
        self.commands = None;
        if let Some(worker) = self.worker.take() {
            while self.progress.changed().await.is_ok() {}
            // The thread has returned from its work and dropped everything
            // it held: the join waits for its exit alone.
            let _ = worker.join();
        }
    }
}

/// Creates `.<name>.<random>.weir-tmp` in `dir` (mode 0600 on Unix), and
/// the path guard that removes it unless it is kept. Done here rather than
/// by `tempfile`'s builder, whose errors wrap the operating system's error
/// (losing its `raw_os_error`) and name the random path.
fn create_temp(dir: &Path, name: &str) -> io::Result<(File, tempfile::TempPath)> {
    use std::hash::{BuildHasher, Hasher};
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut last = io::Error::from(io::ErrorKind::AlreadyExists);
    for attempt in 0..16u32 {
        let mut hasher = std::hash::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.write_u32(attempt);
        hasher.write_u128(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        let path = dir.join(format!(
            ".{name}.{:012x}{TEMP_SUFFIX}",
            hasher.finish() & 0xffff_ffff_ffff
        ));
        match options.open(&path) {
            Ok(file) => return Ok((file, tempfile::TempPath::try_from_path(path)?)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => last = error,
            Err(error) => return Err(error),
        }
    }
    Err(last)
}

async fn acknowledged(
    done: oneshot::Receiver<Result<(), FileSinkError>>,
    gone: FileSinkError,
) -> Result<(), FileSinkError> {
    done.await.unwrap_or(Err(gone))
}

impl Sink for FileSink {
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<> {
        // A small chunk that fits is gathered: taken at once, nothing to
        // wait for (the gathered bytes are bounded by COALESCE). Otherwise
        // what is gathered is queued, then the chunk (gathered afresh when
        // small, queued as it is when large), and the write waits for the
        // writer thread as below.
        let wait = match self.gather(chunk) {
            None => None,
            Some(chunk) => {
                let mut queued = self.queue_gathered();
                if let Some(chunk) = self.gather(chunk) {
                    self.issued += 1;
                    self.issued_bytes += chunk.len() as u64;
                    queued = queued && self.queue(chunk, Vec::new());
                }
                Some((queued, self.progress.clone(), self.gone()))
            }
        };
        let needed_bytes = self.issued_bytes.saturating_sub(self.options.write_behind_bytes);
        // Acknowledged once at most WRITE_BEHIND writes, this one included,
        // are still waiting for the disk (rounded up to a whole group, which
        // is when the writer thread sends a wake-up), or at most the
        // options' write-behind bytes.
        let needed = self.issued.saturating_sub(WRITE_BEHIND).next_multiple_of(ACK_BATCH);
        async move {
            let Some((queued, mut progress, gone)) = wait else {
                return Ok(());
            };
            if !queued {
                return Err(gone.into());
            }
            let Ok(state) = progress
                .wait_for(|p| p.failed.is_some() || p.done >= needed || p.done_bytes >= needed_bytes)
                .await
            else {
                return Err(gone.into());
            };
            match &state.failed {
                Some(error) => Err(error.clone().into()),
                None => Ok(()),
            }
        }
    }

    fn try_write(&mut self, chunk: Bytes) -> TryWrite {
        match self.gather(chunk) {
            None => TryWrite::Done(Ok(())),
            Some(chunk) => TryWrite::Declined(chunk),
        }
    }

    async fn finalize(&mut self) -> Result<(), BoxError> {
        // A send to a gone writer shows as the commit's lost acknowledgement.
        self.queue_gathered();
        let done = self.send(Command::Commit);
        let gone = self.gone();
        let commit = self.commit.insert(done);
        let result = commit.await.unwrap_or(Err(gone));
        self.commit = None;
        result?;
        self.release_worker().await;
        Ok(())
    }

    async fn abort(mut self, _cause: &Cause) -> Result<(), BoxError> {
        // A finalize that was given up on may still have committed.
        if let Some(commit) = self.commit.take()
            && let Ok(Ok(())) = commit.await
        {
            self.release_worker().await;
            return Err(FileSinkError::new(&self.target, Step::CommittedBeforeAbort, None).into());
        }
        let result = acknowledged(self.send(Command::Discard), self.gone()).await;
        self.release_worker().await;
        result.map_err(Into::into)
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        // Closing the queue makes the worker remove the temporary file and
        // end; it is not joined here, so a stuck disk cannot block a drop.
        self.commands = None;
    }
}

/// The write path of the worker: gathers small chunks, writes, and keeps
/// track of which chunk a failure hit and how many bytes reached the file.
struct Writer<W> {
    out: W,
    target: PathBuf,
    /// Small chunks gathered for one write.
    pending: Vec<u8>,
    /// Chunks under this many bytes are gathered into `pending`.
    coalesce: usize,
    /// Chunks not yet wholly in the file: (index, file offset of their end).
    unwritten: VecDeque<(u64, u64)>,
    /// Bytes the file holds.
    in_file: u64,
    /// Bytes handed to the writer before a failure (the file offsets).
    taken: u64,
    /// Bytes handed to the writer, failure or not.
    taken_total: u64,
    next_index: u64,
    failed: Option<FileSinkError>,
}

impl<W: Write> Writer<W> {
    fn new(out: W, target: &Path, coalesce: usize) -> Self {
        Self {
            out,
            target: target.to_path_buf(),
            pending: Vec::new(),
            coalesce,
            unwritten: VecDeque::new(),
            in_file: 0,
            taken: 0,
            taken_total: 0,
            next_index: 0,
            failed: None,
        }
    }

    /// Takes one chunk: gathers it, or writes it as it is when it is large.
    /// After a failure, chunks are counted and skipped.
    fn push(&mut self, chunk: &[u8]) {
        self.push_gathered(chunk, &[chunk.len()]);
    }

    /// Takes chunks in order, together `data`, `lens` long each (several
    /// when gathered on the ingestion's side): counted one by one, so that a
    /// failure still names the first chunk that missed the file, and
    /// gathered, or written as they are when `data` is large.
    fn push_gathered(&mut self, data: &[u8], lens: &[usize]) {
        let start = self.next_index;
        self.next_index += lens.len() as u64;
        self.taken_total += data.len() as u64;
        if self.failed.is_some() {
            return;
        }
        let mut end = self.taken;
        for (offset, len) in lens.iter().enumerate() {
            end += *len as u64;
            self.unwritten.push_back((start + offset as u64, end));
        }
        self.taken += data.len() as u64;
        if data.len() >= self.coalesce {
            self.flush();
            if self.failed.is_none() {
                self.write_out(data);
            }
            return;
        }
        if self.pending.capacity() == 0 {
            self.pending.reserve_exact(self.coalesce);
        }
        self.pending.extend_from_slice(data);
        if self.pending.len() >= self.coalesce {
            self.flush();
        }
    }

    /// Writes what is gathered.
    fn flush(&mut self) {
        if self.pending.is_empty() || self.failed.is_some() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        self.write_out(&pending);
        self.pending = pending;
        self.pending.clear();
    }

    fn write_out(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match self.out.write(data) {
                Ok(0) => {
                    self.fail(io::ErrorKind::WriteZero.into());
                    return;
                }
                Ok(n) => {
                    self.in_file += n as u64;
                    data = &data[n..];
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    self.fail(error);
                    return;
                }
            }
        }
        self.settle();
    }

    /// Forgets the chunks that are wholly in the file.
    fn settle(&mut self) {
        while self.unwritten.front().is_some_and(|&(_, end)| end <= self.in_file) {
            self.unwritten.pop_front();
        }
    }

    fn fail(&mut self, error: io::Error) {
        self.settle();
        let mut failure = FileSinkError::new(&self.target, Step::Write, Some(error));
        failure.chunk = self.unwritten.front().map(|&(index, _)| index);
        failure.bytes_in_file = Some(self.in_file);
        tracing::warn!(%failure, "file sink write failed");
        self.failed = Some(failure);
        self.pending.clear();
    }
}

fn run_worker(
    file: File,
    path: tempfile::TempPath,
    target: &Path,
    dir: &Path,
    inbox: &mpsc::Receiver<Command>,
    progress: &watch::Sender<Progress>,
    coalesce: usize,
) {
    let mut writer = Writer::new(file, target, coalesce);
    // Removes the temporary file unless it was committed.
    let mut path = Some(path);
    // Taken off the queue and not yet published.
    let mut unpublished: u64 = 0;
    let publish = |writer: &Writer<File>, unpublished: &mut u64| {
        let taken = std::mem::take(unpublished);
        let failed = writer.failed.as_ref();
        progress.send_if_modified(|p| {
            p.done += taken;
            p.done_bytes = writer.taken_total;
            let newly_failed = p.failed.is_none() && failed.is_some();
            if newly_failed {
                p.failed = failed.cloned();
            }
            // Wake waiters when a group is complete (the only counts they
            // wait for) or on a failure.
            newly_failed || (taken > 0 && (p.done / ACK_BATCH) != ((p.done - taken) / ACK_BATCH))
        });
    };
    loop {
        let command = match inbox.try_recv() {
            Ok(command) => command,
            Err(mpsc::TryRecvError::Empty) => {
                // The queue ran dry: write what is gathered, then report.
                writer.flush();
                publish(&writer, &mut unpublished);
                match inbox.recv() {
                    Ok(command) => command,
                    // Dropped without a terminal call.
                    Err(_) => break,
                }
            }
            Err(mpsc::TryRecvError::Disconnected) => break,
        };
        match command {
            Command::Write { data, lens } => {
                if lens.is_empty() {
                    writer.push(&data);
                    unpublished += 1;
                } else {
                    writer.push_gathered(&data, &lens);
                    unpublished += lens.len() as u64;
                }
                drop(data);
                if unpublished >= ACK_BATCH || writer.failed.is_some() {
                    publish(&writer, &mut unpublished);
                }
            }
            Command::Commit(ack) => {
                writer.flush();
                publish(&writer, &mut unpublished);
                let result = match (&writer.failed, &path) {
                    (Some(failure), _) => {
                        let mut refusal = failure.clone();
                        refusal.step = Step::RefuseCommit;
                        Err(refusal)
                    }
                    (None, Some(temp)) => commit(&writer.out, temp, target, dir),
                    (None, None) => Err(FileSinkError::new(target, Step::WriterGone, None)),
                };
                if result.is_ok() {
                    // Renamed: nothing to remove any more.
                    if let Some(committed) = path.take() {
                        let _ = committed.keep();
                    }
                    // Close the file before the acknowledgement, which is the
                    // thread's last act.
                    drop(writer);
                    let _ = ack.send(result);
                    return;
                }
                let _ = ack.send(result);
            }
            Command::Discard(ack) => {
                drop(writer);
                let result = path
                    .take()
                    .map_or(Ok(()), |temp| temp.close())
                    .map_err(|error| FileSinkError::new(target, Step::Remove, Some(error)));
                let _ = ack.send(result);
                return;
            }
        }
    }
    // Dropped without a terminal call: the path removes the file as it drops.
    drop(writer);
    drop(path);
}

/// fsync, rename over the target, fsync the directory. On failure the
/// temporary file stays, for `abort` to remove.
fn commit(file: &File, temp: &tempfile::TempPath, target: &Path, dir: &Path) -> Result<(), FileSinkError> {
    file.sync_all()
        .map_err(|error| FileSinkError::new(target, Step::Sync, Some(error)))?;
    std::fs::rename(temp, target).map_err(|error| FileSinkError::new(target, Step::Rename, Some(error)))?;
    // The rename is durable once the directory is synced. The complete file
    // is already visible at the target, so failing `finalize` now would
    // report as uncommitted what readers can see: log it instead (some
    // filesystems cannot sync a directory at all).
    if let Err(error) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(%error, dir = %dir.display(), "could not fsync the directory after the rename");
    }
    Ok(())
}

/// The writer's lock on its temporary file, which tells a sweep it is live.
#[cfg(target_os = "linux")]
mod lock {
    use std::fs::File;
    use std::io;

    use rustix::fs::{FlockOperation, flock};

    pub(super) fn hold(file: &File) -> io::Result<()> {
        flock(file, FlockOperation::NonBlockingLockExclusive).map_err(Into::into)
    }

    /// `true` when nobody else holds the lock.
    pub(super) fn try_take(file: &File) -> bool {
        flock(file, FlockOperation::NonBlockingLockExclusive).is_ok()
    }
}

/// Off Linux there is no lock: a sweep removes nothing.
#[cfg(not(target_os = "linux"))]
mod lock {
    use std::fs::File;
    use std::io;

    pub(super) fn hold(_: &File) -> io::Result<()> {
        Ok(())
    }

    pub(super) fn try_take(_: &File) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts `room` bytes, then fails like a full disk.
    struct Full {
        room: usize,
        written: Vec<u8>,
        calls: usize,
    }

    impl Write for Full {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.room == 0 {
                return Err(io::Error::from_raw_os_error(28)); // ENOSPC
            }
            let n = data.len().min(self.room);
            self.room -= n;
            self.written.extend_from_slice(&data[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn enospc_names_the_first_failed_chunk_and_the_bytes_in_the_file_and_keeps_the_os_error() {
        let out = Full {
            room: 250_000,
            written: Vec::new(),
            calls: 0,
        };
        let mut writer = Writer::new(out, Path::new("/data/out.bin"), COALESCE);
        // 100 KiB chunks: chunk 2 ends at 300 KiB, past the room.
        for _ in 0..5 {
            writer.push(&[7u8; 100 * 1024]);
        }
        writer.flush();
        let failure = writer.failed.clone().expect("the disk filled up");
        assert_eq!(failure.chunk(), Some(2));
        assert_eq!(failure.bytes_in_file(), Some(250_000));
        assert_eq!(writer.out.written.len(), 250_000);
        assert_eq!(failure.io_error().and_then(io::Error::raw_os_error), Some(28));
        let text = failure.to_string();
        assert!(text.contains("/data/out.bin") && text.contains("chunk 2"), "{text}");
        assert!(
            !text.contains("No space"),
            "the OS error is the source, not repeated: {text}"
        );
    }

    #[test]
    fn small_chunks_are_coalesced_into_few_writes() {
        for coalesce in [COALESCE, 16 * 1024, 1] {
            let out = Full {
                room: usize::MAX,
                written: Vec::new(),
                calls: 0,
            };
            let mut writer = Writer::new(out, Path::new("out.bin"), coalesce);
            let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
            for byte in &data {
                writer.push(std::slice::from_ref(byte));
            }
            writer.flush();
            assert!(writer.out.written == data);
            // One write per `coalesce` bytes, not one per byte.
            assert_eq!(writer.out.calls, data.len().div_ceil(coalesce), "coalesce {coalesce}");
            assert!(writer.pending.capacity() <= coalesce.max(1), "coalesce {coalesce}");
        }
    }

    #[test]
    fn a_failure_in_gathered_chunks_names_the_first_one_not_written() {
        let out = Full {
            room: 10,
            written: Vec::new(),
            calls: 0,
        };
        let mut writer = Writer::new(out, Path::new("out.bin"), COALESCE);
        for _ in 0..8 {
            writer.push(&[1u8; 4]);
        }
        writer.flush();
        let failure = writer.failed.expect("failed");
        // Chunks 0 and 1 (8 bytes) fit; chunk 2 got 2 of its 4 bytes.
        assert_eq!(failure.chunk(), Some(2));
        assert_eq!(failure.bytes_in_file(), Some(10));
    }

    #[test]
    fn a_failure_in_chunks_gathered_by_the_sink_names_the_first_one_not_written() {
        let out = Full {
            room: 10,
            written: Vec::new(),
            calls: 0,
        };
        let mut writer = Writer::new(out, Path::new("out.bin"), COALESCE);
        // Four chunks of 4 bytes, gathered on the ingestion's side.
        writer.push_gathered(&[1u8; 16], &[4, 4, 4, 4]);
        writer.flush();
        // Counted and skipped after the failure.
        writer.push_gathered(&[2u8; 8], &[4, 4]);
        let failure = writer.failed.clone().expect("failed");
        assert_eq!(failure.chunk(), Some(2));
        assert_eq!(failure.bytes_in_file(), Some(10));
        assert_eq!(writer.next_index, 6);
        assert_eq!(writer.taken_total, 24);
    }
}
