//! The sinks shipped with the engine.

mod file;
mod memory;
mod null;
mod writer;

pub use file::{COALESCE, FileSink, FileSinkError, FileSinkOptions, WRITE_BEHIND, WRITE_BEHIND_BYTES};
pub use memory::{MemoryHandle, MemorySink};
pub use null::NullSink;
pub use writer::WriterSink;
