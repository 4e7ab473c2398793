//! Criterion's saved estimates as [`ScenarioResult`]s, so that benches flow
//! into the same report and gate as scenarios.
//!
//! Reads `<dir>/<group>/<function>/<parameter>/new/estimates.json` (and
//! `<dir>/<group>/<function>/new/...` for unparameterised benches). Within a
//! group, a function named `raw` is the baseline: every other function with
//! the same parameter also gets `extra.ratio_vs_raw = raw time / its time`
//! (above 1 means faster than the raw loop).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::figures::bench::BenchEstimate;
use crate::result::{Machine, ScenarioResult, unix_now};

/// One benchmark's mean time per iteration, and where it came from.
#[derive(Debug, Clone, PartialEq)]
struct Estimate {
    group: String,
    function: String,
    parameter: Option<String>,
    mean_ns: f64,
    /// Bytes per iteration, from criterion's `benchmark.json`.
    bytes: Option<u64>,
    /// When criterion wrote the estimate (the file's modification time):
    /// the bench's date, not the report's.
    written_unix_s: Option<u64>,
}

fn estimates_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                if path
                    .file_name()
                    .is_some_and(|n| n == "report" || n == "base" || n == "change")
                {
                    continue;
                }
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "estimates.json")
                && path.parent().and_then(Path::file_name).is_some_and(|n| n == "new")
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn read_estimate(path: &Path) -> Option<Estimate> {
    let new_dir = path.parent()?;
    let estimates: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let mean_ns = estimates.pointer("/mean/point_estimate")?.as_f64()?;
    let benchmark: Value = serde_json::from_slice(&std::fs::read(new_dir.join("benchmark.json")).ok()?).ok()?;
    let group = benchmark.get("group_id")?.as_str()?.to_owned();
    let function = benchmark
        .get("function_id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let parameter = benchmark.get("value_str").and_then(Value::as_str).map(str::to_owned);
    let bytes = benchmark
        .pointer("/throughput/Bytes")
        .or_else(|| benchmark.pointer("/throughput/BytesDecimal"))
        .and_then(Value::as_u64);
    let written_unix_s = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs());
    Some(Estimate {
        group,
        function,
        parameter,
        mean_ns,
        bytes,
        written_unix_s,
    })
}

/// Every criterion estimate under `dir` as a result with scenario `bench`
/// and variant `group/function[/parameter]`: `elapsed_s` is the mean time
/// per iteration, `extra.mean_ns` the same in nanoseconds, and
/// `extra.ratio_vs_raw` where the group has a `raw` baseline. The date is
/// when criterion wrote the estimate; the revision is unknown (criterion
/// does not record it, and the working tree may have moved on since).
pub fn criterion_results(dir: &Path) -> Vec<ScenarioResult> {
    let estimates: Vec<Estimate> = estimates_under(dir).iter().filter_map(|p| read_estimate(p)).collect();
    let mut raw: BTreeMap<(String, Option<String>), f64> = BTreeMap::new();
    for e in &estimates {
        if e.function == "raw" {
            raw.insert((e.group.clone(), e.parameter.clone()), e.mean_ns);
        }
    }
    let machine = Machine::detect();
    let now = unix_now();
    estimates
        .into_iter()
        .map(|e| {
            let ratio_vs_raw = raw
                .get(&(e.group.clone(), e.parameter.clone()))
                .filter(|_| e.function != "raw" && e.mean_ns > 0.0)
                .map(|raw_ns| raw_ns / e.mean_ns);
            let mut variant = format!("{}/{}", e.group, e.function);
            if let Some(p) = &e.parameter {
                variant.push('/');
                variant.push_str(p);
            }
            let elapsed_s = e.mean_ns / 1e9;
            let bytes = e.bytes.unwrap_or(0);
            let mut result = ScenarioResult {
                scenario: "bench".to_owned(),
                variant,
                outcome: "ok".to_owned(),
                bytes,
                elapsed_s,
                throughput_bps: if elapsed_s > 0.0 { bytes as f64 / elapsed_s } else { 0.0 },
                machine: machine.clone(),
                git_revision: None,
                started_unix_s: e.written_unix_s.unwrap_or(now),
                ..ScenarioResult::default()
            };
            result.set_figures(&BenchEstimate {
                mean_ns: e.mean_ns,
                ratio_vs_raw,
            });
            result
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench(dir: &Path, group: &str, function: &str, param: &str, mean_ns: f64) {
        let new = dir.join(group).join(function).join(param).join("new");
        std::fs::create_dir_all(&new).unwrap();
        std::fs::write(
            new.join("estimates.json"),
            format!(r#"{{"mean":{{"point_estimate":{mean_ns},"standard_error":1.0}}}}"#),
        )
        .unwrap();
        std::fs::write(
            new.join("benchmark.json"),
            format!(
                r#"{{"group_id":"{group}","function_id":"{function}","value_str":"{param}","throughput":{{"Bytes":1048576}}}}"#
            ),
        )
        .unwrap();
    }

    #[test]
    fn ratios_are_taken_against_the_raw_baseline_of_the_same_parameter() {
        let dir = tempfile::tempdir().unwrap();
        bench(dir.path(), "engine_vs_raw", "raw", "65536", 1000.0);
        bench(dir.path(), "engine_vs_raw", "engine", "65536", 1250.0);
        bench(dir.path(), "engine_vs_raw", "engine", "4096", 500.0);
        let results = criterion_results(dir.path());
        assert_eq!(results.len(), 3);
        let engine = results
            .iter()
            .find(|r| r.variant == "engine_vs_raw/engine/65536")
            .unwrap();
        assert_eq!(engine.figures::<BenchEstimate>().unwrap().ratio_vs_raw, Some(0.8));
        assert_eq!(engine.metric("extra.ratio_vs_raw"), Some(0.8));
        assert!((engine.throughput_bps - 1048576.0 / 1.25e-6).abs() < 1.0);
        let no_baseline = results
            .iter()
            .find(|r| r.variant == "engine_vs_raw/engine/4096")
            .unwrap();
        assert_eq!(no_baseline.figures::<BenchEstimate>().unwrap().ratio_vs_raw, None);
        assert_eq!(no_baseline.metric("extra.ratio_vs_raw"), None);
    }
}
