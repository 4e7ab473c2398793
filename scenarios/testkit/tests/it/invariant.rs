//! The invariant over generated failure schedules, against every sink the
//! engine ships. Each case is a seed; a failing case prints its schedule and
//! the command that replays it.
//!
//! `PROPTEST_CASES` sets the number of schedules per sink (default 10,000
//! for the in-memory sink; the file sink, which does real I/O, runs a
//! quarter of that).

use weir_testkit::{FileTarget, MemoryTarget, NullTarget, WriterTarget, cases_from_env as cases, suite};

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

#[test]
fn invariant_holds_for_writer_sink() {
    suite(WriterTarget::default(), (cases() / 4).max(1));
}
