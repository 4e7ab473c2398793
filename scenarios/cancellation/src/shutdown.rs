//! Graceful shutdown under a real signal: ingestions of different lengths
//! run in a [`Registry`]; SIGTERM arrives (sent by this process to itself,
//! or from outside); the registry refuses newcomers, lets what can finish
//! within the grace period finish and cancels the rest. Records active
//! ingestions over time, the summary, and every ingestion's ending.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::time::{Instant, MissedTickBehavior};
use weir::{BoxSink, CancellationToken, ErrorKind, FileSink, IngestOptions, MemorySink, Registry, ShutdownSummary};
use weir_harness::{ScenarioResult, SyntheticSource, open_fds};
use weir_testkit::Recorder;

use crate::probe::{Behaviour, ProbeSink, probe_sink};
use crate::stats::{settle, temp_files, threads};
use crate::{Error, io_error};
pub use weir_harness::figures::cancellation::{Expected, IngestionRecord, LateRecord, ShutdownRun, SummaryRecord};

/// What to run, and when to give up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShutdownPlan {
    /// Concurrent ingestions.
    pub ingestions: usize,
    /// The longest ingestion's planned duration; the others are spread
    /// evenly below it (ingestion `i` of `n` takes `(i + 1) / n` of it).
    pub longest: Duration,
    /// Time per write (paced against deadlines, so it does not drift).
    pub period: Duration,
    /// The grace period given to `shutdown`.
    pub grace: Duration,
    /// With [`Trigger::SelfSignal`], when SIGTERM is sent after the start.
    pub signal_after: Duration,
    /// Ingestions attempted after the shutdown began (all must be refused).
    pub late_arrivals: usize,
    /// Bytes per write.
    pub chunk_size: usize,
    /// How often the number of active ingestions is sampled.
    pub sample_every: Duration,
    /// Ingestions planned to end within this of the deadline may go either
    /// way (timers, fsync and scheduling on a busy machine).
    pub margin: Duration,
}

impl Default for ShutdownPlan {
    fn default() -> Self {
        Self {
            ingestions: 50,
            longest: Duration::from_secs(3),
            period: Duration::from_millis(20),
            grace: Duration::from_secs(1),
            signal_after: Duration::from_millis(200),
            late_arrivals: 5,
            chunk_size: 16 * 1024,
            sample_every: Duration::from_millis(2),
            margin: Duration::from_millis(250),
        }
    }
}

impl ShutdownPlan {
    /// Writes of ingestion `index` (at least 1).
    pub fn writes(&self, index: usize) -> u64 {
        let planned = self.longest.as_secs_f64() * (index + 1) as f64 / self.ingestions.max(1) as f64;
        ((planned / self.period.as_secs_f64()).round() as u64).max(1)
    }

    /// Planned duration of ingestion `index`, milliseconds.
    pub fn planned_ms(&self, index: usize) -> f64 {
        self.writes(index) as f64 * self.period.as_secs_f64() * 1e3
    }
}

/// Who sends the signal.
pub enum Trigger {
    /// This process sends SIGTERM to itself at the plan's `signal_after`.
    SelfSignal,
    /// Someone else does; the callback runs once the signal handlers are
    /// installed (for example, printing "ready" for a parent process).
    External(Box<dyn FnOnce() + Send>),
}

impl fmt::Debug for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SelfSignal => f.write_str("SelfSignal"),
            Self::External(_) => f.write_str("External(..)"),
        }
    }
}

/// The registry's summary as the figures carry it.
pub fn summary_record(s: ShutdownSummary) -> SummaryRecord {
    SummaryRecord {
        completed: s.completed,
        aborted: s.aborted,
        failed: s.failed,
        refused: s.refused,
        cancelled_at_deadline: s.cancelled_at_deadline,
        took_ms: s.took.as_secs_f64() * 1e3,
    }
}

