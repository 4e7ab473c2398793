//! Shared setup: the database (failing loudly when there is none), unique
//! schemas, and a mock API on 127.0.0.1.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use weir_datasync::JobConfig;
use weir_datasync::api::{ApiConfig, FaultRates, MockApi};
use weir_datasync::dataset::Dataset;
use weir_datasync::pg::Db;

pub const API_KEY: &str = "test-key";

/// The database URL; panics with what to do when there is none.
pub fn database_url() -> String {
    match weir_datasync::pg::database_url(Path::new(env!("CARGO_MANIFEST_DIR"))) {
        Ok(url) => url,
        Err(error) if std::env::var_os("CI").is_some() => {
            panic!("PostgreSQL is required under CI and none is configured (.ci/run runs `just pg-up`): {error}")
        }
        Err(error) => panic!("these tests need PostgreSQL: {error}"),
    }
}

/// A schema name unique to this test process.
pub fn schema(name: &str) -> String {
    format!("t_{name}_{}", std::process::id())
}

/// A connection to a fresh `schema`; panics with what to do when the
/// server cannot be reached.
pub async fn fresh_db(schema: &str) -> Db {
    let db = match Db::connect(&database_url(), schema).await {
        Ok(db) => db,
        Err(error) if std::env::var_os("CI").is_some() => {
            panic!("PostgreSQL is required under CI and cannot be reached (.ci/run runs `just pg-up`): {error}")
        }
        Err(error) => panic!("these tests need PostgreSQL: {error}"),
    };
    db.drop_schema().await.expect("drop the test schema");
    db
}

/// A log of `events` with some malformed events and repeats.
pub fn dataset(seed: u64, events: u64) -> Dataset {
    Dataset {
        malformed_rate: 0.005,
        repeat_rate: 0.01,
        ..Dataset::new(seed, events)
    }
}

/// Serves `dataset` with `faults` on an ephemeral port; small checkpoints
/// and responses so that small logs still cross many of them.
pub async fn start_api(dataset: Dataset, faults: FaultRates) -> MockApi {
    let mut config = ApiConfig::new(dataset, API_KEY);
    config.faults = faults;
    config.checkpoint_every = 200;
    config.stream_max = 5_000;
    MockApi::start(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .expect("start the mock api")
}

/// Typical faults, but a `Retry-After` of 0 s so that tests stay quick (the
/// API tests check that a real one is honoured).
pub fn quick_faults() -> FaultRates {
    FaultRates {
        retry_after_s: 0,
        slow_delay: std::time::Duration::from_millis(20),
        ..FaultRates::typical()
    }
}

/// Asserts the stored ids and dead letters are exactly the log's.
pub async fn assert_exact(db: &Db, dataset: &Dataset) {
    let problem = weir_datasync::verify(db, dataset).await.expect("read back");
    assert_eq!(problem, None);
}

/// A job configuration for the API at `api_url` and `schema`: small
/// segments, no progress bar, quick retries.
pub fn job_config(api_url: &str, schema: &str) -> JobConfig {
    let mut config = JobConfig::new(api_url, API_KEY, database_url());
    config.schema = schema.to_owned();
    config.segment_events = 1_500;
    config.progress = false;
    config.retry.min_delay = std::time::Duration::from_millis(1);
    config
}
