//! The sinks shipped with the engine.

mod file;
mod memory;
mod null;

pub use file::FileSink;
pub use memory::{MemoryHandle, MemorySink};
pub use null::NullSink;
