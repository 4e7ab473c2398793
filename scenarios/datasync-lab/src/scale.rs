//! The job spread over NATS JetStream (`weir_datasync::work`): worker
//! processes on the `just nats-up` cluster against the single-process job,
//! on the same log. `jetstream-1` pairs one worker with the single-process
//! job in interleaved rounds (the broker's cost, as a ratio); `jetstream-2`
//! and `jetstream-4` measure the scaling. CPU is split by side: the workers'
//! processes, the NATS servers, PostgreSQL, and this process (the API).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use weir_datasync::api::ApiConfig;
use weir_datasync::cli::DEFAULT_API_KEY;
use weir_datasync::client::ApiClient;
use weir_datasync::dataset::Dataset;
use weir_datasync::pg::Db;
use weir_datasync::work::{self, ensure_queue, plan, publish_plan};
use weir_datasync::{JobConfig, run_job};
use weir_harness::figures::datasync::DatasyncScale;
use weir_harness::{PairedRatio, ScenarioResult, a_first, cpu_seconds, tree_cpu_seconds};

use crate::{ApiServer, DatasyncParams, common_params, postmaster_pid};

/// One worker against the single-process job, paired.
pub const VARIANT_JETSTREAM_1: &str = "jetstream-1";
/// Two workers.
pub const VARIANT_JETSTREAM_2: &str = "jetstream-2";
/// Four workers.
pub const VARIANT_JETSTREAM_4: &str = "jetstream-4";

/// The work queue the scenario (re)creates for every run.
const QUEUE: &str = "DATASYNC_SCALE";

/// One measured load of the log.
#[derive(Debug, Clone, Copy, Default)]
struct Load {
    events_per_s: f64,
    elapsed_s: f64,
    cpu_workers_s: f64,
    cpu_nats_s: Option<f64>,
    cpu_postgres_s: Option<f64>,
    cpu_this_process_s: Option<f64>,
}

/// The NATS servers' PIDs, from the `.nats/env` that `just nats-up` writes.
fn nats_pids() -> Vec<u32> {
    let nodes: usize = weir_jetstream::env_file_value("WEIR_NATS_NODES")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (1..=nodes)
        .filter_map(|n| weir_jetstream::env_file_value(&format!("WEIR_NATS_{n}_PID_FILE")))
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .filter_map(|pid| pid.trim().parse().ok())
        .collect()
}

fn nats_cpu(pids: &[u32]) -> Option<f64> {
    pids.iter().map(|&pid| cpu_seconds(pid, false)).sum()
}

/// Runs variant `variant` (`workers` worker processes).
pub(crate) fn run(
    params: &DatasyncParams,
    runtime: &tokio::runtime::Runtime,
    url: &str,
    variant: &str,
    workers: usize,
) -> Result<ScenarioResult, crate::Error> {
    let mut result = ScenarioResult::new("datasync", variant);
    result.params = common_params(params, params.events);
    result.params.insert("workers".into(), serde_json::json!(workers));
    if params.worker_command.is_empty() {
        result.outcome = "error: the jetstream variants need a worker command (weir-lab datasync-worker)".to_owned();
        return Ok(result);
    }
    let dataset = Dataset {
        malformed_rate: params.malformed_rate,
        repeat_rate: params.repeat_rate,
        ..Dataset::new(params.seed, params.events)
    };
    let mut figures = DatasyncScale {
        workers: workers as u64,
        ..DatasyncScale::default()
    };
    let mut api_config = ApiConfig::new(dataset, DEFAULT_API_KEY);
    api_config.faults = params.faults;
    let server = ApiServer::start(api_config)?;
    let outcome = runtime.block_on(measure(params, url, &server.url(), dataset, workers));
    server.stop();
    match outcome {
        Ok((load, single)) => {
            figures.events_per_s = load.events_per_s;
            figures.elapsed_s = load.elapsed_s;
            let per_event = |s: f64| s * 1e6 / params.events.max(1) as f64;
            figures.cpu_workers_us_per_event = Some(per_event(load.cpu_workers_s));
            figures.cpu_nats_us_per_event = load.cpu_nats_s.map(per_event);
            figures.cpu_postgres_us_per_event = load.cpu_postgres_s.map(per_event);
            figures.cpu_api_us_per_event = load.cpu_this_process_s.map(per_event);
            figures.vs_single_process = single.as_ref().map(|r| r.median);
            figures.vs_single_process_rounds = single;
            figures.verified = true;
            result = result.with_transfer(0, Duration::from_secs_f64(load.elapsed_s));
        }
        Err(error) => result.outcome = format!("error: {error}"),
    }
    result.set_figures(&figures);
    Ok(result)
}

/// The load with `workers` workers; for one worker, also the paired ratio
/// against the single-process job.
async fn measure(
    params: &DatasyncParams,
    url: &str,
    api_url: &str,
    dataset: Dataset,
    workers: usize,
) -> Result<(Load, Option<PairedRatio>), crate::Error> {
    if workers != 1 {
        return Ok((load_with_workers(params, url, api_url, dataset, workers).await?, None));
    }
    let mut pairs = Vec::new();
    let mut last = Load::default();
    for round in 0..params.scale_rounds.max(1) {
        let (worker, single) = if a_first(round) {
            let worker = load_with_workers(params, url, api_url, dataset, 1).await?;
            (worker, load_single(params, url, api_url, dataset).await?)
        } else {
            let single = load_single(params, url, api_url, dataset).await?;
            (load_with_workers(params, url, api_url, dataset, 1).await?, single)
        };
        pairs.push((worker.events_per_s, single));
        last = worker;
    }
    Ok((last, PairedRatio::from_pairs(pairs)))
}

