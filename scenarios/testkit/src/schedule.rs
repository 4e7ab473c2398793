//! `FailureSchedule`: what goes wrong, and when, in one ingestion; derived
//! deterministically from a seed so that any case can be replayed.

use std::fmt;

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

/// How a sink's `finalize` behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FinalizeFault {
    /// Delegates to the inner sink.
    None,
    /// Fails without committing.
    Fail,
    /// Panics without committing.
    Panic,
}

/// How a sink's `abort` behaves (the inner sink is always aborted first, so
/// that real sinks still clean up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AbortFault {
    /// Succeeds.
    None,
    /// Returns an error.
    Fail,
    /// Never returns: the engine must give up after its abort timeout.
    Hang,
    /// Panics.
    Panic,
}

/// How a transform stage misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransformFault {
    /// Returns an error on this input chunk.
    FailAt(usize),
    /// Panics on this input chunk.
    PanicAt(usize),
}

/// The transform stage of a case, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransformPlan {
    /// Split every chunk in two (exercises one-to-many output).
    pub split: bool,
    /// Run on the blocking pool.
    pub heavy: bool,
    /// What goes wrong, if anything.
    pub fault: Option<TransformFault>,
}

/// Everything that goes wrong, and when, in one ingestion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureSchedule {
    /// The seed this schedule was derived from (replay with `just replay SEED`).
    pub seed: u64,
    /// Chunks the source yields when nothing fails.
    pub chunks: usize,
    /// Bytes per source chunk.
    pub chunk_size: usize,
    /// The source yields an error instead of this chunk (`chunks` means
    /// instead of the end of the stream).
    pub source_fails_at: Option<usize>,
    /// The source never yields this chunk (only cancellation ends the case).
    pub source_hangs_at: Option<usize>,
    /// This write (0-based, in sink order) returns an error.
    pub write_fails_at: Option<usize>,
    /// This write never completes.
    pub write_hangs_at: Option<usize>,
    /// This `write` call panics.
    pub write_panics_at: Option<usize>,
    /// Milliseconds each write takes, cycled over writes.
    pub write_delays_ms: Vec<u64>,
    /// `finalize`'s behaviour.
    pub finalize: FinalizeFault,
    /// `abort`'s behaviour.
    pub abort: AbortFault,
    /// The transform stage, if any.
    pub transform: Option<TransformPlan>,
    /// Cancellation fires at this many milliseconds (paused time).
    pub cancel_at_ms: Option<u64>,
    /// The per-write timeout, milliseconds.
    pub write_timeout_ms: Option<u64>,
    /// The abort timeout, milliseconds.
    pub abort_timeout_ms: u64,
    /// Max writes in flight.
    pub max_in_flight: usize,
    /// Pass invalid options (max in-flight 0) instead of valid ones.
    pub invalid_options: bool,
}

impl FailureSchedule {
    /// A schedule in which nothing fails.
    pub fn clean(seed: u64, chunks: usize, chunk_size: usize) -> Self {
        Self {
            seed,
            chunks,
            chunk_size,
            source_fails_at: None,
            source_hangs_at: None,
            write_fails_at: None,
            write_hangs_at: None,
            write_panics_at: None,
            write_delays_ms: vec![0],
            finalize: FinalizeFault::None,
            abort: AbortFault::None,
            transform: None,
            cancel_at_ms: None,
            write_timeout_ms: None,
            abort_timeout_ms: 1_000,
            max_in_flight: 1,
            invalid_options: false,
        }
    }

