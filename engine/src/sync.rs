//! Atomics, `Arc` and `Mutex`, from `loom` when model checking
//! (`--cfg weir_loom`), from `std` otherwise.

#[cfg(weir_loom)]
pub(crate) use loom::sync::{
    Arc, Mutex,
    atomic::{AtomicU8, Ordering},
};
#[cfg(not(weir_loom))]
pub(crate) use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU8, Ordering},
};
