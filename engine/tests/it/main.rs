//! Integration tests of the `weir` engine, through its public API only.

mod file_sink;
mod ingest;
mod registry;
mod sources;
mod support;
