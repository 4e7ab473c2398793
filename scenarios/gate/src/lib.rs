//! Regression gates: a committed gates file of ratio floors, memory
//! ceilings and correctness counts, checked against the result JSON of one
//! run. Timings are only ever compared as ratios measured in the same run;
//! memory ceilings and counts are absolute.
//!
//! ```
//! use weir_gate::{GateFile, evaluate};
//! use weir_harness::ScenarioResult;
//!
//! let gates: GateFile = toml::from_str(r#"
//!     [[gate]]
//!     name = "controlled flow stays flat"
//!     kind = "memory"
//!     scenario = "flow"
//!     variant = "controlled"
//!     metric = "rss.peak_bytes"
//!     max = 16777216
//!     why = "flat memory: the issue's ceiling"
//! "#).unwrap();
//! let mut result = ScenarioResult::new("flow", "controlled");
//! result.rss.peak_bytes = 6 << 20;
//! let verdicts = evaluate(&gates, &[result]);
//! assert!(verdicts.iter().all(|v| v.pass));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};
use weir_harness::ScenarioResult;

/// Why a gates file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    /// The file could not be read.
    #[error("cannot read gates file {path}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("gates file {path} is malformed")]
    Parse {
        /// The file.
        path: String,
        /// The parse error.
        #[source]
        source: toml::de::Error,
    },
    /// A gate has neither `min` nor `max`, so it could never fail.
    #[error("gate `{0}` has neither min nor max: it could never fail")]
    Vacuous(String),
}

/// What kind of figure a gate bounds, which decides whether a breach is
/// re-measured before it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A count that admits no exception (violations, leaks): a breach is a
    /// bug, never noise, so it counts at once.
    Correctness,
    /// An absolute memory ceiling: re-measured on a breach.
    Memory,
    /// A ratio of two sides measured in the same run: re-measured on a
    /// breach.
    Ratio,
    /// A latency or lag percentile: re-measured on a breach.
    Latency,
}

impl Kind {
    /// Whether a first breach is re-measured before it counts.
    pub fn remeasured(self) -> bool {
        self != Self::Correctness
    }
}

/// One gate: a figure of one scenario variant, and its bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    /// What the gate protects, in words.
    pub name: String,
    /// What kind of figure it bounds.
    pub kind: Kind,
    /// The result's scenario.
    pub scenario: String,
    /// The result's variant; `None` matches every variant of the scenario
    /// (each must pass).
    #[serde(default)]
    pub variant: Option<String>,
    /// Only results whose `params` hold these `key=value` pairs, comma
    /// separated (for example `sink=null,chunk_size=65536`), for scenarios
    /// whose variants repeat across groups.
    #[serde(default, rename = "where")]
    pub where_param: Option<String>,
    /// Dotted path into the result JSON (`rss.peak_bytes`,
    /// `extra.ratio_vs_raw`, `lag.p99_us`), or `rss.growth_bytes` (peak
    /// minus baseline).
    pub metric: String,
    /// The figure must be at least this.
    #[serde(default)]
    pub min: Option<f64>,
    /// The figure must be at most this.
    #[serde(default)]
    pub max: Option<f64>,
    /// Why the bound is where it is (the measurement that justifies it).
    #[serde(default)]
    pub why: String,
    /// When set, the figure is the metric *minus* this baseline measured
    /// in the same run: how much a latency exceeds the machine's own (a
    /// runtime's lag with the stage under test over an idle runtime's lag),
    /// so that a loaded machine's scheduling delay, which both carry, is
    /// not charged to the code under test.
    #[serde(default)]
    pub baseline: Option<Baseline>,
}

/// The same-run baseline a gate's figure is measured against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    /// The variant (same scenario) that measured the baseline.
    pub variant: String,
    /// Its metric (a dotted path, as [`Gate::metric`]).
    pub metric: String,
}

/// The committed gates file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GateFile {
    /// Every gate.
    #[serde(default, rename = "gate")]
    pub gates: Vec<Gate>,
}

impl GateFile {
    /// Reads and checks a gates file.
    ///
    /// # Errors
    ///
    /// When it cannot be read or parsed, or a gate has no bound.
    pub fn load(path: &Path) -> Result<Self, GateError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| GateError::Read {
            path: name.clone(),
            source,
        })?;
        let file: Self = toml::from_str(&text).map_err(|source| GateError::Parse { path: name, source })?;
        if let Some(gate) = file.gates.iter().find(|g| g.min.is_none() && g.max.is_none()) {
            return Err(GateError::Vacuous(gate.name.clone()));
        }
        Ok(file)
    }
}