/// The run as a result file's content: its figures (with the counts derived
/// from the records, which [`run_shutdown`] fills in).
pub fn to_result(run: &ShutdownRun) -> ScenarioResult {
    let bytes = run.records.iter().map(|r| r.bytes_acknowledged).sum();
    let mut result = ScenarioResult::new("cancellation", "shutdown")
        .with_transfer(bytes, Duration::from_secs_f64(run.shutdown_returned_ms / 1e3));
    result.params.insert("part".into(), "shutdown".into());
    result.params.insert("ingestions".into(), run.ingestions.into());
    result.params.insert("grace_ms".into(), run.grace_ms.into());
    result.params.insert("margin_ms".into(), run.margin_ms.into());
    result.set_figures(run);
    result
}

/// A source that records when it is dropped.
struct Watched<S> {
    inner: S,
    dropped: Arc<AtomicBool>,
}

impl<S: Stream + Unpin> Stream for Watched<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

impl<S> Drop for Watched<S> {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

/// One ingestion, before it runs.
struct Prepared {
    index: usize,
    sink_name: &'static str,
    target: PathBuf,
    sink: ProbeSink,
    probe: Recorder,
    source: SyntheticSource,
}

fn prepare(plan: &ShutdownPlan, index: usize, dir: &Path, start: Instant) -> io::Result<Prepared> {
    let target = dir.join(format!("shutdown-{index:03}.bin"));
    let (sink_name, inner): (_, BoxSink) = if index.is_multiple_of(2) {
        ("file", Box::new(FileSink::create(&target)?))
    } else {
        ("memory", Box::new(MemorySink::new()))
    };
    let (sink, probe) = probe_sink(
        inner,
        Behaviour::Paced {
            start,
            period: plan.period,
        },
    );
    let len = plan.writes(index) * plan.chunk_size as u64;
    Ok(Prepared {
        index,
        sink_name,
        target,
        sink,
        probe,
        source: SyntheticSource::new(index as u64, len, plan.chunk_size),
    })
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

/// Runs the plan in `dir`: starts the ingestions, installs the signal
/// handlers (`Registry::shutdown_on_signal`), lets `trigger` send or await
/// the signal, and records the drain.
///
/// With [`Trigger::SelfSignal`] this process receives a real SIGTERM. The
/// handlers are installed before it is sent, so it never kills the process;
/// but, as with any Tokio signal handling, SIGTERM and SIGINT stay caught
/// (and are ignored when nobody listens) for the rest of the process.
///
/// # Errors
///
/// When the directory or a sink cannot be made, or the signal handlers
/// cannot be installed or the signal sent.
pub async fn run_shutdown(plan: &ShutdownPlan, dir: &Path, trigger: Trigger) -> Result<ShutdownRun, Error> {
    std::fs::create_dir_all(dir).map_err(io_error(format!("creating {}", dir.display())))?;
    let fds_before = crate::stats::baseline_fds().await;
    let threads_before = threads();
    let tasks_before = tokio::runtime::Handle::current().metrics().num_alive_tasks();
    let registry = Registry::new();
    let start = Instant::now();

    let mut prepared = Vec::with_capacity(plan.ingestions);
    for index in 0..plan.ingestions {
        prepared.push(prepare(plan, index, dir, start).map_err(io_error(format!("preparing ingestion {index}")))?);
    }
    let mut runs = Vec::with_capacity(plan.ingestions);
    let finished = Arc::new(AtomicUsize::new(0));
    for p in prepared {
        let registry = registry.clone();
        let finished = Arc::clone(&finished);
        let options = IngestOptions::builder().chunk_size(plan.chunk_size).build();
        runs.push(tokio::spawn(async move {
            let result = registry.ingest(p.source, p.sink, options).await;
            finished.fetch_add(1, Ordering::SeqCst);
            (p.index, p.sink_name, p.target, p.probe, result, ms_since(start))
        }));
    }
    // Every ingestion is admitted (running or already finished) before the
    // signal can arrive: a spawned task is only admitted when first polled.
    while registry.active() + finished.load(Ordering::SeqCst) < plan.ingestions {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    let stop_sampling = CancellationToken::new();
    let sampler = tokio::spawn(sample_active(
        registry.clone(),
        start,
        plan.sample_every,
        stop_sampling.clone(),
    ));
    let late = tokio::spawn(late_arrivals(registry.clone(), start, plan.late_arrivals));

    let mut shutdown = pin!(registry.shutdown_on_signal(plan.grace));
    // One poll installs the SIGTERM and SIGINT handlers: only then may the
    // signal be sent.
    if let Poll::Ready(result) = futures_util::poll!(shutdown.as_mut()) {
        let error = result
            .err()
            .unwrap_or_else(|| io::Error::other("shutdown ended before any signal"));
        return Err(io_error("installing the signal handlers")(error).into());
    }
    let signaller = match trigger {
        Trigger::SelfSignal => {
            let at = start + plan.signal_after;
            Some(tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                let sent = ms_since(start);
                rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::TERM)
                    .map(|()| sent)
                    .map_err(io::Error::from)
            }))
        }
        Trigger::External(ready) => {
            ready();
            None
        }
    };
    let summary = shutdown.await.map_err(io_error("waiting for the signal"))?;
    let shutdown_returned_ms = ms_since(start);
    let signal_sent_ms = match signaller {
        Some(task) => Some(
            task.await
                .map_err(|e| io_error("sending SIGTERM")(io::Error::other(e)))?
                .map_err(io_error("sending SIGTERM"))?,
        ),
        None => None,
    };

