//! Validation leaks in weir, measured: a matrix of invalid configurations
//! (options `ingest` refuses, no Tokio runtime, a zero chunk size given to
//! a source helper, file sink targets that cannot be created) x sources
//! (file, TCP on 127.0.0.1, synthetic) x sinks (file, memory, null), plus a
//! valid control row per source and sink.
//!
//! For every row: the error text a caller would print, the source closed
//! (file: no descriptor left open on it; TCP: the peer sees EOF or a reset;
//! synthetic: its drop observed), the sink aborted exactly once with
//! `invalid_options` (or never created), the process's descriptor count
//! unchanged, and no file left behind. Every row must be clean.
//!
//! ```no_run
//! use weir_validation::{ValidationParams, run_blocking};
//!
//! let results = run_blocking(&ValidationParams::default(), std::path::Path::new("results"))?;
//! let matrix = results[0].figures::<weir_validation::ValidationMatrix>().unwrap_or_default();
//! println!("{}", matrix.table_md);
//! # Ok::<(), weir_validation::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod matrix;
pub mod observe;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use weir_harness::figures::validation::{ValidationMatrix, ValidationRow};
use weir_harness::{ScenarioResult, open_fds, write_test_file};

pub use matrix::{Config, Row, SinkKind, SourceKind, plan, run_row};

/// Why the matrix could not be run (a dirty row is not an error: it is
/// recorded, and the gate on `extra.clean_rows` fails).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O step of the scenario itself failed.
    #[error(transparent)]
    Io(#[from] weir_harness::IoError),
}

pub use weir_harness::error_text;
use weir_harness::io_error;

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationParams {
    /// Bytes of every row's input (the control rows move all of it).
    pub input_len: u64,
    /// A row that takes longer than this is reported as hung.
    pub row_timeout: Duration,
    /// Scratch directory; a fresh temporary one when `None`.
    pub work_dir: Option<PathBuf>,
}

impl Default for ValidationParams {
    /// The quick profile: 1 MiB inputs.
    fn default() -> Self {
        Self {
            input_len: 1 << 20,
            row_timeout: Duration::from_secs(10),
            work_dir: None,
        }
    }
}

impl ValidationParams {
    /// The full profile: the same matrix with 64 MiB inputs.
    pub fn full() -> Self {
        Self {
            input_len: 64 << 20,
            ..Self::default()
        }
    }
}

/// The matrix as a markdown table, one line per row.
pub fn table_markdown(rows: &[Row]) -> String {
    let escape = |cell: &str| cell.replace('|', "\\|");
    let mut md = String::from(
        "| # | configuration | source | sink | error | source closed | sink | fds before -> after | files left | clean |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (n, row) in rows.iter().enumerate() {
        let _ = writeln!(
            md,
            "| {} | {} | {:?} | {:?} | {} | {} | {} | {} -> {} | {} | {} |",
            n + 1,
            escape(row.config.describe()),
            row.source,
            row.sink,
            escape(row.error.as_deref().unwrap_or("-")),
            escape(&row.source_cell()),
            escape(&row.sink_evidence),
            row.fds_before,
            row.fds_after,
            row.files_left.len(),
            if row.clean { "yes" } else { "NO" },
        );
    }
    md
}

/// The matrix's figures, counted over the rows.
pub fn figures(rows: &[Row], fds_before: usize, fds_after: usize) -> ValidationMatrix {
    let count = |keep: &dyn Fn(&Row) -> bool| rows.iter().filter(|r| keep(r)).count() as u64;
    ValidationMatrix {
        rows: rows.iter().map(Row::figures).collect(),
        table_md: table_markdown(rows),
        clean_rows: count(&|r| r.clean),
        invalid_rows: count(&|r| r.config != Config::Valid),
        invalid_rows_errored: count(&|r| r.config != Config::Valid && r.error.is_some() && r.outcome != "panicked"),
        control_rows: count(&|r| r.config == Config::Valid),
        control_rows_committed: count(&|r| r.config == Config::Valid && r.outcome == "committed"),
        leaked_fds: rows
            .iter()
            .map(|r| r.fds_after.saturating_sub(r.fds_before) as u64)
            .sum(),
        files_left: rows.iter().map(|r| r.files_left.len() as u64).sum(),
        fds_before: fds_before as u64,
        fds_after: fds_after as u64,
    }
}

/// Runs the matrix on a fresh multi-thread runtime (2 workers) and writes
/// the matrix result into `out`.
///
/// # Errors
///
/// As [`run`], and when the runtime cannot be built.
pub fn run_blocking(params: &ValidationParams, out: &Path) -> Result<Vec<ScenarioResult>, Error> {
    let runtime = weir_harness::runtime().map_err(io_error("building the runtime"))?;
    runtime.block_on(run(params, out))
}

