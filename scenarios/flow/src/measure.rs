//! Measures one flow case in the current process: RSS sampled from a
//! background thread, runtime lag probed on the runtime, one result.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use serde_json::{Map, Value, json};
use tokio::time::Instant;
use weir::source::FileSource;
use weir::{FileSink, IngestOptions, NullSink, Sink};
use weir_harness::figures::flow::FlowRun;
pub(crate) use weir_harness::load_average;
use weir_harness::{LagProbe, RssSampler, ScenarioResult, SyntheticSource, write_test_file};

use crate::Error;
use crate::case::{Case, CaseKind, DelayModel, SinkKind, SourceKind, UnboundedCap, Variant};
use crate::slow::SlowSink;
use crate::unbounded::run_unbounded;

/// The runtime lag heartbeat's interval.
pub const LAG_INTERVAL: Duration = Duration::from_millis(10);

/// How long the backpressure group's runs measure an idle runtime's lag
/// before they start.
const IDLE_LAG_WINDOW: Duration = Duration::from_secs(1);

/// The runtime every case runs on: multi-threaded, two workers (the size of
/// the machines this is measured on), time enabled.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .map_err(|source| Error::io("building the Tokio runtime", source))
}

/// The seeded input file for file-backed runs, written once and reused.
pub(crate) fn input_file(work_dir: &Path, size: u64, seed: u64) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(work_dir)
        .map_err(|source| Error::io(format!("creating {}", work_dir.display()), source))?;
    let path = work_dir.join(format!("flow-input-{size}-{seed}.bin"));
    write_test_file(&path, size, seed).map_err(|source| Error::io(format!("writing {}", path.display()), source))?;
    Ok(path)
}

/// What one flow did, whichever variant moved it.
struct Moved {
    bytes: u64,
    outcome: String,
    figures: FlowRun,
}

/// Runs one `CaseKind::Flow` case and returns its result (not written).
pub(crate) fn run_flow(case: &Case) -> Result<ScenarioResult, Error> {
    let CaseKind::Flow {
        variant,
        source,
        sink,
        size,
        cap,
    } = case.kind
    else {
        return Err(Error::InvalidCase(format!("not a flow case: {case}")));
    };
    let work_dir = case.work_dir.as_path();
    let runtime = runtime()?;
    let input = match source {
        SourceKind::File => Some(input_file(work_dir, size, case.seed)?),
        SourceKind::Synthetic => None,
    };
    let output = work_dir.join(format!("flow-output-{}.bin", std::process::id()));

    let mut result = ScenarioResult::new("flow", variant.name());
    result.params = case_params(case);
    let load_before = load_average();
    let sampler = RssSampler::start(Duration::from_millis(case.sample_millis.max(1)));
    // The lab-only memory regression (`WEIR_LAB_INJECT=memory`), held for
    // the run: the gates must see it.
    let ballast = (case.group == "flat-memory").then(|| case.inject.ballast()).flatten();
    let (moved, elapsed, lag, idle_lag) = runtime.block_on(async {
        // The lag gate judges what the ingestion adds: the same heartbeat
        // on the same runtime with nothing else to do, just before.
        let idle_lag = if case.group == "backpressure" {
            let idle = LagProbe::start(LAG_INTERVAL);
            tokio::time::sleep(IDLE_LAG_WINDOW).await;
            Some(idle.stop().await)
        } else {
            None
        };
        let probe = LagProbe::start(LAG_INTERVAL);
        let started = Instant::now();
        let moved = match input {
            Some(path) => {
                let file = FileSource::open(&path, case.chunk_size)
                    .map_err(|source| Error::io(format!("opening {}", path.display()), source))?;
                with_sink(file, sink, variant, cap, case.chunk_size, &output).await?
            }
            None => {
                let synthetic = SyntheticSource::new(case.seed, size, case.chunk_size);
                with_sink(synthetic, sink, variant, cap, case.chunk_size, &output).await?
            }
        };
        let elapsed = started.elapsed();
        Ok::<_, Error>((moved, elapsed, probe.stop().await, idle_lag))
    })?;
    result.rss = sampler.stop();
    drop(ballast);
    drop(runtime);
    let _ = std::fs::remove_file(&output);

    result = result.with_transfer(moved.bytes, elapsed);
    result.outcome = moved.outcome;
    let idle_lag_p99_us = idle_lag.map(|idle| idle.p99_us);
    let lag_over_idle_p99_us = idle_lag_p99_us.map(|idle| lag.p99_us.saturating_sub(idle));
    result.lag = Some(lag);
    result.set_figures(&FlowRun {
        growth_bytes: result.rss.growth_bytes(),
        idle_lag_p99_us,
        lag_over_idle_p99_us,
        load_average_before: load_before,
        load_average_after: load_average(),
        ..moved.figures
    });
    Ok(result)
}

