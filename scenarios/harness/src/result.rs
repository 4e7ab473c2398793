//! `ScenarioResult`: the one JSON result every scenario run writes, with the
//! machine and git revision it ran on.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::lag::LagSeries;
use crate::rss::RssSeries;

/// The machine a result was measured on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model name.
    pub cpu_model: String,
    /// Logical cores available to the process.
    pub cores: usize,
    /// Total memory, bytes.
    pub memory_bytes: u64,
    /// OS name and kernel release.
    pub os: String,
    /// `rustc --version`.
    pub rustc: String,
}

impl Machine {
    /// Reads the machine's description from `/proc`, `/etc/os-release` and
    /// `rustc`; unknown parts are `"unknown"` or 0.
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|r| r.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_bytes = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024);
        let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        let pretty = os_release
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map_or_else(|| std::env::consts::OS.to_owned(), |v| v.trim_matches('"').to_owned());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        Self {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            memory_bytes,
            os: format!("{pretty} (kernel {})", kernel.trim()),
            rustc: command_output("rustc", &["--version"]).unwrap_or_else(|| "unknown".to_owned()),
        }
    }
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The short git revision of the working directory, with `-dirty` when it
/// has uncommitted changes; `None` outside a git checkout.
pub fn git_revision() -> Option<String> {
    let rev = command_output("git", &["rev-parse", "--short=12", "HEAD"])?;
    let dirty =
        command_output("git", &["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{rev}-dirty") } else { rev })
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// One scenario run, as written to `<out>/<scenario>-<variant>-<n>.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Scenario name (`flow`, `chaos`, ...).
    pub scenario: String,
    /// Variant within the scenario (`controlled`, `unbounded`, ...).
    pub variant: String,
    /// The parameters the run was given.
    pub params: Map<String, Value>,
    /// `"ok"`, or the error text.
    pub outcome: String,
    /// Bytes moved.
    pub bytes: u64,
    /// Wall time, seconds.
    pub elapsed_s: f64,
    /// `bytes / elapsed_s`.
    pub throughput_bps: f64,
    /// RSS over the run.
    pub rss: RssSeries,
    /// Runtime lag over the run, when probed.
    pub lag: Option<LagSeries>,
    /// Scenario-specific figures: one of the types of [`crate::figures`],
    /// written with [`Self::set_figures`] and read with [`Self::figures`].
    pub extra: Map<String, Value>,
    /// Where it ran.
    pub machine: Machine,
    /// Which code ran.
    pub git_revision: Option<String>,
    /// When it started, seconds since the Unix epoch.
    pub started_unix_s: u64,
}

impl ScenarioResult {
    /// A result for `scenario`/`variant` on this machine and revision, with
    /// everything else empty.
    pub fn new(scenario: impl Into<String>, variant: impl Into<String>) -> Self {
        Self {
            scenario: scenario.into(),
            variant: variant.into(),
            outcome: "ok".to_owned(),
            machine: Machine::detect(),
            git_revision: git_revision(),
            started_unix_s: unix_now(),
            ..Self::default()
        }
    }

    /// Sets `bytes`, `elapsed_s` and the throughput from them.
    pub fn with_transfer(mut self, bytes: u64, elapsed: std::time::Duration) -> Self {
        self.bytes = bytes;
        self.elapsed_s = elapsed.as_secs_f64();
        self.throughput_bps = if self.elapsed_s > 0.0 {
            bytes as f64 / self.elapsed_s
        } else {
            0.0
        };
        self
    }

    /// Stores a scenario's typed figures (a type of [`crate::figures`]) as
    /// `extra`, one field per key, replacing what was there: the one way
    /// scenarios write their figures.
    ///
    /// # Panics
    ///
    /// When `figures` does not serialize to a JSON object (a map with
    /// non-string keys, a bare number): a figure type is a plain struct,
    /// and the figure types' tests serialize every one.
    pub fn set_figures<T: Serialize>(&mut self, figures: &T) {
        match serde_json::to_value(figures) {
            Ok(Value::Object(map)) => self.extra = map,
            Ok(other) => panic!("figures must serialize to a JSON object, not {other}"),
            Err(error) => panic!("figures must serialize: {error}"),
        }
    }

