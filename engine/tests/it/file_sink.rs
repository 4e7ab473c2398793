//! `FileSink`: atomic commit by rename; nothing left behind on abort; no
//! leaked descriptors over many failing ingestions.

use std::path::Path;

use bytes::Bytes;
use futures_util::stream;
use weir::source::FileSource;
use weir::{CancellationToken, ErrorKind, FileSink, FileSinkError, FileSinkOptions, IngestOptions, ingest};

use crate::support::{chunks, failing_source, open_fds, source_of};

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".weir-tmp"))
        .collect()
}

#[tokio::test]
async fn commit_renames_the_complete_file_into_place() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.bin");
    let input = chunks(100, 1000);
    let sink = FileSink::create(&target).unwrap();
    assert!(!target.exists(), "nothing is visible before the commit");
    ingest(source_of(input.clone()), sink, IngestOptions::default())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), input.concat());
    assert!(leftovers(dir.path()).is_empty());
}

#[tokio::test]
async fn abort_keeps_the_old_target_and_removes_the_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.bin");
    std::fs::write(&target, b"previous version").unwrap();
    let sink = FileSink::create(&target).unwrap();
    let err = ingest(failing_source(chunks(10, 1000)), sink, IngestOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Source);
    assert_eq!(std::fs::read(&target).unwrap(), b"previous version");
    assert!(leftovers(dir.path()).is_empty());
}

#[tokio::test]
async fn a_sink_dropped_without_a_terminal_call_still_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FileSink::create(dir.path().join("out.bin")).unwrap();
    drop(sink);
    // The writer thread removes the file as it ends; give it a moment.
    for _ in 0..200 {
        if leftovers(dir.path()).is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(leftovers(dir.path()).is_empty());
    assert!(!dir.path().join("out.bin").exists());
}

#[test]
fn a_target_without_a_file_name_is_refused() {
    let err = FileSink::create("/").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

/// 1,000 failing ingestions from real files into real files: every way of
/// failing, and afterwards the same open descriptors, no temporary file, no
/// partial target, and no task still alive on the runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_failing_ingestions_leak_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.bin");
    std::fs::write(&input, vec![1u8; 256 * 1024]).unwrap();
    let fds_before = open_fds();
    let tasks_before = tokio::runtime::Handle::current().metrics().num_alive_tasks();

    for i in 0..1000u32 {
        let target = dir.path().join(format!("out-{i}.bin"));
        let sink = FileSink::create(&target).unwrap();
        let source = FileSource::open(&input, 16 * 1024).unwrap();
        let result = match i % 4 {
            // Invalid options.
            0 => ingest(source, sink, IngestOptions::builder().max_in_flight(0).build()).await,
            // Cancelled before it starts.
            1 => {
                let token = CancellationToken::new();
                token.cancel();
                ingest(source, sink, IngestOptions::builder().cancel_token(token).build()).await
            }
            // The source fails midway.
            2 => {
                drop(source);
                let failing = stream::iter([Ok(Bytes::from_static(b"partial")), Err(std::io::Error::other("gone"))]);
                ingest(failing, sink, IngestOptions::default()).await
            }
            // A transform fails midway.
            _ => {
                let options = IngestOptions::builder()
                    .transform(FailAfter(3))
                    .max_in_flight(4)
                    .build();
                ingest(source, sink, options).await
            }
        };
        assert!(result.is_err(), "ingestion {i} should fail");
        assert!(!target.exists(), "ingestion {i} left a partial target");
    }

    assert_eq!(open_fds(), fds_before, "file descriptors leaked");
    assert!(leftovers(dir.path()).is_empty(), "temporary files left");
    assert_eq!(
        tokio::runtime::Handle::current().metrics().num_alive_tasks(),
        tasks_before,
        "tasks outlived their ingestion"
    );
}

struct FailAfter(u32);

impl weir::Transform for FailAfter {
    fn name(&self) -> &str {
        "fail-after"
    }

    fn transform(&mut self, chunk: Bytes, out: &mut Vec<Bytes>) -> Result<(), weir::BoxError> {
        if self.0 == 0 {
            return Err("transform gave up".into());
        }
        self.0 -= 1;
        out.push(chunk);
        Ok(())
    }
}

/// The error's whole chain, as one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[test]
fn create_in_a_missing_directory_names_the_target_not_the_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("missing").join("out.bin");
    let err = FileSink::create(&target).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    let text = chain(&err);
    assert!(text.contains(&target.display().to_string()), "{text}");
    assert!(!text.contains(".weir-tmp"), "{text}");
    let detail = err.get_ref().and_then(|e| e.downcast_ref::<FileSinkError>()).unwrap();
    assert_eq!(detail.io_error().and_then(std::io::Error::raw_os_error), Some(2));
}

#[tokio::test]
async fn finalize_onto_a_directory_names_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("taken");
    std::fs::create_dir(target.join("")).unwrap();
    std::fs::write(target.join("inside"), b"x").unwrap();
    let sink = FileSink::create(&target).unwrap();
    let err = ingest(source_of(chunks(3, 100)), sink, IngestOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Finalize);
    let text = chain(&err);
    assert!(text.contains(&target.display().to_string()), "{text}");
    assert!(text.contains("renaming"), "{text}");
    assert!(leftovers(dir.path()).is_empty());
}