/// The verdict on one gate for one result (or for a missing result).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The gate.
    pub gate: Gate,
    /// The variant it was checked on (`None` when no result matched).
    pub variant: Option<String>,
    /// The measured figure (`None` when missing).
    pub measured: Option<f64>,
    /// How far inside the bound, as a fraction of the bound (negative when
    /// breached).
    pub margin: Option<f64>,
    /// Whether it passed. A missing figure fails: a gate that cannot be
    /// measured cannot be trusted.
    pub pass: bool,
    /// The figure of every attempt, first measurement first, when a breach
    /// was re-measured ([`confirm`]); empty otherwise.
    pub attempts: Vec<Option<f64>>,
}

impl Verdict {
    /// Whether this verdict is a breach that [`confirm`] would re-measure.
    pub fn wants_remeasure(&self) -> bool {
        !self.pass && self.gate.kind.remeasured()
    }
}

/// Whether `result` satisfies the gate's `where = "key=value,key=value"`
/// filter (every pair must match).
fn selected(gate: &Gate, result: &ScenarioResult) -> bool {
    gate.where_param
        .as_deref()
        .is_none_or(|filter| result.params_match(filter))
}

fn judge(gate: &Gate, measured: f64) -> (bool, f64) {
    let mut pass = true;
    let mut margin = f64::INFINITY;
    if let Some(min) = gate.min {
        pass &= measured >= min;
        let scale = if min == 0.0 { 1.0 } else { min.abs() };
        margin = margin.min((measured - min) / scale);
    }
    if let Some(max) = gate.max {
        pass &= measured <= max;
        let scale = if max == 0.0 { 1.0 } else { max.abs() };
        margin = margin.min((max - measured) / scale);
    }
    (pass, margin)
}

/// Checks every gate against `results`. For a gate with a variant, the
/// newest matching result counts; without one, every variant counts.
pub fn evaluate(file: &GateFile, results: &[ScenarioResult]) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for gate in &file.gates {
        let mut matching: Vec<&ScenarioResult> = results
            .iter()
            .filter(|r| {
                r.scenario == gate.scenario
                    && gate.variant.as_ref().is_none_or(|v| &r.variant == v)
                    && selected(gate, r)
            })
            .collect();
        if gate.variant.is_some() {
            matching.sort_by_key(|r| r.started_unix_s);
            matching = matching.into_iter().rev().take(1).collect();
        }
        if matching.is_empty() {
            verdicts.push(Verdict {
                gate: gate.clone(),
                variant: None,
                measured: None,
                margin: None,
                pass: false,
                attempts: Vec::new(),
            });
            continue;
        }
        for result in matching {
            let measured = match &gate.baseline {
                None => result.metric(&gate.metric),
                Some(baseline) => excess(gate, baseline, result, results),
            };
            let (pass, margin) = match measured {
                Some(m) if result.is_ok() => {
                    let (pass, margin) = judge(gate, m);
                    (pass, Some(margin))
                }
                _ => (false, None),
            };
            verdicts.push(Verdict {
                gate: gate.clone(),
                variant: Some(result.variant.clone()),
                measured,
                margin,
                pass,
                attempts: Vec::new(),
            });
        }
    }
    verdicts
}

/// The gate's metric of `result` minus the baseline's metric of the newest
/// ok result of the baseline variant in the same results (same scenario);
/// `None` when either is missing.
fn excess(gate: &Gate, baseline: &Baseline, result: &ScenarioResult, results: &[ScenarioResult]) -> Option<f64> {
    let base = results
        .iter()
        .filter(|r| r.scenario == gate.scenario && r.variant == baseline.variant && r.is_ok())
        .max_by_key(|r| r.started_unix_s)?
        .metric(&baseline.metric)?;
    Some(result.metric(&gate.metric)? - base)
}

/// How many times a breached gate is measured in all, first run included,
/// before its verdict counts.
pub const ATTEMPTS: usize = 3;

