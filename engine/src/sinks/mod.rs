//! The sinks shipped with the engine.

mod file;
mod memory;
mod null;

pub use file::{FileSink, FileSinkError, WRITE_BEHIND};
pub use memory::{MemoryHandle, MemorySink};
pub use null::NullSink;
