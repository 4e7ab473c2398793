//! `weir-lab run transforms`: checksum transforms versus plain hasher
//! loops, and a CPU-heavy stage inline versus offloaded (`spawn_blocking`
//! and a dedicated rayon pool) on current-thread and multi-thread runtimes.

use weir_harness::ScenarioResult;
use weir_offload::TransformsParams;

use crate::RunArgs;

/// Runs the transforms scenario as `args` asks: `--full` for the full
/// profile, `--size` for the bytes per checksum run and through the
/// CPU-heavy stage, `--seed` for the data. It always runs every variant.
pub fn run(args: &RunArgs) -> anyhow::Result<Vec<ScenarioResult>> {
    if !args.variant.is_empty() || args.sink.is_some() || args.source.is_some() {
        anyhow::bail!("the transforms scenario runs all its variants; --variant, --sink and --source do not apply");
    }
    let mut params = if args.full {
        TransformsParams::full()
    } else {
        TransformsParams::default()
    };
    params.seed = args.seed;
    if let Some(size) = args.size {
        params.checksum_bytes = size;
        params.heavy_bytes = size;
    }
    Ok(weir_offload::run(&params, &args.out)?)
}
