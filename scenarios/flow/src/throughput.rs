//! Throughput as ratios measured in one process: the engine against a plain
//! synchronous `std::fs` loop on a thread of its own, over the same
//! page-cached file with the same buffer size, alternating (ABBA) so that
//! drift on a shared machine hits both alike.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use weir::source::FileSource;
use weir::{BoxError, Cause, FileSink, IngestOptions, NullSink, Sink};
use weir_harness::figures::flow::FlowThroughput;
use weir_harness::{PairedRatio, RssSampler, ScenarioResult};

use crate::Error;
use crate::case::{Case, CaseKind, SinkKind};
use crate::measure::{case_params, error_chain, input_file, load_average, runtime};

/// Which side of the comparison a round measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Engine,
    Plain,
}

/// Runs one `CaseKind::Throughput` case and returns its result (not
/// written): `throughput_bps` is the engine's median round, its [`FlowThroughput`] figures the
/// median of the per-round ratios (`ratio`), its spread and every round.
pub(crate) fn run_throughput(case: &Case) -> Result<ScenarioResult, Error> {
    let CaseKind::Throughput {
        sink,
        size,
        rounds,
        max_in_flight,
    } = case.kind
    else {
        return Err(Error::InvalidCase(format!("not a throughput case: {case}")));
    };
    if !matches!(sink, SinkKind::Null | SinkKind::File) {
        return Err(Error::InvalidCase(format!(
            "throughput compares file -> null or file -> file, not file -> {}",
            sink.name()
        )));
    }
    let rounds = rounds.max(1);
    let input = input_file(&case.work_dir, size, case.seed)?;
    let output = case.work_dir.join(format!("flow-copy-{}.bin", std::process::id()));
    let runtime = runtime()?;
    // Warm the page cache so that both sides read from memory.
    plain_read(&input, case.chunk_size)?;

    let mut result = ScenarioResult::new("flow", "throughput");
    result.params = case_params(case);
    let load_average_before = load_average();
    let sampler = RssSampler::start(Duration::from_millis(case.sample_millis.max(1)));
    let mut engine = Vec::with_capacity(rounds);
    let mut plain = Vec::with_capacity(rounds);
    let mut failure = None;
    for round in 0..rounds {
        let order = if weir_harness::a_first(round) {
            [Side::Plain, Side::Engine]
        } else {
            [Side::Engine, Side::Plain]
        };
        for side in order {
            let started = Instant::now();
            let moved = match (side, sink) {
                (Side::Plain, SinkKind::File) => plain_copy(&input, &output, case.chunk_size)?,
                (Side::Plain, _) => plain_read(&input, case.chunk_size)?,
                (Side::Engine, _) => match runtime.block_on(engine_run(&input, &output, sink, case, max_in_flight)) {
                    Ok(bytes) => bytes,
                    Err(error) => {
                        failure = Some(error);
                        break;
                    }
                },
            };
            let elapsed = started.elapsed();
            let _ = std::fs::remove_file(&output);
            if moved != size {
                return Err(Error::InvalidCase(format!("{side:?} moved {moved} of {size} bytes")));
            }
            let bps = size as f64 / elapsed.as_secs_f64().max(1e-9);
            match side {
                Side::Engine => engine.push(bps),
                Side::Plain => plain.push(bps),
            }
        }
        if failure.is_some() {
            break;
        }
    }
    result.rss = sampler.stop();
    if let Some(error) = failure {
        result.outcome = error;
        return Ok(result);
    }
    // The median of the per-round ratios: each round pairs the two sides
    // back to back (ABBA order), so a neighbour's burst moves one round's
    // ratio, not the figure.
    let Some(paired) = PairedRatio::from_pairs(engine.iter().copied().zip(plain.iter().copied())) else {
        result.outcome = "no complete round".to_owned();
        return Ok(result);
    };
    let engine_bps = paired.a_median();
    result = result.with_transfer(size, Duration::from_secs_f64(size as f64 / engine_bps.max(1e-9)));
    let baseline = match sink {
        SinkKind::File => "std::fs read/write loop + sync_all, own thread",
        _ => "std::fs read loop, own thread",
    };
    result.set_figures(&FlowThroughput {
        baseline: baseline.to_owned(),
        load_average_before,
        load_average_after: load_average(),
        engine_bps,
        plain_bps: paired.b_median(),
        ratio: paired.median,
        ratio_spread: paired.spread,
        paired,
    });
    Ok(result)
}

