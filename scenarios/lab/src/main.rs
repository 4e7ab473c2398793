//! `weir-lab`: runs weir's scenarios, writes one JSON result per run, and
//! renders the reports.
//!
//! Adding a scenario: one [`ScenarioName`] variant (its doc comment is what
//! `list` prints), one arm in [`run_scenario`], and the glue in its own file
//! `src/<name>.rs`. A scenario that measures in fresh processes adds one arm
//! in [`run_child`] too.

mod cancellation;
mod chaos;
mod datasync;
mod delivery;
mod flow;
mod gate;
mod offload;
mod progress;
mod validation;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use weir_harness::{ScenarioResult, parse_bytes};

/// Runs weir's research scenarios and renders their reports.
#[derive(Debug, Parser)]
#[command(name = "weir-lab", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Lists the scenarios and what each shows.
    List {
        /// Only the names, one per line (for scripts such as `just bench-all`).
        #[arg(long)]
        names: bool,
    },
    /// Runs one scenario and writes one JSON result per run.
    Run(RunArgs),
    /// Renders the report (charts, tables, index) from result JSON.
    Report(ReportArgs),
    /// Serves files over HTTP (weir's delivery server or the ServeFile baseline) until Ctrl-C.
    Serve(weir_delivery::cli::ServeArgs),
    /// Ingests the DataSync API's events into PostgreSQL (resumable, exactly once; JSON logs on stdout).
    Datasync(weir_datasync::cli::JobArgs),
    /// Serves the mock DataSync event API (seeded events and faults) until Ctrl-C.
    DatasyncApi(weir_datasync::cli::ApiArgs),
    /// Splits the DataSync API's log into work items on a NATS JetStream work queue (`just nats-up`); a re-plan queues nothing twice.
    DatasyncPlan(weir_datasync::cli::PlanArgs),
    /// Takes DataSync work items from the queue and runs the job for each, acked only after its commit; many may run, on many machines.
    DatasyncWorker(weir_datasync::cli::WorkerArgs),
    /// Runs the quick profile of every scenario and checks the committed gates (ratios, memory ceilings, correctness counts); exits 1 on a breach.
    Gate(gate::GateArgs),
    /// Measures one case in this (fresh) process; used by `run`, not by people.
    #[command(name = "__child", hide = true)]
    Child(ChildArgs),
}

/// The scenarios `run` knows. The doc comment of each is its `list` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScenarioName {
    /// The atomic invariant over generated failure schedules (memory, null, file and writer sinks): schedules checked, violations.
    Chaos,
    /// Controlled vs unbounded flow into slow, file and null sinks; the flat-memory proof; throughput ratios.
    Flow,
    /// HTTP delivery: slow clients' server RSS and CPU (100 and 1,000), fast throughput vs nginx and tower-http ServeFile, disconnect storm; uploads, compressed delivery, identity vs zstd, PostgreSQL rows (needs `just pg-up`).
    Delivery,
    /// Checksum transforms vs plain hasher loops; a CPU-heavy stage inline vs offloaded (spawn_blocking, rayon): lag and throughput.
    Offload,
    /// Cancel at random moments into hung and slow sinks (latency, writes after abort), TCP disconnects, SIGTERM drain of 50 ingestions.
    Cancellation,
    /// Invalid options x sources x sinks: every row's error, source closed, sink aborted, no fd or file left.
    Validation,
    /// API -> PostgreSQL with faults on: exactly-once binary COPY job vs staging-only, two-stage TSV and row-by-row INSERT (needs `just pg-up`).
    Datasync,
    /// DataSync over NATS JetStream workers under faults (kills, one between commit and ack, the leader node's loss, a stopped worker): exact load, recovery times.
    Jetstream,
}

impl ScenarioName {
    /// The `--variant` value that runs only the part of this scenario that
    /// measures the result `variant` together with every baseline its
    /// figures are compared with, or `None` when only the whole scenario
    /// does. A gate's breach is re-measured on that part alone.
    pub fn part_of(self, variant: &str) -> Option<String> {
        match self {
            // `slow-weir-pull`: a phase runs every server, nginx and
            // ServeFile included, and no gated figure reads another phase.
            Self::Delivery => {
                let phase = variant.split('-').next()?;
                phase.parse::<weir_delivery::Phase>().ok().map(|_| phase.to_owned())
            }
            _ => None,
        }
    }
}

