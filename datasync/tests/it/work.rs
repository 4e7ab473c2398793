//! DataSync over NATS JetStream (`just nats-up`): a plan's work items on a
//! replicated work queue, workers that run the job per item and ack only
//! after the commit, exactly once over the whole log.

use std::time::Duration;

use async_nats::jetstream::Context;
use weir::CancellationToken;
use weir_datasync::client::ApiClient;
use weir_datasync::work::{
    self, WorkItem, WorkerConfig, WorkerReport, ensure_queue, item_subject, plan, publish_plan, run_worker,
};

use crate::support::{API_KEY, assert_exact, dataset, fresh_db, job_config, quick_faults, schema, start_api};

/// The cluster `just nats-up` started; panics with what to do when there is none.
async fn jetstream() -> Context {
    let servers = match weir_jetstream::nats_servers() {
        Ok(servers) => servers,
        Err(error) if std::env::var_os("CI").is_some() => {
            panic!("NATS is required under CI and none is configured (.ci/run runs `just nats-up`): {error}")
        }
        Err(error) => panic!("these tests need NATS JetStream: {error}"),
    };
    work::connect(&servers)
        .await
        .unwrap_or_else(|e| panic!("{e} (run `just nats-up`)"))
}

fn replicas() -> usize {
    weir_jetstream::env_file_value("WEIR_NATS_NODES")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
        .clamp(1, 3)
}

async fn fresh_queue(js: &Context, name: &str) {
    let _ = js.delete_stream(name).await;
    ensure_queue(js, name, replicas()).await.expect("create the work queue");
}

fn worker_config(api_url: &str, schema: &str, queue: &str) -> WorkerConfig {
    WorkerConfig {
        job: job_config(api_url, schema),
        stream: queue.to_owned(),
        consumer: "workers".to_owned(),
        ack_wait: Duration::from_secs(5),
        idle_exit: Some(Duration::from_secs(2)),
        unreachable_after: Duration::from_secs(60),
        hold_before_ack: Duration::ZERO,
    }
}

fn total(reports: &[WorkerReport]) -> WorkerReport {
    let mut sum = WorkerReport::default();
    for r in reports {
        sum.items += r.items;
        sum.redelivered += r.redelivered;
        sum.already_done += r.already_done;
        sum.failed += r.failed;
        sum.malformed_items += r.malformed_items;
        sum.rows_inserted += r.rows_inserted;
        sum.dead_letters += r.dead_letters;
    }
    sum
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_load_a_planned_log_exactly_once_under_api_faults() {
    let js = jetstream().await;
    let schema = schema("work_three");
    let db = fresh_db(&schema).await;
    let data = dataset(71, 30_000);
    let api = start_api(data, quick_faults()).await;
    let queue = format!("WORK_THREE_{}", std::process::id());
    fresh_queue(&js, &queue).await;

    let client = ApiClient::new(&api.url(), API_KEY, job_config(&api.url(), &schema).retry).unwrap();
    let items = plan(&client, "three", 12).await.unwrap();
    assert_eq!(items.len(), 12);
    assert!(
        items.windows(2).all(|w| w[0].until_ms == Some(w[1].since_ms)),
        "the ranges tile the log: {items:?}"
    );
    assert_eq!(items.last().unwrap().until_ms, None, "the last range is open");
    assert_eq!(
        plan(&client, "three", 12).await.unwrap(),
        items,
        "the same log plans the same items"
    );

    let first = publish_plan(&js, &queue, &items).await.unwrap();
    let again = publish_plan(&js, &queue, &items).await.unwrap();
    assert_eq!((first.queued, first.already_queued), (12, 0));
    assert_eq!(
        (again.queued, again.already_queued),
        (0, 12),
        "a re-plan queues nothing twice"
    );

    let config = worker_config(&api.url(), &schema, &queue);
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let js = js.clone();
            let config = config.clone();
            tokio::spawn(async move { run_worker(&js, &config, CancellationToken::new()).await })
        })
        .collect();
    let mut reports = Vec::new();
    for worker in workers {
        reports.push(worker.await.unwrap().unwrap());
    }
    let sum = total(&reports);
    assert_eq!(sum.items, 12, "{reports:?}");
    assert!(
        reports.iter().filter(|r| r.items > 0).count() >= 2,
        "the items spread: {reports:?}"
    );
    assert_exact(&db, &data).await;
    api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_item_that_was_committed_is_acked_without_new_rows() {
    let js = jetstream().await;
    let schema = schema("work_redeliver");
    let db = fresh_db(&schema).await;
    let data = dataset(72, 4_000);
    let api = start_api(data, quick_faults()).await;
    let queue = format!("WORK_REDELIVER_{}", std::process::id());
    fresh_queue(&js, &queue).await;
    let item = WorkItem {
        job: "redeliver/0".to_owned(),
        since_ms: 0,
        until_ms: None,
    };
    // The item's job committed, then its worker died before the ack.
    let mut job = job_config(&api.url(), &schema);
    job.job = item.job.clone();
    weir_datasync::run_job(&job).await.unwrap();
    publish_plan(&js, &queue, std::slice::from_ref(&item)).await.unwrap();

    let report = run_worker(
        &js,
        &worker_config(&api.url(), &schema, &queue),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(
        (report.items, report.already_done, report.rows_inserted),
        (1, 1, 0),
        "{report:?}"
    );
    assert_exact(&db, &data).await;
    api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_work_item_is_dropped_and_counted_not_redelivered_forever() {
    let js = jetstream().await;
    let schema = schema("work_malformed");
    let _db = fresh_db(&schema).await;
    let api = start_api(dataset(73, 100), quick_faults()).await;
    let queue = format!("WORK_MALFORMED_{}", std::process::id());
    fresh_queue(&js, &queue).await;
    js.publish(item_subject(&queue), "{not a work item".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let report = run_worker(
        &js,
        &worker_config(&api.url(), &schema, &queue),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(
        (report.items, report.malformed_items, report.failed),
        (1, 1, 0),
        "{report:?}"
    );
    let mut stream = js.get_stream(&queue).await.unwrap();
    assert_eq!(
        stream.info().await.unwrap().state.messages,
        0,
        "acked, so gone from the work queue"
    );
    api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_database_fails_the_item_and_it_comes_again() {
    let js = jetstream().await;
    let api = start_api(dataset(74, 100), quick_faults()).await;
    let queue = format!("WORK_DEADDB_{}", std::process::id());
    fresh_queue(&js, &queue).await;
    publish_plan(
        &js,
        &queue,
        &[WorkItem {
            job: "dead/0".to_owned(),
            since_ms: 0,
            until_ms: None,
        }],
    )
    .await
    .unwrap();
    let mut config = worker_config(&api.url(), "work_deaddb", &queue);
    // Nothing listens there.
    config.job.database_url = "postgres://weir:weir@127.0.0.1:9/weir".to_owned();
    config.idle_exit = Some(Duration::from_millis(1500));
    let stop = CancellationToken::new();
    let stopper = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(4)).await;
            stop.cancel();
        })
    };
    let report = run_worker(&js, &config, stop).await.unwrap();
    stopper.abort();
    assert_eq!(report.items, 0, "{report:?}");
    assert!(report.failed >= 2, "naked and taken again: {report:?}");
    let mut stream = js.get_stream(&queue).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 1, "the item is not lost");
    api.shutdown().await;
}

