//! `weir-shutdown-demo`: runs ingestions of different lengths under a
//! `weir::Registry` until SIGTERM or SIGINT arrives, drains them with a
//! grace period, prints the summary and every ingestion's ending as one
//! line of JSON, and exits 0.
//!
//! It prints `ready` on a line of its own once the signal handlers are
//! installed: send the signal after that line.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use weir_cancellation::{ShutdownPlan, Trigger, run_shutdown};

/// Runs ingestions under a registry until SIGTERM or SIGINT, then drains.
#[derive(Debug, Parser)]
#[command(name = "weir-shutdown-demo", version, about)]
struct Args {
    /// Where the file sinks write (their targets and temporary files).
    #[arg(long)]
    dir: PathBuf,
    /// Concurrent ingestions.
    #[arg(long, default_value_t = 50)]
    ingestions: usize,
    /// The longest ingestion, milliseconds; the others are spread below it.
    #[arg(long, default_value_t = 3_000)]
    longest_ms: u64,
    /// The grace period, milliseconds.
    #[arg(long, default_value_t = 1_000)]
    grace_ms: u64,
    /// Ingestions attempted after the shutdown began (all refused).
    #[arg(long, default_value_t = 5)]
    late: usize,
}

fn run(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.ingestions > 0, "--ingestions must be at least 1");
    anyhow::ensure!(args.grace_ms > 0, "--grace-ms must be at least 1");
    let plan = ShutdownPlan {
        ingestions: args.ingestions,
        longest: Duration::from_millis(args.longest_ms),
        grace: Duration::from_millis(args.grace_ms),
        late_arrivals: args.late,
        ..ShutdownPlan::default()
    };
    let runtime = weir_harness::runtime().context("building the runtime")?;
    let ready = Trigger::External(Box::new(|| {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "ready");
        let _ = stdout.flush();
    }));
    let run = runtime
        .block_on(run_shutdown(&plan, &args.dir, ready))
        .context("running the ingestions")?;
    println!("{}", serde_json::to_string(&run).context("serializing the run")?);
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
