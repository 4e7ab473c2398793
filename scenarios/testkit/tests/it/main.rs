//! The chaos suite: named regression cases, and the invariant over
//! generated failure schedules against every shipped sink.

mod invariant;
mod regressions;
