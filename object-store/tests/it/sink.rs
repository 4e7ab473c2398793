//! `ObjectStoreSink`'s lifecycle on the in-memory and local-filesystem
//! backends: what is visible after a commit, an abort, a failed part, a
//! failed complete and a cancellation.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures_util::StreamExt as _;
use object_store::ObjectStore;
use object_store::ObjectStoreExt as _;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use weir::{CancellationToken, ErrorKind, IngestOptions, ingest};
use weir_object_store::{Error, ObjectStoreSink};

use crate::support::{FlakyStore, chunked, failing_after, list_all, read, sha256_hex};

/// A backend under test, with the directory that backs it (if any).
struct Backend {
    name: &'static str,
    store: Arc<dyn ObjectStore>,
    dir: Option<tempfile::TempDir>,
}

impl Backend {
    /// Every file under the backing directory, staging files included.
    fn files(&self) -> Vec<String> {
        fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
                if entry.file_type().unwrap().is_dir() {
                    walk(&entry.path(), out);
                } else {
                    out.push(entry.path().display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        if let Some(dir) = &self.dir {
            walk(dir.path(), &mut out);
        }
        out
    }
}

fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    vec![
        Backend {
            name: "memory",
            store: Arc::new(InMemory::new()),
            dir: None,
        },
        Backend {
            name: "local",
            store: Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap()),
            dir: Some(dir),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalize_commits_exactly_the_source_bytes() {
    let data = weir_harness::synthetic_bytes(5, 1_000_003, 4096);
    for backend in backends() {
        for max_in_flight in [1, 4] {
            let location = format!("dir/object-{max_in_flight}.bin");
            let sink = ObjectStoreSink::builder(location.as_str())
                .part_size(65_537)
                .create(backend.store.as_ref())
                .await
                .unwrap();
            let options = IngestOptions::builder()
                .chunk_size(10_000)
                .max_in_flight(max_in_flight)
                .build();

            let report = ingest(chunked(&data, 30_000), sink, options).await.unwrap();

            assert_eq!(report.bytes_written, data.len() as u64);
            let stored = read(backend.store.as_ref(), &location).await.unwrap();
            assert_eq!(
                sha256_hex(&stored),
                sha256_hex(&data),
                "{}: stored digest",
                backend.name
            );
        }
        let listed = list_all(backend.store.as_ref()).await;
        let expected: Vec<(String, u64)> = ["dir/object-1.bin", "dir/object-4.bin"]
            .iter()
            .map(|p| ((*p).to_owned(), data.len() as u64))
            .collect();
        assert_eq!(listed, expected, "{}", backend.name);
        assert_eq!(
            backend.files().len(),
            if backend.dir.is_some() { 2 } else { 0 },
            "{}",
            backend.name
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn parts_are_cut_at_the_part_size_and_only_the_last_is_short() {
    let store = FlakyStore::new(None, false);
    let calls = Arc::clone(&store.calls);
    let data = weir_harness::synthetic_bytes(6, 250_000, 4096);
    let sink = ObjectStoreSink::builder("parts.bin")
        .part_size(100_000)
        .create(&store)
        .await
        .unwrap();
    ingest(chunked(&data, 7_777), sink, IngestOptions::default())
        .await
        .unwrap();
    assert_eq!(calls.parts.load(Ordering::SeqCst), 3);
    assert_eq!(calls.completes.load(Ordering::SeqCst), 1);
    assert_eq!(calls.aborts.load(Ordering::SeqCst), 0);
    assert_eq!(read(&store, "parts.bin").await.as_deref(), Some(&data[..]));
}

#[tokio::test(flavor = "current_thread")]
async fn an_empty_stream_commits_an_empty_object() {
    for backend in backends() {
        let sink = ObjectStoreSink::create(backend.store.as_ref(), "empty").await.unwrap();
        ingest(chunked(b"", 1), sink, IngestOptions::default()).await.unwrap();
        assert_eq!(
            read(backend.store.as_ref(), "empty").await.as_deref(),
            Some(&b""[..]),
            "{}",
            backend.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_abort_nothing_is_visible_at_the_target() {
    let data = weir_harness::synthetic_bytes(7, 500_000, 4096);
    for backend in backends() {
        let sink = ObjectStoreSink::builder("aborted.bin")
            .part_size(50_000)
            .create(backend.store.as_ref())
            .await
            .unwrap();
        let options = IngestOptions::builder().max_in_flight(3).build();

        // Several parts are uploaded before the source breaks.
        let error = ingest(failing_after(&data, 20_000), sink, options).await.unwrap_err();

        assert_eq!(error.kind(), ErrorKind::Source, "{}", backend.name);
        assert!(error.abort_failure().is_none(), "{}: {error}", backend.name);
        assert!(error.report().abort.as_ref().is_some_and(|a| a.clean));
        assert_eq!(
            read(backend.store.as_ref(), "aborted.bin").await,
            None,
            "{}",
            backend.name
        );
        assert!(list_all(backend.store.as_ref()).await.is_empty(), "{}", backend.name);
        assert!(backend.files().is_empty(), "{}: {:?}", backend.name, backend.files());
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_aborted_upload_keeps_the_previous_object() {
    for backend in backends() {
        let location = Path::from("kept.txt");
        backend
            .store
            .put(&location, Bytes::from_static(b"old").into())
            .await
            .unwrap();

        let sink = ObjectStoreSink::builder(location.clone())
            .part_size(10)
            .create(backend.store.as_ref())
            .await
            .unwrap();
        let error = ingest(failing_after(&[b'n'; 100], 7), sink, IngestOptions::default())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Source);
        assert_eq!(
            read(backend.store.as_ref(), "kept.txt").await.as_deref(),
            Some(&b"old"[..]),
            "{}",
            backend.name
        );

        let sink = ObjectStoreSink::create(backend.store.as_ref(), location).await.unwrap();
        ingest(chunked(b"new", 2), sink, IngestOptions::default())
            .await
            .unwrap();
        assert_eq!(
            read(backend.store.as_ref(), "kept.txt").await.as_deref(),
            Some(&b"new"[..]),
            "{}",
            backend.name
        );
        assert_eq!(
            backend.files().len(),
            usize::from(backend.dir.is_some()),
            "{}",
            backend.name
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_part_upload_fails_the_write_and_aborts_the_upload() {
    let store = FlakyStore::new(Some(2), false);
    let calls = Arc::clone(&store.calls);
    let sink = ObjectStoreSink::builder("flaky.bin")
        .part_size(1000)
        .create(&store)
        .await
        .unwrap();

    let error = ingest(chunked(&[1u8; 10_000], 500), sink, IngestOptions::default())
        .await
        .unwrap_err();

    assert_eq!(error.kind(), ErrorKind::Write);
    let source = std::error::Error::source(&error).unwrap();
    let source = source.downcast_ref::<Error>().unwrap();
    assert!(
        matches!(
            source,
            Error::Store {
                operation: "part upload",
                ..
            }
        ),
        "{source}"
    );
    assert_eq!(calls.parts.load(Ordering::SeqCst), 3);
    assert_eq!(calls.completes.load(Ordering::SeqCst), 0);
    assert_eq!(calls.aborts.load(Ordering::SeqCst), 1);
    assert!(list_all(&store).await.is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_complete_fails_finalize_and_aborts_the_upload() {
    let store = FlakyStore::new(None, true);
    let calls = Arc::clone(&store.calls);
    let sink = ObjectStoreSink::create(&store, "incomplete.bin").await.unwrap();

    let error = ingest(chunked(b"almost there", 5), sink, IngestOptions::default())
        .await
        .unwrap_err();

    assert_eq!(error.kind(), ErrorKind::Finalize);
    assert_eq!(calls.completes.load(Ordering::SeqCst), 1);
    assert_eq!(calls.aborts.load(Ordering::SeqCst), 1);
    assert!(list_all(&store).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_mid_upload_commits_nothing() {
    for backend in backends() {
        let token = CancellationToken::new();
        let canceller = token.clone();
        // The source cancels the ingestion when it reaches chunk 20.
        let source = chunked(&[9u8; 100_000], 1000).enumerate().map(move |(i, chunk)| {
            if i == 20 {
                canceller.cancel();
            }
            chunk
        });
        let sink = ObjectStoreSink::builder("cancelled.bin")
            .part_size(4096)
            .create(backend.store.as_ref())
            .await
            .unwrap();
        let options = IngestOptions::builder().cancel_token(token).build();

        let error = ingest(source, sink, options).await.unwrap_err();

        assert!(error.is_cancelled(), "{}: {error}", backend.name);
        assert!(list_all(backend.store.as_ref()).await.is_empty(), "{}", backend.name);
        assert!(backend.files().is_empty(), "{}: {:?}", backend.name, backend.files());
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_zero_part_size_is_refused_before_any_upload_starts() {
    let store = FlakyStore::new(None, false);
    let error = ObjectStoreSink::builder("x")
        .part_size(0)
        .create(&store)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::ZeroSize { what: "part size" }), "{error}");
    assert_eq!(error.to_string(), "part size must be at least 1 byte, got 0");
}

/// Regression guard: a sink dropped without a terminal call (outside
/// `ingest`) does not leave a staging file on the local filesystem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_sink_cleans_up_its_upload() {
    let backend = backends().pop().unwrap();
    let mut sink = ObjectStoreSink::builder("dropped.bin")
        .part_size(10)
        .create(backend.store.as_ref())
        .await
        .unwrap();
    weir::Sink::write(&mut sink, Bytes::from_static(b"0123456789abc"))
        .await
        .unwrap();
    assert!(!backend.files().is_empty(), "a staging file exists while uploading");
    drop(sink);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !backend.files().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(backend.files().is_empty(), "{:?}", backend.files());
    assert_eq!(read(backend.store.as_ref(), "dropped.bin").await, None);
}
