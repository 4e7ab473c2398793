//! The summary result: the floors as checks, and the pool
//! comparison (rayon versus `spawn_blocking`).

use serde::Serialize;
use serde_json::{Value, json};
use weir_harness::ScenarioResult;

/// Checksum transforms must reach this fraction of the plain loop.
pub const CHECKSUM_RATIO_FLOOR: f64 = 0.9;
/// Runtime lag p99 ceiling with the CPU-heavy stage offloaded.
pub const OFFLOADED_LAG_P99_CEILING_US: u64 = 5_000;

/// One floor: what is required, what was measured, and whether it holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// What is checked.
    pub name: String,
    /// The requirement, in words.
    pub requirement: String,
    /// The measured figure, in words.
    pub measured: String,
    /// Whether the requirement holds.
    pub pass: bool,
}

fn str_of<'a>(map: &'a serde_json::Map<String, Value>, key: &str) -> &'a str {
    map.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn f64_of(map: &serde_json::Map<String, Value>, key: &str) -> f64 {
    map.get(key).and_then(Value::as_f64).unwrap_or_default()
}

fn lag_p99(result: &ScenarioResult) -> u64 {
    result.lag.as_ref().map_or(0, |lag| lag.p99_us)
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

/// The run of `group` on `flavor` with `way`, if present.
fn find<'a>(results: &'a [ScenarioResult], group: &str, flavor: &str, way: &str) -> Option<&'a ScenarioResult> {
    results.iter().find(|r| {
        str_of(&r.params, "group") == group && str_of(&r.params, "flavor") == flavor && str_of(&r.params, "way") == way
    })
}

