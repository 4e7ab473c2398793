//! The ingest loop's lifecycle on every failure path.

use std::time::Duration;

use bytes::Bytes;
use weir::{
    AbortFailure, CancellationToken, Cause, DEFAULT_ABORT_TIMEOUT, DEFAULT_FINALIZE_TIMEOUT, ErrorKind, IngestOptions,
    MemorySink, NullSink, OptionsError, Outcome, Transform, ingest,
};

use crate::support::{Call, Script, Scripted, chunks, failing_source, source_of};

fn terminal(calls: &[Call]) -> Vec<Call> {
    calls.iter().filter(|c| !matches!(c, Call::Write(_))).cloned().collect()
}

#[tokio::test]
async fn success_writes_everything_in_order_then_finalizes_once() {
    let input = chunks(20, 1000);
    let sink = Scripted::default();
    let report = ingest(source_of(input.clone()), sink.clone(), IngestOptions::default())
        .await
        .unwrap();
    assert_eq!(sink.written(), input.concat());
    assert_eq!(terminal(&sink.calls()), vec![Call::Finalize]);
    assert_eq!(report.outcome, Outcome::Committed);
    assert_eq!(report.bytes_read, 20_000);
    assert_eq!(report.bytes_written, 20_000);
    assert_eq!(report.chunks_written, 20);
    assert_eq!(report.write_latency.count, 20);
    assert_eq!(report.peak_in_flight, 1);
}

#[tokio::test]
async fn sink_failing_after_ten_chunks_is_aborted_not_finalized() {
    let sink = Scripted::new(Script {
        fail_write: Some(10),
        ..Script::default()
    });
    let err = ingest(source_of(chunks(50, 100)), sink.clone(), IngestOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Write);
    assert!(err.to_string().contains("chunk 10"), "{err}");
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "Database Connection Lost"
    );
    assert_eq!(terminal(&sink.calls()), vec![Call::Abort(ErrorKind::Write)]);
    assert_eq!(err.report().bytes_written, 1000);
    let abort = err.report().abort.as_ref().unwrap();
    assert_eq!(abort.reason, ErrorKind::Write);
    assert_eq!(abort.bytes_acknowledged, 1000);
    assert!(abort.clean);
}

#[tokio::test]
async fn source_error_aborts_with_source_cause() {
    let sink = Scripted::default();
    let err = ingest(failing_source(chunks(3, 10)), sink.clone(), IngestOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err.cause(), Cause::Source { bytes_read: 30, .. }), "{err:?}");
    assert_eq!(terminal(&sink.calls()), vec![Call::Abort(ErrorKind::Source)]);
}

#[tokio::test]
async fn failing_abort_keeps_the_root_cause_and_attaches_the_abort_failure() {
    let sink = Scripted::new(Script {
        fail_write: Some(2),
        fail_abort: true,
        ..Script::default()
    });
    let err = ingest(source_of(chunks(5, 10)), sink.clone(), IngestOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Write);
    assert!(matches!(err.abort_failure(), Some(AbortFailure::Failed(_))));
    let text = err.to_string();
    assert!(text.contains("sink write of chunk 2 failed"), "{text}");
    assert!(text.contains("abort could not reach the database"), "{text}");
    assert!(!err.report().abort.as_ref().unwrap().clean);
}

#[tokio::test(start_paused = true)]
async fn hung_abort_is_given_up_on_after_the_abort_timeout() {
    let sink = Scripted::new(Script {
        fail_write: Some(0),
        hang_abort: true,
        ..Script::default()
    });
    let options = IngestOptions::builder().abort_timeout(Duration::from_secs(5)).build();
    let err = ingest(source_of(chunks(2, 10)), sink.clone(), options)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Write);
    assert!(matches!(err.abort_failure(), Some(AbortFailure::TimedOut(t)) if *t == Duration::from_secs(5)));
}

#[tokio::test]
async fn invalid_options_close_the_source_and_abort_the_sink() {
    for options in [
        IngestOptions::builder().chunk_size(0).build(),
        IngestOptions::builder().max_in_flight(0).build(),
        IngestOptions::builder().write_timeout(Duration::ZERO).build(),
    ] {
        let sink = Scripted::default();
        let err = ingest(source_of(chunks(3, 10)), sink.clone(), options)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidOptions);
        assert_eq!(sink.calls(), vec![Call::Abort(ErrorKind::InvalidOptions)]);
        assert_eq!(err.report().bytes_read, 0);
    }
}

