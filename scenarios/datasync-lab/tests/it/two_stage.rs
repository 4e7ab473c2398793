//! The seed document's two-stage design (TSV file, then COPY), the
//! scenario's baseline, stores exactly what the job stores.

use crate::support::{assert_exact, dataset, fresh_db, job_config, quick_faults, schema, start_api};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_two_stage_baseline_stores_the_same() {
    let data = dataset(13, 5_000);
    let api = start_api(data, quick_faults()).await;
    let schema = schema("twostage");
    let db = fresh_db(&schema).await;
    let dir = tempfile::tempdir().unwrap();
    let buffer = dir.path().join("events.tsv");
    let (report, stages) = weir_datasync_lab::two_stage::run_two_stage(&job_config(&api.url(), &schema), &buffer)
        .await
        .unwrap();
    assert!(report.done && stages.fetch_s > 0.0 && stages.load_s > 0.0);
    assert!(!buffer.exists(), "the buffer file is removed");
    assert_exact(&db, &data).await;
    db.drop_schema().await.unwrap();
}
