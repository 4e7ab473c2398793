//! The chaos suite as a scenario: generated schedules against each shipped
//! sink, one result per sink with the number of schedules checked and the
//! number of violations (which the gate requires to be zero). The kit it
//! runs is `weir-testkit`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::time::Instant;

use serde_json::{Value, json};
use weir_harness::ScenarioResult;

use weir_testkit::{FailureSchedule, FileTarget, MemoryTarget, NullTarget, SinkTarget, run_case};

/// Parameters of the chaos scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChaosParams {
    /// Schedules per sink.
    pub cases: u64,
    /// The first seed; seeds run consecutively from it.
    pub first_seed: u64,
}

impl Default for ChaosParams {
    /// The quick profile: 2,000 schedules per sink.
    fn default() -> Self {
        Self {
            cases: 2_000,
            first_seed: 0,
        }
    }
}

fn sweep<T: SinkTarget>(target: &mut T, params: ChaosParams) -> ScenarioResult {
    let started = Instant::now();
    let mut committed = 0u64;
    let mut violations = Vec::new();
    for seed in params.first_seed..params.first_seed.saturating_add(params.cases) {
        let outcome = run_case(&FailureSchedule::from_seed(seed), target);
        committed += u64::from(outcome.result == "committed");
        if !outcome.holds() {
            violations.push(json!({ "seed": seed, "violations": outcome.violations, "replay": format!("just replay {seed} {}", target.name()) }));
        }
    }
    let mut result = ScenarioResult::new("chaos", target.name());
    result.elapsed_s = started.elapsed().as_secs_f64();
    result.params.insert("cases".into(), Value::from(params.cases));
    result
        .params
        .insert("first_seed".into(), Value::from(params.first_seed));
    result.extra.insert("schedules".into(), Value::from(params.cases));
    result.extra.insert("committed".into(), Value::from(committed));
    result
        .extra
        .insert("aborted".into(), Value::from(params.cases - committed));
    result.extra.insert("violations".into(), Value::from(violations.len()));
    if !violations.is_empty() {
        result.outcome = format!("{} schedules broke the invariant", violations.len());
        result.extra.insert(
            "failures".into(),
            Value::Array(violations.into_iter().take(20).collect()),
        );
    }
    result
}

/// Runs `params.cases` schedules against the memory, null and file sinks.
pub fn run(params: ChaosParams) -> Vec<ScenarioResult> {
    vec![
        sweep(&mut MemoryTarget::default(), params),
        sweep(&mut NullTarget, params),
        sweep(&mut FileTarget::new(), params),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_sweep_reports_its_counts() {
        let results = run(ChaosParams {
            cases: 50,
            first_seed: 7,
        });
        assert_eq!(results.len(), 3);
        for r in &results {
            assert!(r.is_ok(), "{}", r.outcome);
            assert_eq!(r.extra["schedules"], Value::from(50));
            assert_eq!(r.extra["violations"], Value::from(0));
            assert_eq!(
                r.extra["committed"].as_u64().unwrap() + r.extra["aborted"].as_u64().unwrap(),
                50
            );
        }
    }
}
