//! The chaos suite as a scenario: generated schedules against each shipped
//! sink, one result per sink with the number of schedules checked and the
//! number of violations (which the gate requires to be zero). The kit it
//! runs is `weir-testkit`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::time::Instant;

use serde_json::Value;
use weir_harness::ScenarioResult;
pub use weir_harness::figures::chaos::{ChaosFailure, ChaosKind, ChaosRun};

use weir_testkit::{FailureSchedule, FileTarget, MemoryTarget, NullTarget, SinkTarget, WriterTarget, run_case};

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
    let mut failures = Vec::new();
    let mut by_kind: Vec<ChaosKind> = Vec::new();
    for seed in params.first_seed..params.first_seed.saturating_add(params.cases) {
        let outcome = run_case(&FailureSchedule::from_seed(seed), target);
        committed += u64::from(outcome.result == "committed");
        ChaosKind::tally(
            &mut by_kind,
            ChaosKind {
                kind: outcome.kind.clone(),
                schedules: 1,
                finalize_called: u64::from(outcome.finalize_calls > 0),
                aborted_once: u64::from(outcome.abort_calls == 1),
                aborted_twice: u64::from(outcome.abort_calls > 1),
                abort_failure_kept: u64::from(outcome.abort_failure_kept),
                violations: u64::from(!outcome.holds()),
            },
        );
        if !outcome.holds() {
            failures.push(ChaosFailure {
                seed,
                violations: outcome.violations,
                replay: format!("just replay {seed} {}", target.name()),
            });
        }
    }
    let mut result = ScenarioResult::new("chaos", target.name());
    result.elapsed_s = started.elapsed().as_secs_f64();
    result.params.insert("cases".into(), Value::from(params.cases));
    result
        .params
        .insert("first_seed".into(), Value::from(params.first_seed));
    let violations = failures.len() as u64;
    if violations > 0 {
        result.outcome = format!("{violations} schedules broke the invariant");
    }
    failures.truncate(20);
    result.set_figures(&ChaosRun {
        schedules: params.cases,
        committed,
        aborted: params.cases - committed,
        violations,
        failures,
        by_kind,
    });
    result
}

/// Runs `params.cases` schedules against the memory, null, file and
/// writer sinks.
pub fn run(params: ChaosParams) -> Vec<ScenarioResult> {
    vec![
        sweep(&mut MemoryTarget::default(), params),
        sweep(&mut NullTarget, params),
        sweep(&mut FileTarget::new(), params),
        sweep(&mut WriterTarget::default(), params),
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
        assert_eq!(results.len(), 4);
        for r in &results {
            assert!(r.is_ok(), "{}", r.outcome);
            weir_harness::figures::conforms(r).unwrap();
            let f = r.figures::<ChaosRun>().unwrap();
            assert_eq!((f.schedules, f.violations), (50, 0), "{f:?}");
            assert_eq!(f.committed + f.aborted, 50, "{f:?}");
            assert!(f.failures.is_empty(), "{f:?}");
            // Every schedule is in one row; a committed one was finalized
            // and never aborted, every other was aborted exactly once.
            assert_eq!(f.by_kind.iter().map(|k| k.schedules).sum::<u64>(), 50, "{f:?}");
            assert!(f.by_kind.len() >= 3, "several ways of ending: {f:?}");
            for k in &f.by_kind {
                if k.kind == "committed" {
                    assert_eq!((k.finalize_called, k.aborted_once), (k.schedules, 0), "{k:?}");
                } else {
                    assert_eq!((k.aborted_once, k.aborted_twice), (k.schedules, 0), "{k:?}");
                }
            }
        }
    }
}