    /// The figures `extra` holds, read as `T` (a type of
    /// [`crate::figures`]); fields it lacks take their defaults. `None`
    /// when `extra` does not fit `T` (a field of the wrong type).
    pub fn figures<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_value(Value::Object(self.extra.clone())).ok()
    }

    /// `true` when the outcome is `"ok"`.
    pub fn is_ok(&self) -> bool {
        self.outcome == "ok"
    }

    /// The number at a dotted path into the result's JSON
    /// (`extra.latency.p99_us`, `lag.p99_us`, `throughput_bps`), with
    /// booleans as 0 or 1; `rss.growth_bytes` is peak minus baseline.
    /// `None` when the path is absent or not a number.
    pub fn metric(&self, path: &str) -> Option<f64> {
        if path == "rss.growth_bytes" {
            return Some(self.rss.growth_bytes() as f64);
        }
        let value = serde_json::to_value(self).ok()?;
        let mut cursor = &value;
        for part in path.split('.') {
            cursor = cursor.get(part)?;
        }
        match cursor {
            Value::Number(n) => n.as_f64(),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        }
    }

    /// Whether every `key=value` pair of a comma-separated `filter` matches
    /// a parameter (strings exactly, numbers and booleans by value).
    pub fn params_match(&self, filter: &str) -> bool {
        filter.split(',').all(|pair| {
            let Some((key, wanted)) = pair.split_once('=') else {
                return false;
            };
            let wanted = wanted.trim();
            match self.params.get(key.trim()) {
                Some(Value::String(s)) => s == wanted,
                Some(Value::Number(n)) => wanted.parse::<f64>().ok() == n.as_f64(),
                Some(Value::Bool(b)) => wanted.parse::<bool>().ok() == Some(*b),
                _ => false,
            }
        })
    }

    /// Writes the result as pretty JSON to a new file in `dir` (created if
    /// missing) and returns its path.
    ///
    /// # Errors
    ///
    /// Any I/O or serialization error.
    pub fn write_to(&self, dir: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let stem = format!("{}-{}", self.scenario, self.variant).replace(['/', ' '], "_");
        let mut n = 0u32;
        let path = loop {
            let candidate = dir.join(format!("{stem}-{n:03}.json"));
            if !candidate.exists() {
                break candidate;
            }
            n += 1;
        };
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&path, json)?;
        Ok(path)
    }
}

/// Every result in `dir` (not recursive), sorted by scenario, variant and
/// file name. Files that are not results are skipped.
///
/// # Errors
///
/// When `dir` cannot be read.
pub fn load_results(dir: &Path) -> std::io::Result<Vec<ScenarioResult>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    Ok(paths
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .filter_map(|bytes| serde_json::from_slice::<ScenarioResult>(&bytes).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_round_trip_through_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut result =
            ScenarioResult::new("flow", "controlled").with_transfer(1 << 30, std::time::Duration::from_secs(2));
        result.params.insert("size".into(), Value::from(1u64 << 30));
        result.set_figures(&crate::figures::bench::BenchEstimate {
            mean_ns: 12.5,
            ratio_vs_raw: Some(0.9),
        });
        let first = result.write_to(dir.path()).unwrap();
        let second = result.write_to(dir.path()).unwrap();
        assert_ne!(first, second);
        let loaded = load_results(dir.path()).unwrap();
        assert_eq!(loaded, vec![result.clone(), result]);
        assert!((loaded[0].throughput_bps - (1u64 << 29) as f64).abs() < 1.0);
    }

    #[test]
    fn the_machine_is_described() {
        let machine = Machine::detect();
        assert!(machine.cores >= 1);
        assert!(machine.memory_bytes > 0);
    }
}