#[test]
fn outside_a_runtime_ingest_refuses_instead_of_panicking() {
    let sink = Scripted::default();
    let result = futures_executor_block_on(ingest(source_of(chunks(1, 1)), sink.clone(), IngestOptions::default()));
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidOptions);
    assert!(err.to_string().contains("Tokio runtime"), "{err}");
    assert_eq!(sink.calls(), vec![Call::Abort(ErrorKind::InvalidOptions)]);
}

/// Polls a future to completion on this thread without any runtime.
fn futures_executor_block_on<F: Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}

#[tokio::test(start_paused = true)]
async fn cancel_during_a_hung_write_returns_promptly_and_aborts() {
    let token = CancellationToken::new();
    let sink = Scripted::new(Script {
        hang_write: Some(3),
        ..Script::default()
    });
    let options = IngestOptions::builder().cancel_token(token.clone()).build();
    let run = tokio::spawn(ingest(source_of(chunks(10, 10)), sink.clone(), options));
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!run.is_finished(), "the write hangs, so the ingestion must still run");
    token.cancel();
    let err = run.await.unwrap().unwrap_err();
    assert!(err.is_cancelled());
    assert_eq!(terminal(&sink.calls()), vec![Call::Abort(ErrorKind::Cancelled)]);
    assert_eq!(err.report().bytes_written, 30);
}

#[tokio::test(start_paused = true)]
async fn write_timeout_interrupts_a_hung_write() {
    let sink = Scripted::new(Script {
        hang_write: Some(1),
        ..Script::default()
    });
    let options = IngestOptions::builder().write_timeout(Duration::from_secs(2)).build();
    let err = ingest(source_of(chunks(4, 10)), sink.clone(), options)
        .await
        .unwrap_err();
    assert!(
        matches!(err.cause(), Cause::WriteTimeout { chunk: 1, timeout } if *timeout == Duration::from_secs(2)),
        "{err:?}"
    );
    assert_eq!(terminal(&sink.calls()), vec![Call::Abort(ErrorKind::WriteTimeout)]);
}

#[tokio::test]
async fn panics_in_the_sink_become_errors_and_abort() {
    let sink = Scripted::new(Script {
        panic_write: Some(1),
        ..Script::default()
    });
    let err = ingest(source_of(chunks(4, 10)), sink.clone(), IngestOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panic);
    assert!(err.to_string().contains("scripted panic in write 1"), "{err}");
    assert_eq!(terminal(&sink.calls()), vec![Call::Abort(ErrorKind::Panic)]);

    let sink = Scripted::new(Script {
        panic_finalize: true,
        ..Script::default()
    });
    let err = ingest(source_of(chunks(4, 10)), sink.clone(), IngestOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panic);
    assert_eq!(
        terminal(&sink.calls()),
        vec![Call::Finalize, Call::Abort(ErrorKind::Panic)]
    );
}

#[tokio::test]
async fn failed_finalize_is_followed_by_exactly_one_abort() {
    let sink = Scripted::new(Script {
        fail_finalize: true,
        ..Script::default()
    });
    let err = ingest(source_of(chunks(4, 10)), sink.clone(), IngestOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Finalize);
    assert_eq!(
        terminal(&sink.calls()),
        vec![Call::Finalize, Call::Abort(ErrorKind::Finalize)]
    );
    assert!(err.report().finalize_duration.is_some());
}

#[tokio::test(start_paused = true)]
async fn overlapping_writes_keep_source_order_and_respect_the_bound() {
    let input = chunks(64, 100);
    let sink = Scripted::new(Script {
        write_delay: Some(Duration::from_millis(10)),
        ..Script::default()
    });
    let options = IngestOptions::builder().max_in_flight(8).build();
    let report = ingest(source_of(input.clone()), sink.clone(), options).await.unwrap();
    assert_eq!(sink.written(), input.concat());
    assert_eq!(report.peak_in_flight, 8);
    // 64 writes of 10 ms, 8 at a time: 8 rounds.
    assert_eq!(report.elapsed, Duration::from_millis(80));
}

#[tokio::test]
async fn large_source_chunks_are_split_to_the_chunk_size() {
    let sink = MemorySink::new();
    let handle = sink.handle();
    let data = Bytes::from((0..10_000u32).map(|i| (i % 256) as u8).collect::<Vec<_>>());
    let options = IngestOptions::builder().chunk_size(3000).build();
    let report = ingest(source_of(vec![data.clone()]), sink, options).await.unwrap();
    assert_eq!(report.chunks_read, 1);
    assert_eq!(report.chunks_written, 4);
    assert_eq!(handle.committed().unwrap(), data);
}

