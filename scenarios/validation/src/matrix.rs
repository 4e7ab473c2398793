//! The matrix: which invalid configurations meet which sources and sinks,
//! and how one row is run and judged.
//!
//! A row does what a service does with a request: it opens the source
//! (a file, an accepted TCP connection, a generator), creates the sink, and
//! calls `ingest` with the options. Whichever step fails, everything the
//! earlier steps opened must be closed: a source-helper failure drops the
//! connection, a sink failure drops the source, invalid options make
//! `ingest` drop the source and abort the sink.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use weir::source::{FileSource, from_async_read};
use weir::{
    BoxSink, ErrorKind, FileSink, IngestError, IngestOptions, IngestReport, MAX_CHUNK_SIZE, MAX_IN_FLIGHT, MemorySink,
    NullSink, ingest,
};
use weir_harness::figures::validation::ValidationRow;
use weir_harness::{SyntheticSource, open_fds, synthetic_bytes};
use weir_testkit::{Recorded, Recorder};

use crate::observe::{CallCounts, DropWatched, PeerSaw, block_on, fds_on, files_under, peer};

/// Chunk size of every valid source and option set.
const CHUNK_SIZE: usize = 64 * 1024;
/// The seed of the rows' input bytes.
const SEED: u64 = 7;

/// What is wrong with a row's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Config {
    /// `chunk_size(0)`.
    ChunkSizeZero,
    /// `chunk_size(MAX_CHUNK_SIZE + 1)`.
    ChunkSizeTooLarge,
    /// `max_in_flight(0)`.
    MaxInFlightZero,
    /// `max_in_flight(MAX_IN_FLIGHT + 1)`.
    MaxInFlightTooLarge,
    /// `write_timeout(0)`.
    WriteTimeoutZero,
    /// `abort_timeout(0)`.
    AbortTimeoutZero,
    /// `ingest` polled by a plain executor, outside any Tokio runtime.
    NoRuntime,
    /// A chunk size of 0 given to the source helper (`FileSource::open`,
    /// `source::from_async_read`).
    SourceChunkZero,
    /// A `FileSink` target without a file name (`dir/..`).
    FileSinkNoFileName,
    /// A `FileSink` into a directory that does not exist.
    FileSinkMissingDir,
    /// Nothing wrong: the control row, which must commit.
    Valid,
}

impl Config {
    /// Every configuration, in table order.
    pub const ALL: [Self; 11] = [
        Self::ChunkSizeZero,
        Self::ChunkSizeTooLarge,
        Self::MaxInFlightZero,
        Self::MaxInFlightTooLarge,
        Self::WriteTimeoutZero,
        Self::AbortTimeoutZero,
        Self::NoRuntime,
        Self::SourceChunkZero,
        Self::FileSinkNoFileName,
        Self::FileSinkMissingDir,
        Self::Valid,
    ];

    /// How the row's table cell describes it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::ChunkSizeZero => "chunk_size(0)",
            Self::ChunkSizeTooLarge => "chunk_size(MAX + 1)",
            Self::MaxInFlightZero => "max_in_flight(0)",
            Self::MaxInFlightTooLarge => "max_in_flight(MAX + 1)",
            Self::WriteTimeoutZero => "write_timeout(0)",
            Self::AbortTimeoutZero => "abort_timeout(0)",
            Self::NoRuntime => "no Tokio runtime",
            Self::SourceChunkZero => "source helper chunk size 0",
            Self::FileSinkNoFileName => "FileSink target without a file name",
            Self::FileSinkMissingDir => "FileSink into a missing directory",
            Self::Valid => "valid (control)",
        }
    }

    /// Where the failure surfaces: `options`, `runtime`, `source`, `sink`,
    /// or `none` for the control.
    pub fn stage(self) -> &'static str {
        match self {
            Self::ChunkSizeZero
            | Self::ChunkSizeTooLarge
            | Self::MaxInFlightZero
            | Self::MaxInFlightTooLarge
            | Self::WriteTimeoutZero
            | Self::AbortTimeoutZero => "options",
            Self::NoRuntime => "runtime",
            Self::SourceChunkZero => "source",
            Self::FileSinkNoFileName | Self::FileSinkMissingDir => "sink",
            Self::Valid => "none",
        }
    }

    /// Whether the configuration applies to this source and sink: the
    /// source helper's chunk size only to sources built by a helper, the
    /// file sink's targets only to the file sink.
    pub fn applies(self, source: SourceKind, sink: SinkKind) -> bool {
        match self {
            Self::SourceChunkZero => source != SourceKind::Synthetic,
            Self::FileSinkNoFileName | Self::FileSinkMissingDir => sink == SinkKind::File,
            _ => true,
        }
    }

    fn options(self) -> IngestOptions {
        let builder = IngestOptions::builder().chunk_size(CHUNK_SIZE);
        match self {
            Self::ChunkSizeZero => builder.chunk_size(0),
            Self::ChunkSizeTooLarge => builder.chunk_size(MAX_CHUNK_SIZE + 1),
            Self::MaxInFlightZero => builder.max_in_flight(0),
            Self::MaxInFlightTooLarge => builder.max_in_flight(MAX_IN_FLIGHT + 1),
            Self::WriteTimeoutZero => builder.write_timeout(Duration::ZERO),
            Self::AbortTimeoutZero => builder.abort_timeout(Duration::ZERO),
            _ => builder,
        }
        .build()
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// Where the bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A file read by [`FileSource`].
    File,
    /// An accepted TCP connection on 127.0.0.1, read by
    /// [`from_async_read`].
    Tcp,
    /// A [`SyntheticSource`].
    Synthetic,
}

