//! The source helpers: file and `AsyncRead`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use weir::source::{FileSource, from_async_read};
use weir::{CancellationToken, ErrorKind, IngestOptions, MemorySink, NullSink, OptionsError, ingest};

use crate::support::open_fds;

#[tokio::test]
async fn file_source_reads_the_whole_file_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input.bin");
    let data: Vec<u8> = (0..1_000_003u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &data).unwrap();

    let mut source = FileSource::open(&path, 4096).unwrap();
    let mut sizes = Vec::new();
    let mut read = Vec::new();
    while let Some(chunk) = source.next().await {
        let chunk = chunk.unwrap();
        sizes.push(chunk.len());
        read.extend_from_slice(&chunk);
    }
    assert_eq!(read, data);
    assert!(sizes.iter().all(|&s| s <= 4096));
    assert_eq!(sizes.len(), 1_000_003usize.div_ceil(4096));
}

#[tokio::test]
async fn dropping_a_file_source_early_closes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input.bin");
    std::fs::write(&path, vec![7u8; 1 << 20]).unwrap();
    let before = open_fds();
    for _ in 0..50 {
        let mut source = FileSource::open(&path, 1024).unwrap();
        let _ = source.next().await;
        drop(source);
    }
    assert_eq!(open_fds(), before);
}

#[test]
fn zero_chunk_sizes_are_refused() {
    assert_eq!(
        FileSource::open("/dev/null", 0).unwrap_err().kind(),
        std::io::ErrorKind::InvalidInput
    );
    assert_eq!(
        from_async_read(tokio::io::empty(), 0).unwrap_err(),
        OptionsError::ZeroChunkSize
    );
}

#[tokio::test]
async fn async_read_source_feeds_an_ingestion() {
    let data = vec![42u8; 100_000];
    let source = from_async_read(&data[..], 8192).unwrap();
    let sink = MemorySink::new();
    let handle = sink.handle();
    let report = ingest(source, sink, IngestOptions::default()).await.unwrap();
    assert_eq!(report.bytes_written, 100_000);
    assert_eq!(handle.committed().unwrap().len(), 100_000);
}

/// Threads of this process with `name`.
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|comm| comm.trim_end() == name)
                .count()
        })
        .unwrap_or(0)
}

/// Cancels an ingestion from a `FileSource` over `file`, whose writer stays
/// silent, on a runtime of its own (on another thread, so that a deadlock
/// shows up as a timeout here instead of a hung test). Returns the error,
/// how many heartbeats the runtime ran while the source waited, and how
/// long the cancel took to return.
fn cancel_silent(file: std::fs::File, runtime: tokio::runtime::Runtime) -> (weir::IngestError, u32, Duration) {
    let (done, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = runtime.block_on(async {
            let token = CancellationToken::new();
            let beats = Arc::new(AtomicU32::new(0));
            let beating = Arc::clone(&beats);
            let heartbeat = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    beating.fetch_add(1, Ordering::Relaxed);
                }
            });
            let source = FileSource::from_std(file, 4096).unwrap();
            let options = IngestOptions::builder().cancel_token(token.clone()).build();
            let run = tokio::spawn(ingest(source, NullSink, options));
            tokio::time::sleep(Duration::from_millis(30)).await;
            let cancelled_at = std::time::Instant::now();
            token.cancel();
            let err = run.await.unwrap().unwrap_err();
            let took = cancelled_at.elapsed();
            heartbeat.abort();
            (err, beats.load(Ordering::Relaxed), took)
        });
        let _ = done.send(result);
    });
    outcome
        .recv_timeout(Duration::from_secs(20))
        .expect("cancelling the ingestion did not return: the runtime is blocked")
}

fn runtimes() -> [(&'static str, tokio::runtime::Runtime); 2] {
    [
        (
            "current-thread",
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        ),
        (
            "multi-thread",
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
        ),
    ]
}

#[test]
fn cancelling_a_file_source_on_a_silent_pipe_returns_without_blocking_the_runtime() {
    for (flavor, runtime) in runtimes() {
        let (reader, writer) = std::io::pipe().unwrap();
        let (err, beats, took) = cancel_silent(std::fs::File::from(std::os::fd::OwnedFd::from(reader)), runtime);
        assert_eq!(err.kind(), ErrorKind::Cancelled, "{flavor}: {err}");
        assert!(beats > 0, "{flavor}: the runtime ran nothing while the source waited");
        assert_eq!(
            threads_named("weir-file-source"),
            0,
            "{flavor}: a reader thread outlived the ingestion"
        );
        // The latency is measured by the cancel_latency example; here only
        // that it returned while the writer still holds the pipe open.
        drop(writer);
        eprintln!("{flavor}: cancel returned in {took:?}");
    }
}

#[test]
fn cancelling_a_file_source_on_a_silent_socket_returns_without_blocking_the_runtime() {
    for (flavor, runtime) in runtimes() {
        let (reader, writer) = std::os::unix::net::UnixStream::pair().unwrap();
        let (err, beats, _) = cancel_silent(std::fs::File::from(std::os::fd::OwnedFd::from(reader)), runtime);
        assert_eq!(err.kind(), ErrorKind::Cancelled, "{flavor}: {err}");
        assert!(beats > 0, "{flavor}: the runtime ran nothing while the source waited");
        assert_eq!(
            threads_named("weir-file-source"),
            0,
            "{flavor}: a reader thread outlived the ingestion"
        );
        drop(writer);
    }
}

#[tokio::test]
async fn a_file_source_on_a_pipe_reads_everything_and_restores_blocking_mode() {
    let (reader, mut writer) = std::io::pipe().unwrap();
    let reader = std::fs::File::from(std::os::fd::OwnedFd::from(reader));
    let shared = reader.try_clone().unwrap();
    let feeder = std::thread::spawn(move || {
        for i in 0..100u8 {
            std::io::Write::write_all(&mut writer, &[i; 1000]).unwrap();
        }
    });
    let source = FileSource::from_std(reader, 4096).unwrap();
    let sink = MemorySink::new();
    let handle = sink.handle();
    ingest(source, sink, IngestOptions::default()).await.unwrap();
    feeder.join().unwrap();
    let expected: Vec<u8> = (0..100u8).flat_map(|i| [i; 1000]).collect();
    assert!(handle.committed().unwrap() == expected);
    // The descriptor's file description is shared: it is blocking again.
    let flags = rustix::fs::fcntl_getfl(&shared).unwrap();
    assert!(!flags.contains(rustix::fs::OFlags::NONBLOCK));
}
