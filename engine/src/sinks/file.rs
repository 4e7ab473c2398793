//! `FileSink`: writes to a temporary file beside the target and renames it
//! over the target on commit, so the target never holds a partial file.

use std::fs::File;
use std::future::Future;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use bytes::Bytes;
use tempfile::NamedTempFile;
use tokio::sync::{oneshot, watch};

use crate::error::{BoxError, Cause};
use crate::sink::Sink;

type Ack = oneshot::Sender<io::Result<()>>;

/// Writes a `FileSink` accepts ahead of the disk: a write is acknowledged
/// once at most this many writes (itself included) are still queued.
pub const WRITE_BEHIND: u64 = 8;

/// Acknowledgements are released in groups of this many, so the writer
/// thread wakes the ingestion once per group rather than once per write.
const ACK_BATCH: u64 = 4;

enum Command {
    Write(Bytes),
    Commit(Ack),
    Discard(Ack),
}

/// What the writer thread has done, published to the write futures.
#[derive(Debug, Default)]
struct Progress {
    /// Writes taken off the queue (written, or skipped after a failure).
    done: u64,
    /// The first write failure.
    failed: Option<(io::ErrorKind, String)>,
}

/// Writes to a temporary file in the target's directory; `finalize` flushes,
/// fsyncs, renames it over the target and fsyncs the directory; `abort`
/// removes it. A reader of the target sees the old file or the complete new
/// one, never a partial one.
///
/// The writes run on a thread the sink owns, in the order they were
/// issued, write-behind: a write is acknowledged (`Ok`: the sink has taken
/// responsibility for it) once at most [`WRITE_BEHIND`] writes are queued
/// ahead of the disk, so reading, the engine and writing all overlap, and
/// memory stays bounded by the in-flight writes plus [`WRITE_BEHIND`]
/// chunks. A failed disk write fails a later write, or `finalize`; nothing
/// is committed after one. The thread ends on the terminal call; if the
/// sink is dropped without one, the thread removes the temporary file on its
/// own.
#[derive(Debug)]
pub struct FileSink {
    target: PathBuf,
    commands: Option<mpsc::Sender<Command>>,
    progress: watch::Receiver<Progress>,
    issued: u64,
}

impl FileSink {
    /// Creates the temporary file beside `target` (named
    /// `.<name>.<random>.weir-tmp`) and starts the writer thread.
    ///
    /// # Errors
    ///
    /// When `target` has no file name, or the temporary file or the thread
    /// cannot be created.
    pub fn create(target: impl AsRef<Path>) -> io::Result<Self> {
        let target = target.as_ref().to_path_buf();
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
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{}.", name.to_string_lossy()))
            .suffix(".weir-tmp")
            .tempfile_in(&dir)?;
        let (commands, inbox) = mpsc::channel();
        let (report, progress) = watch::channel(Progress::default());
        let worker_target = target.clone();
        // Detached: it ends on the terminal command, or when the queue
        // closes.
        thread::Builder::new()
            .name("weir-file-sink".to_owned())
            .spawn(move || run_worker(temp, worker_target, dir, inbox, &report))?;
        Ok(Self {
            target,
            commands: Some(commands),
            progress,
            issued: 0,
        })
    }

    /// The path the data is committed to.
    pub fn target(&self) -> &Path {
        &self.target
    }

    fn send(&self, command: impl FnOnce(Ack) -> Command) -> oneshot::Receiver<io::Result<()>> {
        let (ack, done) = oneshot::channel();
        if let Some(commands) = &self.commands {
            // A send error drops the ack, which the receiver reports below.
            let _ = commands.send(command(ack));
        }
        done
    }

    /// Queues a write; `false` when the writer thread is gone.
    fn queue(&self, chunk: Bytes) -> bool {
        self.commands
            .as_ref()
            .is_some_and(|commands| commands.send(Command::Write(chunk)).is_ok())
    }

    /// Closes the queue after the terminal acknowledgement. The worker
    /// sends that acknowledgement only after closing (and, on abort,
    /// removing) the temporary file, so no descriptor is left behind; the
    /// thread is then only returning from its function. It is detached
    /// rather than joined, so that no runtime worker blocks on an exiting
    /// thread.
    fn release_worker(&mut self) {
        self.commands = None;
    }
}

