//! `weir-lab gate`: runs the quick profile of every scenario in fresh
//! processes, reads criterion's estimates, checks everything against the
//! committed gates file, re-measures a first breach (twice more; the median
//! of the three attempts decides), prints the table and fails on a
//! confirmed breach.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use weir_gate::{ATTEMPTS, GateFile, breaches, confirm, evaluate, table};
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
    /// Judge the results already in --out (with --no-run) and print the
    /// verdicts, but exit 0 whatever they are: a measurement run's summary
    /// (`just bench-all`), not a gate.
    #[arg(long, requires = "no_run")]
    pub report_only: bool,
    /// The command that runs the criterion benches, to which a filter is
    /// appended when a bench gate's breach is re-measured (for example
    /// `cargo bench -q -p weir-benches -- --warm-up-time 1 --measurement-time 2 --noplot --nresamples 10000`).
    #[arg(long)]
    pub bench_command: Option<String>,
}

/// Runs the gate; `Ok(false)` when a gate is breached.
pub fn run(args: &GateArgs) -> anyhow::Result<bool> {
    let gates = GateFile::load(&args.gates)?;
    let me = std::env::current_exe().context("locating weir-lab")?;
    if !args.no_run {
        let scenarios: Vec<ScenarioName> = ScenarioName::value_variants()
            .iter()
            .copied()
            .filter(|s| !args.skip.contains(s))
            .collect();
        let whole: Vec<Part> = scenarios.into_iter().map(|s| (s, Vec::new())).collect();
        run_scenarios(&me, &whole, &args.out)?;
    }
    let first = evaluate(&gates, &measured(&args.out, args.criterion.as_deref())?);
    let verdicts = if args.no_run {
        first
    } else {
        remeasure(args, &me, &gates, first)?
    };
    let rendered = table(&verdicts);
    println!("{rendered}");
    std::fs::write(args.out.join("gate.md"), &rendered)?;
    let failed = breaches(&verdicts);
    println!(
        "gate: {} of {} gates pass",
        verdicts.len() - failed.len(),
        verdicts.len()
    );
    if !failed.is_empty() {
        println!("gate: breaches:");
        for breach in &failed {
            println!("  - {breach}");
        }
    }
    Ok(failed.is_empty() || args.report_only)
}

/// What `weir-lab run` prints after a scenario: the gate verdicts of that
/// scenario's gates on the results of this run (the same bounds, the same
/// code as `weir-lab gate`); a gate whose figure this run did not measure
/// (a subset of variants, say) is listed as not measured, not as failed.
pub fn print_run_verdicts(gates: &Path, scenario: &str, results: &[weir_harness::ScenarioResult]) {
    let file = match GateFile::load(gates) {
        Ok(file) => file,
        Err(error) => {
            println!("gates: not judged ({error})");
            return;
        }
    };
    let own = GateFile {
        gates: file.gates.into_iter().filter(|g| g.scenario == scenario).collect(),
    };
    if own.gates.is_empty() {
        return;
    }
    let verdicts = evaluate(&own, results);
    let (measured, unmeasured): (Vec<_>, Vec<_>) = verdicts.iter().partition(|v| v.measured.is_some());
    println!("{scenario} gates ({}):", gates.display());
    for v in &measured {
        println!(
            "  [{}] {}: {}",
            if v.pass { "pass" } else { "FAIL" },
            v.gate.name,
            weir_gate::describe(v)
        );
    }
    for v in &unmeasured {
        println!("  [----] {}: not measured in this run", v.gate.name);
    }
    let passed = measured.iter().filter(|v| v.pass).count();
    println!("{passed} of {} measured gates pass", measured.len());
}

/// A scenario to run and the `--variant` values that pick the part of it to
/// run (empty: all of it).
type Part = (ScenarioName, Vec<String>);

/// Empties `out` and runs each scenario's quick profile (or the part of it
/// that [`Part`] names) into it, each in a fresh process, so that one
/// scenario's heap never pollutes the next one's memory figures.
fn run_scenarios(me: &Path, scenarios: &[Part], out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("emptying {}", out.display()))?;
    }
    std::fs::create_dir_all(out)?;
    for (scenario, variants) in scenarios {
        let name = scenario
            .to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default();
        let mut args = vec!["run".to_owned(), name.clone()];
        let part = if variants.is_empty() {
            String::new()
        } else {
            args.extend(["--variant".to_owned(), variants.join(",")]);
            format!(" ({} only)", variants.join(", "))
        };
        eprintln!("gate: running {name}{part} (quick profile) into {}", out.display());
        let started = std::time::Instant::now();
        let status = Command::new(me)
            .args(&args)
            .arg("--out")
            .arg(out)
            .status()
            .with_context(|| format!("starting `weir-lab run {name}`"))?;
        eprintln!("gate: {name} ran in {:.0} s", started.elapsed().as_secs_f64());
        if !status.success() {
            eprintln!("gate: `weir-lab run {name}` failed ({status}); its gates will fail as missing or failed");
        }
    }
    Ok(())
}