/// Upper-cases ASCII and drops chunks that start with `#`.
struct Shout;

impl Transform for Shout {
    fn name(&self) -> &str {
        "shout"
    }

    fn transform(&mut self, chunk: Bytes, out: &mut Vec<Bytes>) -> Result<(), weir::BoxError> {
        if chunk.starts_with(b"#") {
            return Ok(());
        }
        out.push(Bytes::from(chunk.to_ascii_uppercase()));
        Ok(())
    }
}

/// Counts chunks; declared heavy so it runs on the blocking pool, never on
/// the thread that drives the (current-thread) runtime.
struct Heavy {
    seen: u64,
    panic_at: Option<u64>,
    runtime_thread: std::thread::ThreadId,
}

impl Transform for Heavy {
    fn name(&self) -> &str {
        "heavy"
    }

    fn transform(&mut self, chunk: Bytes, out: &mut Vec<Bytes>) -> Result<(), weir::BoxError> {
        assert_ne!(
            std::thread::current().id(),
            self.runtime_thread,
            "a heavy stage must not run on the runtime's thread"
        );
        if self.panic_at == Some(self.seen) {
            panic!("heavy stage exploded");
        }
        self.seen += 1;
        out.push(chunk);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<Bytes>) -> Result<(), weir::BoxError> {
        out.push(Bytes::from(format!("|{}", self.seen)));
        Ok(())
    }

    fn cpu_heavy(&self) -> bool {
        true
    }

    fn summary(&self) -> Option<String> {
        Some(format!("{} chunks", self.seen))
    }
}

#[tokio::test(flavor = "current_thread")]
async fn transforms_run_in_order_inline_and_offloaded() {
    let sink = MemorySink::new();
    let handle = sink.handle();
    let source = source_of(vec![
        Bytes::from_static(b"a"),
        Bytes::from_static(b"#skip"),
        Bytes::from_static(b"b"),
    ]);
    let options = IngestOptions::builder()
        .transform(Shout)
        .transform(Heavy {
            seen: 0,
            panic_at: None,
            runtime_thread: std::thread::current().id(),
        })
        .build();
    let report = ingest(source, sink, options).await.unwrap();
    assert_eq!(handle.committed().unwrap(), Bytes::from_static(b"AB|2"));
    assert_eq!(report.stages.len(), 2);
    assert_eq!(report.stages[0].chunks_dropped, 1);
    assert_eq!(report.stages[0].bytes_in, 7);
    assert!(report.stages[1].offloaded);
    assert_eq!(report.stages[1].summary.as_deref(), Some("2 chunks"));
}

#[tokio::test(flavor = "current_thread")]
async fn a_panicking_offloaded_transform_aborts_the_sink() {
    let sink = Scripted::default();
    let options = IngestOptions::builder()
        .transform(Heavy {
            seen: 0,
            panic_at: Some(2),
            runtime_thread: std::thread::current().id(),
        })
        .build();
    let err = ingest(source_of(chunks(5, 10)), sink.clone(), options)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panic);
    assert!(err.to_string().contains("transform `heavy` panicked"), "{err}");
    assert_eq!(terminal(&sink.calls()), vec![Call::Abort(ErrorKind::Panic)]);
}

#[tokio::test]
async fn null_sink_and_boxed_sinks_work_through_the_same_api() {
    let boxed: weir::BoxSink = Box::new(NullSink);
    let report = ingest(source_of(chunks(3, 10)), boxed, IngestOptions::default())
        .await
        .unwrap();
    assert_eq!(report.bytes_written, 30);

    let sink = MemorySink::new();
    let handle = sink.handle();
    let boxed: weir::BoxSink = Box::new(sink);
    let err = ingest(failing_source(chunks(3, 10)), boxed, IngestOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Source);
    assert!(handle.is_aborted());
    assert_eq!(handle.committed(), None);
}

/// Spins for `per_chunk` of CPU on every chunk, inline.
struct Spin {
    per_chunk: Duration,
}

impl Transform for Spin {
    fn name(&self) -> &str {
        "spin"
    }

    fn transform(&mut self, chunk: Bytes, out: &mut Vec<Bytes>) -> Result<(), weir::BoxError> {
        let started = std::time::Instant::now();
        while started.elapsed() < self.per_chunk {
            std::hint::spin_loop();
        }
        out.push(chunk);
        Ok(())
    }
}