/// Builds the summary result from the other results of one run.
pub fn summarize(results: &[ScenarioResult]) -> ScenarioResult {
    let mut checks = Vec::new();
    for algorithm in ["sha256", "blake3"] {
        let variant = format!("checksum-{algorithm}");
        let Some(result) = results.iter().find(|r| r.variant == variant) else {
            continue;
        };
        let ratio = f64_of(&result.extra, "ratio");
        checks.push(Check {
            name: format!("{algorithm} transform vs plain hasher loop"),
            requirement: format!("transform >= {CHECKSUM_RATIO_FLOOR} x plain loop (best of each)"),
            measured: format!(
                "{ratio:.3} x ({:.0} vs {:.0} MB/s; medians {:.3} x)",
                f64_of(&result.extra, "engine_bps") / 1e6,
                f64_of(&result.extra, "plain_bps") / 1e6,
                f64_of(&result.extra, "median_ratio"),
            ),
            pass: result.is_ok() && ratio >= CHECKSUM_RATIO_FLOOR,
        });
    }
    let mut pools = serde_json::Map::new();
    for flavor in ["current_thread", "multi_thread"] {
        let baseline = results
            .iter()
            .find(|r| r.variant == format!("lag-baseline-{flavor}"))
            .map_or(0, lag_p99);
        if let Some(offloaded) = find(results, "offload", flavor, "spawn_blocking") {
            let p99 = lag_p99(offloaded);
            checks.push(Check {
                name: format!("offloaded CPU-heavy stage, {flavor} runtime: lag"),
                requirement: format!("lag p99 < {}", ms(OFFLOADED_LAG_P99_CEILING_US)),
                measured: format!(
                    "p99 {} (idle baseline {}), {:.0} MB/s",
                    ms(p99),
                    ms(baseline),
                    offloaded.throughput_bps / 1e6
                ),
                pass: offloaded.is_ok() && p99 < OFFLOADED_LAG_P99_CEILING_US,
            });
        }
        if flavor == "current_thread"
            && let Some(inline) = find(results, "offload", flavor, "inline")
        {
            let p99 = lag_p99(inline);
            let cpu = f64_of(&inline.extra, "per_chunk_cpu_us");
            checks.push(Check {
                name: format!("inline CPU-heavy stage, {flavor} runtime: lag"),
                requirement: "lag p99 >= per-chunk CPU time".to_owned(),
                measured: format!(
                    "p99 {} vs {} per chunk, {:.0} MB/s",
                    ms(p99),
                    ms(cpu as u64),
                    inline.throughput_bps / 1e6
                ),
                pass: inline.is_ok() && p99 as f64 >= cpu,
            });
        }
        for group in ["offload", "hop"] {
            let states: Vec<&str> = results
                .iter()
                .filter(|r| str_of(&r.params, "group") == group && str_of(&r.params, "flavor") == flavor)
                .map(|r| str_of(&r.extra, "burn_state"))
                .collect();
            if states.len() > 1 {
                checks.push(Check {
                    name: format!("{group}, {flavor} runtime: every way keeps source order"),
                    requirement: "the same chained digest from every way".to_owned(),
                    measured: format!(
                        "{} distinct over {} runs",
                        {
                            let mut distinct = states.clone();
                            distinct.sort_unstable();
                            distinct.dedup();
                            distinct.len()
                        },
                        states.len()
                    ),
                    pass: states.windows(2).all(|w| w[0] == w[1]) && !states[0].is_empty(),
                });
            }
            let pick = |way: &str| find(results, group, flavor, way);
            if let (Some(blocking), Some(rayon)) = (pick("adapter-spawn_blocking"), pick("adapter-rayon")) {
                let inline_us = pick("inline").map_or(0.0, |r| f64_of(&r.extra, "per_chunk_us"));
                let blocking_us = f64_of(&blocking.extra, "per_chunk_us");
                let rayon_us = f64_of(&rayon.extra, "per_chunk_us");
                pools.insert(
                    format!("{group}-{flavor}"),
                    json!({
                        "spawn_blocking_per_chunk_us": blocking_us,
                        "rayon_per_chunk_us": rayon_us,
                        "inline_per_chunk_us": inline_us,
                        "spawn_blocking_hop_us": blocking_us - inline_us,
                        "rayon_hop_us": rayon_us - inline_us,
                        "rayon_over_spawn_blocking_throughput": if rayon_us > 0.0 { blocking_us / rayon_us } else { 0.0 },
                        "spawn_blocking_lag_p99_us": lag_p99(blocking),
                        "rayon_lag_p99_us": lag_p99(rayon),
                        "idle_lag_p99_us": baseline,
                        "faster": if rayon_us < blocking_us { "rayon" } else { "spawn_blocking" },
                    }),
                );
            }
        }
    }
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| !r.is_ok())
        .map(|r| r.variant.as_str())
        .collect();
    checks.push(Check {
        name: "every run completed".to_owned(),
        requirement: "outcome ok".to_owned(),
        measured: if failed.is_empty() {
            format!("{} runs ok", results.len())
        } else {
            format!("failed: {}", failed.join(", "))
        },
        pass: failed.is_empty(),
    });
    let mut summary = ScenarioResult::new("offload", "summary");
    let all_pass = checks.iter().all(|c| c.pass);
    if !all_pass {
        summary.outcome = "floors not met".to_owned();
    }
    summary
        .extra
        .insert("checks".into(), serde_json::to_value(&checks).unwrap_or_default());
    summary.extra.insert("pools".into(), Value::Object(pools));
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_harness::LagSeries;

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
        result.extra.insert("per_chunk_us".into(), per_chunk_us.into());
        result.extra.insert("per_chunk_cpu_us".into(), 2000.0.into());
        result.extra.insert("burn_state".into(), state.into());
        result.lag = Some(LagSeries {
            p99_us,
            ..LagSeries::default()
        });
        result
    }

    fn checksum(algorithm: &str, ratio: f64) -> ScenarioResult {
        let mut result = ScenarioResult {
            variant: format!("checksum-{algorithm}"),
            outcome: "ok".into(),
            ..ScenarioResult::default()
        };
        result.extra.insert("ratio".into(), ratio.into());
        result
    }

    #[test]
    fn floors_pass_and_fail_on_the_figures() {
        let mut results = vec![checksum("sha256", 0.97), checksum("blake3", 0.85)];
        for flavor in ["current_thread", "multi_thread"] {
            results.push(run("offload", flavor, "inline", 2100.0, 40_000, "ab"));
            results.push(run("offload", flavor, "spawn_blocking", 2100.0, 1_200, "ab"));
            results.push(run("offload", flavor, "adapter-spawn_blocking", 2100.0, 1_100, "ab"));
            results.push(run("offload", flavor, "adapter-rayon", 2050.0, 1_100, "ab"));
        }
        let summary = summarize(&results);
        let checks: Vec<Check> = serde_json::from_value::<Vec<serde_json::Value>>(summary.extra["checks"].clone())
            .unwrap()
            .into_iter()
            .map(|c| Check {
                name: c["name"].as_str().unwrap().to_owned(),
                requirement: c["requirement"].as_str().unwrap().to_owned(),
                measured: c["measured"].as_str().unwrap().to_owned(),
                pass: c["pass"].as_bool().unwrap(),
            })
            .collect();
        let failing: Vec<&str> = checks.iter().filter(|c| !c.pass).map(|c| c.name.as_str()).collect();
        assert_eq!(failing, ["blake3 transform vs plain hasher loop"]);
        assert_eq!(summary.outcome, "floors not met");
        let pools = &summary.extra["pools"]["offload-current_thread"];
        assert!((pools["rayon_over_spawn_blocking_throughput"].as_f64().unwrap() - 2100.0 / 2050.0).abs() < 1e-9);
    }

    #[test]
    fn a_reordering_way_fails_its_check() {
        let results = vec![
            run("hop", "multi_thread", "inline", 5.0, 900, "aa"),
            run("hop", "multi_thread", "adapter-rayon", 9.0, 900, "bb"),
        ];
        let summary = summarize(&results);
        let checks = summary.extra["checks"].as_array().unwrap();
        let order = checks
            .iter()
            .find(|c| c["name"].as_str().unwrap().contains("keeps source order"))
            .unwrap();
        assert_eq!(order["pass"], false);
    }
}
