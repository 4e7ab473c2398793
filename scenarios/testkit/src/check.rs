//! The atomic invariant (DESIGN section 2), checked on one finished case.

use std::collections::HashSet;

use weir::{AbortFailure, ErrorKind, IngestError, IngestReport};

use crate::recorder::Event;
use crate::schedule::{AbortFault, FailureSchedule, FinalizeFault, TransformFault};

/// What the engine did in one case, as observed from outside it.
#[derive(Debug)]
pub struct Observed<'a> {
    /// The schedule that ran.
    pub schedule: &'a FailureSchedule,
    /// Every call the sink saw.
    pub events: &'a [Event],
    /// Violations the recorder noticed while calls happened.
    pub recorded_violations: &'a [String],
    /// Most writes outstanding at once, as the sink saw them.
    pub sink_peak_in_flight: usize,
    /// What `ingest` returned.
    pub result: &'a Result<IngestReport, IngestError>,
    /// Whether the source had been dropped when `ingest` returned.
    pub source_dropped: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Writing,
    Finalizing,
    FinalizeFailed,
    Committed,
    Aborted,
}

/// Every way the observed case breaks the invariant; empty when it holds.
pub fn check(o: &Observed<'_>) -> Vec<String> {
    let mut v: Vec<String> = o.recorded_violations.to_vec();
    let s = o.schedule;

    // 1. writes*, then exactly one terminal sequence.
    let mut phase = Phase::Writing;
    let mut aborted_with = None;
    for event in o.events {
        match (event, phase) {
            (Event::Write { index, .. }, Phase::Writing) | (Event::WriteAcked { index }, Phase::Writing) => {
                let _ = index;
            }
            (Event::Write { index, .. } | Event::WriteAcked { index }, p) => {
                v.push(format!("write {index} activity after a terminal call (phase {p:?})"));
            }
            (Event::Finalize, Phase::Writing) => phase = Phase::Finalizing,
            (Event::Finalize, p) => v.push(format!("finalize called in phase {p:?}")),
            (Event::FinalizeReturned { ok }, Phase::Finalizing) => {
                phase = if *ok { Phase::Committed } else { Phase::FinalizeFailed };
            }
            (Event::FinalizeReturned { .. }, p) => v.push(format!("finalize returned in phase {p:?}")),
            (Event::Abort(kind), Phase::Writing | Phase::Finalizing | Phase::FinalizeFailed) => {
                phase = Phase::Aborted;
                aborted_with = Some(*kind);
            }
            (Event::Abort(_), Phase::Committed) => v.push("abort after a successful finalize".to_owned()),
            (Event::Abort(_), p) => v.push(format!("abort called again (phase {p:?})")),
        }
    }
    match phase {
        Phase::Committed | Phase::Aborted => {}
        Phase::FinalizeFailed => v.push("finalize failed but abort was never called".to_owned()),
        p => v.push(format!("no terminal call (ended in phase {p:?})")),
    }

    // 2. Ok if and only if finalize returned Ok.
    let committed = phase == Phase::Committed;
    if o.result.is_ok() != committed {
        v.push(format!(
            "ingest returned ok={} but committed={committed}",
            o.result.is_ok()
        ));
    }

    // 3. The root cause is one of the scheduled failures; an abort failure
    // is attached, never substituted.
    match o.result {
        Ok(_) => {
            if s.invalid_options {
                v.push("invalid options were accepted".to_owned());
            }
        }
        Err(error) => {
            let allowed = allowed_causes(s);
            if !allowed.contains(&error.kind()) {
                v.push(format!(
                    "root cause {:?} is not among the scheduled failures {allowed:?}: {error}",
                    error.kind()
                ));
            }
            if s.is_clean() {
                v.push(format!("a clean schedule failed: {error}"));
            }
            if aborted_with.is_some_and(|k| k != error.kind()) {
                v.push(format!(
                    "abort got cause {aborted_with:?} but ingest returned {:?}",
                    error.kind()
                ));
            }
            let expected_failure = aborted_with.is_some() && s.abort != AbortFault::None;
            match (error.abort_failure(), expected_failure) {
                (None, false) => {}
                (Some(f), true) => {
                    let matches = matches!(
                        (f, s.abort),
                        (AbortFailure::Failed(_), AbortFault::Fail)
                            | (AbortFailure::TimedOut(_), AbortFault::Hang)
                            | (AbortFailure::Panicked(_), AbortFault::Panic)
                    );
                    if !matches {
                        v.push(format!("abort failure {f} does not match the scheduled {:?}", s.abort));
                    }
                }
                (got, expected) => v.push(format!("abort failure present={} expected={expected}", got.is_some())),
            }
            match &error.report().abort {
                Some(abort) if abort.reason != error.kind() => v.push("abort report names another reason".to_owned()),
                None if aborted_with.is_some() => v.push("the report does not describe the abort".to_owned()),
                _ => {}
            }
        }
    }

    // 4. The source is closed when ingest returns.
    if !o.source_dropped {
        v.push("the source was still alive when ingest returned".to_owned());
    }

    // 5. Bytes in order, none duplicated or dropped; counts agree.
    let expected = s.source_bytes();
    let written: Vec<u8> = o
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Write { data, .. } => Some(data.as_ref()),
            _ => None,
        })
        .flatten()
        .copied()
        .collect();
    if written.len() > expected.len() || written[..] != expected[..written.len()] {
        v.push(format!(
            "the sink received {} bytes that are not a prefix of the {}-byte source",
            written.len(),
            expected.len()
        ));
    }
    if committed && written != expected {
        v.push(format!(
            "committed {} bytes but the source had {}",
            written.len(),
            expected.len()
        ));
    }
    let acked: HashSet<usize> = o
        .events
        .iter()
        .filter_map(|e| match e {
            Event::WriteAcked { index } => Some(*index),
            _ => None,
        })
        .collect();
    let acked_bytes: u64 = o
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Write { index, data } if acked.contains(index) => Some(data.len() as u64),
            _ => None,
        })
        .sum();
    let report = match o.result {
        Ok(report) => report,
        Err(error) => error.report(),
    };
    if report.bytes_written != acked_bytes || report.chunks_written != acked.len() as u64 {
        v.push(format!(
            "report says {} bytes in {} writes acknowledged; the sink acknowledged {acked_bytes} in {}",
            report.bytes_written,
            report.chunks_written,
            acked.len()
        ));
    }
    if report.bytes_read > expected.len() as u64 {
        v.push(format!(
            "report read {} bytes from a {}-byte source",
            report.bytes_read,
            expected.len()
        ));
    }
    if s.invalid_options && (!written.is_empty() || report.bytes_read != 0) {
        v.push("bytes moved despite invalid options".to_owned());
    }

    // 6. Bounded in flight.
    if !s.invalid_options && (o.sink_peak_in_flight > s.max_in_flight || report.peak_in_flight > s.max_in_flight) {
        v.push(format!(
            "{} writes in flight (report: {}) with max_in_flight {}",
            o.sink_peak_in_flight, report.peak_in_flight, s.max_in_flight
        ));
    }
    v
}

