//! The runtime scenarios and benches run on.

/// A multi-threaded Tokio runtime with two workers (the cores of the
/// machines weir is measured on) and every driver on.
///
/// # Errors
///
/// When the runtime cannot be built.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}
