//! `Recorder`: every lifecycle call and byte a chaos sink saw, and the
//! violations noticed while it happened.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use weir::ErrorKind;

/// One call, in the order the sink saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `write` was called with this chunk (0-based index in sink order).
    Write {
        /// Index of the write.
        index: usize,
        /// The chunk.
        data: Bytes,
    },
    /// A write future completed with `Ok`.
    WriteAcked {
        /// Index of the write.
        index: usize,
    },
    /// `finalize` was called.
    Finalize,
    /// `finalize` returned.
    FinalizeReturned {
        /// Whether it returned `Ok`.
        ok: bool,
    },
    /// `abort` was called with a cause of this kind.
    Abort(ErrorKind),
}

#[derive(Debug, Default)]
struct State {
    events: Vec<Event>,
    in_flight: usize,
    peak_in_flight: usize,
    terminal_started: bool,
    violations: Vec<String>,
}

/// Shared log of one chaos sink's calls. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    state: Arc<Mutex<State>>,
}

impl Recorder {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn push(&self, event: Event) {
        self.with(|s| {
            match &event {
                Event::Write { index, .. } if s.terminal_started => {
                    s.violations.push(format!("write {index} called after a terminal call"));
                }
                Event::Write { .. } => {
                    s.in_flight += 1;
                    s.peak_in_flight = s.peak_in_flight.max(s.in_flight);
                }
                Event::Finalize | Event::Abort(_) => s.terminal_started = true,
                _ => {}
            }
            s.events.push(event);
        });
    }

    /// A write future was polled: a violation once a terminal call began.
    pub(crate) fn polled(&self, index: usize) {
        self.with(|s| {
            if s.terminal_started {
                s.violations
                    .push(format!("write {index} polled after a terminal call began"));
            }
        });
    }

    /// A write future ended (completed or dropped).
    pub(crate) fn write_ended(&self) {
        self.with(|s| s.in_flight = s.in_flight.saturating_sub(1));
    }

    /// Every call so far.
    pub fn events(&self) -> Vec<Event> {
        self.with(|s| s.events.clone())
    }

    /// Most writes outstanding at once, as the sink saw them.
    pub fn peak_in_flight(&self) -> usize {
        self.with(|s| s.peak_in_flight)
    }

    /// Violations noticed while the calls happened.
    pub fn violations(&self) -> Vec<String> {
        self.with(|s| s.violations.clone())
    }
}