/// Regression: a slow inline stage used to hold a current-thread runtime for
/// Tokio's whole coop budget (~128 chunks) before anything else ran.
#[tokio::test(flavor = "current_thread")]
async fn a_slow_inline_stage_lets_other_tasks_run_between_chunks() {
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                ticks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        })
    };
    let options = IngestOptions::builder()
        .transform(Spin {
            per_chunk: Duration::from_millis(2),
        })
        .build();
    ingest(source_of(chunks(10, 10)), NullSink, options).await.unwrap();
    let ran = ticks.load(std::sync::atomic::Ordering::SeqCst);
    ticker.abort();
    assert!(ran >= 9, "the other task ran only {ran} times during 10 slow chunks");
}

#[tokio::test(start_paused = true)]
async fn a_zero_abort_timeout_is_refused_and_a_hung_abort_still_ends() {
    let sink = Scripted::new(Script {
        hang_abort: true,
        ..Script::default()
    });
    let options = IngestOptions::builder().abort_timeout(Duration::ZERO).build();
    // Before the fix, the refusal's abort was unbounded and this never ended.
    let err = ingest(source_of(chunks(2, 10)), sink.clone(), options)
        .await
        .unwrap_err();
    assert!(matches!(
        err.cause(),
        Cause::InvalidOptions(OptionsError::ZeroAbortTimeout)
    ));
    assert!(
        matches!(err.abort_failure(), Some(AbortFailure::TimedOut(t)) if *t == DEFAULT_ABORT_TIMEOUT),
        "{err}"
    );
    assert_eq!(sink.calls(), vec![Call::Abort(ErrorKind::InvalidOptions)]);
}

#[tokio::test(start_paused = true)]
async fn a_zero_finalize_timeout_is_refused_as_invalid_options() {
    let sink = Scripted::default();
    let options = IngestOptions::builder().finalize_timeout(Duration::ZERO).build();
    let err = ingest(source_of(chunks(2, 10)), sink.clone(), options)
        .await
        .unwrap_err();
    assert!(matches!(
        err.cause(),
        Cause::InvalidOptions(OptionsError::ZeroFinalizeTimeout)
    ));
    assert_eq!(sink.calls(), vec![Call::Abort(ErrorKind::InvalidOptions)]);
}

#[test]
fn without_a_time_driver_ingest_errors_before_any_sink_call_and_aborts() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let sink = Scripted::default();
    // Before the fix, a failing ingestion panicked in the abort timeout and
    // the sink's abort was never called.
    let err = runtime
        .block_on(ingest(
            failing_source(chunks(2, 10)),
            sink.clone(),
            IngestOptions::default(),
        ))
        .unwrap_err();
    assert!(
        matches!(err.cause(), Cause::InvalidOptions(OptionsError::NoTimeDriver)),
        "{err}"
    );
    assert!(err.to_string().contains("enable_time"), "{err}");
    assert_eq!(sink.calls(), vec![Call::Abort(ErrorKind::InvalidOptions)]);
    assert_eq!(err.report().bytes_read, 0);
}

#[tokio::test(start_paused = true)]
async fn a_hung_finalize_times_out_and_the_sink_is_aborted() {
    let sink = Scripted::new(Script {
        hang_finalize: true,
        ..Script::default()
    });
    let options = IngestOptions::builder()
        .finalize_timeout(Duration::from_secs(7))
        .build();
    let err = ingest(source_of(chunks(2, 10)), sink.clone(), options)
        .await
        .unwrap_err();
    assert!(
        matches!(err.cause(), Cause::FinalizeTimeout { timeout } if *timeout == Duration::from_secs(7)),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::FinalizeTimeout);
    assert_eq!(
        terminal(&sink.calls()),
        vec![Call::Finalize, Call::Abort(ErrorKind::FinalizeTimeout)]
    );
    assert!(err.report().finalize_duration.is_some());
}

#[tokio::test(start_paused = true)]
async fn a_hung_finalize_is_bounded_by_the_default_finalize_timeout() {
    let sink = Scripted::new(Script {
        hang_finalize: true,
        ..Script::default()
    });
    let err = ingest(source_of(chunks(1, 10)), sink.clone(), IngestOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err.cause(), Cause::FinalizeTimeout { timeout } if *timeout == DEFAULT_FINALIZE_TIMEOUT));
}

