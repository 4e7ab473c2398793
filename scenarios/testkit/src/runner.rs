//! Runs one schedule against one sink target and checks the invariant; and
//! the conformance loop over many seeds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use weir::{CancellationToken, IngestOptions, ingest};

use crate::check::{Observed, check};
use crate::recorder::{Event, Recorded, Recorder};
use crate::schedule::{AbortFault, FailureSchedule};
use crate::sink::ChaosSink;
use crate::source::ChaosSource;
use crate::targets::SinkTarget;
use crate::transform::ChaosTransform;

/// How one case ended.
#[derive(Debug)]
pub struct CaseOutcome {
    /// The schedule that ran.
    pub schedule: FailureSchedule,
    /// `"committed"`, or the error text.
    pub result: String,
    /// `"committed"`, the error's kind ([`weir::ErrorKind::as_str`]), or
    /// `"hung"`.
    pub kind: String,
    /// `finalize` calls the sink saw.
    pub finalize_calls: u64,
    /// `abort` calls the sink saw.
    pub abort_calls: u64,
    /// The returned error carries a failed or timed-out abort beside its
    /// root cause.
    pub abort_failure_kept: bool,
    /// Every violation found; empty when the invariant held.
    pub violations: Vec<String>,
}

impl CaseOutcome {
    /// `true` when the invariant held.
    pub fn holds(&self) -> bool {
        self.violations.is_empty()
    }
}

/// How a case keeps time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Tokio's paused clock: a schedule's millisecond is a millisecond, and
    /// waiting costs nothing. For sinks that do no I/O on other threads.
    Paused,
    /// The real clock, with a schedule's millisecond scaled to 100 us to
    /// keep cases short. For sinks with real I/O, which a paused clock would
    /// race (it jumps ahead whenever the runtime waits on another thread).
    Real,
}

impl Clock {
    /// The duration of `ms` schedule milliseconds.
    pub fn span(self, ms: u64) -> Duration {
        match self {
            Self::Paused => Duration::from_millis(ms),
            Self::Real => Duration::from_micros(ms * 100),
        }
    }
}

/// The options a schedule asks for.
pub fn options_for(schedule: &FailureSchedule, token: CancellationToken, clock: Clock) -> IngestOptions {
    // On the real clock, a sink's own abort takes real time: only a
    // scheduled hang gets the schedule's short abort timeout.
    let abort_timeout = match (clock, schedule.abort) {
        (Clock::Real, AbortFault::Hang) | (Clock::Paused, _) => clock.span(schedule.abort_timeout_ms),
        (Clock::Real, _) => Duration::from_secs(10),
    };
    let mut builder = IngestOptions::builder()
        .chunk_size(64)
        .max_in_flight(if schedule.invalid_options {
            0
        } else {
            schedule.max_in_flight
        })
        .abort_timeout(abort_timeout)
        .cancel_token(token);
    if let Some(ms) = schedule.write_timeout_ms {
        builder = builder.write_timeout(clock.span(ms));
    }
    if let Some(plan) = schedule.transform {
        builder = builder.transform(ChaosTransform::new(plan));
    }
    builder.build()
}

/// Runs `schedule` against a fresh sink from `target`, on a current-thread
/// runtime with paused time, and checks the invariant and the target's
/// postconditions.
///
/// # Panics
///
/// If the runtime cannot be built.
pub fn run_case<T: SinkTarget>(schedule: &FailureSchedule, target: &mut T) -> CaseOutcome {
    quiet_chaos_panics();
    let clock = if target.real_io() { Clock::Real } else { Clock::Paused };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(clock == Clock::Paused)
        .build()
        .expect("build a current-thread runtime");
    runtime.block_on(async {
        let recorder = Recorder::new();
        let dropped = Arc::new(AtomicBool::new(false));
        let sink = Recorded::new(
            ChaosSink::new(target.make().await, schedule.clone(), clock),
            recorder.clone(),
        );
        let source = ChaosSource::new(schedule, Arc::clone(&dropped));
        let token = CancellationToken::new();
        let canceller = schedule.cancel_at_ms.map(|ms| {
            let token = token.clone();
            tokio::spawn(async move {
                tokio::time::sleep(clock.span(ms)).await;
                token.cancel();
            })
        });
        let options = options_for(schedule, token, clock);
        // A generous deadline: on the paused clock, time jumps straight to it
        // if the engine would otherwise hang forever; on the real clock no
        // case comes near it.
        let result = tokio::time::timeout(Duration::from_secs(60), ingest(source, sink, options))
            .await
            .ok();
        let source_dropped = dropped.load(Ordering::SeqCst);
        if let Some(canceller) = canceller {
            canceller.abort();
        }
        let Some(result) = result else {
            return CaseOutcome {
                schedule: schedule.clone(),
                result: "hung".to_owned(),
                kind: "hung".to_owned(),
                finalize_calls: 0,
                abort_calls: 0,
                abort_failure_kept: false,
                violations: vec!["ingest never returned".to_owned()],
            };
        };
        let events = recorder.events();
        let recorded = recorder.violations();
        let mut violations = check(&Observed {
            schedule,
            events: &events,
            recorded_violations: &recorded,
            sink_peak_in_flight: recorder.peak_in_flight(),
            result: &result,
            source_dropped,
        });
        if let Err(problem) = target.verify(result.is_ok(), &schedule.source_bytes()).await {
            violations.push(format!("{} sink: {problem}", target.name()));
        }
        let count = |wanted: fn(&Event) -> bool| events.iter().filter(|e| wanted(e)).count() as u64;
        CaseOutcome {
            schedule: schedule.clone(),
            result: match &result {
                Ok(_) => "committed".to_owned(),
                Err(error) => error.to_string(),
            },
            kind: match &result {
                Ok(_) => "committed".to_owned(),
                Err(error) => error.kind().as_str().to_owned(),
            },
            finalize_calls: count(|e| matches!(e, Event::Finalize)),
            abort_calls: count(|e| matches!(e, Event::Abort(_))),
            abort_failure_kept: result.as_ref().is_err_and(|e| e.abort_failure().is_some()),
            violations,
        }
    })
}

/// The conformance suite: `cases` seeds from `first_seed` against `target`.
/// Returns the failing cases (empty when every one held).
pub fn conformance<T: SinkTarget>(target: &mut T, first_seed: u64, cases: u64) -> Vec<CaseOutcome> {
    (first_seed..first_seed.saturating_add(cases))
        .map(|seed| run_case(&FailureSchedule::from_seed(seed), target))
        .filter(|outcome| !outcome.holds())
        .collect()
}

/// Keeps the panics that schedules inject (messages starting with
/// `chaos:`) out of the test output; every other panic is printed as usual.
/// Installed once per process.
pub fn quiet_chaos_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if !message.starts_with("chaos:") {
                default(info);
            }
        }));
    });
}
