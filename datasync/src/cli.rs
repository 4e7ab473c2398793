//! The command lines of the job and the mock API, shared by
//! `weir-lab datasync` / `weir-lab datasync-api` and the crate's own
//! `weir-datasync` binary: clap arguments, JSON logs, and the entry points.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::api::{ApiConfig, FaultRates, MockApi};
use crate::client::RetryPolicy;
use crate::dataset::Dataset;
use crate::job::{JobConfig, JobReport, SinkKind, run_job};
use crate::pg::{Db, database_url};
use crate::work::{self, PlanReport, WorkItem, WorkerConfig, WorkerReport};

/// The API key the mock API and the job use unless told otherwise.
pub const DEFAULT_API_KEY: &str = "weir-datasync-key";
/// Where the mock API listens unless told otherwise.
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:8787";

/// How rows reach PostgreSQL (command-line form of [`SinkKind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SinkArg {
    /// Binary COPY: a run's first segment through a staging table and
    /// `INSERT ... ON CONFLICT DO NOTHING`, later ones straight into
    /// `events` (a segment that meets a stored id is redone through staging).
    Copy,
    /// One `INSERT` per event in the segment's transaction (the baseline).
    RowByRow,
    /// One autocommitted `INSERT` per event (the naive baseline).
    RowByRowAutocommit,
}

/// Arguments of the ingestion job.
#[derive(Debug, Clone, Args)]
pub struct JobArgs {
    /// The API, `http://host:port`.
    #[arg(long, env = "DATASYNC_API_URL", default_value = "http://127.0.0.1:8787")]
    pub api_url: String,
    /// The API key.
    #[arg(long, env = "DATASYNC_API_KEY", default_value = DEFAULT_API_KEY)]
    pub api_key: String,
    /// PostgreSQL; when absent, DATABASE_URL, then the .pg/env that `just pg-up` writes.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Schema of the job's tables.
    #[arg(long, default_value = "datasync")]
    pub schema: String,
    /// The job's name (one committed position per name).
    #[arg(long, default_value = "default")]
    pub job: String,
    /// Event lines per segment (one transaction each).
    #[arg(long, default_value_t = 100_000)]
    pub segment_events: u64,
    /// How rows reach PostgreSQL.
    #[arg(long, value_enum, default_value = "copy")]
    pub sink: SinkArg,
    /// Segments in flight (each on its own connection; commits stay in order).
    #[arg(long, default_value_t = 2)]
    pub pipeline_depth: usize,
    /// Row frames (512 KiB) a segment may have queued for PostgreSQL.
    #[arg(long, default_value_t = 8)]
    pub max_in_flight: usize,
    /// Retries per request (and stream failures in a row) before giving up.
    #[arg(long, default_value_t = 10)]
    pub max_retries: usize,
    /// Write the stored event ids to this file, one per line, sorted.
    #[arg(long, value_name = "FILE")]
    pub export_ids: Option<PathBuf>,
    /// Drop the schema first (start from scratch).
    #[arg(long)]
    pub reset: bool,
    /// Never draw a progress bar (it is only drawn on a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
}

impl JobArgs {
    /// The job configuration.
    ///
    /// # Errors
    ///
    /// When no database URL can be found.
    pub fn config(&self) -> Result<JobConfig, crate::Error> {
        let database_url = match &self.database_url {
            Some(url) => url.clone(),
            None => database_url(&std::env::current_dir().unwrap_or_default())?,
        };
        let mut config = JobConfig::new(&self.api_url, &self.api_key, database_url);
        config.schema = self.schema.clone();
        config.job = self.job.clone();
        config.segment_events = self.segment_events;
        config.sink = match self.sink {
            SinkArg::Copy => SinkKind::Copy,
            SinkArg::RowByRow => SinkKind::RowByRow,
            SinkArg::RowByRowAutocommit => SinkKind::RowByRowAutocommit,
        };
        config.retry = RetryPolicy {
            max_retries: self.max_retries,
            ..RetryPolicy::default()
        };
        config.export_ids = self.export_ids.clone();
        config.pipeline_depth = self.pipeline_depth;
        config.max_in_flight = self.max_in_flight;
        config.progress = !self.no_progress;
        Ok(config)
    }
}