async fn engine_run(
    input: &Path,
    output: &Path,
    sink: SinkKind,
    case: &Case,
    max_in_flight: usize,
) -> Result<u64, String> {
    let chunk_size = case.chunk_size;
    let source = FileSource::open(input, chunk_size).map_err(|e| format!("opening {}: {e}", input.display()))?;
    let options = IngestOptions::builder()
        .chunk_size(chunk_size)
        .max_in_flight(max_in_flight)
        .build();
    let report = match sink {
        SinkKind::File => {
            let file = FileSink::create(output).map_err(|e| format!("creating {}: {e}", output.display()))?;
            weir::ingest(source, file, options).await
        }
        _ if case.inject.throughput => weir::ingest(source, CopyingSink(NullSink), options).await,
        _ => weir::ingest(source, NullSink, options).await,
    };
    report.map(|r| r.bytes_written).map_err(|e| error_chain(&e))
}

/// The lab-only throughput regression (`WEIR_LAB_INJECT=throughput`): a
/// sink that copies every chunk twice before its inner sink sees it, as
/// accidental copies in the hot path would (one copy measured -19% on the
/// ratio; two make the regression stand well clear of the noise).
#[derive(Debug)]
struct CopyingSink<S>(S);

impl<S: Sink> Sink for CopyingSink<S> {
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<S> {
        let once = Bytes::copy_from_slice(&chunk);
        self.0.write(Bytes::copy_from_slice(&once))
    }

    fn finalize(&mut self) -> impl Future<Output = Result<(), BoxError>> + Send {
        self.0.finalize()
    }

    fn abort(self, cause: &Cause) -> impl Future<Output = Result<(), BoxError>> + Send {
        self.0.abort(cause)
    }
}

/// Reads `path` to the end with `chunk_size` reads on a thread of its own.
fn plain_read(path: &Path, chunk_size: usize) -> Result<u64, Error> {
    let path = path.to_path_buf();
    on_thread(move || {
        let mut file = File::open(&path)?;
        let mut buffer = vec![0u8; chunk_size];
        let mut total = 0u64;
        loop {
            match file.read(&mut buffer) {
                Ok(0) => return Ok(total),
                Ok(n) => total += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    })
}

/// Copies `from` to `to` with `chunk_size` reads and writes on a thread of
/// its own, then `sync_all`s, as the file sink does before it commits.
fn plain_copy(from: &Path, to: &Path, chunk_size: usize) -> Result<u64, Error> {
    let (from, to) = (from.to_path_buf(), to.to_path_buf());
    on_thread(move || {
        let mut input = File::open(&from)?;
        let mut output = File::create(&to)?;
        let mut buffer = vec![0u8; chunk_size];
        let mut total = 0u64;
        loop {
            match input.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => {
                    output.write_all(&buffer[..n])?;
                    total += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        output.sync_all()?;
        Ok(total)
    })
}

fn on_thread(work: impl FnOnce() -> std::io::Result<u64> + Send + 'static) -> Result<u64, Error> {
    let thread = std::thread::Builder::new()
        .name("weir-flow-plain".to_owned())
        .spawn(work)
        .map_err(|source| Error::io("spawning the plain loop's thread", source))?;
    match thread.join() {
        Ok(result) => result.map_err(|source| Error::io("the plain std::fs loop", source)),
        Err(_) => Err(Error::InvalidCase("the plain std::fs loop panicked".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_loops_move_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let input = input_file(dir.path(), 300_000, 5).unwrap();
        assert_eq!(plain_read(&input, 4096).unwrap(), 300_000);
        let copy = dir.path().join("copy.bin");
        assert_eq!(plain_copy(&input, &copy, 4096).unwrap(), 300_000);
        assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&input).unwrap());
    }
}
