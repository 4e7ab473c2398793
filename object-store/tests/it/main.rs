//! Integration tests for weir-object-store: the sink's lifecycle and the
//! source's ranged reads on object_store's in-memory and local-filesystem
//! backends, and the chaos conformance suite against the sink.

mod conformance;
mod sink;
mod source;
mod support;
