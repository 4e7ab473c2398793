//! Client disconnect: the source is a TCP connection on 127.0.0.1 whose
//! peer promises a length (see [`framing`](crate::framing)), sends part of
//! it and hangs up, by closing (FIN) or resetting (RST). The ingestion must
//! fail with a source error and abort the sink, and nothing may leak.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use weir::{BoxSink, ErrorKind, FileSink, IngestOptions, MemorySink, ingest, source};
use weir_harness::{ScenarioResult, open_fds, synthetic_bytes};

use crate::framing::{ExactLength, length_prefix, read_length_prefix};
use crate::probe::{Behaviour, ProbeCounts, probe_sink};
use crate::stats::{LatencyRecorder, temp_files};
use crate::{Error, io_error};
pub use weir_harness::figures::cancellation::DisconnectReport;

/// Chunk size of the socket source.
const CHUNK_SIZE: usize = 16 * 1024;
/// A trial that takes longer than this is reported as hung.
const TRIAL_TIMEOUT: Duration = Duration::from_secs(20);

/// How the peer ends its upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HangUp {
    /// Sends part of the promised bytes, then closes cleanly (FIN).
    Close,
    /// Sends part of the promised bytes, then resets (RST, `SO_LINGER` 0).
    Reset,
    /// Sends everything it promised, then closes: the control case, which
    /// must commit.
    Complete,
}

/// One disconnect trial's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisconnectPlan {
    /// Trial number.
    pub index: usize,
    /// How the peer ends.
    pub hang_up: HangUp,
    /// Bytes promised by the prefix.
    pub promised: u64,
    /// Bytes actually sent before hanging up.
    pub sent: u64,
    /// `true`: a [`FileSink`]; `false`: a [`MemorySink`].
    pub file_sink: bool,
}

impl DisconnectPlan {
    /// Draws trial `index` from `rng`: one in five completes, the rest close
    /// or reset at a random point.
    pub fn draw(index: usize, rng: &mut Xoshiro256PlusPlus) -> Self {
        let mut pick = |lo: u64, hi: u64| lo + rng.next_u64() % (hi - lo + 1);
        let promised = pick(64 * 1024, 2 << 20);
        let hang_up = match pick(0, 4) {
            0 => HangUp::Complete,
            1 | 2 => HangUp::Close,
            _ => HangUp::Reset,
        };
        let sent = if hang_up == HangUp::Complete {
            promised
        } else {
            pick(0, promised - 1)
        };
        Self {
            index,
            hang_up,
            promised,
            sent,
            file_sink: pick(0, 1) == 0,
        }
    }
}

/// How one disconnect trial ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisconnectOutcome {
    /// The plan.
    pub plan: DisconnectPlan,
    /// `committed`, or the error kind (`source` expected for hang-ups).
    pub outcome: String,
    /// The error's text, when it failed.
    pub error: Option<String>,
    /// The expected ending: a hang-up failed with a source error and
    /// aborted exactly once and cleanly; a complete upload committed every
    /// byte.
    pub as_expected: bool,
    /// Hang-up to return, when it failed.
    pub latency: Option<Duration>,
    /// Bytes the engine read from the socket.
    pub bytes_read: u64,
    /// What the sink saw.
    pub counts: ProbeCounts,
    /// Temporary files left.
    pub temp_files_left: usize,
}

/// Runs `trials` disconnect trials drawn from `seed`, with file sinks in
/// `dir`.
///
/// # Errors
///
/// When the directory or the listener cannot be made.
pub async fn run_disconnects(trials: usize, seed: u64, dir: &Path) -> Result<DisconnectReport, Error> {
    std::fs::create_dir_all(dir).map_err(io_error(format!("creating {}", dir.display())))?;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0xD15C);
    let mut latency = LatencyRecorder::default();
    let mut report = DisconnectReport {
        trials,
        fds_before: crate::stats::baseline_fds().await,
        ..DisconnectReport::default()
    };
    let started = Instant::now();
    for index in 0..trials {
        let plan = DisconnectPlan::draw(index, &mut rng);
        let outcome = match tokio::time::timeout(TRIAL_TIMEOUT, run_one(plan, dir)).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(error)) => return Err(io_error(format!("disconnect trial {index}"))(error).into()),
            Err(_) => DisconnectOutcome {
                plan,
                outcome: format!("hung for more than {TRIAL_TIMEOUT:?}"),
                error: None,
                as_expected: false,
                latency: None,
                bytes_read: 0,
                counts: ProbeCounts::default(),
                temp_files_left: temp_files(dir).len(),
            },
        };
        match plan.hang_up {
            HangUp::Close => report.closed += 1,
            HangUp::Reset => report.reset += 1,
            HangUp::Complete => report.complete += 1,
        }
        if outcome.as_expected {
            report.as_expected += 1;
        } else if report.unexpected_examples.len() < 5 {
            report
                .unexpected_examples
                .push(format!("{plan:?}: {} {:?}", outcome.outcome, outcome.error));
        }
        let example = match plan.hang_up {
            HangUp::Close => Some(&mut report.close_error_example),
            HangUp::Reset => Some(&mut report.reset_error_example),
            HangUp::Complete => None,
        };
        if let Some(example) = example.filter(|e| e.is_none()) {
            example.clone_from(&outcome.error);
        }
        if let Some(value) = outcome.latency {
            latency.record(value);
        }
        report.counts.add(&outcome.counts);
        report.temp_files_left += outcome.temp_files_left;
    }
    report.elapsed_s = started.elapsed().as_secs_f64();
    report.fds_after = crate::stats::settle(report.fds_before, Duration::from_secs(1), open_fds).await;
    report.violations = report.counts.violations();
    report.latency = latency.stats();
    Ok(report)
}

