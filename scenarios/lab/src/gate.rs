//! `weir-lab gate`: runs the quick profile of every scenario in fresh
//! processes, reads criterion's estimates, checks everything against the
//! committed gates file, prints the table and fails on any breach.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use weir_gate::{GateFile, breaches, evaluate, table};
use weir_harness::{criterion_results, load_results};

use crate::ScenarioName;

/// Arguments of `weir-lab gate`.
#[derive(Debug, Args)]
pub struct GateArgs {
    /// The gates file.
    #[arg(long, default_value = "gates.toml")]
    pub gates: PathBuf,
    /// Where the quick profile's results go (emptied first unless --no-run).
    #[arg(long, default_value = "target/gate")]
    pub out: PathBuf,
    /// Criterion's output directory, read for bench estimates (run the
    /// benches first, as `just gate` does); skipped when absent.
    #[arg(long)]
    pub criterion: Option<PathBuf>,
    /// Check the results already in --out instead of running the scenarios.
    #[arg(long)]
    pub no_run: bool,
    /// Scenarios to leave out of the run (their gates then fail as missing).
    #[arg(long, value_delimiter = ',')]
    pub skip: Vec<ScenarioName>,
}

/// Runs the gate; `Ok(false)` when a gate is breached.
pub fn run(args: &GateArgs) -> anyhow::Result<bool> {
    let gates = GateFile::load(&args.gates)?;
    if !args.no_run {
        if args.out.exists() {
            std::fs::remove_dir_all(&args.out).with_context(|| format!("emptying {}", args.out.display()))?;
        }
        std::fs::create_dir_all(&args.out)?;
        let me = std::env::current_exe().context("locating weir-lab")?;
        for scenario in ScenarioName::value_variants() {
            if args.skip.contains(scenario) {
                continue;
            }
            let name = scenario
                .to_possible_value()
                .map(|v| v.get_name().to_owned())
                .unwrap_or_default();
            eprintln!("gate: running {name} (quick profile)");
            // A fresh process per scenario: one scenario's heap never
            // pollutes the next one's memory figures.
            let status = Command::new(&me)
                .args(["run", &name, "--out"])
                .arg(&args.out)
                .status()
                .with_context(|| format!("starting `weir-lab run {name}`"))?;
            if !status.success() {
                eprintln!("gate: `weir-lab run {name}` failed ({status}); its gates will fail as missing or failed");
            }
        }
    }
    let mut results = load_results(&args.out).with_context(|| format!("reading results in {}", args.out.display()))?;
    if let Some(dir) = &args.criterion {
        results.extend(criterion_results(dir));
    }
    let verdicts = evaluate(&gates, &results);
    let rendered = table(&verdicts);
    println!("{rendered}");
    std::fs::write(args.out.join("gate.md"), &rendered)?;
    let failed = breaches(&verdicts);
    if failed.is_empty() {
        println!("gate: all {} gates pass", verdicts.len());
        Ok(true)
    } else {
        eprintln!("gate: {} of {} gates breached:", failed.len(), verdicts.len());
        for breach in &failed {
            eprintln!("  - {breach}");
        }
        Ok(false)
    }
}
