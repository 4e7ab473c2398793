//! `weir-datasync`: the DataSync job and mock API on their own (the same as
//! `weir-lab datasync` and `weir-lab datasync-api`); the crash test runs
//! `weir-datasync run` as the child process it kills.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use weir_datasync::cli::{self, ApiArgs, JobArgs};
use weir_datasync::scenario::DatasyncParams;

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
    /// Runs the scenario (what `weir-lab run datasync` runs) and prints each result as JSON.
    Bench(BenchArgs),
}

/// Arguments of `bench`.
#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// The full profile (3,000,000 events) instead of the quick one.
    #[arg(long)]
    full: bool,
    /// Variants to run (comma-separated); all when absent.
    #[arg(long, value_delimiter = ',')]
    variant: Vec<String>,
    /// Seed of the log and the faults.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Directory the result JSON files are written to.
    #[arg(long, default_value = "results")]
    out: std::path::PathBuf,
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
        Command::Bench(args) => {
            drop(runtime);
            let mut params = if args.full {
                DatasyncParams::full()
            } else {
                DatasyncParams::default()
            };
            params.seed = args.seed;
            params.variants = args.variant;
            for result in weir_datasync::scenario::run(&params, &args.out)? {
                println!("{}", serde_json::to_string(&result)?);
            }
        }
    }
    Ok(())
}
