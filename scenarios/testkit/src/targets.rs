//! The sinks the conformance suite runs against, each with its own check of
//! what must be visible after a commit or an abort.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use weir::{BoxError, FileSink, MemoryHandle, MemorySink, NullSink, Sink, WriterSink};

/// A sink under test: makes a fresh sink per case and checks the state it
/// left behind.
pub trait SinkTarget {
    /// The sink type.
    type Sink: Sink + 'static;

    /// A short name for messages.
    fn name(&self) -> &'static str;

    /// A fresh sink for one case (called inside the case's runtime).
    fn make(&mut self) -> impl Future<Output = Self::Sink>;

    /// After the case: `committed` says whether `ingest` returned `Ok`;
    /// `expected` is the full source. Errors describe what is wrong.
    fn verify(&mut self, committed: bool, expected: &[u8]) -> impl Future<Output = Result<(), String>>;

    /// `true` when the sink does real I/O on other threads, so the case
    /// cannot use a paused-time hang guard (the clock would jump while the
    /// runtime waits on that I/O).
    fn real_io(&self) -> bool {
        false
    }
}

/// [`MemorySink`]: content visible if and only if committed, and complete.
#[derive(Debug, Default)]
pub struct MemoryTarget {
    handle: Option<MemoryHandle>,
}

impl SinkTarget for MemoryTarget {
    type Sink = MemorySink;

    fn name(&self) -> &'static str {
        "memory"
    }

    async fn make(&mut self) -> MemorySink {
        let sink = MemorySink::new();
        self.handle = Some(sink.handle());
        sink
    }

    async fn verify(&mut self, committed: bool, expected: &[u8]) -> Result<(), String> {
        let handle = self.handle.take().ok_or("no sink was made")?;
        match (committed, handle.committed()) {
            (true, Some(content)) if content == expected => Ok(()),
            (true, Some(content)) => Err(format!(
                "committed {} bytes, expected {}",
                content.len(),
                expected.len()
            )),
            (true, None) => Err("ingest succeeded but nothing was committed".to_owned()),
            (false, Some(_)) => Err("content visible after a failed ingestion".to_owned()),
            (false, None) if !handle.is_aborted() => Err("a failed ingestion did not abort the sink".to_owned()),
            (false, None) => Ok(()),
        }
    }
}

/// [`NullSink`]: nothing to check beyond the recorded calls.
#[derive(Debug, Default)]
pub struct NullTarget;

impl SinkTarget for NullTarget {
    type Sink = NullSink;

    fn name(&self) -> &'static str {
        "null"
    }

    async fn make(&mut self) -> NullSink {
        NullSink
    }

    async fn verify(&mut self, _committed: bool, _expected: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

/// [`FileSink`] in a temporary directory: the target holds the complete
/// content if and only if committed, and no temporary file is left.
#[derive(Debug)]
pub struct FileTarget {
    dir: tempfile::TempDir,
    case: u64,
    target: Option<PathBuf>,
}

impl FileTarget {
    /// A target in a fresh temporary directory.
    ///
    /// # Panics
    ///
    /// If the temporary directory cannot be created.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("create a temporary directory"),
            case: 0,
            target: None,
        }
    }

    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path())
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".weir-tmp"))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Default for FileTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl SinkTarget for FileTarget {
    type Sink = FileSink;

    fn name(&self) -> &'static str {
        "file"
    }

    async fn make(&mut self) -> FileSink {
        self.case += 1;
        let target = self.dir.path().join(format!("case-{}.bin", self.case));
        self.target = Some(target.clone());
        FileSink::create(target).expect("create a file sink")
    }

    async fn verify(&mut self, committed: bool, expected: &[u8]) -> Result<(), String> {
        let target = self.target.take().ok_or("no sink was made")?;
        // A sink whose abort was given up on cleans up on its own thread
        // once dropped: allow it a moment, in real time.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.leftovers().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let leftovers = self.leftovers();
        if !leftovers.is_empty() {
            return Err(format!("temporary files left: {leftovers:?}"));
        }
        match (committed, std::fs::read(&target)) {
            (true, Ok(content)) if content == expected => Ok(()),
            (true, Ok(content)) => Err(format!(
                "target holds {} bytes, expected {}",
                content.len(),
                expected.len()
            )),
            (true, Err(e)) => Err(format!("ingest succeeded but the target is missing: {e}")),
            (false, Ok(_)) => Err("the target exists after a failed ingestion".to_owned()),
            (false, Err(_)) => Ok(()),
        }
    }

    fn real_io(&self) -> bool {
        true
    }
}

/// The commit step [`WriterTarget`] gives its [`WriterSink`]: publishes the
/// flushed bytes.
pub type WriterCommit = Box<dyn FnOnce(Vec<u8>) -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>> + Send>;

/// [`WriterSink`] over an in-memory writer whose commit step publishes what
/// was written: the published bytes are the complete content if and only if
/// committed, and nothing is published after a failure.
#[derive(Debug, Default)]
pub struct WriterTarget {
    published: Arc<Mutex<Option<Vec<u8>>>>,
}

impl SinkTarget for WriterTarget {
    type Sink = WriterSink<Vec<u8>, WriterCommit>;

    fn name(&self) -> &'static str {
        "writer"
    }

    async fn make(&mut self) -> Self::Sink {
        self.published = Arc::new(Mutex::new(None));
        let published = Arc::clone(&self.published);
        let commit: WriterCommit = Box::new(move |written: Vec<u8>| {
            Box::pin(async move {
                *published.lock().map_err(|_| "the published slot is poisoned")? = Some(written);
                Ok(())
            })
        });
        WriterSink::new(Vec::new(), commit)
    }

    async fn verify(&mut self, committed: bool, expected: &[u8]) -> Result<(), String> {
        let published = self.published.lock().map_err(|_| "poisoned")?.take();
        match (committed, published) {
            (true, Some(content)) if content == expected => Ok(()),
            (true, Some(content)) => Err(format!(
                "committed {} bytes, expected {}",
                content.len(),
                expected.len()
            )),
            (true, None) => Err("ingest succeeded but nothing was published".to_owned()),
            (false, Some(_)) => Err("content published after a failed ingestion".to_owned()),
            (false, None) => Ok(()),
        }
    }
}
