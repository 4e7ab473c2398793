//! The transforms inside `ingest`: output, per-stage metrics, digests and
//! errors as the engine reports them.

use bytes::Bytes;
use weir::{Cause, ErrorKind, IngestOptions, MemorySink, NullSink, ingest};
use weir_transforms::{Blake3, Crc32c, Filter, Map, Sha256, SplitLines, TransformError, digest_in};

use crate::support::{chunked, records, sha256_hex};

#[tokio::test(flavor = "current_thread")]
async fn checksums_pass_data_through_and_report_digests() {
    let data = weir_harness::synthetic_bytes(1, 1_000_003, 4096);
    let sink = MemorySink::new();
    let committed = sink.handle();
    let options = IngestOptions::builder()
        .transform(Sha256::new())
        .transform(Blake3::new().offload(true))
        .transform(Crc32c::new())
        .build();

    let report = ingest(chunked(&data, 10_000), sink, options).await.unwrap();

    assert_eq!(committed.committed().as_deref(), Some(&data[..]));
    assert_eq!(digest_in(&report.stages, "sha256"), Some(sha256_hex(&data).as_str()));
    assert_eq!(
        digest_in(&report.stages, "blake3"),
        Some(blake3::hash(&data).to_hex().as_str())
    );
    let crc = format!("{:08x}", crc32c::crc32c(&data));
    assert_eq!(digest_in(&report.stages, "crc32c"), Some(crc.as_str()));
    for stage in &report.stages {
        assert_eq!(stage.bytes_in, data.len() as u64, "{}", stage.name);
        assert_eq!(stage.bytes_out, data.len() as u64, "{}", stage.name);
        assert_eq!(stage.chunks_in, 101, "{}", stage.name);
        assert_eq!(stage.chunks_dropped, 0, "{}", stage.name);
        assert_eq!(stage.offloaded, stage.name == "blake3");
        assert!(stage.busy > std::time::Duration::ZERO, "{}", stage.name);
        assert!(stage.busy <= report.elapsed, "{}", stage.name);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn map_and_filter_are_counted_per_stage() {
    // Chunks of 10 bytes; the filter drops those starting with a digit
    // below 5, the map keeps the first 4 bytes.
    let data: Vec<u8> = (0..100u8).flat_map(|n| [b'0' + n % 10; 10]).collect();
    let sink = MemorySink::new();
    let committed = sink.handle();
    let options = IngestOptions::builder()
        .transform(Filter::new("high", |chunk: &Bytes| chunk[0] >= b'5'))
        .transform(Map::new("head", |chunk: Bytes| Ok(chunk.slice(..4))))
        .build();

    let report = ingest(chunked(&data, 10), sink, options).await.unwrap();

    let [filter, map] = &report.stages[..] else {
        panic!("two stages expected: {:?}", report.stages);
    };
    assert_eq!((filter.name.as_str(), map.name.as_str()), ("high", "head"));
    assert_eq!(
        (filter.chunks_in, filter.chunks_out, filter.chunks_dropped),
        (100, 50, 50)
    );
    assert_eq!((filter.bytes_in, filter.bytes_out), (1000, 500));
    assert_eq!((map.chunks_in, map.chunks_out, map.chunks_dropped), (50, 50, 0));
    assert_eq!((map.bytes_in, map.bytes_out), (500, 200));
    assert_eq!(report.bytes_written, 200);
    let expected: Vec<u8> = (0..100u8)
        .filter(|n| n % 10 >= 5)
        .flat_map(|n| [b'0' + n % 10; 4])
        .collect();
    assert_eq!(committed.committed().as_deref(), Some(&expected[..]));
}

#[tokio::test(flavor = "current_thread")]
async fn split_lines_turns_any_chunking_into_records() {
    let data = records(200_000);
    let expected: Vec<&[u8]> = data.split_inclusive(|&b| b == b'\n').collect();
    for chunk in [1, 7, 4096, 65_536] {
        let sink = MemorySink::new();
        let committed = sink.handle();
        let options = IngestOptions::builder()
            .transform(SplitLines::new(256))
            .transform(Map::new("check", |record: Bytes| {
                let newlines = record.iter().filter(|&&b| b == b'\n').count();
                let ends_record = record.ends_with(b"\n");
                if newlines > 1 || (newlines == 1 && !ends_record) {
                    return Err(format!("not one record: {record:?}").into());
                }
                Ok(record)
            }))
            .build();

        let report = ingest(chunked(&data, chunk), sink, options).await.unwrap();

        assert_eq!(committed.committed().as_deref(), Some(&data[..]), "chunk {chunk}");
        let split = &report.stages[0];
        assert_eq!(split.chunks_out, expected.len() as u64, "chunk {chunk}");
        assert_eq!(split.bytes_out, data.len() as u64, "chunk {chunk}");
        let records = format!("records:{}", expected.len());
        assert_eq!(split.summary.as_deref(), Some(records.as_str()));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_overlong_record_fails_the_ingestion_and_aborts_the_sink() {
    let mut data = records(10_000);
    data.extend(std::iter::repeat_n(b'x', 5000));
    data.extend_from_slice(b"\nafter\n");
    let sink = MemorySink::new();
    let committed = sink.handle();
    let options = IngestOptions::builder()
        .transform(Sha256::new())
        .transform(SplitLines::new(1000))
        .build();

    let error = ingest(chunked(&data, 512), sink, options).await.unwrap_err();

    assert_eq!(error.kind(), ErrorKind::Transform);
    let Cause::Transform { stage, error: source } = error.cause() else {
        panic!("transform cause expected: {error}");
    };
    assert_eq!(stage, "split-lines");
    assert!(matches!(
        source.downcast_ref::<TransformError>(),
        Some(TransformError::RecordTooLong { limit: 1000, .. })
    ));
    assert!(committed.is_aborted());
    assert_eq!(committed.committed(), None);
    // A failed ingestion reports no digest: the input was not all seen.
    assert_eq!(digest_in(&error.report().stages, "sha256"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_map_closure_is_the_root_cause() {
    let options = IngestOptions::builder()
        .transform(Map::new("picky", |chunk: Bytes| {
            if chunk.contains(&b'!') {
                Err("no exclamations".into())
            } else {
                Ok(chunk)
            }
        }))
        .build();
    let error = ingest(chunked(b"calm, calm, loud!, calm", 6), NullSink, options)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transform);
    assert!(error.report().stages[0].chunks_in >= 3);
    assert_eq!(
        std::error::Error::source(&error).map(ToString::to_string).as_deref(),
        Some("no exclamations")
    );
}
