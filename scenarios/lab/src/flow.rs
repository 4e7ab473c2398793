//! `weir-lab run flow`: builds the flow parameters from the command line and
//! measures every case in a fresh child process (`weir-lab __child flow`),
//! so that one case's heap never pollutes the next one's RSS.

use std::process::{Command, Stdio};

use anyhow::Context as _;
use weir_flow::{Case, FlowParams, Selection};
use weir_harness::ScenarioResult;

use crate::{ChildArgs, RunArgs, progress};

/// Runs the flow scenario as `args` asks.
pub fn run(args: &RunArgs) -> anyhow::Result<Vec<ScenarioResult>> {
    let mut params = if args.full {
        FlowParams::full()
    } else {
        FlowParams::default()
    };
    params.seed = args.seed;
    params.inject = weir_harness::inject::Injection::from_env();
    if params.inject.any() {
        eprintln!(
            "flow: injecting lab-only regressions ({}): {:?}",
            weir_harness::inject::ENV,
            params.inject
        );
    }
    params.selection = Selection {
        variants: args.variant.clone(),
        sink: args.sink.clone(),
        source: args.source.clone(),
        size: args.size,
    };
    let planned = params.plan("count", &params.work_dir)?.len();
    let exe = std::env::current_exe().context("finding the weir-lab executable to re-run")?;
    let bar = progress::steps(planned as u64);
    let results = weir_flow::run_with(&params, &args.out, |case| {
        bar.set_message(case.to_string());
        let result = in_child(&exe, case);
        bar.inc(1);
        result
    });
    bar.finish_and_clear();
    Ok(results?)
}

/// Measures `case` in a fresh `weir-lab __child flow` process.
fn in_child(exe: &std::path::Path, case: &Case) -> Result<ScenarioResult, weir_flow::Error> {
    let failed = |source: Box<dyn std::error::Error + Send + Sync>| weir_flow::Error::Case {
        case: case.to_string(),
        source,
    };
    let json = serde_json::to_string(case).map_err(|e| failed(Box::new(e)))?;
    tracing::debug!(%case, "measuring in a child process");
    let output = Command::new(exe)
        .args(["__child", "flow", "--case", &json])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| failed(Box::new(e)))?;
    if !output.status.success() {
        return Err(failed(
            format!("the child process exited with {}", output.status).into(),
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| failed(Box::new(e)))
}

/// The child side: measures one case and prints its result as JSON.
pub fn child(args: &ChildArgs) -> anyhow::Result<()> {
    let case: Case = serde_json::from_str(&args.case).context("parsing the flow case")?;
    let result = weir_flow::run_case(&case).with_context(|| format!("measuring {case}"))?;
    println!("{}", serde_json::to_string(&result).context("serializing the result")?);
    Ok(())
}
