//! `FileSink`: atomic commit by rename; nothing left behind on abort; no
//! leaked descriptors over many failing ingestions.

use std::path::Path;

use bytes::Bytes;
use futures_util::stream;
use weir::source::FileSource;
use weir::{CancellationToken, ErrorKind, FileSink, IngestOptions, ingest};

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
