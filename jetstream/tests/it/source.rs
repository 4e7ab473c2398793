//! The batch source against a real server: acked only after the commit,
//! redelivered after an abort, kept alive through a long commit, bounded by
//! its limits, and clear errors instead of hangs.

use std::time::Duration;

use bytes::Bytes;
use weir::{BoxError, Cause, IngestOptions, MemorySink, Sink};
use weir_jetstream::{Batch, BatchLimits, Error};
use weir_testkit::{ChaosSink, Clock, FailureSchedule};

use crate::support::{consumer, fresh_stream, jetstream, outstanding, payloads, publish, unique};

fn quick_limits() -> BatchLimits {
    BatchLimits {
        expires: Duration::from_millis(500),
        nak_delay: None,
        ..BatchLimits::default()
    }
}

fn joined(parts: &[Bytes]) -> Vec<u8> {
    parts.concat()
}

/// `bytes` cut into `size`-byte messages, sorted: the batch's messages
/// whatever order a redelivery brought them in.
fn sorted_messages(bytes: &[u8], size: usize) -> Vec<Vec<u8>> {
    let mut parts: Vec<Vec<u8>> = bytes.chunks(size).map(<[u8]>::to_vec).collect();
    parts.sort();
    parts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_batch_is_acked_and_not_redelivered() {
    let js = jetstream().await;
    let name = unique("commit");
    let stream = fresh_stream(&js, &name).await;
    let mut consumer = consumer(&stream, "c", &format!("{name}.in"), Duration::from_secs(30)).await;
    let sent = payloads(20, 100);
    publish(&js, &format!("{name}.in"), sent.clone()).await;

    let batch = Batch::pull(&consumer, &quick_limits()).await.unwrap().expect("a batch");
    let sink = MemorySink::new();
    let handle = sink.handle();
    // Spawned, as a worker would: the ingestion's future is Send + 'static.
    let report = tokio::spawn(batch.ingest(sink, IngestOptions::default()))
        .await
        .unwrap()
        .unwrap();

    assert_eq!(handle.committed().as_deref(), Some(joined(&sent).as_slice()));
    assert_eq!(
        (report.messages, report.acked, report.ack_failures, report.redelivered),
        (20, 20, 0, 0)
    );
    assert_eq!(
        outstanding(&mut consumer).await,
        (0, 0),
        "every message acked, none left"
    );
    assert!(
        Batch::pull(&consumer, &quick_limits()).await.unwrap().is_none(),
        "nothing comes again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_batch_is_redelivered_in_full_and_acked_once_committed() {
    let js = jetstream().await;
    let name = unique("abort");
    let stream = fresh_stream(&js, &name).await;
    let mut consumer = consumer(&stream, "c", &format!("{name}.in"), Duration::from_secs(30)).await;
    let sent = payloads(12, 64);
    publish(&js, &format!("{name}.in"), sent.clone()).await;

    // "Database Connection Lost" at the sixth write.
    let mut schedule = FailureSchedule::clean(1, 12, 64);
    schedule.write_fails_at = Some(5);
    let failing = ChaosSink::new(MemorySink::new(), schedule, Clock::Real);
    let batch = Batch::pull(&consumer, &quick_limits()).await.unwrap().unwrap();
    let error = batch.ingest(failing, IngestOptions::default()).await.unwrap_err();
    let Error::Ingest(error) = error else {
        panic!("expected the ingestion's error, got {error}")
    };
    assert_eq!(error.kind(), weir::ErrorKind::Write);

    // Naked without delay: everything comes again, marked redelivered.
    let batch = Batch::pull(&consumer, &quick_limits())
        .await
        .unwrap()
        .expect("redelivered");
    let sink = MemorySink::new();
    let handle = sink.handle();
    let report = batch.ingest(sink, IngestOptions::default()).await.unwrap();
    let committed = handle.committed().expect("committed");
    assert_eq!(
        sorted_messages(&committed, 64),
        sorted_messages(&joined(&sent), 64),
        "the whole batch, once each"
    );
    assert_eq!((report.messages, report.redelivered), (12, 12), "{report:?}");
    assert_eq!(outstanding(&mut consumer).await, (0, 0));
}

/// A sink whose finalize takes `hold`: a long commit.
#[derive(Debug)]
struct SlowCommit {
    inner: MemorySink,
    hold: Duration,
}

impl Sink for SlowCommit {
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<> {
        self.inner.write(chunk)
    }

    async fn finalize(&mut self) -> Result<(), BoxError> {
        tokio::time::sleep(self.hold).await;
        self.inner.finalize().await
    }

    async fn abort(self, cause: &Cause) -> Result<(), BoxError> {
        self.inner.abort(cause).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_longer_than_ack_wait_keeps_its_messages() {
    let js = jetstream().await;
    let name = unique("progress");
    let stream = fresh_stream(&js, &name).await;
    let ack_wait = Duration::from_secs(1);
    let consumer = consumer(&stream, "c", &format!("{name}.in"), ack_wait).await;
    publish(&js, &format!("{name}.in"), payloads(5, 10)).await;

    let limits = BatchLimits {
        progress_every: Duration::from_millis(250),
        ..quick_limits()
    };
    let batch = Batch::pull(&consumer, &limits).await.unwrap().unwrap();
    let sink = SlowCommit {
        inner: MemorySink::new(),
        hold: ack_wait * 3,
    };
    // A second worker on the same consumer while the commit runs: without
    // the in-progress signals the server would hand it the messages.
    let rival = {
        let consumer = consumer.clone();
        let limits = BatchLimits {
            expires: ack_wait * 2,
            ..quick_limits()
        };
        tokio::spawn(async move {
            tokio::time::sleep(ack_wait + Duration::from_millis(300)).await;
            Batch::pull(&consumer, &limits).await.map(|b| b.is_some())
        })
    };
    let report = batch.ingest(sink, IngestOptions::default()).await.unwrap();
    assert!(
        !rival.await.unwrap().unwrap(),
        "no message was redelivered to the rival during the commit"
    );
    assert!(report.progress_sent >= 5, "in-progress signals went out: {report:?}");
    assert_eq!((report.messages, report.acked), (5, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limits_bound_a_batch() {
    let js = jetstream().await;
    let name = unique("limits");
    let stream = fresh_stream(&js, &name).await;
    let consumer = consumer(&stream, "c", &format!("{name}.in"), Duration::from_secs(30)).await;
    publish(&js, &format!("{name}.in"), payloads(30, 1000)).await;

    let by_count = BatchLimits {
        max_messages: 7,
        ..quick_limits()
    };
    let report = Batch::pull(&consumer, &by_count)
        .await
        .unwrap()
        .unwrap()
        .ingest(MemorySink::new(), IngestOptions::default())
        .await
        .unwrap();
    assert_eq!(report.messages, 7);

    // Each message is its payload plus headers and subject on the wire, so
    // 5,500 bytes hold at most five 1,000-byte payloads.
    let by_bytes = BatchLimits {
        max_bytes: 5_500,
        ..quick_limits()
    };
    let report = Batch::pull(&consumer, &by_bytes)
        .await
        .unwrap()
        .unwrap()
        .ingest(MemorySink::new(), IngestOptions::default())
        .await
        .unwrap();
    assert!((1..=5).contains(&report.messages), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_limits_are_refused_before_the_server_is_asked() {
    let js = jetstream().await;
    let name = unique("invalid");
    let stream = fresh_stream(&js, &name).await;
    let consumer = consumer(&stream, "c", &format!("{name}.in"), Duration::from_secs(30)).await;
    for limits in [
        BatchLimits {
            max_messages: 0,
            ..quick_limits()
        },
        BatchLimits {
            expires: Duration::ZERO,
            ..quick_limits()
        },
        BatchLimits {
            progress_every: Duration::ZERO,
            ..quick_limits()
        },
        BatchLimits {
            ack_concurrency: 0,
            ..quick_limits()
        },
    ] {
        let error = Batch::pull(&consumer, &limits).await.unwrap_err();
        assert!(matches!(error, Error::InvalidLimits(_)), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_consumer_is_a_clear_error_not_a_hang() {
    let js = jetstream().await;
    let name = unique("deleted");
    let stream = fresh_stream(&js, &name).await;
    let consumer = consumer(&stream, "gone", &format!("{name}.in"), Duration::from_secs(30)).await;
    stream.delete_consumer("gone").await.unwrap();
    let started = std::time::Instant::now();
    let outcome = Batch::pull(&consumer, &quick_limits()).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered in {:?}",
        started.elapsed()
    );
    match outcome {
        Err(error) => assert!(!error.to_string().is_empty()),
        // Some servers answer a pull on a deleted consumer with an empty
        // batch; what matters is that nothing hangs and nothing is taken.
        Ok(batch) => assert!(batch.is_none()),
    }
}
