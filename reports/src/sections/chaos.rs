//! The chaos section: the atomic invariant over generated failure schedules
//! per sink (schedules, committed, aborted, violations), with the replay
//! command of any schedule that broke it. Read from the results written by
//! `weir-chaos`.

use std::fmt::Write as _;

use serde_json::Value;
use weir_harness::ScenarioResult;

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

fn count(r: &ScenarioResult, key: &str) -> String {
    r.extra
        .get(key)
        .and_then(Value::as_u64)
        .map_or_else(|| "-".to_owned(), |n| n.to_string())
}

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
        table.row([
            r.variant.clone(),
            count(r, "schedules"),
            count(r, "committed"),
            count(r, "aborted"),
            count(r, "violations"),
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

fn render(results: &[ScenarioResult], _figures: &mut Figures<'_>) -> Result<String, Error> {
    let newest = newest_per_variant(results);
    if newest.is_empty() {
        return Ok("No results; run `weir-lab run chaos`.\n".to_owned());
    }
    let runs: Vec<&ScenarioResult> = newest.values().copied().collect();
    let violations: u64 = runs
        .iter()
        .filter_map(|r| r.extra.get("violations").and_then(Value::as_u64))
        .sum();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Each schedule is a seeded set of injected failures; every schedule is checked against the atomic \
         invariant (exactly one terminal outcome per ingestion). {violations} violation(s) in total.\n\n{}",
        markdown::table(&sweep_table(&runs))
    );
    for r in &runs {
        let failures = r.extra.get("failures").and_then(Value::as_array);
        for f in failures.into_iter().flatten().take(5) {
            if let Some(replay) = f.get("replay").and_then(Value::as_str) {
                let _ = writeln!(md, "- {}: `{replay}`", r.variant);
            }
        }
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sweep(sink: &str, committed: u64, violations: u64) -> ScenarioResult {
        let mut r = ScenarioResult::new("chaos", sink);
        r.params.insert("first_seed".into(), json!(42));
        r.extra.insert("schedules".into(), json!(2000));
        r.extra.insert("committed".into(), json!(committed));
        r.extra.insert("aborted".into(), json!(2000 - committed));
        r.extra.insert("violations".into(), json!(violations));
        if violations > 0 {
            r.outcome = format!("{violations} schedules broke the invariant");
            r.extra
                .insert("failures".into(), json!([{"seed": 77, "replay": format!("just replay 77 {sink}")}]));
        }
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
        let empty = render(&[], &mut figures).unwrap();
        assert!(empty.contains("run `weir-lab run chaos`"), "{empty}");
    }
}
