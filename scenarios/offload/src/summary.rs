//! The summary result: the pool comparison (rayon versus
//! `spawn_blocking`), whether every way kept source order, and how much an
//! inline stage blocks its runtime. Figures only: the verdicts on the
//! scenario's figures are the gates' (`gates.toml`).

use weir_harness::ScenarioResult;
use weir_harness::figures::offload::{OffloadSummary, PoolComparison, StageRun};

fn param<'a>(result: &'a ScenarioResult, key: &str) -> &'a str {
    result
        .params
        .get(key)
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
}

fn lag_p99(result: &ScenarioResult) -> u64 {
    result.lag.as_ref().map_or(0, |lag| lag.p99_us)
}

fn stage(result: &ScenarioResult) -> StageRun {
    result.figures::<StageRun>().unwrap_or_default()
}

/// The run of `group` on `flavor` with `way`, if present.
fn find<'a>(results: &'a [ScenarioResult], group: &str, flavor: &str, way: &str) -> Option<&'a ScenarioResult> {
    results
        .iter()
        .find(|r| param(r, "group") == group && param(r, "flavor") == flavor && param(r, "way") == way)
}

/// The summary's figures, from the other results of one run.
pub fn summary_figures(results: &[ScenarioResult]) -> OffloadSummary {
    let mut summary = OffloadSummary::default();
    for flavor in ["current_thread", "multi_thread"] {
        let baseline = results
            .iter()
            .find(|r| r.variant == format!("lag-baseline-{flavor}"))
            .map_or(0, lag_p99);
        if flavor == "current_thread"
            && let Some(inline) = find(results, "offload", flavor, "inline")
        {
            let cpu = stage(inline).per_chunk_cpu_us;
            if cpu > 0.0 {
                summary.inline_lag_over_cpu_current_thread = Some(lag_p99(inline) as f64 / cpu);
            }
        }
        for group in ["offload", "hop"] {
            let mut states: Vec<String> = results
                .iter()
                .filter(|r| param(r, "group") == group && param(r, "flavor") == flavor)
                .map(|r| stage(r).burn_state)
                .collect();
            if states.len() > 1 {
                states.sort_unstable();
                states.dedup();
                summary
                    .distinct_burn_states
                    .insert(format!("{group}-{flavor}"), states.len() as u64);
            }
            let pick = |way: &str| find(results, group, flavor, way);
            if let (Some(blocking), Some(rayon)) = (pick("adapter-spawn_blocking"), pick("adapter-rayon")) {
                let inline_us = pick("inline").map_or(0.0, |r| stage(r).per_chunk_us);
                let blocking_us = stage(blocking).per_chunk_us;
                let rayon_us = stage(rayon).per_chunk_us;
                summary.pools.insert(
                    format!("{group}-{flavor}"),
                    PoolComparison {
                        spawn_blocking_per_chunk_us: blocking_us,
                        rayon_per_chunk_us: rayon_us,
                        inline_per_chunk_us: inline_us,
                        spawn_blocking_hop_us: blocking_us - inline_us,
                        rayon_hop_us: rayon_us - inline_us,
                        rayon_over_spawn_blocking_throughput: if rayon_us > 0.0 { blocking_us / rayon_us } else { 0.0 },
                        spawn_blocking_lag_p99_us: lag_p99(blocking),
                        rayon_lag_p99_us: lag_p99(rayon),
                        idle_lag_p99_us: baseline,
                        faster: if rayon_us < blocking_us {
                            "rayon"
                        } else {
                            "spawn_blocking"
                        }
                        .to_owned(),
                    },
                );
            }
        }
    }
    summary.failed_runs = results
        .iter()
        .filter(|r| !r.is_ok())
        .map(|r| r.variant.clone())
        .collect();
    summary
}

/// Builds the summary result from the other results of one run (its
/// outcome is `ok`: the gates judge the figures, each on its own).
pub fn summarize(results: &[ScenarioResult]) -> ScenarioResult {
    let mut summary = ScenarioResult::new("offload", "summary");
    summary.set_figures(&summary_figures(results));
    summary
}

#[cfg(test)]
mod tests {
    use weir_harness::LagSeries;

    use super::*;

    fn run(group: &str, flavor: &str, way: &str, per_chunk_us: f64, p99_us: u64, state: &str) -> ScenarioResult {
        let mut result = ScenarioResult {
            scenario: "offload".into(),
            variant: format!("{group}-{flavor}-{way}"),
            outcome: "ok".into(),
            ..ScenarioResult::default()
        };
        result.params.insert("group".into(), group.into());
        result.params.insert("flavor".into(), flavor.into());
        result.params.insert("way".into(), way.into());
        result.set_figures(&StageRun {
            per_chunk_us,
            per_chunk_cpu_us: 2000.0,
            burn_state: state.into(),
            ..StageRun::default()
        });
        result.lag = Some(LagSeries {
            p99_us,
            ..LagSeries::default()
        });
        result
    }

    #[test]
    fn pools_order_and_inline_lag_are_summarized() {
        let mut results = Vec::new();
        for flavor in ["current_thread", "multi_thread"] {
            results.push(run("offload", flavor, "inline", 2100.0, 40_000, "ab"));
            results.push(run("offload", flavor, "spawn_blocking", 2100.0, 1_200, "ab"));
            results.push(run("offload", flavor, "adapter-spawn_blocking", 2100.0, 1_100, "ab"));
            results.push(run("offload", flavor, "adapter-rayon", 2050.0, 1_100, "ab"));
        }
        let summary = summarize(&results);
        assert!(summary.is_ok(), "the summary's outcome judges nothing");
        let figures = summary.figures::<OffloadSummary>().unwrap();
        let pools = &figures.pools["offload-current_thread"];
        assert!((pools.rayon_over_spawn_blocking_throughput - 2100.0 / 2050.0).abs() < 1e-9);
        assert_eq!(pools.faster, "rayon");
        assert_eq!(figures.distinct_burn_states["offload-multi_thread"], 1);
        assert_eq!(figures.inline_lag_over_cpu_current_thread, Some(20.0));
        assert!(figures.failed_runs.is_empty());
    }

    #[test]
    fn a_reordering_way_shows_as_a_second_digest() {
        let mut failed = run("hop", "multi_thread", "adapter-rayon", 9.0, 900, "bb");
        failed.outcome = "moved 1 of 2 bytes".into();
        let results = vec![run("hop", "multi_thread", "inline", 5.0, 900, "aa"), failed];
        let figures = summary_figures(&results);
        assert_eq!(figures.distinct_burn_states["hop-multi_thread"], 2);
        assert_eq!(figures.failed_runs, ["hop-multi_thread-adapter-rayon"]);
    }
}
