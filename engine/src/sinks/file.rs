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
use tokio::sync::oneshot;

use crate::error::{BoxError, Cause};
use crate::sink::Sink;

type Ack = oneshot::Sender<io::Result<()>>;

enum Command {
    Write(Bytes, Ack),
    Commit(Ack),
    Discard(Ack),
}

/// Writes to a temporary file in the target's directory; `finalize` flushes,
/// fsyncs, renames it over the target and fsyncs the directory; `abort`
/// removes it. A reader of the target sees the old file or the complete new
/// one, never a partial one.
///
/// The writes run on a thread the sink owns, in the order they were
/// issued, so reading (on the source's side) and writing overlap. Its queue
/// holds at most the ingestion's in-flight writes. The thread ends on the
/// terminal call; if the sink is dropped without one, the thread removes the
/// temporary file on its own.
#[derive(Debug)]
pub struct FileSink {
    target: PathBuf,
    commands: Option<mpsc::Sender<Command>>,
    worker: Option<thread::JoinHandle<()>>,
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
        let worker_target = target.clone();
        let worker = thread::Builder::new()
            .name("weir-file-sink".to_owned())
            .spawn(move || run_worker(temp, worker_target, dir, inbox))?;
        Ok(Self {
            target,
            commands: Some(commands),
            worker: Some(worker),
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

    /// Waits for the worker after its terminal acknowledgement: it is only
    /// returning from its function by then.
    fn join_worker(&mut self) {
        self.commands = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
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
        acknowledged(self.send(|ack| Command::Write(chunk, ack)))
    }

    async fn finalize(&mut self) -> Result<(), BoxError> {
        acknowledged(self.send(Command::Commit)).await?;
        self.join_worker();
        Ok(())
    }

    async fn abort(mut self, _cause: &Cause) -> Result<(), BoxError> {
        let result = acknowledged(self.send(Command::Discard)).await;
        self.join_worker();
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

fn run_worker(temp: NamedTempFile, target: PathBuf, dir: PathBuf, inbox: mpsc::Receiver<Command>) {
    let mut temp = Some(temp);
    let mut failed: Option<io::ErrorKind> = None;
    for command in inbox {
        match command {
            Command::Write(chunk, ack) => {
                let result = match (failed, temp.as_mut()) {
                    (Some(kind), _) => Err(io::Error::new(kind, "an earlier write to the temporary file failed")),
                    (None, Some(file)) => file.as_file_mut().write_all(&chunk),
                    (None, None) => Err(io::Error::other("the temporary file is gone")),
                };
                if let Err(error) = &result {
                    failed = Some(error.kind());
                }
                let _ = ack.send(result);
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
