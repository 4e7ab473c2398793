//! The source helpers: file and `AsyncRead`.

use futures_util::StreamExt;
use weir::source::{FileSource, from_async_read};
use weir::{IngestOptions, MemorySink, OptionsError, ingest};

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