async fn with_sink<St>(
    source: St,
    sink: SinkKind,
    variant: Variant,
    cap: UnboundedCap,
    chunk_size: usize,
    output: &Path,
) -> Result<Moved, Error>
where
    St: Stream<Item = std::io::Result<Bytes>> + Send,
{
    match sink {
        SinkKind::Null => Ok(flow(source, NullSink, variant, cap, chunk_size).await),
        SinkKind::Slow(model) => Ok(flow(source, SlowSink::new(model), variant, cap, chunk_size).await),
        SinkKind::File => {
            let file = FileSink::create(output)
                .map_err(|source| Error::io(format!("creating the file sink at {}", output.display()), source))?;
            Ok(flow(source, file, variant, cap, chunk_size).await)
        }
    }
}

async fn flow<St, Si>(source: St, sink: Si, variant: Variant, cap: UnboundedCap, chunk_size: usize) -> Moved
where
    St: Stream<Item = std::io::Result<Bytes>> + Send,
    Si: Sink + 'static,
{
    let mut figures = FlowRun::default();
    match variant {
        Variant::Controlled { max_in_flight } => {
            let options = IngestOptions::builder()
                .chunk_size(chunk_size)
                .max_in_flight(max_in_flight)
                .build();
            match weir::ingest(source, sink, options).await {
                Ok(report) => {
                    figures.peak_in_flight = Some(report.peak_in_flight as u64);
                    figures.chunks_written = Some(report.chunks_written);
                    figures.write_latency_p99_us =
                        Some(u64::try_from(report.write_latency.p99.as_micros()).unwrap_or(u64::MAX));
                    Moved {
                        bytes: report.bytes_written,
                        outcome: "ok".to_owned(),
                        figures,
                    }
                }
                Err(error) => Moved {
                    bytes: error.report().bytes_written,
                    outcome: error_chain(&error),
                    figures,
                },
            }
        }
        Variant::Unbounded => {
            figures.cap_outstanding_bytes = Some(cap.max_outstanding_bytes);
            figures.cap_millis = Some(cap.max_millis);
            match run_unbounded(source, sink, cap).await {
                Ok(report) => {
                    figures.peak_outstanding_bytes = Some(report.peak_outstanding_bytes);
                    figures.spawned = Some(report.spawned);
                    figures.bytes_read = Some(report.bytes_read);
                    figures.capped = report.capped.clone();
                    let outcome = report
                        .capped
                        .map_or_else(|| "ok".to_owned(), |why| format!("capped: {why}"));
                    Moved {
                        bytes: report.bytes_written,
                        outcome,
                        figures,
                    }
                }
                Err(error) => Moved {
                    bytes: 0,
                    outcome: error_chain(&error),
                    figures,
                },
            }
        }
    }
}

/// An error and its sources, `: `-separated.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The parameters recorded with every result of `case`.
pub(crate) fn case_params(case: &Case) -> Map<String, Value> {
    let mut params = Map::new();
    params.insert("group".into(), json!(case.group));
    params.insert("size".into(), json!(case.size()));
    params.insert("chunk_size".into(), json!(case.chunk_size));
    params.insert("seed".into(), json!(case.seed));
    params.insert("run_id".into(), json!(case.run_id));
    match &case.kind {
        CaseKind::Flow {
            variant, source, sink, ..
        } => {
            params.insert("source".into(), json!(source.name()));
            params.insert("sink".into(), json!(sink.name()));
            if let Variant::Controlled { max_in_flight } = variant {
                params.insert("max_in_flight".into(), json!(max_in_flight));
            }
            if let SinkKind::Slow(model) = sink {
                params.insert("delay_model".into(), json!(model));
                if let DelayModel::Exponential { .. } = model {
                    params.insert("delay_mean_us".into(), json!(model.mean().as_micros() as u64));
                }
            }
        }
        CaseKind::Throughput {
            sink,
            rounds,
            max_in_flight,
            ..
        } => {
            params.insert("source".into(), json!("file"));
            params.insert("sink".into(), json!(sink.name()));
            params.insert("rounds".into(), json!(rounds));
            params.insert("max_in_flight".into(), json!(max_in_flight));
        }
    }
    params
}
