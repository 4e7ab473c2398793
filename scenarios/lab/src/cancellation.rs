//! `weir-lab run cancellation`: cancellation at random moments into hung
//! and slow sinks, TCP client disconnects, and a graceful shutdown under a
//! real SIGTERM (sent by this process to itself, last).

use weir_cancellation::{CancellationParams, Part};
use weir_harness::ScenarioResult;

use crate::RunArgs;

/// Runs the cancellation scenario as `args` asks: `--full` for the full
/// profile, `--seed`, and `--variant` to pick parts (`hung`, `slow`,
/// `disconnect`, `shutdown`).
pub fn run(args: &RunArgs) -> anyhow::Result<Vec<ScenarioResult>> {
    let mut params = if args.full {
        CancellationParams::full()
    } else {
        CancellationParams::default()
    };
    params.seed = args.seed;
    if !args.variant.is_empty() {
        let mut parts = args
            .variant
            .iter()
            .map(|v| v.parse::<Part>())
            .collect::<Result<Vec<_>, _>>()?;
        // The shutdown part leaves the signals caught: it always runs last.
        parts.sort_by_key(|p| Part::ALL.iter().position(|q| q == p));
        parts.dedup();
        params.parts = parts;
    }
    Ok(weir_cancellation::run_blocking(&params, &args.out)?)
}