/// Runs the job (dropping the schema first with `--reset`).
///
/// # Errors
///
/// As [`run_job`].
pub async fn run_job_args(args: &JobArgs) -> Result<JobReport, crate::Error> {
    let config = args.config()?;
    if args.reset {
        let db = Db::connect(&config.database_url, &config.schema).await?;
        db.drop_schema().await?;
        tracing::info!(schema = config.schema, "schema dropped");
    }
    run_job(&config).await
}

/// Where the NATS work queue is.
#[derive(Debug, Clone, Args)]
pub struct QueueArgs {
    /// NATS servers, comma-separated; when absent, NATS_URL, then the
    /// .nats/env that `just nats-up` writes.
    #[arg(long)]
    pub nats: Option<String>,
    /// The work-queue stream.
    #[arg(long, default_value = "DATASYNC_WORK")]
    pub queue: String,
}

impl QueueArgs {
    /// The servers to connect to.
    ///
    /// # Errors
    ///
    /// When none is configured.
    pub fn servers(&self) -> Result<Vec<String>, crate::Error> {
        Ok(match &self.nats {
            Some(list) => weir_jetstream::parse_servers(list)?,
            None => weir_jetstream::nats_servers()?,
        })
    }
}

/// Arguments of the planner: splits the log into work items and queues them.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// The job (its API; `--job` names the items `<job>/<since_ms>`).
    #[command(flatten)]
    pub job: JobArgs,
    /// The queue.
    #[command(flatten)]
    pub queue: QueueArgs,
    /// Work items (time ranges of equal width; the last one open).
    #[arg(long, default_value_t = 64)]
    pub items: u64,
    /// Replicas of the work-queue stream (at most the cluster's nodes).
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
}

/// Plans the job's log and queues the items (a re-plan queues none twice).
///
/// # Errors
///
/// The API, the queue.
pub async fn plan_args(args: &PlanArgs) -> Result<(Vec<WorkItem>, PlanReport), crate::Error> {
    let config = args.job.config()?;
    let js = work::connect(&args.queue.servers()?).await?;
    work::ensure_queue(&js, &args.queue.queue, args.replicas).await?;
    let client = crate::client::ApiClient::new(&config.api_url, config.api_key.clone(), config.retry)?;
    let items = work::plan(&client, &config.job, args.items).await?;
    let report = work::publish_plan(&js, &args.queue.queue, &items).await?;
    Ok((items, report))
}

/// The one-line JSON summary of a plan, as `plan` prints it.
pub fn plan_summary(items: &[WorkItem], report: &PlanReport) -> String {
    serde_json::json!({ "items": items.len(), "queued": report.queued, "already_queued": report.already_queued })
        .to_string()
}

/// Arguments of a worker: takes work items until the queue stays empty.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// The job every item runs (API, database, schema, segment size).
    #[command(flatten)]
    pub job: JobArgs,
    /// The queue.
    #[command(flatten)]
    pub queue: QueueArgs,
    /// The durable consumer the workers share.
    #[arg(long, default_value = "workers")]
    pub consumer: String,
    /// An item without an ack or an in-progress signal this long goes to
    /// another worker.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub ack_wait: Duration,
    /// Exit after the queue has been empty this long (default: never).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub idle_exit: Option<Duration>,
    /// Exit with an error once the queue has been unreachable this long (a
    /// stopped cluster); leader elections and a lost node take seconds.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub unreachable_after: Duration,
    /// Fault injection for the crash test: wait this long between an item's
    /// commit and its ack.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub hold_before_ack: Duration,
}

/// Runs a worker until the queue stays empty for `--idle-exit` (or Ctrl-C).
///
/// # Errors
///
/// The queue cannot be reached.
pub async fn run_worker_args(args: &WorkerArgs) -> Result<WorkerReport, crate::Error> {
    let mut job = args.job.config()?;
    job.progress = false;
    let config = WorkerConfig {
        job,
        stream: args.queue.queue.clone(),
        consumer: args.consumer.clone(),
        ack_wait: args.ack_wait,
        idle_exit: args.idle_exit,
        unreachable_after: args.unreachable_after,
        hold_before_ack: args.hold_before_ack,
    };
    let js = work::connect(&args.queue.servers()?).await?;
    let stop = tokio_util::sync::CancellationToken::new();
    let on_interrupt = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_interrupt.cancel();
    });
    work::run_worker(&js, &config, stop).await
}