    let (shutdown_began_ms, late) = late
        .await
        .map_err(|e| io_error("the late arrivals")(io::Error::other(e)))?;
    let deadline_ms = shutdown_began_ms + plan.grace.as_secs_f64() * 1e3;
    let margin_ms = plan.margin.as_secs_f64() * 1e3;
    let mut records = Vec::with_capacity(runs.len());
    let mut target_mismatches = Vec::new();
    for run in runs {
        let (index, sink_name, target, probe, result, returned_ms) = run
            .await
            .map_err(|e| io_error("an ingestion task")(io::Error::other(e)))?;
        let planned_ms = plan.planned_ms(index);
        let expected = if planned_ms + margin_ms < deadline_ms {
            Expected::Finish
        } else if planned_ms - margin_ms > deadline_ms {
            Expected::Abort
        } else {
            Expected::Either
        };
        let counts = probe.counts();
        let outcome = match &result {
            Ok(_) => "committed".to_owned(),
            Err(error) => error.kind().as_str().to_owned(),
        };
        let committed_cleanly = result.is_ok() && counts.finalized_ok == 1 && counts.aborts == 0;
        let aborted_cleanly = result
            .as_ref()
            .is_err_and(|e| e.kind() == ErrorKind::Shutdown && e.report().abort.as_ref().is_some_and(|a| a.clean))
            && counts.aborts == 1
            && counts.finalized_ok == 0
            && probe.abort_reason() == Some(ErrorKind::Shutdown);
        let as_expected = counts.violations() == 0
            && match expected {
                Expected::Finish => committed_cleanly,
                Expected::Abort => aborted_cleanly,
                Expected::Either => committed_cleanly || aborted_cleanly,
            };
        if sink_name == "file" && target.exists() != result.is_ok() {
            target_mismatches.push(format!(
                "{} exists: {}, outcome {outcome}",
                target.display(),
                target.exists()
            ));
        }
        records.push(IngestionRecord {
            index,
            sink: sink_name.to_owned(),
            writes: plan.writes(index),
            planned_ms,
            expected,
            outcome,
            returned_ms,
            bytes_acknowledged: counts.bytes_acknowledged,
            aborts: counts.aborts,
            finalized: counts.finalized_ok == 1,
            violations: counts.violations(),
            as_expected,
        });
    }
    stop_sampling.cancel();
    let active_samples = sampler
        .await
        .map_err(|e| io_error("the sampler")(io::Error::other(e)))?;
    let temp_files_left = temp_files(dir);
    let fds_after = settle(fds_before, Duration::from_secs(1), open_fds).await;
    let threads_after = settle(threads_before, Duration::from_secs(1), threads).await;
    // A task that returned is released by its worker a moment after its
    // join handle sees the output.
    let metrics = tokio::runtime::Handle::current().metrics();
    let tasks_after = settle(tasks_before, Duration::from_secs(1), || metrics.num_alive_tasks()).await;
    let mut run = ShutdownRun {
        ingestions: plan.ingestions,
        grace_ms: plan.grace.as_secs_f64() * 1e3,
        margin_ms,
        signal_sent_ms,
        shutdown_began_ms,
        deadline_ms,
        shutdown_returned_ms,
        summary: summary_record(summary),
        records,
        late,
        active_samples,
        fds_before,
        fds_after,
        threads_before,
        threads_after,
        tasks_before,
        tasks_after,
        temp_files_left,
        target_mismatches,
        ..ShutdownRun::default()
    };
    run.count();
    Ok(run)
}

