//! The chaos conformance suite (weir-testkit) against `ObjectStoreSink`: the
//! same failure schedules and invariant checks as every other sink, plus
//! this sink's own postconditions: after a commit the stored digest equals
//! the source digest; after an abort nothing is visible at the target.
//!
//! `PROPTEST_CASES` sets the number of schedules (default 10,000 on the
//! in-memory backend; the local-filesystem backend, which does real I/O,
//! runs a tenth of that).

use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use weir_object_store::ObjectStoreSink;
use weir_testkit::{SinkTarget, cases_from_env as cases, suite};

use crate::support::{list_all, read, sha256_hex};

/// Part sizes cycled over the cases: one byte, smaller and larger than the
/// schedules' chunks, and larger than any case's input.
const PART_SIZES: [usize; 5] = [1, 7, 64, 100, 1 << 20];

/// `ObjectStoreSink` on a fresh in-memory store per case.
#[derive(Debug, Default)]
struct InMemoryTarget {
    case: usize,
    store: Option<Arc<InMemory>>,
}

impl SinkTarget for InMemoryTarget {
    type Sink = ObjectStoreSink;

    fn name(&self) -> &'static str {
        "object-store (in-memory)"
    }

    async fn make(&mut self) -> ObjectStoreSink {
        self.case += 1;
        let store = Arc::new(InMemory::new());
        self.store = Some(Arc::clone(&store));
        ObjectStoreSink::builder("target.bin")
            .part_size(PART_SIZES[self.case % PART_SIZES.len()])
            .create(store.as_ref())
            .await
            .expect("start an in-memory upload")
    }

    async fn verify(&mut self, committed: bool, expected: &[u8]) -> Result<(), String> {
        let store = self.store.take().ok_or("no sink was made")?;
        visible_state(store.as_ref(), committed, expected).await
    }
}

/// `ObjectStoreSink` on the local filesystem, one directory for all cases.
#[derive(Debug)]
struct LocalTarget {
    dir: tempfile::TempDir,
    case: usize,
    store: Option<Arc<LocalFileSystem>>,
}

impl LocalTarget {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("create a temporary directory"),
            case: 0,
            store: None,
        }
    }

    /// Files under this case's directory, staging files included.
    fn files(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path().join(self.case.to_string()))
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl SinkTarget for LocalTarget {
    type Sink = ObjectStoreSink;

    fn name(&self) -> &'static str {
        "object-store (local)"
    }

    async fn make(&mut self) -> ObjectStoreSink {
        self.case += 1;
        let root = self.dir.path().join(self.case.to_string());
        std::fs::create_dir_all(&root).expect("create the case directory");
        let store = Arc::new(LocalFileSystem::new_with_prefix(&root).expect("open the local store"));
        self.store = Some(Arc::clone(&store));
        ObjectStoreSink::builder("target.bin")
            .part_size(PART_SIZES[self.case % PART_SIZES.len()])
            .create(store.as_ref())
            .await
            .expect("start a local upload")
    }

    async fn verify(&mut self, committed: bool, expected: &[u8]) -> Result<(), String> {
        let store = self.store.take().ok_or("no sink was made")?;
        // An abort the engine gave up on finishes on the blocking pool, and
        // a dropped upload removes its staging file there: allow a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.files().len() > usize::from(committed) && Instant::now() < deadline {
            // Yield, not sleep the thread: on the case's current-thread runtime
            // the dropped upload's abort task must get to run.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let files = self.files();
        let wanted: Vec<String> = if committed {
            vec!["target.bin".to_owned()]
        } else {
            Vec::new()
        };
        if files != wanted {
            return Err(format!("files left: {files:?}, expected {wanted:?}"));
        }
        visible_state(store.as_ref(), committed, expected).await
    }

    fn real_io(&self) -> bool {
        true
    }
}

/// Committed: exactly one object, whose digest is the source's. Not
/// committed: nothing at all.
async fn visible_state(store: &dyn ObjectStore, committed: bool, expected: &[u8]) -> Result<(), String> {
    let listed = list_all(store).await;
    let stored = read(store, "target.bin").await;
    match (committed, stored) {
        (true, Some(content)) => {
            if sha256_hex(&content) != sha256_hex(expected) {
                return Err(format!(
                    "stored digest differs from the source's ({} bytes stored, {} expected)",
                    content.len(),
                    expected.len()
                ));
            }
            if listed.len() != 1 {
                return Err(format!("objects besides the target: {listed:?}"));
            }
            Ok(())
        }
        (true, None) => Err("ingest succeeded but the object is missing".to_owned()),
        (false, Some(content)) => Err(format!("{} bytes visible after a failed ingestion", content.len())),
        (false, None) if !listed.is_empty() => Err(format!("objects visible after a failed ingestion: {listed:?}")),
        (false, None) => Ok(()),
    }
}

#[test]
fn invariant_holds_for_object_store_sink_in_memory() {
    suite(InMemoryTarget::default(), cases());
}

#[test]
fn invariant_holds_for_object_store_sink_on_local_filesystem() {
    suite(LocalTarget::new(), (cases() / 10).max(1));
}
