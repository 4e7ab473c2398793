//! The proptest-driven conformance suite: generated schedules against one
//! sink target, shared by the chaos crate's own tests and by any crate that
//! ships a sink (the object-store crate runs it against `ObjectStoreSink`).

use std::cell::{Cell, RefCell};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::runner::run_case;
use crate::schedule::FailureSchedule;
use crate::targets::SinkTarget;

/// Schedules per suite: `PROPTEST_CASES`, or 10,000.
pub fn cases_from_env() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// Runs `cases` generated schedules against `target` and prints how many
/// were checked and how they ended.
///
/// # Panics
///
/// On the first schedule that breaks the invariant (with its violations,
/// result, schedule and seed), when fewer than `cases` schedules ran, or
/// when the schedules did not exercise both a commit and an abort.
pub fn suite<T: SinkTarget>(target: T, cases: u32) {
    let name = target.name();
    let target = RefCell::new(target);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let checked = Cell::new(0u64);
    let committed = Cell::new(0u64);
    let result = runner.run(&any::<u64>(), |seed| {
        let schedule = FailureSchedule::from_seed(seed);
        let outcome = run_case(&schedule, &mut *target.borrow_mut());
        checked.set(checked.get() + 1);
        committed.set(committed.get() + u64::from(outcome.result == "committed"));
        prop_assert!(
            outcome.holds(),
            "{name} sink broke the invariant\n  violations: {:?}\n  result: {}\n  schedule: {schedule}\n  seed: {seed}\n  replay (memory, file and null sinks): just replay {seed}",
            outcome.violations,
            outcome.result
        );
        Ok(())
    });
    let (checked, committed) = (checked.get(), committed.get());
    if let Err(error) = result {
        panic!("{error}");
    }
    println!(
        "chaos[{name}]: {checked} schedules checked ({committed} committed, {} aborted), 0 violations",
        checked - committed
    );
    assert!(checked >= u64::from(cases), "only {checked} of {cases} schedules ran");
    if cases >= 100 {
        assert!(committed > 0 && committed < checked, "both outcomes must be exercised");
    }
}
