//! `weir-lab run delivery`: the delivery scenario, each server in a
//! `weir-serve` process of its own (the lean server binary beside
//! weir-lab) so that its RSS and CPU are its alone.

use weir_delivery::serve::ServerKind;
use weir_delivery::{DeliveryParams, Launch, Phase};
use weir_harness::ScenarioResult;

use crate::RunArgs;

/// Runs the delivery scenario as `args` asks: `--full` for the full
/// profile, `--size` for the file size, `--variant` to pick phases
/// (`slow`, `crowd`, `fast`, `storm`, `upload`, `compressed`, `encoding`, `rows`) and servers (`weir-pull`,
/// `weir-sendfile`, `weir-read-ahead`, `tower-serve-file`, `nginx`).
pub fn run(args: &RunArgs) -> anyhow::Result<Vec<ScenarioResult>> {
    let mut params = if args.full {
        DeliveryParams::full()
    } else {
        DeliveryParams::default()
    };
    params.seed = args.seed;
    params.launch = Launch::weir_serve_beside_current_exe()?;
    if let Some(size) = args.size {
        params.file_size = size;
    }
    let (mut phases, mut servers) = (Vec::new(), Vec::new());
    for variant in &args.variant {
        if let Ok(phase) = variant.parse::<Phase>() {
            phases.push(phase);
        } else {
            servers.push(variant.parse::<ServerKind>().map_err(anyhow::Error::msg)?);
        }
    }
    if !phases.is_empty() {
        params.phases = phases;
    }
    if !servers.is_empty() {
        params.servers = servers;
    }
    Ok(weir_delivery::run_blocking(&params, &args.out)?)
}
