//! Named regression cases: each one a failure that hand-rolled ingestion
//! loops get wrong.

use weir_testkit::{
    AbortFault, FailureSchedule, FileTarget, MemoryTarget, SinkTarget, TransformFault, TransformPlan, run_case,
};

fn holds_on_every_sink(schedule: &FailureSchedule) -> String {
    let memory = run_case(schedule, &mut MemoryTarget::default());
    assert!(
        memory.holds(),
        "memory sink: {:?}\nschedule {schedule}",
        memory.violations
    );
    let mut file_target = FileTarget::new();
    let file = run_case(schedule, &mut file_target);
    assert!(
        file.holds(),
        "{} sink: {:?}\nschedule {schedule}",
        file_target.name(),
        file.violations
    );
    memory.result
}

#[test]
fn database_connection_lost_after_ten_chunks() {
    let mut schedule = FailureSchedule::clean(1, 30, 32);
    schedule.write_fails_at = Some(10);
    let result = holds_on_every_sink(&schedule);
    assert!(result.contains("sink write of chunk 10 failed"), "{result}");
}

#[test]
fn source_error_mid_stream() {
    let mut schedule = FailureSchedule::clean(2, 20, 32);
    schedule.source_fails_at = Some(7);
    let result = holds_on_every_sink(&schedule);
    assert!(result.contains("source failed after 224 bytes"), "{result}");
}

#[test]
fn abort_that_itself_fails_keeps_the_root_cause() {
    let mut schedule = FailureSchedule::clean(3, 20, 32);
    schedule.write_fails_at = Some(4);
    schedule.abort = AbortFault::Fail;
    let result = holds_on_every_sink(&schedule);
    assert!(
        result.starts_with("ingestion failed: sink write of chunk 4 failed"),
        "{result}"
    );
    assert!(result.contains("abort failed: chaos: abort failed"), "{result}");
}

#[test]
fn invalid_options_move_nothing_and_abort() {
    let mut schedule = FailureSchedule::clean(4, 20, 32);
    schedule.invalid_options = true;
    let result = holds_on_every_sink(&schedule);
    assert!(
        result.contains("invalid options: max in-flight writes must be at least 1"),
        "{result}"
    );
}

#[test]
fn cancellation_during_a_hung_write() {
    let mut schedule = FailureSchedule::clean(5, 20, 32);
    schedule.write_hangs_at = Some(3);
    schedule.cancel_at_ms = Some(25);
    schedule.max_in_flight = 2;
    let result = holds_on_every_sink(&schedule);
    assert!(result.contains("cancelled"), "{result}");
}

#[test]
fn hung_abort_after_a_panicking_transform() {
    let mut schedule = FailureSchedule::clean(6, 20, 32);
    schedule.transform = Some(TransformPlan {
        split: true,
        heavy: true,
        fault: Some(TransformFault::PanicAt(5)),
    });
    schedule.abort = AbortFault::Hang;
    let result = holds_on_every_sink(&schedule);
    assert!(result.contains("transform `chaos` panicked"), "{result}");
    assert!(result.contains("abort did not complete"), "{result}");
}