#[tokio::test]
async fn invalid_options_do_not_repeat_their_text_in_source() {
    let err = ingest(
        source_of(chunks(1, 1)),
        Scripted::default(),
        IngestOptions::builder().max_in_flight(0).build(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("max in-flight writes must be at least 1"),
        "{err}"
    );
    assert!(
        std::error::Error::source(&err).is_none(),
        "{:?}",
        std::error::Error::source(&err)
    );
}

#[tokio::test]
async fn the_abort_failure_of_a_cancelled_ingestion_is_reachable_through_source() {
    let token = CancellationToken::new();
    token.cancel();
    let sink = Scripted::new(Script {
        fail_abort: true,
        ..Script::default()
    });
    let err = ingest(
        source_of(chunks(2, 10)),
        sink,
        IngestOptions::builder().cancel_token(token).build(),
    )
    .await
    .unwrap_err();
    let first = std::error::Error::source(&err).expect("the abort failure");
    assert!(first.downcast_ref::<AbortFailure>().is_some(), "{first}");
    let text = first.source().map(ToString::to_string).unwrap_or_default();
    assert_eq!(text, "abort could not reach the database");
}

/// A user's generic wrapper, forwarding to any sink.
struct Wrapper<S>(S);

impl<S: weir::Sink> weir::Sink for Wrapper<S> {
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), weir::BoxError>> + Send + use<S> {
        self.0.write(chunk)
    }

    async fn finalize(&mut self) -> Result<(), weir::BoxError> {
        self.0.finalize().await
    }

    async fn abort(self, cause: &Cause) -> Result<(), weir::BoxError> {
        self.0.abort(cause).await
    }
}

#[tokio::test]
async fn a_generic_wrapper_of_a_box_sink_can_be_spawned() {
    let memory = MemorySink::new();
    let committed = memory.handle();
    let sink: weir::BoxSink = Box::new(memory);
    // Before the fix: "implementation of `Sink` is not general enough".
    let report = tokio::spawn(ingest(
        source_of(chunks(3, 10)),
        Wrapper(sink),
        IngestOptions::default(),
    ))
    .await
    .unwrap()
    .unwrap();
    assert_eq!(report.bytes_written, 30);
    assert_eq!(committed.committed().unwrap().len(), 30);
}

#[tokio::test(start_paused = true)]
async fn a_writer_sink_keeps_source_order_with_writes_in_flight_and_commits_once() {
    let (committed, received) = tokio::sync::oneshot::channel();
    let (near, mut far) = tokio::io::duplex(64);
    let reader = tokio::spawn(async move {
        let mut out = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut far, &mut out).await.unwrap();
        out
    });
    let sink = weir::WriterSink::new(near, |mut writer: tokio::io::DuplexStream| async move {
        tokio::io::AsyncWriteExt::shutdown(&mut writer).await?;
        committed.send(()).map_err(|()| "gone")?;
        Ok(())
    });
    let input = chunks(50, 100);
    let options = IngestOptions::builder().max_in_flight(8).build();
    ingest(source_of(input.clone()), sink, options).await.unwrap();
    received.await.unwrap();
    assert_eq!(reader.await.unwrap(), input.concat());
}

#[tokio::test]
async fn a_writer_sink_is_aborted_not_committed_when_the_source_fails() {
    let committed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&committed);
    let sink = weir::WriterSink::new(Vec::new(), move |_: Vec<u8>| async move {
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    });
    let err = ingest(failing_source(chunks(3, 10)), sink, IngestOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Source);
    assert!(!committed.load(std::sync::atomic::Ordering::SeqCst));
}

#[tokio::test]
async fn from_stream_turns_a_foreign_error_into_a_source_error() {
    let frames = futures_util::stream::iter([Ok(Bytes::from_static(b"ab")), Err("peer reset")]);
    let sink = Scripted::default();
    let err = ingest(
        weir::source::from_stream(frames),
        sink.clone(),
        IngestOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Source);
    assert_eq!(sink.written(), b"ab");
    let text = std::error::Error::source(&err)
        .map(ToString::to_string)
        .unwrap_or_default();
    assert_eq!(text, "peer reset");
}

