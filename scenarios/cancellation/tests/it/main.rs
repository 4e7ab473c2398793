//! Integration tests of weir-cancellation: cancellation trials, client
//! disconnects, the shutdown demo under a real signal, and the whole
//! scenario at a small size.

mod disconnect;
mod scenario;
mod shutdown_signal;
mod trials;