/// The results in `dir`, with criterion's estimates when asked for.
fn measured(dir: &Path, criterion: Option<&Path>) -> anyhow::Result<Vec<weir_harness::ScenarioResult>> {
    let mut results = load_results(dir).with_context(|| format!("reading results in {}", dir.display()))?;
    if let Some(criterion) = criterion {
        results.extend(criterion_results(criterion));
    }
    Ok(results)
}

/// A first breach is measured again before it counts: the breached gates'
/// scenarios (and benches) run [`ATTEMPTS`] - 1 more times, each attempt
/// into its own directory, and [`confirm`] lets the median of the attempts
/// decide. Correctness gates are never re-measured. Where a scenario can
/// run a part of itself that holds a breached figure and every baseline it
/// is compared with ([`ScenarioName::part_of`]), only those parts run again.
fn remeasure(
    args: &GateArgs,
    me: &Path,
    gates: &GateFile,
    first: Vec<weir_gate::Verdict>,
) -> anyhow::Result<Vec<weir_gate::Verdict>> {
    let breached: Vec<&weir_gate::Verdict> = first.iter().filter(|v| v.wants_remeasure()).collect();
    if breached.is_empty() {
        return Ok(first);
    }
    // Per scenario, the parts to run again; `None`: all of it.
    let mut scenarios: Vec<(ScenarioName, Option<Vec<String>>)> = Vec::new();
    let mut benches: Vec<String> = Vec::new();
    for verdict in &breached {
        eprintln!(
            "gate: breach to confirm: {} ({})",
            verdict.gate.name,
            verdict
                .measured
                .map_or_else(|| "missing".to_owned(), |m| format!("{m:.3}"))
        );
        if verdict.gate.scenario == "bench" {
            if let Some(bench) = &verdict.gate.variant {
                benches.push(bench.clone());
            }
        } else if let Ok(name) = ScenarioName::from_str(&verdict.gate.scenario, true)
            && !args.skip.contains(&name)
        {
            let part = verdict.gate.variant.as_deref().and_then(|v| name.part_of(v));
            match scenarios.iter_mut().find(|(s, _)| *s == name) {
                None => scenarios.push((name, part.map(|p| vec![p]))),
                Some((_, parts)) => match (parts.as_mut(), part) {
                    (Some(parts), Some(part)) if !parts.contains(&part) => parts.push(part),
                    (Some(_), Some(_)) | (None, _) => {}
                    (Some(_), None) => *parts = None,
                },
            }
        }
    }
    let scenarios: Vec<Part> = scenarios
        .into_iter()
        .map(|(s, parts)| (s, parts.unwrap_or_default()))
        .collect();
    let mut attempts = Vec::new();
    for attempt in 2..=ATTEMPTS {
        let dir = args.out.join(format!("attempt-{attempt}"));
        run_scenarios(me, &scenarios, &dir)?;
        if !benches.is_empty() {
            rebench(args, &benches)?;
        }
        attempts.push(evaluate(gates, &measured(&dir, args.criterion.as_deref())?));
    }
    Ok(confirm(first, &attempts))
}

/// Runs the criterion benches of `benches` (`group/function/parameter`)
/// again, with their raw baselines, through `--bench-command`.
fn rebench(args: &GateArgs, benches: &[String]) -> anyhow::Result<()> {
    let Some(command) = &args.bench_command else {
        eprintln!("gate: no --bench-command: bench breaches are judged on the first run alone");
        return Ok(());
    };
    // `engine_vs_raw/engine/65536` re-runs the group's benches at that
    // parameter, the raw baseline included.
    let filter = benches
        .iter()
        .map(|b| {
            let mut parts = b.split('/');
            let group = parts.next().unwrap_or_default();
            let parameter = parts.nth(1).map_or_else(String::new, |p| format!("/{p}$"));
            format!("^{group}/.*{parameter}")
        })
        .collect::<Vec<_>>()
        .join("|");
    let mut words = command.split_whitespace();
    let program = words.next().context("--bench-command is empty")?;
    eprintln!("gate: re-running benches matching {filter}");
    let status = Command::new(program)
        .args(words)
        .arg(&filter)
        .status()
        .with_context(|| format!("starting {command}"))?;
    anyhow::ensure!(status.success(), "{command} {filter} failed ({status})");
    Ok(())
}