/// Runs every row of [`plan`] in turn and writes one result into `out`:
/// `validation/matrix`, its [`ValidationMatrix`] figures (every row, the
/// table, the counts the gates bound). Needs a Tokio runtime with time and
/// I/O enabled.
///
/// # Errors
///
/// When the scratch directory, the input file, a row's scaffolding or a
/// result cannot be written.
pub async fn run(params: &ValidationParams, out: &Path) -> Result<Vec<ScenarioResult>, Error> {
    let scratch;
    let dir = match &params.work_dir {
        Some(dir) => dir.clone(),
        None => {
            scratch = tempfile::tempdir().map_err(io_error("creating a scratch directory"))?;
            scratch.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir).map_err(io_error(format!("creating {}", dir.display())))?;
    let input = dir.join("input.bin");
    write_test_file(&input, params.input_len, 7).map_err(io_error(format!("writing {}", input.display())))?;

    let fds_before = open_fds();
    let started = Instant::now();
    let mut rows = Vec::new();
    for (n, (config, source, sink)) in plan().into_iter().enumerate() {
        let row_dir = dir.join(format!("row-{n:02}"));
        let row = tokio::time::timeout(
            params.row_timeout,
            run_row(config, source, sink, &row_dir, &input, params.input_len),
        )
        .await;
        let row = match row {
            Ok(row) => row.map_err(io_error(format!("row {n} ({config}, {source:?}, {sink:?})")))?,
            Err(_) => Row {
                config,
                source,
                sink,
                stage: config.stage().to_owned(),
                outcome: "hung".to_owned(),
                error: None,
                source_closed: false,
                source_evidence: "unknown: the row hung".to_owned(),
                sink_created: false,
                sink_calls: observe::CallCounts::default(),
                sink_evidence: "unknown: the row hung".to_owned(),
                fds_before: 0,
                fds_after: 0,
                files_left: Vec::new(),
                elapsed_us: u64::try_from(params.row_timeout.as_micros()).unwrap_or(u64::MAX),
                problems: vec![format!("hung for more than {:?}", params.row_timeout)],
                clean: false,
            },
        };
        tracing::debug!(n, %config, ?source, ?sink, clean = row.clean, "validation row");
        rows.push(row);
    }
    let elapsed = started.elapsed();
    let fds_after = open_fds();
    // Scratch paths differ from run to run: name them the same way.
    let scratch_text = dir.display().to_string();
    for row in &mut rows {
        if let Some(error) = &mut row.error {
            *error = error.replace(&scratch_text, "<scratch>");
        }
    }

    let mut matrix = ScenarioResult::new("validation", "matrix").with_transfer(0, elapsed);
    matrix.params.insert("input_len".into(), params.input_len.into());
    matrix.params.insert("rows".into(), rows.len().into());
    let dirty: Vec<String> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.clean)
        .map(|(n, r)| {
            format!(
                "row {} ({}, {:?}, {:?}): {}",
                n + 1,
                r.config,
                r.source,
                r.sink,
                r.problems.join("; ")
            )
        })
        .collect();
    if !dirty.is_empty() {
        matrix.outcome = format!("{} dirty row(s): {}", dirty.len(), dirty.join(" | "));
    }
    matrix.set_figures(&figures(&rows, fds_before, fds_after));
    matrix
        .write_to(out)
        .map_err(io_error(format!("writing a result to {}", out.display())))?;
    Ok(vec![matrix])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_escapes_pipes_and_marks_dirty_rows() {
        let row = Row {
            config: Config::ChunkSizeZero,
            source: SourceKind::Tcp,
            sink: SinkKind::Null,
            stage: "options".to_owned(),
            outcome: "invalid_options".to_owned(),
            error: Some("a | b".to_owned()),
            source_closed: false,
            source_evidence: "peer saw nothing".to_owned(),
            sink_created: true,
            sink_calls: observe::CallCounts::default(),
            sink_evidence: "abort x1".to_owned(),
            fds_before: 10,
            fds_after: 11,
            files_left: Vec::new(),
            elapsed_us: 5,
            problems: vec!["source not closed".to_owned()],
            clean: false,
        };
        let table = table_markdown(std::slice::from_ref(&row));
        assert!(table.contains("a \\| b"), "{table}");
        assert!(table.contains("| NO (peer saw nothing) |"), "{table}");
        assert!(table.trim_end().ends_with("| NO |"), "{table}");
        let figures = figures(&[row], 10, 10);
        assert_eq!(figures.clean_rows, 0);
        assert_eq!(figures.leaked_fds, 1, "a leaked descriptor is counted");
        assert_eq!((figures.invalid_rows, figures.invalid_rows_errored), (1, 1));
        assert_eq!(figures.rows[0].source, "tcp");
        assert_eq!(figures.rows[0].config, "chunk_size_zero");
    }
}
