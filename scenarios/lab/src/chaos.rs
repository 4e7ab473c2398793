//! `weir-lab run chaos`: the invariant suite as a scenario: generated
//! failure schedules against the memory, null, file and writer sinks, with the
//! number of violations (the gate requires zero).

use anyhow::Context as _;
use weir_chaos::ChaosParams;
use weir_harness::ScenarioResult;

use crate::RunArgs;

/// 2,000 schedules per sink (quick) or 10,000 (`--full`), from `--seed`.
pub fn run(args: &RunArgs) -> anyhow::Result<Vec<ScenarioResult>> {
    if let Some(unknown) = args.variant.first() {
        anyhow::bail!(
            "the chaos scenario has no variant `{unknown}`: it always runs the memory, null, file and writer sinks"
        );
    }
    let params = ChaosParams {
        cases: if args.full { 10_000 } else { 2_000 },
        first_seed: args.seed,
    };
    let results = weir_chaos::run(params);
    for result in &results {
        result
            .write_to(&args.out)
            .with_context(|| format!("writing a result to {}", args.out.display()))?;
    }
    Ok(results)
}