/// Threads of this process named `name`.
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_thread_is_gone_when_ingest_returns() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..500u32 {
        let target = dir.path().join(format!("out-{}.bin", i % 3));
        let sink = FileSink::create(&target).unwrap();
        let result = if i % 2 == 0 {
            ingest(source_of(chunks(4, 1000)), sink, IngestOptions::default()).await
        } else {
            ingest(failing_source(chunks(4, 1000)), sink, IngestOptions::default()).await
        };
        assert_eq!(result.is_ok(), i % 2 == 0, "ingestion {i}");
        assert_eq!(
            threads_named("weir-file-sink"),
            0,
            "ingestion {i}: the writer thread outlived it"
        );
    }
    assert!(leftovers(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_ingest_during_finalize_commits_the_complete_file_never_a_partial_one() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        // Fewer chunks than WRITE_BEHIND: every write is acknowledged ahead
        // of the disk, so one poll runs the loop to `finalize`, which waits
        // for the writer thread.
        let input = chunks(6, 4096);
        let sink = FileSink::create(&target).unwrap();
        let mut run = tokio_test::task::spawn(ingest(source_of(input.clone()), sink, IngestOptions::default()));
        let polled = run.poll();
        drop(run);
        // The commit handed to the writer thread completes on its own.
        for _ in 0..1000 {
            if leftovers(dir.path()).is_empty() && threads_named("weir-file-sink") == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        assert!(leftovers(dir.path()).is_empty());
        assert_eq!(std::fs::read(&target).unwrap(), input.concat(), "polled: {polled:?}");
    }
}

#[tokio::test]
async fn a_sweep_removes_stale_temporary_files_and_never_a_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.bin");
    // What a killed process leaves: an unlocked temporary file.
    let stale = dir.path().join(".out.bin.k1ll3d.weir-tmp");
    std::fs::write(&stale, b"half").unwrap();
    let unrelated = dir.path().join("notes.txt");
    std::fs::write(&unrelated, b"keep").unwrap();
    let live = FileSink::create(&target).unwrap();

    let removed = FileSink::sweep_stale(dir.path(), std::time::Duration::ZERO).unwrap();
    assert_eq!(removed, vec![stale.clone()]);
    assert!(!stale.exists());
    assert!(unrelated.exists());
    assert_eq!(leftovers(dir.path()).len(), 1, "the live sink's file is kept");
    // A minimum age spares fresh files, locked or not.
    std::fs::write(&stale, b"half").unwrap();
    assert!(
        FileSink::sweep_stale(dir.path(), std::time::Duration::from_secs(3600))
            .unwrap()
            .is_empty()
    );
    std::fs::remove_file(&stale).unwrap();

    // The live sink still commits.
    ingest(source_of(chunks(3, 10)), live, IngestOptions::default())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), chunks(3, 10).concat());
    assert!(leftovers(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_byte_chunks_are_committed_whole() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.bin");
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let sink = FileSink::create(&target).unwrap();
    let options = IngestOptions::builder().chunk_size(1).build();
    let report = ingest(source_of(vec![Bytes::from(data.clone())]), sink, options)
        .await
        .unwrap();
    assert_eq!(report.chunks_written, 1_000_000);
    assert!(std::fs::read(&target).unwrap() == data);
}

// Real time: a paused clock would jump past the abort timeout while the
// runtime waits for the writer thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_after_a_timed_out_finalize_says_the_commit_completed() {
    // A finalize that takes longer than its timeout: the writer thread is
    // slow to start the commit because it is busy.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.bin");
    let sink = FileSink::create(&target).unwrap();
    let options = IngestOptions::builder()
        .finalize_timeout(std::time::Duration::from_nanos(1))
        .build();
    let result = ingest(source_of(chunks(64, 64 * 1024)), sink, options).await;
    match result {
        // The thread was quick enough.
        Ok(_) => assert!(target.exists()),
        Err(err) => {
            assert_eq!(err.kind(), ErrorKind::FinalizeTimeout);
            // The file is either not committed (and removed), or committed
            // and the abort says so.
            if target.exists() {
                let failure = err.abort_failure().map(|f| chain(f)).unwrap_or_default();
                assert!(failure.contains("commit had completed"), "{failure}");
            }
            assert!(leftovers(dir.path()).is_empty());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_of_mixed_sizes_are_committed_whole_and_in_order() {
    // Small ones are gathered on the ingestion's side, mid-sized ones by
    // the writer thread, large ones written as they are.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.bin");
    let sizes = [
        1024,
        3,
        20 * 1024,
        1024,
        100 * 1024,
        64 * 1024,
        1,
        16 * 1024 - 1,
        70_000,
        5,
    ];
    let input: Vec<Bytes> = sizes
        .iter()
        .cycle()
        .take(200)
        .enumerate()
        .map(|(i, &n)| Bytes::from(vec![u8::try_from(i % 251).unwrap(); n]))
        .collect();
    // The default gathering, a small one (a server with many slow
    // uploads), and none at all.
    for coalesce in [weir::COALESCE, 16 * 1024, 4096, 0] {
        let sink_options = FileSinkOptions::new().coalesce(coalesce).write_behind_bytes(32 * 1024);
        let sink = FileSink::create_with(&target, sink_options).unwrap();
        let options = IngestOptions::builder().chunk_size(128 * 1024).max_in_flight(4).build();
        let report = ingest(source_of(input.clone()), sink, options).await.unwrap();
        assert_eq!(report.chunks_written, 200, "coalesce {coalesce}");
        assert!(std::fs::read(&target).unwrap() == input.concat(), "coalesce {coalesce}");
    }
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn a_gather_size_over_the_largest_is_refused_naming_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("big.bin");
    let error = FileSink::create_with(&target, FileSinkOptions::new().coalesce(64 << 20)).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    let text = error.to_string();
    assert!(text.contains("big.bin") && text.contains("coalesce"), "{text}");
    assert!(leftovers(dir.path()).is_empty(), "nothing created");
}