/// Confirms the breaches of a first evaluation with re-measurements: for
/// each breached gate that [`Kind::remeasured`], the figure of every attempt
/// (the first one and each of `remeasured`, evaluated the same way) is
/// collected, and the **median of the attempts** decides. So a breach counts
/// only when it shows in most attempts: one noisy run cannot fail the gate,
/// and a real regression, present in every attempt, cannot pass it. A
/// figure missing in an attempt counts as a breach of that attempt.
/// Correctness gates and passing verdicts are returned unchanged.
pub fn confirm(first: Vec<Verdict>, remeasured: &[Vec<Verdict>]) -> Vec<Verdict> {
    first
        .into_iter()
        .map(|verdict| {
            if !verdict.wants_remeasure() {
                return verdict;
            }
            let mut attempts = vec![verdict.measured.filter(|_| verdict.margin.is_some())];
            for run in remeasured {
                let again = run
                    .iter()
                    .find(|v| v.gate == verdict.gate && (verdict.variant.is_none() || v.variant == verdict.variant));
                attempts.push(again.and_then(|v| v.measured.filter(|_| v.margin.is_some())));
            }
            // A missing figure sorts as the worst possible one for the gate.
            let worst = if verdict.gate.min.is_some() {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            };
            let figures: Vec<f64> = attempts.iter().map(|a| a.unwrap_or(worst)).collect();
            let decisive = weir_harness::median(&figures);
            let (pass, margin) = if decisive.is_finite() {
                let (pass, margin) = judge(&verdict.gate, decisive);
                (pass, Some(margin))
            } else {
                (false, None)
            };
            Verdict {
                measured: decisive.is_finite().then_some(decisive).or(verdict.measured),
                margin,
                pass,
                attempts,
                ..verdict
            }
        })
        .collect()
}

fn human(value: f64, metric: &str) -> String {
    if metric.ends_with("bytes") {
        format!("{:.2} MiB", value / (1024.0 * 1024.0))
    } else if value.abs() >= 1000.0 || value == value.trunc() {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}

/// The verdicts as a markdown table: figure, gate, margin, pass or fail.
pub fn table(verdicts: &[Verdict]) -> String {
    let mut out = String::from("| gate | scenario/variant | metric | measured | bound | margin | result |\n");
    out.push_str("| --- | --- | --- | --- | --- | --- | --- |\n");
    for v in verdicts {
        let bound = bound(&v.gate);
        let _ = writeln!(
            out,
            "| {} | {}/{} | `{}` | {} | {} | {} | {} |",
            v.gate.name,
            v.gate.scenario,
            v.variant.as_deref().unwrap_or("(missing)"),
            v.gate.metric,
            v.measured
                .map_or_else(|| "missing".to_owned(), |m| human(m, &v.gate.metric)),
            bound,
            v.margin
                .map_or_else(|| "-".to_owned(), |m| format!("{:+.0}%", m * 100.0)),
            match (v.pass, v.attempts.is_empty()) {
                (true, true) => "pass".to_owned(),
                (false, true) => "**FAIL**".to_owned(),
                (pass, false) => format!(
                    "{} (median of {} attempts: {})",
                    if pass { "pass" } else { "**FAIL**" },
                    v.attempts.len(),
                    v.attempts
                        .iter()
                        .map(|a| a.map_or_else(|| "missing".to_owned(), |m| human(m, &v.gate.metric)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
        );
    }
    out
}

/// One verdict's figure against its bound, in words: `0.950 (>= 0.850)`.
pub fn describe(v: &Verdict) -> String {
    format!(
        "{} ({})",
        v.measured
            .map_or_else(|| "missing".to_owned(), |m| human(m, &v.gate.metric)),
        bound(&v.gate)
    )
}

fn bound(gate: &Gate) -> String {
    match (gate.min, gate.max) {
        (Some(min), Some(max)) => format!("{} ..= {}", human(min, &gate.metric), human(max, &gate.metric)),
        (Some(min), None) => format!(">= {}", human(min, &gate.metric)),
        (None, Some(max)) => format!("<= {}", human(max, &gate.metric)),
        (None, None) => "none".to_owned(),
    }
}

/// The names of the breached gates, for the exit message.
pub fn breaches(verdicts: &[Verdict]) -> Vec<String> {
    verdicts
        .iter()
        .filter(|v| !v.pass)
        .map(|v| {
            format!(
                "{} ({}/{}: {} = {})",
                v.gate.name,
                v.gate.scenario,
                v.variant.as_deref().unwrap_or("no result"),
                v.gate.metric,
                v.measured
                    .map_or_else(|| "missing".to_owned(), |m| human(m, &v.gate.metric))
            )
        })
        .collect()
}