async fn acknowledged(done: oneshot::Receiver<io::Result<()>>) -> Result<(), BoxError> {
    match done.await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err("file sink writer thread is gone".into()),
    }
}

impl Sink for FileSink {
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<> {
        let index = self.issued;
        self.issued += 1;
        let queued = self.queue(chunk);
        let mut progress = self.progress.clone();
        // Acknowledged once at most WRITE_BEHIND writes, this one included,
        // are still waiting for the disk; rounded up to a whole group, which
        // is when the writer thread sends a wake-up.
        let needed = (index + 1).saturating_sub(WRITE_BEHIND).next_multiple_of(ACK_BATCH);
        async move {
            if !queued {
                return Err("file sink writer thread is gone".into());
            }
            let state = progress
                .wait_for(|p| p.failed.is_some() || p.done >= needed)
                .await
                .map_err(|_| "file sink writer thread is gone")?;
            match &state.failed {
                Some((kind, message)) => Err(io::Error::new(*kind, message.clone()).into()),
                None => Ok(()),
            }
        }
    }

    async fn finalize(&mut self) -> Result<(), BoxError> {
        acknowledged(self.send(Command::Commit)).await?;
        self.release_worker();
        Ok(())
    }

    async fn abort(mut self, _cause: &Cause) -> Result<(), BoxError> {
        let result = acknowledged(self.send(Command::Discard)).await;
        self.release_worker();
        result
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        // Closing the queue makes the worker remove the temporary file and
        // end; it is not joined here, so a stuck disk cannot block a drop.
        self.commands = None;
    }
}

fn run_worker(
    temp: NamedTempFile,
    target: PathBuf,
    dir: PathBuf,
    inbox: mpsc::Receiver<Command>,
    progress: &watch::Sender<Progress>,
) {
    let mut temp = Some(temp);
    let mut failed: Option<io::ErrorKind> = None;
    for command in inbox {
        match command {
            Command::Write(chunk) => {
                let result = match (failed, temp.as_mut()) {
                    (Some(_), _) => Ok(()), // already failed: skip, nothing will be committed
                    (None, Some(file)) => file.as_file_mut().write_all(&chunk),
                    (None, None) => Err(io::Error::other("the temporary file is gone")),
                };
                drop(chunk);
                // Publish every write, but wake waiters only when a group is
                // complete (the only counts they wait for) or on a failure.
                progress.send_if_modified(|p| {
                    p.done += 1;
                    if let Err(error) = &result
                        && p.failed.is_none()
                    {
                        p.failed = Some((error.kind(), format!("writing the temporary file failed: {error}")));
                        return true;
                    }
                    p.done % ACK_BATCH == 0
                });
                if let Err(error) = result {
                    failed = Some(error.kind());
                }
            }
            Command::Commit(ack) => {
                let result = match (failed, temp.take()) {
                    (Some(kind), file) => {
                        temp = file;
                        Err(io::Error::new(kind, "refusing to commit after a failed write"))
                    }
                    (None, Some(file)) => commit(file, &target, &dir).map_err(|(file, error)| {
                        temp = file;
                        error
                    }),
                    (None, None) => Err(io::Error::other("the temporary file is gone")),
                };
                let committed = result.is_ok();
                let _ = ack.send(result);
                if committed {
                    return;
                }
            }
            Command::Discard(ack) => {
                let result = temp.take().map_or(Ok(()), NamedTempFile::close);
                let _ = ack.send(result);
                return;
            }
        }
    }
    // Dropped without a terminal call: `temp` removes the file as it drops.
}

/// fsync, rename over the target, fsync the directory. On failure before the
/// rename, hands the temporary file back so that `abort` can remove it.
fn commit(file: NamedTempFile, target: &Path, dir: &Path) -> Result<(), (Option<NamedTempFile>, io::Error)> {
    if let Err(error) = file.as_file().sync_all() {
        return Err((Some(file), error));
    }
    file.persist(target).map_err(|error| (Some(error.file), error.error))?;
    // The rename is durable once the directory is synced. The complete file
    // is already visible at the target, so failing `finalize` now would
    // report as uncommitted what readers can see: log it instead (some
    // filesystems cannot sync a directory at all).
    if let Err(error) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(%error, dir = %dir.display(), "could not fsync the directory after the rename");
    }
    Ok(())
}