/// The items left on `queue`.
async fn queued(js: &Context, queue: &str) -> u64 {
    let mut stream = js.get_stream(queue).await.expect("the queue");
    stream.info().await.expect("the queue's state").state.messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_deleted_mid_run_is_made_again_and_the_load_stays_exact() {
    // What a durable consumer's expiry (or an operator's `nats consumer rm`)
    // does to a running worker.
    let js = jetstream().await;
    let schema = schema("work_consumer_gone");
    let db = fresh_db(&schema).await;
    let data = dataset(75, 12_000);
    let api = start_api(data, quick_faults()).await;
    let queue = format!("WORK_CONSUMER_GONE_{}", std::process::id());
    fresh_queue(&js, &queue).await;
    let client = ApiClient::new(&api.url(), API_KEY, job_config(&api.url(), &schema).retry).unwrap();
    let items = plan(&client, "gone", 8).await.unwrap();
    publish_plan(&js, &queue, &items).await.unwrap();
    let mut config = worker_config(&api.url(), &schema, &queue);
    config.idle_exit = Some(Duration::from_secs(3));
    let worker = {
        let (js, config) = (js.clone(), config.clone());
        tokio::spawn(async move { run_worker(&js, &config, CancellationToken::new()).await })
    };
    // Once the worker is under way, delete its consumer from the server.
    let under_way = tokio::time::timeout(Duration::from_secs(60), async {
        while queued(&js, &queue).await == items.len() as u64 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(under_way.is_ok(), "the worker acked no item in 60 s");
    let stream = js.get_stream(&queue).await.unwrap();
    stream
        .delete_consumer(&config.consumer)
        .await
        .expect("delete the consumer");
    let report = tokio::time::timeout(Duration::from_secs(120), worker)
        .await
        .expect("the worker neither hung nor gave up")
        .unwrap()
        .unwrap();
    assert_eq!(queued(&js, &queue).await, 0, "every item acked: {report:?}");
    assert!(report.items >= items.len() as u64, "{report:?}");
    assert_exact(&db, &data).await;
    api.shutdown().await;
}
