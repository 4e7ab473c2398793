//! Compressed round trips through real files: compress into a `FileSink`,
//! decompress from a `FileSource`, and compare digests.

use std::path::Path;

use weir::source::FileSource;
use weir::{ErrorKind, FileSink, IngestOptions, NullSink, ingest};
use weir_transforms::{Codec, Compress, Decompress, Sha256, TransformError, digest_in};

use crate::support::{chunked, records};

/// Compresses `data` into `path` and returns the input's digest, as the
/// compressing ingestion reported it.
async fn compress_to(data: &[u8], codec: Codec, path: &Path) -> String {
    let options = IngestOptions::builder()
        .transform(Sha256::new())
        .transform(Compress::new(codec))
        .build();
    let report = ingest(chunked(data, 65_536), FileSink::create(path).unwrap(), options)
        .await
        .unwrap();
    let compress = &report.stages[1];
    assert_eq!(compress.bytes_in, data.len() as u64);
    assert_eq!(compress.bytes_out, std::fs::metadata(path).unwrap().len());
    assert!(compress.offloaded);
    digest_in(&report.stages, "sha256").unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_round_trip_reproduces_the_input_digest() {
    let dir = tempfile::tempdir().unwrap();
    // Text records compress well; random bytes do not compress at all.
    let mut data = records(3_000_000);
    data.extend(weir_harness::synthetic_bytes(9, 1_000_000, 4096));
    for codec in [Codec::Zstd, Codec::Gzip] {
        let path = dir.path().join(format!("data.{codec}"));
        let input_digest = compress_to(&data, codec, &path).await;
        let compressed = std::fs::metadata(&path).unwrap().len();
        assert!(compressed < data.len() as u64 * 3 / 4, "{codec}: {compressed} bytes");

        let options = IngestOptions::builder()
            .transform(Decompress::new(codec))
            .transform(Sha256::new())
            .build();
        let source = FileSource::open(&path, 16 * 1024).unwrap();
        let report = ingest(source, NullSink, options).await.unwrap();

        assert_eq!(report.bytes_read, compressed);
        assert_eq!(report.bytes_written, data.len() as u64);
        let decompress = &report.stages[0];
        assert_eq!(
            (decompress.bytes_in, decompress.bytes_out),
            (compressed, data.len() as u64)
        );
        assert!(decompress.chunks_out > 1);
        assert_eq!(
            digest_in(&report.stages, "sha256"),
            Some(input_digest.as_str()),
            "{codec}"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_truncated_file_fails_decompression_and_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = records(500_000);
    for codec in [Codec::Zstd, Codec::Gzip] {
        let path = dir.path().join(format!("data.{codec}"));
        compress_to(&data, codec, &path).await;
        let full = std::fs::read(&path).unwrap();
        std::fs::write(&path, &full[..full.len() / 2]).unwrap();

        let target = dir.path().join(format!("out.{codec}"));
        let options = IngestOptions::builder().transform(Decompress::new(codec)).build();
        let source = FileSource::open(&path, 8192).unwrap();
        let error = ingest(source, FileSink::create(&target).unwrap(), options)
            .await
            .unwrap_err();

        assert_eq!(error.kind(), ErrorKind::Transform, "{codec}: {error}");
        let source = std::error::Error::source(&error).unwrap();
        assert!(
            matches!(
                source.downcast_ref::<TransformError>(),
                Some(TransformError::Codec { .. })
            ),
            "{codec}: {source}"
        );
        assert!(!target.exists(), "{codec}: nothing may be committed");
    }
}
