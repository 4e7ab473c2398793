//! Integration tests of weir-reports: a whole report rendered from result
//! JSON files, and its generated markdown snapshot-tested.

mod generated;
mod render;