/// Fault presets of the mock API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FaultPreset {
    /// No faults.
    None,
    /// Every fault on ([`FaultRates::typical`]).
    Typical,
}

/// Arguments of the mock API.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Address to listen on.
    #[arg(long, default_value = DEFAULT_API_ADDR)]
    pub listen: SocketAddr,
    /// Events in the log.
    #[arg(long, default_value_t = 3_000_000)]
    pub events: u64,
    /// Seed of the events and the faults.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The accepted API key.
    #[arg(long, env = "DATASYNC_API_KEY", default_value = DEFAULT_API_KEY)]
    pub api_key: String,
    /// Fault preset.
    #[arg(long, value_enum, default_value = "typical")]
    pub faults: FaultPreset,
    /// Share of malformed events.
    #[arg(long, default_value_t = 0.001)]
    pub malformed_rate: f64,
    /// Share of events followed by a repeat of an earlier one.
    #[arg(long, default_value_t = 0.005)]
    pub repeat_rate: f64,
    /// Token lifetime, seconds.
    #[arg(long, default_value_t = 60)]
    pub token_ttl_s: u64,
    /// Cursor lifetime, seconds.
    #[arg(long, default_value_t = 300)]
    pub cursor_ttl_s: u64,
}

impl ApiArgs {
    /// The API configuration.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Config`] for rates outside `[0, 1]`.
    pub fn config(&self) -> Result<ApiConfig, crate::Error> {
        for (name, rate) in [
            ("malformed-rate", self.malformed_rate),
            ("repeat-rate", self.repeat_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(crate::Error::Config(format!("--{name} must be in [0, 1], got {rate}")));
            }
        }
        let dataset = Dataset {
            malformed_rate: self.malformed_rate,
            repeat_rate: self.repeat_rate,
            ..Dataset::new(self.seed, self.events)
        };
        let mut config = ApiConfig::new(dataset, &self.api_key);
        config.token_ttl = Duration::from_secs(self.token_ttl_s);
        config.cursor_ttl = Duration::from_secs(self.cursor_ttl_s);
        config.faults = match self.faults {
            FaultPreset::None => FaultRates::none(),
            FaultPreset::Typical => FaultRates::typical(),
        };
        Ok(config)
    }
}

/// Serves the mock API until `shutdown` completes.
///
/// # Errors
///
/// Invalid arguments, or the address cannot be bound.
pub async fn serve_api(args: &ApiArgs, shutdown: impl Future<Output = ()>) -> Result<(), crate::Error> {
    let config = args.config()?;
    let api = MockApi::start(config, args.listen)
        .await
        .map_err(|source| crate::Error::Io {
            context: format!("starting the mock api on {}", args.listen),
            source,
        })?;
    println!(
        "mock api listening on {} ({} events, api key from --api-key)",
        api.url(),
        args.events
    );
    shutdown.await;
    let counts = api.counts();
    api.shutdown().await;
    tracing::info!(?counts, "mock api stopped");
    Ok(())
}

/// Serves the mock API until Ctrl-C (SIGINT).
///
/// # Errors
///
/// As [`serve_api`].
pub async fn serve_api_until_interrupted(args: &ApiArgs) -> Result<(), crate::Error> {
    serve_api(args, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// A JSON log subscriber writing to stdout at `level`, as a dispatcher.
pub fn json_dispatch(level: tracing::Level) -> tracing::Dispatch {
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(level)
        .with_current_span(false)
        .with_writer(std::io::stdout)
        .finish();
    tracing::Dispatch::new(subscriber)
}

/// Installs JSON logs on stdout at `level` (unless a subscriber is set).
pub fn init_json_logs(level: tracing::Level) {
    let _ = tracing::dispatcher::set_global_default(json_dispatch(level));
}

/// A Tokio runtime for the job or the API: two workers, all drivers on.
///
/// # Errors
///
/// When the runtime cannot be built.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// Like [`runtime`], but every thread of the runtime logs to `dispatch`
/// (for a host binary whose global subscriber is not JSON). Hold
/// [`tracing::dispatcher::set_default`] on the calling thread too.
///
/// # Errors
///
/// When the runtime cannot be built.
pub fn runtime_logging_to(dispatch: tracing::Dispatch) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            // Held for the thread's whole life.
            std::mem::forget(tracing::dispatcher::set_default(&dispatch));
        })
        .build()
}