/// Arguments of `weir-lab run`; each scenario reads the ones it uses and
/// rejects values it does not know.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario (`weir-lab list` shows them).
    pub scenario: ScenarioName,
    /// Variants to run (comma-separated or repeated); all of the profile's when absent.
    #[arg(long, value_delimiter = ',')]
    pub variant: Vec<String>,
    /// Input size, e.g. `100MiB`, `1GiB`, `10GiB`; the profile's sizes when absent.
    #[arg(long, value_parser = parse_bytes)]
    pub size: Option<u64>,
    /// Sink kind, scenario-specific (flow: `null`, `file`, `slow`, `jitter`).
    #[arg(long)]
    pub sink: Option<String>,
    /// Source kind, scenario-specific (flow: `synthetic`, `file`).
    #[arg(long)]
    pub source: Option<String>,
    /// Seed for generated data and delays.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The full-size profile instead of the quick one.
    #[arg(long)]
    pub full: bool,
    /// Directory the result JSON files are written to.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Also print every result as one line of JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// The gates file whose verdicts on this run's figures are printed
    /// (the same bounds `weir-lab gate` applies).
    #[arg(long, default_value = "gates.toml")]
    pub gates: PathBuf,
}

/// Arguments of `weir-lab report`.
#[derive(Debug, Args)]
struct ReportArgs {
    /// Directory holding the result JSON files.
    #[arg(default_value = "results")]
    dir: PathBuf,
    /// Where the index, charts and tables are written.
    #[arg(long, default_value = "reports/out")]
    out: PathBuf,
    /// Also publish the write-ups' figures and generated markdown into this
    /// directory (`reports`: figures and each write-up's block to
    /// `reports/figures/`, spliced into the write-ups of
    /// `weir_reports::writeups::WRITEUPS`; the README snippet to
    /// `reports/README-snippet.md`).
    #[arg(long)]
    publish: Option<PathBuf>,
    /// With `--publish`: splice the published README snippet into this
    /// README, between its `begin generated` and `end generated` lines.
    #[arg(long, requires = "publish")]
    readme: Option<PathBuf>,
    /// Criterion's output directory, read for bench estimates (section
    /// `bench`); skipped when absent.
    #[arg(long, default_value = "target/criterion")]
    criterion: PathBuf,
}

/// Arguments of the hidden `__child` subcommand.
#[derive(Debug, Args)]
pub struct ChildArgs {
    /// The scenario whose case this is.
    pub scenario: ScenarioName,
    /// The case, as the scenario's JSON; the child prints its result as
    /// JSON on stdout.
    #[arg(long)]
    pub case: String,
}

/// Dispatches `run` to the scenario's glue.
fn run_scenario(args: &RunArgs) -> anyhow::Result<Vec<ScenarioResult>> {
    match args.scenario {
        ScenarioName::Chaos => chaos::run(args),
        ScenarioName::Flow => flow::run(args),
        ScenarioName::Datasync => datasync::run(args),
        ScenarioName::Jetstream => datasync::jetstream(args),
        ScenarioName::Delivery => delivery::run(args),
        ScenarioName::Offload => offload::run(args),
        ScenarioName::Cancellation => cancellation::run(args),
        ScenarioName::Validation => validation::run(args),
    }
}

/// Dispatches the hidden `__child` subcommand to the scenario's glue.
fn run_child(args: &ChildArgs) -> anyhow::Result<()> {
    match args.scenario {
        ScenarioName::Flow => flow::child(args),
        ScenarioName::Delivery => {
            anyhow::bail!("the delivery scenario runs its servers in `weir-serve` processes, not `__child`")
        }
        ScenarioName::Offload => anyhow::bail!("the offload scenario measures in-process, not with `__child`"),
        ScenarioName::Chaos
        | ScenarioName::Cancellation
        | ScenarioName::Validation
        | ScenarioName::Datasync
        | ScenarioName::Jetstream => {
            anyhow::bail!(
                "the {:?} scenario measures in-process, not with `__child`",
                args.scenario
            )
        }
    }
}

fn list(names_only: bool) {
    for name in ScenarioName::value_variants() {
        if let Some(value) = name.to_possible_value() {
            if names_only {
                println!("{}", value.get_name());
            } else {
                let help = value.get_help().map(ToString::to_string).unwrap_or_default();
                println!("{:<14} {help}", value.get_name());
            }
        }
    }
}