/// The peer: promises `plan.promised` bytes, sends `plan.sent`, hangs up as
/// planned; returns when it hung up.
async fn peer(address: std::net::SocketAddr, plan: DisconnectPlan) -> io::Result<Instant> {
    let mut stream = TcpStream::connect(address).await?;
    stream.write_all(&length_prefix(plan.promised)).await?;
    let body = synthetic_bytes(plan.index as u64, plan.sent, 64 * 1024);
    // The server may already be gone (it fails on a reset of our own): a
    // failed write is part of the experiment, not an error.
    let _ = stream.write_all(&body).await;
    match plan.hang_up {
        HangUp::Reset => {
            stream.set_zero_linger()?;
            let at = Instant::now();
            drop(stream);
            Ok(at)
        }
        HangUp::Close | HangUp::Complete => {
            let _ = stream.shutdown().await;
            let at = Instant::now();
            drop(stream);
            Ok(at)
        }
    }
}

/// Runs one trial: a listener, a peer task, and the server side ingesting
/// the peer's upload.
///
/// # Errors
///
/// When the listener cannot be bound or the connection accepted.
pub async fn run_one(plan: DisconnectPlan, dir: &Path) -> io::Result<DisconnectOutcome> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let client = tokio::spawn(peer(address, plan));
    let (mut stream, _) = listener.accept().await?;
    drop(listener);

    let target = dir.join(format!("upload-{}.bin", plan.index));
    let memory = MemorySink::new();
    let committed = memory.handle();
    let inner: BoxSink = if plan.file_sink {
        Box::new(FileSink::create(&target)?)
    } else {
        Box::new(memory)
    };
    let (sink, probe) = probe_sink(inner, Behaviour::Immediate);

    // The prefix is read before the ingestion: a peer that hangs up inside
    // it never reaches the engine, and the sink is aborted by hand-off below.
    let result = match read_length_prefix(&mut stream).await {
        Ok(promised) => {
            let body = source::from_async_read(stream.take(promised), CHUNK_SIZE).map_err(io::Error::other)?;
            ingest(ExactLength::new(body, promised), sink, IngestOptions::default()).await
        }
        Err(error) => {
            drop(stream);
            let failed = futures_util::stream::once(std::future::ready(Err::<Bytes, _>(error)));
            ingest(failed, sink, IngestOptions::default()).await
        }
    };
    let returned = Instant::now();
    let hung_up = client.await.map_err(io::Error::other)??;
    let counts = probe.counts();

    let mut outcome = DisconnectOutcome {
        plan,
        outcome: String::new(),
        error: None,
        as_expected: false,
        latency: None,
        bytes_read: 0,
        counts,
        temp_files_left: 0,
    };
    match result {
        Ok(report) => {
            outcome.outcome = "committed".to_owned();
            outcome.bytes_read = report.bytes_read;
            let content_ok = if plan.file_sink {
                std::fs::read(&target).is_ok_and(|c| c == synthetic_bytes(plan.index as u64, plan.sent, 64 * 1024))
            } else {
                committed
                    .committed()
                    .is_some_and(|c| c == synthetic_bytes(plan.index as u64, plan.sent, 64 * 1024))
            };
            outcome.as_expected = plan.hang_up == HangUp::Complete
                && report.bytes_written == plan.promised
                && content_ok
                && counts.finalized_ok == 1
                && counts.aborts == 0;
            let _ = std::fs::remove_file(&target);
        }
        Err(error) => {
            outcome.outcome = error.kind().as_str().to_owned();
            outcome.error = Some(crate::error_text(&error));
            outcome.bytes_read = error.report().bytes_read;
            outcome.latency = Some(returned.saturating_duration_since(hung_up));
            let abort = error.report().abort.clone();
            outcome.as_expected = plan.hang_up != HangUp::Complete
                && error.kind() == ErrorKind::Source
                && counts.aborts == 1
                && counts.finalizes == 0
                && abort.is_some_and(|a| a.clean && a.bytes_acknowledged <= plan.sent)
                && !target.exists()
                && committed.committed().is_none();
        }
    }
    outcome.temp_files_left = temp_files(dir).len();
    outcome.as_expected &= outcome.temp_files_left == 0 && counts.violations() == 0;
    Ok(outcome)
}

/// The trials as a result file's content.
pub fn to_result(report: &DisconnectReport, seed: u64) -> ScenarioResult {
    let mut result = ScenarioResult::new("cancellation", "disconnect").with_transfer(
        report.counts.bytes_acknowledged,
        Duration::from_secs_f64(report.elapsed_s),
    );
    result.params.insert("part".into(), "disconnect".into());
    result.params.insert("trials".into(), report.trials.into());
    result.params.insert("seed".into(), seed.into());
    result.params.insert("chunk_size".into(), CHUNK_SIZE.into());
    if report.as_expected != report.trials {
        result.outcome = format!(
            "{} of {} trials did not end as expected: {:?}",
            report.trials - report.as_expected,
            report.trials,
            report.unexpected_examples
        );
    }
    result.set_figures(&DisconnectReport {
        leaked_fds: report.count_leaked_fds(),
        ..report.clone()
    });
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_cover_every_hang_up_and_cut_before_the_end() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let plans: Vec<_> = (0..100).map(|i| DisconnectPlan::draw(i, &mut rng)).collect();
        for kind in [HangUp::Close, HangUp::Reset, HangUp::Complete] {
            assert!(plans.iter().any(|p| p.hang_up == kind), "{kind:?}");
        }
        for p in &plans {
            match p.hang_up {
                HangUp::Complete => assert_eq!(p.sent, p.promised),
                _ => assert!(p.sent < p.promised),
            }
        }
    }
}
