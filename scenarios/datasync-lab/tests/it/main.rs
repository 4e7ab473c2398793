//! Integration tests of the DataSync scenario and its baselines against a
//! real PostgreSQL (`DATABASE_URL`, or the `.pg/env` that `just pg-up`
//! writes) and the mock API on 127.0.0.1; the fault run on a JetStream
//! cluster of its own (`scripts/nats-up.sh`).

mod faults;
mod scenario;
// The product's test setup (database, schemas, mock API), shared rather
// than copied.
#[path = "../../../../datasync/tests/it/support.rs"]
#[allow(dead_code)]
mod support;
mod two_stage;