fn print_results(results: &[ScenarioResult], json: bool) -> anyhow::Result<()> {
    for result in results {
        if json {
            println!("{}", serde_json::to_string(result).context("serializing a result")?);
        } else if result.variant == "summary" {
            // The summary's figures are judged by the gates below.
        } else {
            let peak = result.rss.peak_bytes as f64 / f64::from(1 << 20);
            let growth = result.rss.growth_bytes() as f64 / f64::from(1 << 20);
            println!(
                "{}/{}: {} | {} bytes in {:.2} s ({:.1} MB/s) | peak RSS {peak:.1} MiB (+{growth:.1} MiB){}",
                result.scenario,
                result.variant,
                result.outcome,
                result.bytes,
                result.elapsed_s,
                result.throughput_bps / 1e6,
                result.lag.as_ref().map_or_else(String::new, |lag| format!(
                    " | lag p99 {:.2} ms",
                    lag.p99_us as f64 / 1e3
                )),
            );
        }
    }
    Ok(())
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::List { names } => list(names),
        Command::Run(args) => {
            let results = run_scenario(&args)?;
            print_results(&results, args.json)?;
            if !args.json {
                println!("{} result(s) in {}", results.len(), args.out.display());
                if let Some(name) = args.scenario.to_possible_value() {
                    gate::print_run_verdicts(&args.gates, name.get_name(), &results);
                }
            }
        }
        Command::Report(args) => {
            let index =
                weir_reports::render_dir_with_criterion(&args.dir, &args.criterion, &args.out, args.publish.as_deref())
                    .with_context(|| format!("rendering the report from {}", args.dir.display()))?;
            println!("report index: {}", index.display());
            if let (Some(readme), Some(publish)) = (&args.readme, &args.publish) {
                splice_readme(readme, &publish.join("README-snippet.md"))?;
            }
        }
        Command::Child(args) => run_child(&args)?,
        Command::Gate(args) => {
            if !gate::run(&args)? {
                anyhow::bail!("regression gate breached (see the table above)");
            }
        }
        Command::Serve(args) => weir_delivery::cli::serve(&args)?,
        Command::Datasync(args) => datasync::job(&args)?,
        Command::DatasyncApi(args) => datasync::api(&args)?,
        Command::DatasyncPlan(args) => datasync::plan(&args)?,
        Command::DatasyncWorker(args) => datasync::worker(&args)?,
    }
    Ok(())
}

/// Splices the published snippet into the README; when the results held
/// nothing for it there is no snippet, and the README is left as it is.
fn splice_readme(readme: &Path, snippet: &Path) -> anyhow::Result<()> {
    let text = match std::fs::read_to_string(snippet) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            println!(
                "no README snippet at {} (nothing in the results for it): {} left as it is",
                snippet.display(),
                readme.display()
            );
            return Ok(());
        }
        Err(error) => return Err(error).with_context(|| format!("reading {}", snippet.display())),
    };
    let changed = weir_reports::splice::splice_file(readme, "reports/README-snippet.md", &text)
        .with_context(|| format!("splicing {} into {}", snippet.display(), readme.display()))?;
    println!(
        "{}: {}",
        readme.display(),
        if changed {
            "generated block updated"
        } else {
            "generated block already current"
        }
    );
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match dispatch(cli) {
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

#[cfg(test)]
mod tests {
    use super::ScenarioName;

    #[test]
    fn a_delivery_breach_is_re_measured_on_its_phase_alone() {
        assert_eq!(
            ScenarioName::Delivery.part_of("slow-weir-pull").as_deref(),
            Some("slow")
        );
        assert_eq!(
            ScenarioName::Delivery.part_of("ranges-nginx").as_deref(),
            Some("ranges")
        );
        assert_eq!(ScenarioName::Delivery.part_of("nowhere-weir-pull"), None);
        assert_eq!(ScenarioName::Flow.part_of("controlled"), None);
    }

    #[test]
    fn every_delivery_gate_names_a_phase_it_can_be_re_measured_on() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../gates.toml");
        let gates = weir_gate::GateFile::load(std::path::Path::new(path)).expect("gates.toml loads");
        let delivery: Vec<_> = gates.gates.iter().filter(|g| g.scenario == "delivery").collect();
        assert!(!delivery.is_empty(), "gates.toml has delivery gates");
        for gate in delivery {
            let variant = gate.variant.as_deref().unwrap_or_default();
            assert!(
                ScenarioName::Delivery.part_of(variant).is_some(),
                "{}: variant {variant:?} names no phase",
                gate.name
            );
        }
    }
}
