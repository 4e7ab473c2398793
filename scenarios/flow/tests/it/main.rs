//! Integration tests of weir-flow: memory ceilings of controlled flow, the
//! growth of unbounded flow, and a whole (tiny) run writing its results.

mod memory;
mod run;