/// Where they go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// [`FileSink`].
    File,
    /// [`MemorySink`].
    Memory,
    /// [`NullSink`].
    Null,
}

/// Every applicable `(config, source, sink)`, in table order.
pub fn plan() -> Vec<(Config, SourceKind, SinkKind)> {
    let mut rows = Vec::new();
    for config in Config::ALL {
        for source in [SourceKind::File, SourceKind::Tcp, SourceKind::Synthetic] {
            for sink in [SinkKind::File, SinkKind::Memory, SinkKind::Null] {
                if config.applies(source, sink) {
                    rows.push((config, source, sink));
                }
            }
        }
    }
    rows
}

/// One row of the matrix, judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The configuration.
    pub config: Config,
    /// The source kind.
    pub source: SourceKind,
    /// The sink kind.
    pub sink: SinkKind,
    /// Where the failure surfaced (see [`Config::stage`]).
    pub stage: String,
    /// `committed`, the ingestion's error kind, or `source`/`sink`
    /// construction for failures before `ingest`.
    pub outcome: String,
    /// The error and its sources, as a caller would print them.
    pub error: Option<String>,
    /// The source's raw input was closed when the row ended.
    pub source_closed: bool,
    /// How that was seen.
    pub source_evidence: String,
    /// The sink was created (a sink construction failure creates none).
    pub sink_created: bool,
    /// The sink's calls.
    pub sink_calls: CallCounts,
    /// How the sink ended, in words.
    pub sink_evidence: String,
    /// Open descriptors before the row and after it.
    pub fds_before: usize,
    /// See `fds_before`.
    pub fds_after: usize,
    /// Files left in the row's directory (temporary files, partial
    /// targets, directories a failed sink made).
    pub files_left: Vec<String>,
    /// Wall time of the row, microseconds.
    pub elapsed_us: u64,
    /// What was wrong, if anything.
    pub problems: Vec<String>,
    /// No problem.
    pub clean: bool,
}

