//! Integration tests of weir-datasync against a real HTTP server on
//! 127.0.0.1 and a real PostgreSQL (`DATABASE_URL`, or the `.pg/env` that
//! `just pg-up` writes).

mod api;
mod crash;
mod job;
mod support;
mod work;
