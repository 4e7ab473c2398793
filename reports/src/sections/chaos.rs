//! The chaos section: the atomic invariant over generated failure schedules
//! per sink (schedules, committed, aborted, violations), with the replay
//! command of any schedule that broke it, and the gates' verdicts. Read as
//! the [`ChaosRun`] figures `weir-chaos` writes.

use std::fmt::Write as _;

use serde_json::Value;
use weir_harness::ScenarioResult;
use weir_harness::figures::chaos::{ChaosKind, ChaosRun};

use super::newest_per_variant;

use super::{Figures, Section};
use crate::Error;
use crate::markdown;
use crate::model::Table;

pub(crate) const SECTION: Section = Section {
    scenario: "chaos",
    title: "Chaos: the atomic invariant over generated failure schedules",
    render,
};

/// One row per sink.
pub(crate) fn sweep_table(results: &[&ScenarioResult]) -> Table {
    let mut table = Table::new([
        "sink",
        "schedules",
        "committed",
        "aborted",
        "violations",
        "first seed",
        "time",
        "outcome",
    ]);
    for r in results {
        let f = r.figures::<ChaosRun>().unwrap_or_default();
        table.row([
            r.variant.clone(),
            f.schedules.to_string(),
            f.committed.to_string(),
            f.aborted.to_string(),
            f.violations.to_string(),
            r.params
                .get("first_seed")
                .and_then(Value::as_u64)
                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
            format!("{:.2} s", r.elapsed_s),
            r.outcome.clone(),
        ]);
    }
    table
}

/// One row per way of ending (committed, or the returned error's kind),
/// summed over the sinks: what the sink saw of those schedules.
pub(crate) fn kinds_table(results: &[&ScenarioResult]) -> Table {
    let mut rows: Vec<ChaosKind> = Vec::new();
    for f in results.iter().filter_map(|r| r.figures::<ChaosRun>()) {
        for k in f.by_kind {
            ChaosKind::tally(&mut rows, k);
        }
    }
    rows.sort_by(|a, b| b.schedules.cmp(&a.schedules).then_with(|| a.kind.cmp(&b.kind)));
    let mut table = Table::new([
        "ended as",
        "schedules",
        "finalize called",
        "abort called once",
        "abort called twice or more",
        "failed or hung abort kept beside the cause",
        "violations",
    ]);
    for k in rows {
        table.row([
            format!("`{}`", k.kind),
            k.schedules.to_string(),
            k.finalize_called.to_string(),
            k.aborted_once.to_string(),
            k.aborted_twice.to_string(),
            k.abort_failure_kept.to_string(),
            k.violations.to_string(),
        ]);
    }
    table
}

fn render(results: &[ScenarioResult], figures: &mut Figures<'_>) -> Result<String, Error> {
    let newest = newest_per_variant(results);
    if newest.is_empty() {
        return Ok("No results; run `weir-lab run chaos`.\n".to_owned());
    }
    let runs: Vec<&ScenarioResult> = newest.values().copied().collect();
    let violations: u64 = runs
        .iter()
        .filter_map(|r| r.figures::<ChaosRun>())
        .map(|f| f.violations)
        .sum();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Each schedule is a seeded set of injected failures; every schedule is checked against the atomic \
         invariant (exactly one terminal outcome per ingestion). {violations} violation(s) in total.\n\n{}",
        markdown::table(&sweep_table(&runs))
    );
    for r in &runs {
        let failures = r.figures::<ChaosRun>().unwrap_or_default().failures;
        for f in failures.iter().take(5) {
            let _ = writeln!(md, "- {}: `{}`", r.variant, f.replay);
        }
    }
    let kinds = kinds_table(&runs);
    if !kinds.rows.is_empty() {
        let _ = writeln!(
            md,
            "\nWhat each kind of failure did, over the same schedules (all sinks): a schedule is counted under \
             how its ingestion ended, `committed` or the kind of the error `ingest` returned; a `finalize` \
             that fails or panics is followed by one `abort`.\n\n{}",
            markdown::table(&kinds)
        );
    }
    let _ = writeln!(md, "\n{}", figures.gates.verdicts("chaos", results));
    Ok(figures.part("chaos/sweep", runs, md))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use weir_harness::figures::chaos::ChaosFailure;

    use super::*;

    fn sweep(sink: &str, committed: u64, violations: u64) -> ScenarioResult {
        let mut r = ScenarioResult::new("chaos", sink);
        r.params.insert("first_seed".into(), json!(42));
        let mut figures = ChaosRun {
            schedules: 2000,
            committed,
            aborted: 2000 - committed,
            violations,
            failures: Vec::new(),
            by_kind: vec![
                ChaosKind {
                    kind: "committed".into(),
                    schedules: committed,
                    finalize_called: committed,
                    ..ChaosKind::default()
                },
                ChaosKind {
                    kind: "write".into(),
                    schedules: 2000 - committed,
                    aborted_once: 2000 - committed,
                    abort_failure_kept: 10,
                    violations,
                    ..ChaosKind::default()
                },
            ],
        };
        if violations > 0 {
            r.outcome = format!("{violations} schedules broke the invariant");
            figures.failures.push(ChaosFailure {
                seed: 77,
                violations: vec!["abort after finalize".into()],
                replay: format!("just replay 77 {sink}"),
            });
        }
        r.set_figures(&figures);
        r
    }

    #[test]
    fn the_table_counts_schedules_and_lists_replays() {
        let dir = tempfile::tempdir().unwrap();
        let mut figures = Figures::for_test(dir.path());
        let md = render(&[sweep("memory", 878, 0), sweep("file", 900, 1)], &mut figures).unwrap();
        assert!(md.contains("| memory | 2000 | 878 | 1122 | 0 | 42 |"), "{md}");
        assert!(md.contains("| file | 2000 | 900 | 1100 | 1 | 42 |"), "{md}");
        assert!(md.contains("1 violation(s) in total"), "{md}");
        assert!(md.contains("- file: `just replay 77 file`"), "{md}");
        // The kinds are summed over the sinks, the most frequent first.
        assert!(md.contains("| `write` | 2222 | 0 | 2222 | 0 | 20 | 1 |"), "{md}");
        assert!(md.contains("| `committed` | 1778 | 1778 | 0 | 0 | 0 | 0 |"), "{md}");
        // The one gate on chaos covers every sink: the file sink's
        // violation fails it, the memory sink passes.
        assert!(md.contains("| chaos: no invariant violation | chaos/memory | `extra.violations` | 0 | <= 0 | +0% | pass |"), "{md}");
        assert!(md.contains("| chaos: no invariant violation | chaos/file | `extra.violations` | 1 | <= 0 | - | **FAIL** |"), "{md}");
        let empty = render(&[], &mut figures).unwrap();
        assert!(empty.contains("run `weir-lab run chaos`"), "{empty}");
    }
}
