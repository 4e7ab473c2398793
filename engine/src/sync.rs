//! Atomics, `Mutex` and `AtomicWaker`, from `loom` when model
//! checking (`--cfg weir_loom`), from `std` and `futures-util` otherwise.

#[cfg(weir_loom)]
pub(crate) use loom::future::AtomicWaker;
#[cfg(weir_loom)]
pub(crate) use loom::sync::{
    Mutex,
    atomic::{AtomicBool, Ordering},
};

#[cfg(not(weir_loom))]
pub(crate) use std::sync::{
    Mutex,
    atomic::{AtomicBool, Ordering},
};

/// `futures-util`'s `AtomicWaker` under loom's name for registering by
/// reference.
#[cfg(not(weir_loom))]
#[derive(Default)]
pub(crate) struct AtomicWaker(futures_util::task::AtomicWaker);

#[cfg(not(weir_loom))]
impl AtomicWaker {
    pub(crate) fn register_by_ref(&self, waker: &std::task::Waker) {
        self.0.register(waker);
    }

    pub(crate) fn wake(&self) {
        self.0.wake();
    }
}