impl Row {
    /// The row as the matrix's figures carry it: kinds by their names.
    pub fn figures(&self) -> ValidationRow {
        let name = |value: serde_json::Value| value.as_str().unwrap_or_default().to_owned();
        let calls = self.sink_calls;
        ValidationRow {
            config: name(serde_json::json!(self.config)),
            source: name(serde_json::json!(self.source)),
            sink: name(serde_json::json!(self.sink)),
            stage: self.stage.clone(),
            outcome: self.outcome.clone(),
            error: self.error.clone(),
            source_closed: self.source_closed,
            source_evidence: self.source_evidence.clone(),
            sink_created: self.sink_created,
            sink_calls: [
                ("writes", calls.writes),
                ("finalizes", calls.finalizes),
                ("finalized_ok", calls.finalized_ok),
                ("aborts", calls.aborts),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            sink_evidence: self.sink_evidence.clone(),
            fds_before: self.fds_before as u64,
            fds_after: self.fds_after as u64,
            files_left: self.files_left.clone(),
            elapsed_us: self.elapsed_us,
            problems: self.problems.clone(),
            clean: self.clean,
        }
    }

    /// The source cell: `yes (evidence)` or `NO (evidence)`.
    pub fn source_cell(&self) -> String {
        format!(
            "{} ({})",
            if self.source_closed { "yes" } else { "NO" },
            self.source_evidence
        )
    }
}

/// The raw input of a row and how to see that it was closed.
enum Input {
    File,
    Tcp(tokio::task::JoinHandle<PeerSaw>),
    Synthetic(Arc<AtomicBool>),
}

type Source = BoxStream<'static, io::Result<Bytes>>;

/// Opens the row's source; an error is the source helper's.
async fn open_source(
    config: Config,
    kind: SourceKind,
    input: &Path,
    len: u64,
) -> io::Result<(Result<Source, String>, Input)> {
    let chunk = if config == Config::SourceChunkZero {
        0
    } else {
        CHUNK_SIZE
    };
    Ok(match kind {
        SourceKind::File => (
            FileSource::open(input, chunk)
                .map(|s| s.boxed())
                .map_err(|e| crate::error_text(&e)),
            Input::File,
        ),
        SourceKind::Tcp => {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let address = listener.local_addr()?;
            let body = Bytes::from(synthetic_bytes(SEED, len, 1 << 20));
            let peer = tokio::spawn(peer(address, body));
            let (stream, _) = listener.accept().await?;
            drop(listener);
            let source = from_async_read(stream, chunk)
                .map(|s| s.boxed())
                .map_err(|e| crate::error_text(&e));
            (source, Input::Tcp(peer))
        }
        SourceKind::Synthetic => {
            let (source, dropped) = DropWatched::new(SyntheticSource::new(SEED, len, CHUNK_SIZE));
            (Ok(source.boxed()), Input::Synthetic(dropped))
        }
    })
}

fn create_sink(config: Config, kind: SinkKind, dir: &Path) -> Result<BoxSink, String> {
    Ok(match kind {
        SinkKind::File => {
            let target = match config {
                Config::FileSinkNoFileName => dir.join(".."),
                Config::FileSinkMissingDir => dir.join("missing").join("sub").join("out.bin"),
                _ => dir.join("out.bin"),
            };
            Box::new(FileSink::create(&target).map_err(|e| crate::error_text(&e))?)
        }
        SinkKind::Memory => Box::new(MemorySink::new()),
        SinkKind::Null => Box::new(NullSink),
    })
}

/// Runs `ingest` as the row asks: on this runtime, or on a plain thread
/// with no runtime at all. `Err` when that thread panicked.
async fn run_ingest(
    config: Config,
    source: Source,
    sink: Recorded<BoxSink>,
) -> Result<Result<IngestReport, IngestError>, String> {
    let options = config.options();
    if config != Config::NoRuntime {
        return Ok(ingest(source, sink, options).await);
    }
    let (done, result) = tokio::sync::oneshot::channel();
    let thread = std::thread::spawn(move || {
        let _ = done.send(block_on(ingest(source, sink, options)));
    });
    let result = result.await;
    // It has sent its result (or panicked): it is returning.
    let joined = thread.join();
    match (result, joined) {
        (Ok(result), _) => Ok(result),
        (Err(_), Err(payload)) => Err(format!(
            "the no-runtime thread panicked: {}",
            payload
                .downcast_ref::<&str>()
                .map(ToString::to_string)
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default()
        )),
        (Err(_), Ok(())) => Err("the no-runtime thread ended without a result".to_owned()),
    }
}

/// Runs one row in `dir` (created and emptied by the row), reading `input`
/// (`len` bytes) for file sources.
///
/// # Errors
///
/// When the row's own scaffolding (directory, listener) fails.
pub async fn run_row(
    config: Config,
    source_kind: SourceKind,
    sink_kind: SinkKind,
    dir: &Path,
    input: &Path,
    len: u64,
) -> io::Result<Row> {
    std::fs::create_dir_all(dir)?;
    let started = Instant::now();
    let fds_before = open_fds();

    let (source, raw) = open_source(config, source_kind, input, len).await?;
    let mut sink_recorder = None;
    let (outcome, error) = match source {
        Err(error) => ("source".to_owned(), Some(error)),
        Ok(source) => match create_sink(config, sink_kind, dir) {
            Err(error) => {
                drop(source);
                ("sink".to_owned(), Some(error))
            }
            Ok(sink) => {
                let recorder = Recorder::counting();
                sink_recorder = Some(recorder.clone());
                let sink = Recorded::new(sink, recorder);
                match run_ingest(config, source, sink).await {
                    Ok(Ok(report)) if report.bytes_written == len => ("committed".to_owned(), None),
                    Ok(Ok(report)) => (format!("committed {} of {len} bytes", report.bytes_written), None),
                    Ok(Err(error)) => (error.kind().as_str().to_owned(), Some(crate::error_text(&error))),
                    Err(panic) => ("panicked".to_owned(), Some(panic)),
                }
            }
        },
    };

    let (source_closed, source_evidence) = match raw {
        Input::File => {
            let open = fds_on(input);
            (open == 0, format!("{open} descriptor(s) open on the input file"))
        }
        Input::Tcp(peer) => match tokio::time::timeout(Duration::from_secs(2), peer).await {
            Ok(Ok(saw)) => (saw.closed(), format!("peer saw {}", peer_words(saw))),
            Ok(Err(e)) => (false, format!("peer task failed: {e}")),
            Err(_) => (false, format!("peer saw {} within 2 s", peer_words(PeerSaw::StillOpen))),
        },
        Input::Synthetic(dropped) => {
            let dropped = dropped.load(Ordering::SeqCst);
            (dropped, if dropped { "dropped" } else { "still alive" }.to_owned())
        }
    };

    let sink_created = sink_recorder.is_some();
    let calls = sink_recorder.as_ref().map(CallCounts::of).unwrap_or_default();
    let reason = sink_recorder.as_ref().and_then(Recorder::abort_reason);
    let sink_evidence = if !sink_created {
        "never created".to_owned()
    } else if calls.finalized_ok == 1 && calls.aborts == 0 {
        format!("committed after {} write(s)", calls.writes)
    } else {
        format!(
            "abort x{}{}, {} write(s), finalize x{}",
            calls.aborts,
            reason.map_or_else(String::new, |r| format!(" ({r})")),
            calls.writes,
            calls.finalizes
        )
    };

    let mut problems = Vec::new();
    if config == Config::Valid {
        if outcome != "committed" {
            problems.push(format!("the control row did not commit: {outcome}"));
        }
        if !(calls.finalized_ok == 1 && calls.aborts == 0) {
            problems.push("the control row's sink was not committed exactly once".to_owned());
        }
        if sink_kind == SinkKind::File {
            let target = dir.join("out.bin");
            let committed = std::fs::metadata(&target).map_or(0, |m| m.len());
            if committed != len {
                problems.push(format!("the committed file holds {committed} of {len} bytes"));
            }
            let _ = std::fs::remove_file(&target);
        }
    } else {
        if error.is_none() {
            problems.push("no error".to_owned());
        }
        let expected = match config.stage() {
            "options" | "runtime" => ErrorKind::InvalidOptions.as_str(),
            other => other,
        };
        if outcome != expected {
            problems.push(format!("ended `{outcome}`, expected `{expected}`"));
        }
        if sink_created && !(calls.aborts == 1 && calls.finalizes == 0 && calls.writes == 0) {
            problems.push(format!(
                "sink not aborted exactly once before any write: {sink_evidence}"
            ));
        }
        if sink_created && reason != Some(ErrorKind::InvalidOptions) {
            problems.push(format!("abort cause {reason:?}, expected invalid_options"));
        }
    }
    if !source_closed {
        problems.push(format!("source not closed: {source_evidence}"));
    }
    let files_left = files_under(dir);
    if !files_left.is_empty() {
        problems.push(format!("files left: {files_left:?}"));
    }
    let fds_after = settle_fds(fds_before).await;
    if fds_after != fds_before {
        problems.push(format!("descriptors {fds_before} -> {fds_after}"));
    }
    if config == Config::FileSinkMissingDir && dir.join("missing").exists() {
        problems.push("the missing directory was created".to_owned());
    }
    let _ = std::fs::remove_dir_all(dir);
    Ok(Row {
        config,
        source: source_kind,
        sink: sink_kind,
        stage: config.stage().to_owned(),
        outcome,
        error,
        source_closed,
        source_evidence,
        sink_created,
        sink_calls: calls,
        sink_evidence,
        fds_before,
        fds_after,
        files_left,
        elapsed_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        clean: problems.is_empty(),
        problems,
    })
}

fn peer_words(saw: PeerSaw) -> &'static str {
    match saw {
        PeerSaw::Eof => "EOF",
        PeerSaw::Reset => "a reset (closed with unread data)",
        PeerSaw::Data => "unexpected data",
        PeerSaw::StillOpen => "nothing: still open",
        PeerSaw::Failed => "a failure",
    }
}

/// Waits up to 500 ms for the descriptor count to return to `want`
/// (a writer or reader thread may close its file a moment after the call
/// that ended it returned); returns the last count.
async fn settle_fds(want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_millis(500);
    loop {
        let now = open_fds();
        if now == want || Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_has_every_applicable_row_once() {
        let rows = plan();
        // 7 option/runtime configs and the control: every source x sink;
        // the source helper: 2 sources x 3 sinks; the file sink's: 3 x 1.
        assert_eq!(rows.len(), 8 * 9 + 6 + 2 * 3);
        let mut unique = rows.clone();
        unique.dedup();
        assert_eq!(unique.len(), rows.len());
        assert!(!rows.contains(&(Config::SourceChunkZero, SourceKind::Synthetic, SinkKind::Null)));
        assert!(!rows.contains(&(Config::FileSinkMissingDir, SourceKind::File, SinkKind::Memory)));
    }

    #[test]
    fn every_option_config_is_refused_by_validation() {
        for config in Config::ALL.into_iter().filter(|c| c.stage() == "options") {
            assert!(config.options().validate().is_err(), "{config}");
        }
        assert!(Config::Valid.options().validate().is_ok());
    }
}
