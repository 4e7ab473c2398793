//! The validation section: the floors as checks and the matrix of invalid
//! configurations x sources x sinks, one line per row. Read from the
//! results' `extra` maps (written by `weir-validation`).

use std::fmt::Write as _;

use serde_json::Value;
use weir_harness::ScenarioResult;

use super::{Figures, Section, checks_table};
use crate::Error;
use crate::markdown;
use crate::model::Table;

pub(crate) const SECTION: Section = Section {
    scenario: "validation",
    title: "Validation leaks: invalid configurations x sources x sinks",
    render,
};

fn newest<'a>(results: &'a [ScenarioResult], variant: &str) -> Option<&'a ScenarioResult> {
    results
        .iter()
        .filter(|r| r.variant == variant)
        .max_by_key(|r| r.started_unix_s)
}

/// The matrix rows as a table.
pub(crate) fn matrix_table(matrix: &ScenarioResult) -> Table {
    let mut table = Table::new([
        "#",
        "configuration",
        "source",
        "sink",
        "error",
        "source closed",
        "sink",
        "fds before -> after",
        "files left",
        "clean",
    ]);
    let rows = matrix
        .extra
        .get("rows")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (n, row) in rows.iter().enumerate() {
        let text = |key: &str| row.get(key).and_then(Value::as_str).unwrap_or("-").to_owned();
        let count = |key: &str| row.get(key).and_then(Value::as_u64).unwrap_or_default();
        let flag = |key: &str| row.get(key).and_then(Value::as_bool).unwrap_or(false);
        let files = row.get("files_left").and_then(Value::as_array).map_or(0, Vec::len);
        table.row([
            (n + 1).to_string(),
            text("config").replace('_', " "),
            text("source"),
            text("sink"),
            text("error"),
            format!(
                "{} ({})",
                if flag("source_closed") { "yes" } else { "NO" },
                text("source_evidence")
            ),
            text("sink_evidence"),
            format!("{} -> {}", count("fds_before"), count("fds_after")),
            files.to_string(),
            if flag("clean") { "yes" } else { "NO" }.to_owned(),
        ]);
    }
    table
}

fn render(results: &[ScenarioResult], _figures: &mut Figures<'_>) -> Result<String, Error> {
    let mut md = String::new();
    if let Some(summary) = newest(results, "summary") {
        let table = checks_table(summary);
        let _ = writeln!(md, "{}", markdown::table(&table));
    }
    if let Some(matrix) = newest(results, "matrix") {
        let _ = writeln!(
            md,
            "Each row opens the source (a file, an accepted TCP connection on 127.0.0.1, a generator), creates the \
             sink, and calls `ingest`; whichever step fails, what the earlier steps opened must be closed. Source \
             closed: no descriptor left on the input file, the TCP peer sees EOF or a reset, the generator's drop \
             observed.\n"
        );
        let _ = writeln!(md, "{}", markdown::table(&matrix_table(matrix)));
    }
    Ok(md)
}
