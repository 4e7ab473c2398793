//! `weir-lab datasync` (the ingestion job), `weir-lab datasync-api` (the
//! mock event API) and `weir-lab run datasync` (the scenario: the job vs
//! staging-only COPY, the two-stage TSV design and row-by-row INSERT), and
//! `weir-lab run jetstream` (the job over JetStream workers under faults).

use weir_datasync::cli::{self, ApiArgs, JobArgs, PlanArgs, WorkerArgs};
use weir_datasync_lab::DatasyncParams;
use weir_datasync_lab::faults::{self, FaultParams};
use weir_harness::ScenarioResult;

use crate::RunArgs;

/// Runs `work` to completion on a runtime whose every thread logs JSON to
/// stdout, as the calling thread does meanwhile.
fn with_json_logs<T, E>(work: impl std::future::Future<Output = Result<T, E>>) -> anyhow::Result<T>
where
    anyhow::Error: From<E>,
{
    let dispatch = cli::json_dispatch(tracing::Level::INFO);
    let _logs = tracing::dispatcher::set_default(&dispatch);
    let runtime = cli::runtime_logging_to(dispatch.clone())?;
    Ok(runtime.block_on(work)?)
}

/// Runs the job with JSON logs on stdout and prints its report as JSON.
pub fn job(args: &JobArgs) -> anyhow::Result<()> {
    let report = with_json_logs(cli::run_job_args(args))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Plans the log into work items on the JetStream queue.
pub fn plan(args: &PlanArgs) -> anyhow::Result<()> {
    let (items, report) = with_json_logs(cli::plan_args(args))?;
    println!("{}", cli::plan_summary(&items, &report));
    Ok(())
}

/// Runs one worker until the queue stays empty for `--idle-exit`.
pub fn worker(args: &WorkerArgs) -> anyhow::Result<()> {
    let report = with_json_logs(cli::run_worker_args(args))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Serves the mock API until Ctrl-C.
pub fn api(args: &ApiArgs) -> anyhow::Result<()> {
    with_json_logs(cli::serve_api_until_interrupted(args))
}

/// Runs the scenario: `--full` for 2,000,000 events, `--variant` to pick
/// variants, `--seed` for the log and the faults. PostgreSQL comes from
/// DATABASE_URL or the `.pg/env` that `just pg-up` writes; the jetstream
/// variants' NATS from NATS_URL or the `.nats/env` that `just nats-up` writes.
pub fn run(args: &RunArgs) -> anyhow::Result<Vec<ScenarioResult>> {
    if args.size.is_some() || args.sink.is_some() || args.source.is_some() {
        anyhow::bail!(
            "the datasync scenario takes --full (2,000,000 events), --variant and --seed; not --size, --sink or --source"
        );
    }
    let mut params = if args.full {
        DatasyncParams::full()
    } else {
        DatasyncParams::default()
    };
    params.seed = args.seed;
    params.variants = args.variant.clone();
    params.worker_command = worker_command()?;
    Ok(weir_datasync_lab::run(&params, &args.out)?)
}

/// The worker process of the distributed job: this binary's `datasync-worker`.
fn worker_command() -> anyhow::Result<Vec<String>> {
    let exe = std::env::current_exe()?;
    Ok(vec![exe.display().to_string(), "datasync-worker".to_owned()])
}

/// Runs the jetstream scenario, the distributed job under faults on a
/// cluster of its own: `--full` for 3,000,000 events and 12 kills, `--seed`
/// for the log and the fault schedule. PostgreSQL as for `run datasync`.
pub fn jetstream(args: &RunArgs) -> anyhow::Result<Vec<ScenarioResult>> {
    if args.size.is_some() || args.sink.is_some() || args.source.is_some() {
        anyhow::bail!(
            "the jetstream scenario takes --full (3,000,000 events, 12 kills) and --seed; not --size, --sink or --source"
        );
    }
    if let Some(unknown) = args.variant.iter().find(|v| *v != faults::VARIANT_FAULTS) {
        anyhow::bail!(
            "the jetstream scenario has one variant, `{}`; not `{unknown}`",
            faults::VARIANT_FAULTS
        );
    }
    let mut params = if args.full {
        FaultParams::full()
    } else {
        FaultParams::default()
    };
    params.seed = args.seed;
    params.worker_command = worker_command()?;
    Ok(faults::run(&params, &args.out)?)
}