    /// The schedule for `seed`: the same seed always gives the same
    /// schedule. Each fault is present with a probability that keeps clean
    /// runs, single faults and combinations all common.
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut pick = |n: u64| rng.next_u64() % n;
        let chunks = pick(24) as usize;
        let chunk_size = 1 + pick(48) as usize;
        let writes_upper = (chunks * 2).max(1) as u64; // a split transform doubles the writes
        let maybe = |percent: u64, upper: u64, pick: &mut dyn FnMut(u64) -> u64| -> Option<usize> {
            (pick(100) < percent).then(|| pick(upper.max(1)) as usize)
        };
        let source_fails_at = maybe(15, chunks as u64 + 1, &mut pick);
        let source_hangs_at = maybe(5, chunks as u64 + 1, &mut pick);
        let write_fails_at = maybe(15, writes_upper, &mut pick);
        let write_hangs_at = maybe(10, writes_upper, &mut pick);
        let write_panics_at = maybe(5, writes_upper, &mut pick);
        let delay_count = 1 + pick(4) as usize;
        let write_delays_ms = (0..delay_count).map(|_| pick(4)).collect();
        let finalize = match pick(10) {
            0 => FinalizeFault::Fail,
            1 => FinalizeFault::Panic,
            _ => FinalizeFault::None,
        };
        let abort = match pick(10) {
            0 | 1 => AbortFault::Fail,
            2 => AbortFault::Hang,
            3 => AbortFault::Panic,
            _ => AbortFault::None,
        };
        let transform = (pick(100) < 40).then(|| TransformPlan {
            split: pick(2) == 0,
            heavy: pick(4) == 0,
            fault: match pick(10) {
                0 => Some(TransformFault::FailAt(pick(chunks as u64 + 1) as usize)),
                1 => Some(TransformFault::PanicAt(pick(chunks as u64 + 1) as usize)),
                _ => None,
            },
        });
        // Hangs with no way out would never end: give them a cancel or a
        // timeout (the engine's promptness is what is being tested).
        let hangs = source_hangs_at.is_some() || write_hangs_at.is_some();
        let cancel_at_ms = if hangs || pick(100) < 20 { Some(pick(40)) } else { None };
        let write_timeout_ms = (pick(100) < 20).then(|| 1 + pick(5));
        Self {
            seed,
            chunks,
            chunk_size,
            source_fails_at,
            source_hangs_at,
            write_fails_at,
            write_hangs_at,
            write_panics_at,
            write_delays_ms,
            finalize,
            abort,
            transform,
            cancel_at_ms,
            write_timeout_ms,
            abort_timeout_ms: 1 + pick(1_000),
            max_in_flight: 1 + pick(4) as usize,
            invalid_options: pick(100) < 3,
        }
    }

    /// The bytes the source yields when it does not fail: `chunks` chunks of
    /// `chunk_size`, each byte a function of the seed and its position.
    pub fn source_bytes(&self) -> Vec<u8> {
        (0..self.chunks * self.chunk_size)
            .map(|i| (self.seed.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8)
            .collect()
    }

    /// `true` when nothing is scheduled to go wrong: the case must commit.
    pub fn is_clean(&self) -> bool {
        // Index `chunks` is reached too: the error (or hang) then replaces
        // the end of the stream.
        self.source_fails_at.is_none_or(|i| i > self.chunks)
            && self.source_hangs_at.is_none_or(|i| i > self.chunks)
            && self.write_fails_at.is_none()
            && self.write_hangs_at.is_none()
            && self.write_panics_at.is_none()
            && self.finalize == FinalizeFault::None
            && self.transform.is_none_or(|t| t.fault.is_none())
            && self.cancel_at_ms.is_none()
            && self.write_timeout_ms.is_none()
            && !self.invalid_options
    }
}

impl fmt::Display for FailureSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_string(self) {
            Ok(json) => f.write_str(&json),
            Err(_) => write!(f, "{self:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        for seed in 0..200 {
            assert_eq!(FailureSchedule::from_seed(seed), FailureSchedule::from_seed(seed));
        }
    }

    #[test]
    fn seeds_cover_clean_and_faulty_cases() {
        let schedules: Vec<_> = (0..2_000).map(FailureSchedule::from_seed).collect();
        let clean = schedules.iter().filter(|s| s.is_clean()).count();
        assert!(clean > 50, "{clean} clean schedules");
        assert!(
            schedules
                .iter()
                .any(|s| s.write_hangs_at.is_some() && s.cancel_at_ms.is_some())
        );
        assert!(schedules.iter().any(|s| s.abort == AbortFault::Hang));
        assert!(schedules.iter().any(|s| s.transform.is_some_and(|t| t.heavy)));
        assert!(
            schedules
                .iter()
                .any(|s| s.max_in_flight > 1 && s.write_fails_at.is_some())
        );
    }
}
