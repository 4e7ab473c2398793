//! The job end to end: exact ids and dead letters with faults on, resuming,
//! the baselines, conflicts with stored ids, and clear errors.

use weir_datasync::api::FaultRates;
use weir_datasync::sink::CopyTarget;
use weir_datasync::{JobConfig, SinkKind, run_job};

use crate::support::{API_KEY, assert_exact, dataset, fresh_db, job_config, quick_faults, schema, start_api};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_stores_each_event_exactly_once_with_faults_on() {
    let data = dataset(10, 20_000);
    let api = start_api(data, quick_faults()).await;
    let schema = schema("exact");
    let db = fresh_db(&schema).await;
    let report = run_job(&job_config(&api.url(), &schema)).await.unwrap();
    assert!(report.done && !report.resumed);
    assert!(report.segments >= 10);
    assert!(report.repeats_dropped > 0, "the log repeats events: {report:?}");
    assert!(report.fetch.retries > 0, "faults were injected: {report:?}");
    assert_exact(&db, &data).await;

    // A second run finds the log committed and does nothing.
    let again = run_job(&job_config(&api.url(), &schema)).await.unwrap();
    assert!(again.resumed && again.done);
    assert_eq!((again.segments, again.lines), (0, 0));
    assert_exact(&db, &data).await;
    db.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staging_only_and_row_by_row_store_the_same() {
    let data = dataset(11, 4_000);
    let api = start_api(data, quick_faults()).await;
    for (name, sink, target) in [
        ("staging", SinkKind::Copy, CopyTarget::Staging),
        ("rows", SinkKind::RowByRow, CopyTarget::Staging),
    ] {
        let schema = schema(name);
        let db = fresh_db(&schema).await;
        let mut config = job_config(&api.url(), &schema);
        config.sink = sink;
        config.fast_target = target;
        let report = run_job(&config).await.unwrap();
        assert_eq!(report.conflict_retries, 0);
        assert_exact(&db, &data).await;
        db.drop_schema().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_already_stored_id_sends_the_segment_through_staging() {
    let data = weir_datasync::dataset::Dataset {
        malformed_rate: 0.0,
        repeat_rate: 0.0,
        ..weir_datasync::dataset::Dataset::new(12, 6_000)
    };
    let api = start_api(data, FaultRates::none()).await;
    let schema = schema("conflict");
    let db = fresh_db(&schema).await;
    db.ensure_schema().await.unwrap();
    // An event of a later segment is already stored (as if another writer
    // got there first): the direct COPY of its segment must fail, and the
    // segment be redone through staging.
    let line = data.event_line(4_500);
    let event = weir_datasync::parse::parse_event(&line).unwrap();
    db.client()
        .execute(
            "INSERT INTO events (id, type, ts, payload) VALUES ($1, 'click', now(), '{}')",
            &[&event.id],
        )
        .await
        .unwrap();
    let report = run_job(&job_config(&api.url(), &schema)).await.unwrap();
    assert!(report.conflict_retries >= 1, "{report:?}");
    assert_exact(&db, &data).await;
    db.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_ids_writes_the_stored_ids_sorted() {
    let data = dataset(14, 3_000);
    let api = start_api(data, FaultRates::none()).await;
    let schema = schema("export");
    let db = fresh_db(&schema).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ids.txt");
    let mut config = job_config(&api.url(), &schema);
    config.export_ids = Some(path.clone());
    let report = run_job(&config).await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let ids: Vec<&str> = text.lines().collect();
    let mut expected: Vec<String> = data
        .expected()
        .ids
        .iter()
        .map(|id| uuid::Uuid::from_bytes(*id).to_string())
        .collect();
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(report.exported_ids, Some(expected.len() as u64));
    db.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_api_key_fails_the_job_clearly_and_commits_nothing() {
    let data = dataset(15, 1_000);
    let api = start_api(data, FaultRates::none()).await;
    let schema = schema("badkey");
    let db = fresh_db(&schema).await;
    let mut config = job_config(&api.url(), &schema);
    config.api_key = "nope".to_owned();
    let error = run_job(&config).await.unwrap_err();
    let chain = format!(
        "{error} / {:?}",
        std::error::Error::source(&error).map(ToString::to_string)
    );
    assert!(chain.contains("api key"), "{chain}");
    assert!(db.stored_ids().await.unwrap().is_empty());
    db.drop_schema().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_database_says_to_run_pg_up() {
    let mut config = JobConfig::new("http://127.0.0.1:9", API_KEY, "postgres://weir:weir@127.0.0.1:9/weir");
    config.progress = false;
    let error = run_job(&config).await.unwrap_err().to_string();
    assert!(error.contains("just pg-up"), "{error}");
    assert!(!error.contains(":weir@"), "the password is hidden: {error}");
}
