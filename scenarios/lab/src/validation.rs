//! `weir-lab run validation`: invalid options x sources x sinks, and for
//! every row the source closed, the sink aborted, no descriptor or
//! temporary file left.

use weir_harness::ScenarioResult;
use weir_validation::ValidationParams;

use crate::RunArgs;

/// Runs the validation matrix (the quick and full profiles are the same
/// matrix; `--full` uses larger inputs).
pub fn run(args: &RunArgs) -> anyhow::Result<Vec<ScenarioResult>> {
    let params = if args.full {
        ValidationParams::full()
    } else {
        ValidationParams::default()
    };
    Ok(weir_validation::run_blocking(&params, &args.out)?)
}
