//! Renders weir's scenario results (JSON) into a report: an index
//! (`index.md`) with one section per scenario, charts as SVG and PNG drawn
//! with an embedded font (no system font is ever looked up), and markdown
//! tables.
//!
//! The data model ([`model`]) is apart from rendering: [`charts`] builds
//! chart models from results, one function per chart; `render` draws them
//! with plotters; [`markdown`] writes tables. Sections live in
//! `src/sections/<scenario>.rs`, registered with one line.
//!
//! ```no_run
//! use std::path::Path;
//!
//! let index = weir_reports::render_dir(Path::new("results"), Path::new("reports/out"), None)?;
//! println!("report index: {}", index.display());
//! # Ok::<(), weir_reports::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod charts;
mod font;
pub mod headline;
pub mod markdown;
pub mod model;
mod render;
mod sections;
pub mod seed;
pub mod splice;
pub mod writeups;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use weir_harness::{ScenarioResult, io_error};

pub use render::write_chart;

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading results or writing the report failed.
    #[error(transparent)]
    Io(#[from] weir_harness::IoError),
    /// There are no results to render.
    #[error("no result JSON files in {0} (run `weir-lab run <scenario>` first)")]
    NoResults(PathBuf),
    /// A chart could not be drawn.
    #[error("drawing {chart} failed: {message}")]
    Render {
        /// The chart's file stem.
        chart: String,
        /// What the renderer said.
        message: String,
    },
    /// A document's generated block could not be found.
    #[error("splicing generated markdown: {0}")]
    Splice(String),
    /// The gates file exists but cannot be used.
    #[error("reading the gates the report shows verdicts of")]
    Gates(#[source] weir_gate::GateError),
}

/// The gates file the report's verdicts come from when no other is named:
/// `gates.toml`, relative to the working directory (the repository root for
/// `just report` and `just publish`).
pub const DEFAULT_GATES: &str = "gates.toml";

/// Loads every result in `dir` and renders the report into `out` (see
/// [`render`]), with the verdicts of [`DEFAULT_GATES`]; returns the index's
/// path.
///
/// # Errors
///
/// When `dir` cannot be read or holds no results, the gates file is
/// malformed, or the report cannot be written.
pub fn render_dir(dir: &Path, out: &Path, publish: Option<&Path>) -> Result<PathBuf, Error> {
    render_dir_gated(dir, None, out, publish, Path::new(DEFAULT_GATES))
}

/// Like [`render_dir`], and also reads criterion's estimates under
/// `criterion` (`target/criterion`; skipped when absent) as results of
/// scenario `bench` (see [`weir_harness::criterion_results`]).
///
/// # Errors
///
/// When `dir` cannot be read, neither directory holds results, the gates
/// file is malformed, or the report cannot be written.
pub fn render_dir_with_criterion(
    dir: &Path,
    criterion: &Path,
    out: &Path,
    publish: Option<&Path>,
) -> Result<PathBuf, Error> {
    render_dir_gated(dir, Some(criterion), out, publish, Path::new(DEFAULT_GATES))
}

/// The report of the results in `dir` (and criterion's estimates under
/// `criterion`, when given), each section showing the verdicts of the
/// gates in `gates` on its scenario (see [`render_gated`]).
///
/// # Errors
///
/// When `dir` cannot be read, no results are found, the gates file is
/// malformed, or the report cannot be written.
pub fn render_dir_gated(
    dir: &Path,
    criterion: Option<&Path>,
    out: &Path,
    publish: Option<&Path>,
    gates: &Path,
) -> Result<PathBuf, Error> {
    let mut results =
        weir_harness::load_results(dir).map_err(io_error(format!("reading results from {}", dir.display())))?;
    if let Some(criterion) = criterion {
        results.extend(weir_harness::criterion_results(criterion));
    }
    if results.is_empty() {
        return Err(Error::NoResults(dir.to_path_buf()));
    }
    render_gated(&results, out, publish, gates)
}

/// A line naming the newest result's machine, date and revision, printed
/// under every chart. Results that know their revision come first (bench
/// estimates read from criterion do not).
pub fn provenance(results: &[ScenarioResult]) -> String {
    let Some(newest) = results
        .iter()
        .max_by_key(|r| (r.git_revision.is_some(), r.started_unix_s))
    else {
        return String::new();
    };
    let m = &newest.machine;
    format!(
        "{}, {} cores, {:.0} GiB, {} | {} | rev {}",
        m.cpu_model,
        m.cores,
        m.memory_bytes as f64 / f64::from(1u32 << 30),
        m.os,
        markdown::date(newest.started_unix_s),
        newest.git_revision.as_deref().unwrap_or("unknown")
    )
}

/// Renders `results` into `out`: `out/index.md` with a section per
/// scenario and the charts under `out/figures/`. With `publish` (the
/// write-ups' directory, `reports/`), the write-ups' figures are also
/// copied into `publish/figures/` and their generated markdown (tables, the
/// README snippet: the flow figure and the [`headline`] table) written there.
/// Each section shows the verdicts of [`DEFAULT_GATES`] on its scenario.
///
/// # Errors
///
/// When the gates file is malformed, or a chart or a file cannot be
/// written.
pub fn render(results: &[ScenarioResult], out: &Path, publish: Option<&Path>) -> Result<PathBuf, Error> {
    render_gated(results, out, publish, Path::new(DEFAULT_GATES))
}

/// Like [`render`], with the verdicts of the gates file at `gates` (the one
/// verdict system: each section shows `weir_gate::evaluate` of the gates on
/// its scenario). A missing file is no error: the sections say so.
///
/// # Errors
///
/// When the gates file exists but cannot be read or parsed, or a chart or
/// a file cannot be written.
pub fn render_gated(
    results: &[ScenarioResult],
    out: &Path,
    publish: Option<&Path>,
    gates: &Path,
) -> Result<PathBuf, Error> {
    let gate_file = if gates.exists() {
        Some(weir_gate::GateFile::load(gates).map_err(Error::Gates)?)
    } else {
        None
    };
    sections::create_dir(out)?;
    let mut by_scenario: BTreeMap<&str, Vec<ScenarioResult>> = BTreeMap::new();
    for r in results {
        by_scenario.entry(r.scenario.as_str()).or_default().push(r.clone());
    }
    let note = provenance(results);
    let mut index = String::new();
    let _ = writeln!(index, "# weir report\n");
    let _ = writeln!(
        index,
        "Generated by `weir-lab report` from {} result(s). Newest run: {note}.\n",
        results.len()
    );
    let headline = headline::section(results, &note);
    if let Some(headline) = &headline {
        let _ = writeln!(index, "{}", headline.replacen("### ", "## ", 1));
    }
    let mut figures = sections::Figures {
        out,
        publish,
        readme: String::new(),
        parts: BTreeMap::new(),
        gates: sections::Gates {
            // The file's name, not where this machine keeps it: the text is
            // published.
            path: gates
                .file_name()
                .map_or_else(|| gates.display().to_string(), |n| n.to_string_lossy().into_owned()),
            file: gate_file,
        },
    };
    let mut absent = Vec::new();
    for section in sections::SECTIONS {
        if let Some(results) = by_scenario.remove(section.scenario) {
            let _ = writeln!(index, "## {}\n", section.title);
            index.push_str(&(section.render)(&results, &mut figures)?);
            index.push('\n');
        } else {
            absent.push(section.scenario);
        }
    }
    for (scenario, results) in by_scenario {
        let _ = writeln!(index, "## {scenario}\n\n{}", sections::generic(&results));
    }
    if !absent.is_empty() {
        let _ = writeln!(
            index,
            "## Not in these results\n\nNo results for: {}; run `weir-lab run <name>` (bench: `cargo bench -p \
             weir-benches`, read from `target/criterion`).\n",
            absent.join(", ")
        );
    }
    writeups::publish(&figures)?;
    let mut readme = std::mem::take(&mut figures.readme);
    if let Some(headline) = &headline {
        readme.push_str(headline);
    }
    if !readme.is_empty() {
        figures.publish_markdown(
            "README-snippet.md",
            &format!("<!-- generated by `just publish` (weir-reports), which splices it into README.md; do not edit -->\n\n{readme}"),
        )?;
    }
    let path = out.join("index.md");
    std::fs::write(&path, index).map_err(io_error(format!("writing {}", path.display())))?;
    Ok(path)
}
