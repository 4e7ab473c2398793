//! Integration tests for weir-transforms: the transforms inside real
//! ingestions, their stage metrics, and compressed round trips through
//! files.

mod compress;
mod pipeline;
mod support;
