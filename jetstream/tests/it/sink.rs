//! The publish sink against a real stream: order with writes in flight,
//! and a retried ingestion stored once.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use weir::{IngestOptions, MemorySink, ingest};
use weir_jetstream::{Batch, BatchLimits, PublishSink};

use crate::support::{consumer, fresh_stream, jetstream, unique};

fn input() -> Vec<u8> {
    (0..64 * 1024).map(|i| (i % 253) as u8).collect()
}

async fn read_back(stream: &async_nats::jetstream::stream::Stream, filter: &str) -> Vec<u8> {
    let consumer = consumer(stream, "reader", filter, Duration::from_secs(30)).await;
    let limits = BatchLimits {
        max_messages: 10_000,
        max_bytes: 0,
        expires: Duration::from_millis(500),
        ..BatchLimits::default()
    };
    let mut all = Vec::new();
    while let Some(batch) = Batch::pull(&consumer, &limits).await.unwrap() {
        let sink = MemorySink::new();
        let handle = sink.handle();
        batch.ingest(sink, IngestOptions::default()).await.unwrap();
        all.extend_from_slice(&handle.committed().unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_are_published_in_order_with_eight_writes_in_flight() {
    let js = jetstream().await;
    let name = unique("order");
    let stream = fresh_stream(&js, &name).await;
    let data = input();
    let sink = PublishSink::new(js.clone(), format!("{name}.out"), "run-1");
    let counts = sink.counts();
    let source = stream::iter(
        data.chunks(1024)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let options = IngestOptions::builder().chunk_size(1024).max_in_flight(8).build();
    ingest(source, sink, options).await.unwrap();
    assert_eq!(counts.stored.load(Ordering::Relaxed), 64);
    assert_eq!(read_back(&stream, &format!("{name}.out")).await, data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_with_the_same_ids_stores_every_chunk_once() {
    let js = jetstream().await;
    let name = unique("retry");
    let stream = fresh_stream(&js, &name).await;
    let data = input();
    let chunks: Vec<Bytes> = data.chunks(1024).map(Bytes::copy_from_slice).collect();

    // The first attempt's source fails after 30 chunks.
    let first = PublishSink::new(js.clone(), format!("{name}.out"), "load-7");
    let first_counts = first.counts();
    let failing = stream::iter(chunks.clone().into_iter().take(30).map(Ok))
        .chain(stream::once(async { Err(std::io::Error::other("upstream lost")) }));
    let options = || IngestOptions::builder().chunk_size(1024).max_in_flight(4).build();
    assert!(ingest(failing, first, options()).await.is_err());
    // Acknowledged before the failure; writes still in flight when it came
    // may have reached the stream unacknowledged.
    let acknowledged_first = first_counts.stored.load(Ordering::Relaxed);
    assert!((1..=30).contains(&acknowledged_first), "{acknowledged_first}");

    // The retry: same input, same ids.
    let retry = PublishSink::new(js.clone(), format!("{name}.out"), "load-7");
    let retry_counts = retry.counts();
    ingest(stream::iter(chunks.into_iter().map(Ok)), retry, options())
        .await
        .unwrap();
    let duplicates = retry_counts.duplicates.load(Ordering::Relaxed);
    assert!(
        (acknowledged_first..=30).contains(&duplicates),
        "what the failed attempt published stays (the sink is not atomic), and the retry stores none of it again: {duplicates}"
    );
    assert_eq!(retry_counts.stored.load(Ordering::Relaxed) + duplicates, 64);
    assert_eq!(
        read_back(&stream, &format!("{name}.out")).await,
        data,
        "each chunk once, in order"
    );
}
