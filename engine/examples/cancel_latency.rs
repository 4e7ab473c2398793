//! Cancel-to-return latency with a sink whose write never completes: 1,000
//! trials on a multi-thread runtime, real time. Prints p50, p99 and max, and
//! checks each trial ended `Cancelled` with `abort` called. Then the same
//! for a `FileSource` over a pipe whose writer stays silent, on a
//! current-thread and a multi-thread runtime.
//!
//! `cargo run --release -p weir --example cancel_latency [TRIALS]`

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream;
use hdrhistogram::Histogram;
use weir::{BoxError, CancellationToken, Cause, ErrorKind, IngestOptions, Sink, ingest};

/// Accepts the first write, then hangs forever on the second.
struct HungSink {
    writes: usize,
    aborts: Arc<AtomicUsize>,
}

impl Sink for HungSink {
    fn write(&mut self, _chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<> {
        self.writes += 1;
        let hang = self.writes > 1;
        async move {
            if hang {
                std::future::pending::<()>().await;
            }
            Ok(())
        }
    }

    async fn finalize(&mut self) -> Result<(), BoxError> {
        Err("a hung sink never finalizes".into())
    }

    async fn abort(self, _cause: &Cause) -> Result<(), BoxError> {
        self.aborts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let trials: u64 = std::env::args().nth(1).map_or(Ok(1000), |s| s.parse())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let aborts = Arc::new(AtomicUsize::new(0));
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    runtime.block_on(async {
        for trial in 0..trials {
            let token = CancellationToken::new();
            let sink = HungSink {
                writes: 0,
                aborts: Arc::clone(&aborts),
            };
            let source = stream::iter((0..100).map(|_| Ok(Bytes::from_static(&[0u8; 4096]))));
            let options = IngestOptions::builder().cancel_token(token.clone()).build();
            let run = tokio::spawn(ingest(source, sink, options));
            // Let the ingestion reach its hung write, at a varying moment.
            tokio::time::sleep(Duration::from_micros(200 + (trial * 37) % 800)).await;
            let cancelled_at = Instant::now();
            token.cancel();
            let result = run.await.map_err(|e| e.to_string())?;
            let elapsed = cancelled_at.elapsed();
            match result {
                Err(error) if error.kind() == ErrorKind::Cancelled => {}
                other => return Err(format!("trial {trial}: expected a cancellation, got {other:?}")),
            }
            latency
                .record(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).max(1))
                .map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(())
    })?;
    let aborted = aborts.load(Ordering::SeqCst) as u64;
    let us = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "cancel-to-return over {trials} trials (hung sink write): p50 {:.1} us, p99 {:.1} us, max {:.1} us; aborts {aborted}/{trials}",
        us(0.5),
        us(0.99),
        latency.max() as f64 / 1000.0
    );
    if aborted != trials {
        return Err(format!("abort was called {aborted} times for {trials} trials").into());
    }
    for (flavor, runtime) in [
        (
            "current-thread",
            tokio::runtime::Builder::new_current_thread().enable_all().build()?,
        ),
        (
            "multi-thread",
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?,
        ),
    ] {
        let latency = runtime.block_on(silent_pipe_trials(trials))?;
        let us = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "cancel-to-return over {trials} trials (FileSource on a silent pipe, {flavor}): p50 {:.1} us, p99 {:.1} us, max {:.1} us",
            us(0.5),
            us(0.99),
            latency.max() as f64 / 1000.0
        );
    }
    Ok(())
}

/// Cancels ingestions whose source is a pipe nobody writes to.
async fn silent_pipe_trials(trials: u64) -> Result<Histogram<u64>, String> {
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| e.to_string())?;
    for trial in 0..trials {
        let (reader, writer) = std::io::pipe().map_err(|e| e.to_string())?;
        let file = std::fs::File::from(std::os::fd::OwnedFd::from(reader));
        let source = weir::source::FileSource::from_std(file, 64 * 1024).map_err(|e| e.to_string())?;
        let token = CancellationToken::new();
        let options = IngestOptions::builder().cancel_token(token.clone()).build();
        let run = tokio::spawn(ingest(source, weir::NullSink, options));
        tokio::time::sleep(Duration::from_micros(200 + (trial * 37) % 800)).await;
        let cancelled_at = Instant::now();
        token.cancel();
        let result = run.await.map_err(|e| e.to_string())?;
        let elapsed = cancelled_at.elapsed();
        drop(writer);
        match result {
            Err(error) if error.kind() == ErrorKind::Cancelled => {}
            other => return Err(format!("trial {trial}: expected a cancellation, got {other:?}")),
        }
        latency
            .record(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).max(1))
            .map_err(|e| e.to_string())?;
    }
    Ok(latency)
}
