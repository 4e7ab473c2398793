//! The validation scenario's figures: the matrix of invalid configurations
//! x sources x sinks, one row each.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The matrix result (variant `matrix`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ValidationMatrix {
    /// Every row, in plan order.
    pub rows: Vec<ValidationRow>,
    /// The rows as a markdown table (what `weir-lab run validation`
    /// prints).
    pub table_md: String,
    /// Rows that were clean: the gated count.
    pub clean_rows: u64,
    /// Rows with an invalid configuration.
    pub invalid_rows: u64,
    /// Of those, the rows that ended in an error with text (never a panic
    /// or a hang).
    pub invalid_rows_errored: u64,
    /// Valid control rows.
    pub control_rows: u64,
    /// Of those, the rows that committed every byte.
    pub control_rows_committed: u64,
    /// Descriptors the rows left open, summed.
    pub leaked_fds: u64,
    /// Files the rows left behind, summed.
    pub files_left: u64,
    /// Open descriptors before the matrix.
    pub fds_before: u64,
    /// Open descriptors after it.
    pub fds_after: u64,
}

/// One row: a configuration, a source and a sink, and what was left
/// behind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ValidationRow {
    /// The configuration (`chunk_size_zero`, ..., `valid` for the controls).
    pub config: String,
    /// The source kind.
    pub source: String,
    /// The sink kind.
    pub sink: String,
    /// Where the configuration is refused (`options`, `transform`, ...).
    pub stage: String,
    /// `committed`, the error kind, `panicked` or `hung`.
    pub outcome: String,
    /// The error's text, when it failed.
    pub error: Option<String>,
    /// Whether the source was closed afterwards.
    pub source_closed: bool,
    /// How that was observed.
    pub source_evidence: String,
    /// Whether the sink was created at all.
    pub sink_created: bool,
    /// The sink's calls, by name.
    pub sink_calls: BTreeMap<String, u64>,
    /// What the sink saw, in words.
    pub sink_evidence: String,
    /// Open descriptors before the row.
    pub fds_before: u64,
    /// Open descriptors after it.
    pub fds_after: u64,
    /// Temporary files left behind.
    pub files_left: Vec<String>,
    /// Wall time, microseconds.
    pub elapsed_us: u64,
    /// Everything that was not clean, in words.
    pub problems: Vec<String>,
    /// No problem.
    pub clean: bool,
}