/// The root causes a schedule can produce.
fn allowed_causes(s: &FailureSchedule) -> Vec<ErrorKind> {
    if s.invalid_options {
        return vec![ErrorKind::InvalidOptions];
    }
    let mut allowed = Vec::new();
    if s.source_fails_at.is_some_and(|i| i <= s.chunks) {
        allowed.push(ErrorKind::Source);
    }
    if s.write_fails_at.is_some() {
        allowed.push(ErrorKind::Write);
    }
    if s.write_timeout_ms.is_some() {
        allowed.push(ErrorKind::WriteTimeout);
    }
    if s.cancel_at_ms.is_some() {
        allowed.push(ErrorKind::Cancelled);
    }
    if s.write_panics_at.is_some()
        || s.finalize == FinalizeFault::Panic
        || s.transform
            .is_some_and(|t| matches!(t.fault, Some(TransformFault::PanicAt(_))))
    {
        allowed.push(ErrorKind::Panic);
    }
    if s.transform
        .is_some_and(|t| matches!(t.fault, Some(TransformFault::FailAt(_))))
    {
        allowed.push(ErrorKind::Transform);
    }
    if s.finalize == FinalizeFault::Fail {
        allowed.push(ErrorKind::Finalize);
    }
    allowed
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    use bytes::Bytes;
    use weir::{IngestOptions, NullSink, ingest};

    use super::*;
    use crate::recorder::{Recorded, Recorder};
    use crate::runner::Clock;
    use crate::sink::ChaosSink;
    use crate::source::ChaosSource;

    /// Runs `schedule` for real against a chaos-wrapped `NullSink`, then lets
    /// `doctor` tamper with what was observed, and checks it.
    fn doctored(schedule: &FailureSchedule, doctor: impl FnOnce(&mut Vec<Event>, &mut bool)) -> Vec<String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let recorder = Recorder::new();
            let sink = Recorded::new(
                ChaosSink::new(NullSink, schedule.clone(), Clock::Real),
                recorder.clone(),
            );
            let source = ChaosSource::new(schedule, Arc::new(AtomicBool::new(false)));
            let result = ingest(source, sink, IngestOptions::default()).await;
            let mut events = recorder.events();
            let mut dropped = true;
            doctor(&mut events, &mut dropped);
            check(&Observed {
                schedule,
                events: &events,
                recorded_violations: &[],
                sink_peak_in_flight: recorder.peak_in_flight(),
                result: &result,
                source_dropped: dropped,
            })
        })
    }

    #[test]
    fn an_honest_run_has_no_violation() {
        assert_eq!(
            doctored(&FailureSchedule::clean(1, 5, 8), |_, _| {}),
            Vec::<String>::new()
        );
    }

    /// Tampers with the observed events and the source-dropped flag.
    type Doctor = Box<dyn FnOnce(&mut Vec<Event>, &mut bool)>;

    #[test]
    fn each_kind_of_breach_is_caught() {
        let clean = FailureSchedule::clean(1, 5, 8);
        let breaches: Vec<(&str, Doctor)> = vec![
            (
                "write after terminal",
                Box::new(|e, _| {
                    e.push(Event::Write {
                        index: 9,
                        data: Bytes::from_static(b"x"),
                    })
                }),
            ),
            (
                "abort after commit",
                Box::new(|e, _| e.push(Event::Abort(ErrorKind::Write))),
            ),
            ("finalize twice", Box::new(|e, _| e.push(Event::Finalize))),
            (
                "no terminal call",
                Box::new(|e, _| e.retain(|x| matches!(x, Event::Write { .. } | Event::WriteAcked { .. }))),
            ),
            ("source alive", Box::new(|_, dropped| *dropped = false)),
            ("reordered bytes", Box::new(|e, _| e.swap(0, 2))),
            (
                "lost acknowledgement",
                Box::new(|e, _| e.retain(|x| !matches!(x, Event::WriteAcked { index: 0 }))),
            ),
        ];
        for (name, doctor) in breaches {
            let violations = doctored(&clean, doctor);
            assert!(!violations.is_empty(), "the checker missed: {name}");
        }
    }

    #[test]
    fn a_failure_the_schedule_did_not_ask_for_is_caught() {
        // The run commits, but the schedule says the source fails: the
        // checker must notice that the outcome does not match.
        let mut schedule = FailureSchedule::clean(1, 5, 8);
        schedule.invalid_options = true;
        let violations = doctored(&schedule, |_, _| {});
        assert!(
            violations.iter().any(|v| v.contains("invalid options were accepted")),
            "{violations:?}"
        );
    }
}
