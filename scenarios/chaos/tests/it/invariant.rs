//! The invariant over generated failure schedules, against every sink the
//! engine ships. Each case is a seed; a failing case prints its schedule and
//! the command that replays it.
//!
//! `PROPTEST_CASES` sets the number of schedules per sink (default 10,000
//! for the in-memory sink; the file sink, which does real I/O, runs a
//! quarter of that).

use std::cell::{Cell, RefCell};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use weir_chaos::{FailureSchedule, FileTarget, MemoryTarget, NullTarget, SinkTarget, run_case};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// Runs `cases` generated schedules against `target` and prints how many
/// were checked.
fn suite<T: SinkTarget>(target: T, cases: u32) {
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
            "{name} sink broke the invariant\n  violations: {:?}\n  result: {}\n  schedule: {schedule}\n  replay: just replay {seed}",
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
}

#[test]
fn invariant_holds_for_memory_sink() {
    suite(MemoryTarget::default(), cases());
}

#[test]
fn invariant_holds_for_file_sink() {
    suite(FileTarget::new(), (cases() / 4).max(1));
}

#[test]
fn invariant_holds_for_null_sink() {
    suite(NullTarget, (cases() / 4).max(1));
}