/// Samples `registry.active()` until `stop`; one last sample at the end.
async fn sample_active(
    registry: Registry,
    start: Instant,
    every: Duration,
    stop: CancellationToken,
) -> Vec<(f64, usize)> {
    let mut samples = Vec::new();
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticks.tick() => samples.push((ms_since(start), registry.active())),
        }
    }
    samples.push((ms_since(start), registry.active()));
    samples
}

/// Waits for the shutdown to begin, notes when, then tries `count` new
/// ingestions, which must all be refused.
async fn late_arrivals(registry: Registry, start: Instant, count: usize) -> (f64, Vec<LateRecord>) {
    while !registry.is_shutting_down() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let began = ms_since(start);
    let mut late = Vec::with_capacity(count);
    for index in 0..count {
        let dropped = Arc::new(AtomicBool::new(false));
        let source = Watched {
            inner: SyntheticSource::new(index as u64, 64 * 1024, 16 * 1024),
            dropped: Arc::clone(&dropped),
        };
        let (sink, probe) = probe_sink(Box::new(MemorySink::new()), Behaviour::Immediate);
        let result = registry.ingest(source, sink, IngestOptions::default()).await;
        let counts = probe.counts();
        late.push(LateRecord {
            error: result
                .as_ref()
                .map_or_else(|e| crate::error_text(e), |_| "committed".to_owned()),
            refused: result.as_ref().is_err_and(|e| e.kind() == ErrorKind::Refused),
            source_dropped: dropped.load(Ordering::SeqCst),
            sink_aborted_once: counts.aborts == 1
                && counts.writes_called == 0
                && probe.abort_reason() == Some(ErrorKind::Refused),
        });
    }
    (began, late)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_spread_evenly_up_to_the_longest() {
        let plan = ShutdownPlan::default();
        let first = plan.planned_ms(0);
        let last = plan.planned_ms(plan.ingestions - 1);
        assert!((last - plan.longest.as_secs_f64() * 1e3).abs() < 1e-6, "{last}");
        assert!(first < last);
        assert!((0..plan.ingestions - 1).all(|i| plan.planned_ms(i) <= plan.planned_ms(i + 1)));
        assert!((0..plan.ingestions).all(|i| plan.writes(i) >= 1));
    }

    #[test]
    fn a_run_with_an_unmet_expectation_counts_it() {
        let record = |expected, as_expected| IngestionRecord {
            index: 0,
            sink: "memory".to_owned(),
            writes: 1,
            planned_ms: 20.0,
            expected,
            outcome: "committed".to_owned(),
            returned_ms: 20.0,
            bytes_acknowledged: 1,
            aborts: 0,
            finalized: true,
            violations: 0,
            as_expected,
        };
        let run = ShutdownRun {
            ingestions: 2,
            records: vec![record(Expected::Finish, true), record(Expected::Abort, false)],
            active_samples: vec![(0.0, 2), (1.0, 0)],
            ..ShutdownRun::default()
        };
        assert_eq!(run.tally(Expected::Finish), (1, 1));
        assert_eq!(run.tally(Expected::Abort), (1, 0));
        let mut run = run;
        run.count();
        let figures = to_result(&run).figures::<ShutdownRun>().unwrap();
        assert_eq!(figures.not_as_expected, 1);
        assert_eq!((figures.violations, figures.active_at_end), (0, 0));
        assert_eq!(figures.records, run.records);
    }
}