fn job_config(params: &DatasyncParams, url: &str, api_url: &str, schema: &str) -> JobConfig {
    let mut config = JobConfig::new(api_url, DEFAULT_API_KEY, url);
    config.schema = schema.to_owned();
    config.segment_events = params.segment_events;
    config.progress = false;
    config
}

/// The single-process job over the whole log: events/s.
async fn load_single(params: &DatasyncParams, url: &str, api_url: &str, dataset: Dataset) -> Result<f64, crate::Error> {
    let config = job_config(params, url, api_url, "datasync_scale_single");
    let db = Db::connect(url, &config.schema).await?;
    db.drop_schema().await?;
    let started = Instant::now();
    run_job(&config).await?;
    let elapsed = started.elapsed().as_secs_f64();
    check(&db, &dataset).await?;
    db.drop_schema().await?;
    Ok(params.events as f64 / elapsed.max(f64::EPSILON))
}

async fn check(db: &Db, dataset: &Dataset) -> Result<(), crate::Error> {
    match weir_datasync::verify(db, dataset).await? {
        None => Ok(()),
        Some(problem) => Err(crate::Error::Config(format!("the load is not exact: {problem}"))),
    }
}

/// The workers' shared consumer, as `weir-lab datasync-worker` names it.
fn worker_config(job: &JobConfig) -> work::WorkerConfig {
    work::WorkerConfig {
        job: job.clone(),
        stream: QUEUE.to_owned(),
        consumer: "workers".to_owned(),
        ack_wait: Duration::from_secs(10),
        idle_exit: None,
        unreachable_after: Duration::from_secs(60),
        hold_before_ack: Duration::ZERO,
    }
}

/// Kills the workers still running when dropped.
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Plans the log onto a fresh queue, starts `workers` worker processes and
/// waits until every item is acked.
async fn load_with_workers(
    params: &DatasyncParams,
    url: &str,
    api_url: &str,
    dataset: Dataset,
    workers: usize,
) -> Result<Load, crate::Error> {
    let servers = weir_jetstream::nats_servers()?;
    let js = work::connect(&servers).await?;
    let nodes = servers.len().clamp(1, 3);
    let _ = js.delete_stream(QUEUE).await;
    ensure_queue(&js, QUEUE, nodes).await?;
    let config = job_config(params, url, api_url, "datasync_scale");
    let db = Db::connect(url, &config.schema).await?;
    db.drop_schema().await?;
    let postgres = postmaster_pid(&db).await;
    let nats = nats_pids();
    let (postgres_before, nats_before) = (postgres.and_then(tree_cpu_seconds), nats_cpu(&nats));
    let this_before = cpu_seconds(std::process::id(), false);

    // The queue's consumer is infrastructure, like the schema: made before
    // the clock starts (its RAFT group's election takes a while).
    let worker = worker_config(&config);
    work::worker_consumer(&js, &worker).await?;
    let started = Instant::now();
    let client = ApiClient::new(api_url, DEFAULT_API_KEY, config.retry)?;
    let items = plan(&client, "scale", params.scale_items_per_worker.max(1) * workers as u64).await?;
    publish_plan(&js, QUEUE, &items).await?;
    let (program, base) = params.worker_command.split_first().expect("checked non-empty");
    let mut children = Workers(Vec::new());
    for _ in 0..workers {
        let child = Command::new(program)
            .args(base)
            .args(crate::worker_job_args(&config, &servers, QUEUE))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| crate::Error::Io {
                context: format!("starting the worker `{program}`"),
                source,
            })?;
        children.0.push(child);
    }
    // Done when the work queue is empty: every item acked after its commit.
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        if work::items_left(&js, QUEUE, &worker.consumer).await? == 0 {
            break;
        }
        if let Some(child) = children
            .0
            .iter_mut()
            .find_map(|c| c.try_wait().ok().flatten().map(|_| c.id()))
        {
            return Err(crate::Error::Config(format!(
                "worker {child} exited before the queue was empty"
            )));
        }
        if Instant::now() > deadline {
            return Err(crate::Error::Config(
                "the workers did not finish in 30 minutes".to_owned(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_workers_s = children.0.iter().filter_map(|c| cpu_seconds(c.id(), false)).sum();
    let this_after = cpu_seconds(std::process::id(), false);
    let postgres_after = postgres.and_then(tree_cpu_seconds);
    let nats_after = nats_cpu(&nats);
    drop(children);
    check(&db, &dataset).await?;
    db.drop_schema().await?;
    Ok(Load {
        events_per_s: params.events as f64 / elapsed.max(f64::EPSILON),
        elapsed_s: elapsed,
        cpu_workers_s,
        cpu_nats_s: nats_after.zip(nats_before).map(|(a, b)| a - b),
        cpu_postgres_s: postgres_after.zip(postgres_before).map(|(a, b)| a - b),
        cpu_this_process_s: this_after.zip(this_before).map(|(a, b)| a - b),
    })
}
