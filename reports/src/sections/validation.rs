//! The validation section: the gates' verdicts and the matrix of invalid
//! configurations x sources x sinks, one line per row, read as
//! [`ValidationMatrix`] figures (written by `weir-validation`).

use std::fmt::Write as _;

use weir_harness::ScenarioResult;
use weir_harness::figures::validation::ValidationMatrix;

use super::{Figures, Section};
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
    let rows = matrix.figures::<ValidationMatrix>().unwrap_or_default().rows;
    for (n, row) in rows.iter().enumerate() {
        let yes = |flag: bool| if flag { "yes" } else { "NO" };
        table.row([
            (n + 1).to_string(),
            row.config.replace('_', " "),
            row.source.clone(),
            row.sink.clone(),
            row.error.clone().unwrap_or_else(|| "-".to_owned()),
            format!("{} ({})", yes(row.source_closed), row.source_evidence),
            row.sink_evidence.clone(),
            format!("{} -> {}", row.fds_before, row.fds_after),
            row.files_left.len().to_string(),
            yes(row.clean).to_owned(),
        ]);
    }
    table
}

/// The matrix's totals in words, with the seed's leak claim beside them.
fn leaked_fds_line(matrix: &ScenarioResult) -> String {
    let m = matrix.figures::<ValidationMatrix>().unwrap_or_default();
    let weir = format!(
        "{} of {} rows clean; {} leaked descriptors and {} files left over the whole matrix ({} -> {} open)",
        m.clean_rows,
        m.rows.len(),
        m.leaked_fds,
        m.files_left,
        m.fds_before,
        m.fds_after
    );
    format!(
        "\n{} of {} invalid configurations returned an error; {} of {} control rows committed.\n\n{}",
        m.invalid_rows_errored,
        m.invalid_rows,
        m.control_rows_committed,
        m.control_rows,
        crate::seed::beside(&crate::seed::LEAKED_FDS, &weir)
    )
}

fn render(results: &[ScenarioResult], figures: &mut Figures<'_>) -> Result<String, Error> {
    let mut md = String::new();
    let _ = writeln!(md, "{}", figures.gates.verdicts("validation", results));
    if let Some(matrix) = newest(results, "matrix") {
        let _ = writeln!(
            md,
            "Each row opens the source (a file, an accepted TCP connection on 127.0.0.1, a generator), creates the \
             sink, and calls `ingest`; whichever step fails, what the earlier steps opened must be closed. Source \
             closed: no descriptor left on the input file, the TCP peer sees EOF or a reset, the generator's drop \
             observed.\n"
        );
        let _ = writeln!(md, "{}", markdown::table(&matrix_table(matrix)));
        md.push_str(&leaked_fds_line(matrix));
        return Ok(figures.part("validation/matrix", [matrix], md));
    }
    Ok(md)
}
