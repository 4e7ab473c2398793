//! `ObjectStoreSource`: whole objects and ranges, read in ranged requests,
//! on the in-memory and local-filesystem backends.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt as _, TryStreamExt as _};
use object_store::ObjectStore;
use object_store::ObjectStoreExt as _;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use weir::{IngestOptions, ingest};
use weir_object_store::{Error, ObjectStoreSink, ObjectStoreSource};

use crate::support::{read, sha256_hex};

/// Both backends, with `data` stored at `object.bin`.
async fn stores_holding(data: &[u8]) -> Vec<(Arc<dyn ObjectStore>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let stores: Vec<(Arc<dyn ObjectStore>, Option<tempfile::TempDir>)> = vec![
        (Arc::new(InMemory::new()), None),
        (
            Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap()),
            Some(dir),
        ),
    ];
    for (store, _) in &stores {
        store
            .put(&Path::from("object.bin"), Bytes::copy_from_slice(data).into())
            .await
            .unwrap();
    }
    stores
}

#[tokio::test(flavor = "current_thread")]
async fn reads_whole_objects_and_ranges_in_bounded_chunks() {
    let data = weir_harness::synthetic_bytes(11, 300_001, 4096);
    let len = data.len() as u64;
    for (store, _dir) in stores_holding(&data).await {
        for (range, request, chunk) in [
            (None, 8 << 20, 65_536),
            (None, 1000, 300),
            (Some(0..len), 65_536, 65_536),
            (Some(12_345..200_000), 7_000, 1_024),
            (Some(len - 1..len), 10, 10),
            (Some(5..5), 10, 10),
        ] {
            let mut builder = ObjectStoreSource::builder(Arc::clone(&store), "object.bin")
                .request_size(request)
                .chunk_size(chunk);
            if let Some(range) = range.clone() {
                builder = builder.range(range);
            }
            let chunks: Vec<Bytes> = builder.open().await.unwrap().try_collect().await.unwrap();
            let range = range.unwrap_or(0..len);
            let expected = &data[range.start as usize..range.end as usize];
            assert!(
                chunks.iter().all(|c| !c.is_empty() && c.len() <= chunk),
                "{store}: {range:?}"
            );
            assert_eq!(chunks.concat(), expected, "{store}: {range:?} by {request}/{chunk}");
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn bad_requests_are_clear_errors() {
    for (store, _dir) in stores_holding(b"0123456789").await {
        let open = |range: std::ops::Range<u64>| {
            ObjectStoreSource::builder(Arc::clone(&store), "object.bin")
                .range(range)
                .open()
        };
        // Past the end, and reversed.
        for (start, end) in [(0, 11), (8, 4)] {
            let range = start..end;
            let error = open(range.clone()).await.unwrap_err();
            assert!(
                matches!(error, Error::InvalidRange { size: 10, .. }),
                "{range:?}: {error}"
            );
        }
        let error = ObjectStoreSource::builder(Arc::clone(&store), "object.bin")
            .chunk_size(0)
            .open()
            .await
            .unwrap_err();
        assert!(matches!(error, Error::ZeroSize { what: "chunk size" }), "{error}");
        let error = ObjectStoreSource::builder(Arc::clone(&store), "object.bin")
            .request_size(0)
            .open()
            .await
            .unwrap_err();
        assert!(matches!(error, Error::ZeroSize { what: "request size" }), "{error}");
        let error = ObjectStoreSource::open(Arc::clone(&store), "missing.bin")
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Store { operation: "head", .. }), "{error}");
        assert_eq!(error.into_io().kind(), io::ErrorKind::NotFound);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_object_replaced_mid_read_fails_the_stream() {
    let data = vec![1u8; 10_000];
    for (store, _dir) in stores_holding(&data).await {
        let mut source = ObjectStoreSource::builder(Arc::clone(&store), "object.bin")
            .request_size(1000)
            .chunk_size(1000)
            .open()
            .await
            .unwrap();
        let first = source.next().await.unwrap().unwrap();
        assert_eq!(first.len(), 1000);
        // Replace the object mid-way: the next ranged read must notice.
        store
            .put(&Path::from("object.bin"), Bytes::from(vec![2u8; 20_000]).into())
            .await
            .unwrap();
        let rest: Vec<io::Result<Bytes>> = source.collect().await;
        let error = rest
            .iter()
            .find_map(|r| r.as_ref().err())
            .expect("an error after the replacement");
        let inner = error.get_ref().and_then(|e| e.downcast_ref::<Error>()).unwrap();
        assert!(
            matches!(
                inner,
                Error::Store {
                    source: object_store::Error::Precondition { .. },
                    ..
                }
            ),
            "{store}: {inner}"
        );
        // Nothing of the new version was mixed in.
        assert!(
            rest.iter()
                .filter_map(|r| r.as_ref().ok())
                .all(|c| c.iter().all(|&b| b == 1))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_an_object_through_an_ingestion() {
    let data = weir_harness::synthetic_bytes(12, 2_000_000, 4096);
    for (store, _dir) in stores_holding(&data).await {
        let source = ObjectStoreSource::builder(Arc::clone(&store), "object.bin")
            .request_size(300_000)
            .open()
            .await
            .unwrap();
        let sink = ObjectStoreSink::builder("copy.bin")
            .part_size(256 * 1024)
            .create(store.as_ref())
            .await
            .unwrap();
        let options = IngestOptions::builder().max_in_flight(4).build();

        let report = ingest(source, sink, options).await.unwrap();

        assert_eq!(report.bytes_read, data.len() as u64);
        let copy = read(store.as_ref(), "copy.bin").await.unwrap();
        assert_eq!(sha256_hex(&copy), sha256_hex(&data), "{store}");
    }
}
