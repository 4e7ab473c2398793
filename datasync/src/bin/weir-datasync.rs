//! `weir-datasync`: the DataSync job and mock API on their own (the same as
//! `weir-lab datasync` and `weir-lab datasync-api`); the crash test runs
//! `weir-datasync run` as the child process it kills, and the JetStream
//! fault test kills `weir-datasync worker` processes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use weir_datasync::cli::{self, ApiArgs, JobArgs, PlanArgs, WorkerArgs};

/// The DataSync job and its mock API.
#[derive(Debug, Parser)]
#[command(name = "weir-datasync", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Ingests the API's events into PostgreSQL, resuming where it stopped.
    Run(JobArgs),
    /// Serves the mock event API until Ctrl-C.
    Api(ApiArgs),
    /// Splits the API's log into work items on a NATS JetStream work queue.
    Plan(PlanArgs),
    /// Takes work items from the queue and runs the job for each (acked
    /// after its commit) until the queue stays empty for --idle-exit.
    Worker(WorkerArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_json_logs(tracing::Level::INFO);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("weir-datasync: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = cli::runtime()?;
    match cli.command {
        Command::Run(args) => {
            let report = runtime.block_on(cli::run_job_args(&args))?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Api(args) => runtime.block_on(cli::serve_api_until_interrupted(&args))?,
        Command::Plan(args) => {
            let (items, report) = runtime.block_on(cli::plan_args(&args))?;
            println!("{}", cli::plan_summary(&items, &report));
        }
        Command::Worker(args) => {
            let report = runtime.block_on(cli::run_worker_args(&args))?;
            println!("{}", serde_json::to_string(&report)?);
        }
    }
    Ok(())
}