#[tokio::test]
async fn write_latency_counts_every_write_and_times_only_those_that_waited() {
    let immediate = ingest(source_of(chunks(20, 100)), NullSink, IngestOptions::default())
        .await
        .unwrap();
    assert_eq!(immediate.write_latency.count, 20);
    assert_eq!(
        immediate.write_latency.max,
        Duration::ZERO,
        "NullSink's writes never wait"
    );

    let sink = Scripted::new(Script {
        write_delay: Some(Duration::from_millis(2)),
        ..Script::default()
    });
    let waited = ingest(source_of(chunks(5, 100)), sink, IngestOptions::default())
        .await
        .unwrap();
    assert_eq!(waited.write_latency.count, 5);
    assert!(
        waited.write_latency.min >= Duration::from_millis(1),
        "{:?}",
        waited.write_latency
    );
}

/// A source that never ends and is always ready: the loop runs many chunks
/// per turn, so only the stop signal and the coop budget can end it.
fn endless() -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send {
    futures_util::stream::repeat_with(|| Ok(Bytes::from_static(&[7; 64])))
}

#[tokio::test(flavor = "current_thread")]
async fn an_always_ready_ingestion_yields_to_a_task_that_cancels_it() {
    let token = CancellationToken::new();
    let options = IngestOptions::builder().cancel_token(token.clone()).build();
    // On one thread, the canceller runs only if the loop yields.
    let canceller = tokio::spawn(async move { token.cancel() });
    let err = ingest(endless(), NullSink, options).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    assert!(err.report().chunks_written > 0);
    canceller.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_always_ready_ingestion_sees_a_cancel_from_another_thread() {
    let token = CancellationToken::new();
    let options = IngestOptions::builder().cancel_token(token.clone()).build();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        token.cancel();
    });
    let err = ingest(endless(), NullSink, options).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    assert_eq!(err.report().bytes_written, err.report().chunks_written * 64);
    canceller.join().unwrap();
}

fn eager(script: Script) -> Scripted {
    Scripted::new(Script {
        eager_even: true,
        ..script
    })
}

#[tokio::test(start_paused = true)]
async fn chunks_taken_at_once_and_by_write_futures_keep_source_order_and_counts() {
    let input = chunks(41, 300);
    // Declined chunks wait in write futures while later ones are taken at
    // once: up to four writes in flight.
    let sink = eager(Script {
        write_delay: Some(Duration::from_millis(1)),
        ..Script::default()
    });
    let options = IngestOptions::builder().max_in_flight(4).build();
    let report = ingest(source_of(input.clone()), sink.clone(), options).await.unwrap();
    assert_eq!(sink.written(), input.concat());
    assert_eq!(terminal(&sink.calls()), vec![Call::Finalize]);
    assert_eq!(report.bytes_written, 41 * 300);
    assert_eq!(report.chunks_written, 41);
    assert_eq!(report.write_latency.count, 41);
    assert!((2..=4).contains(&report.peak_in_flight), "{}", report.peak_in_flight);
    assert_eq!(*sink.taken_at_once.lock().unwrap(), 21);
}

#[tokio::test]
async fn a_failing_try_write_names_its_chunk_and_aborts_the_sink() {
    let sink = eager(Script {
        fail_write: Some(4),
        ..Script::default()
    });
    let err = ingest(source_of(chunks(10, 100)), sink.clone(), IngestOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err.cause(), Cause::Write { chunk: 4, .. }), "{err}");
    assert_eq!(terminal(&sink.calls()), vec![Call::Abort(ErrorKind::Write)]);
    assert_eq!(sink.written().len(), 500, "no write after the failed one");
    assert_eq!(err.report().bytes_written, 400);
}

#[tokio::test]
async fn a_panicking_try_write_is_a_panic_in_write_and_aborts_the_sink() {
    let sink = eager(Script {
        panic_write: Some(2),
        ..Script::default()
    });
    let err = ingest(source_of(chunks(10, 100)), sink.clone(), IngestOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.cause(),
            Cause::Panic {
                site: weir::PanicSite::SinkWrite,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(terminal(&sink.calls()), vec![Call::Abort(ErrorKind::Panic)]);
}

#[tokio::test]
async fn box_sinks_forward_try_write() {
    let sink = eager(Script::default());
    let boxed: weir::BoxSink = Box::new(Box::new(sink.clone()));
    ingest(source_of(chunks(6, 10)), boxed, IngestOptions::default())
        .await
        .unwrap();
    assert_eq!(sink.written(), chunks(6, 10).concat());
    // The even-numbered three: a box that dropped `try_write` would send
    // every chunk to `write`.
    assert_eq!(*sink.taken_at_once.lock().unwrap(), 3);
}
