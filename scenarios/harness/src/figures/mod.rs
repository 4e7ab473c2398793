//! Typed figures: what each scenario's results carry in
//! [`ScenarioResult::extra`](crate::ScenarioResult::extra), one file per
//! scenario, defined here so that the scenario that writes them and the
//! readers (`weir-reports`, the gates) share one type and no string key.
//!
//! A scenario stores its figures with
//! [`ScenarioResult::set_figures`](crate::ScenarioResult::set_figures); a
//! reader gets them back with
//! [`ScenarioResult::figures`](crate::ScenarioResult::figures). The JSON
//! stays flat (`extra.<field>`), so the gates' metric paths
//! (`extra.ratio`, `extra.latency.p99_us`) name struct fields, and
//! [`knows_metric`] checks them against these types.
//!
//! ```
//! use weir_harness::ScenarioResult;
//! use weir_harness::figures::chaos::ChaosRun;
//!
//! let mut result = ScenarioResult::new("chaos", "memory");
//! result.set_figures(&ChaosRun { schedules: 50, committed: 20, aborted: 30, ..ChaosRun::default() });
//! assert_eq!(result.metric("extra.schedules"), Some(50.0));
//! assert_eq!(result.figures::<ChaosRun>().unwrap().aborted, 30);
//! assert!(weir_harness::figures::knows_metric("chaos", Some("memory"), "extra.violations"));
//! assert!(!weir_harness::figures::knows_metric("chaos", None, "extra.violation"));
//! ```

pub mod bench;
pub mod cancellation;
pub mod chaos;
pub mod datasync;
pub mod delivery;
pub mod flow;
pub mod jetstream;
pub mod offload;
pub mod validation;

use serde::Serialize;
use serde_json::Value;

use crate::ScenarioResult;

/// Every scenario with registered figures, by the name its results carry.
pub const SCENARIOS: [&str; 9] = [
    "bench",
    "cancellation",
    "chaos",
    "datasync",
    "delivery",
    "flow",
    "jetstream",
    "offload",
    "validation",
];

fn schema_of<T: Serialize + Default>() -> Value {
    // Figure types are plain data with string keys: they always serialize
    // (the tests below serialize every one).
    serde_json::to_value(T::default()).unwrap_or(Value::Null)
}

/// The figure types registered for `scenario`, as the JSON of their
/// default values: the one its `variant` writes, or with `None` those of
/// every variant kind; `None` for a scenario without figures. A variant
/// that carries no figures (offload's `lag-baseline-*`) has an empty list.
pub fn schemas(scenario: &str, variant: Option<&str>) -> Option<Vec<Value>> {
    let v = variant;
    let is = |name: &str| v.is_none_or(|v| v == name);
    let starts = |prefix: &str| v.is_none_or(|v| v.starts_with(prefix));
    let mut out = Vec::new();
    let mut add = |wanted: bool, schema: fn() -> Value| {
        if wanted {
            out.push(schema());
        }
    };
    match scenario {
        "bench" => add(true, schema_of::<bench::BenchEstimate>),
        "cancellation" => {
            add(is("hung") || is("slow"), schema_of::<cancellation::TrialsReport>);
            add(is("disconnect"), schema_of::<cancellation::DisconnectReport>);
            add(is("shutdown"), schema_of::<cancellation::ShutdownRun>);
        }
        "chaos" => add(true, schema_of::<chaos::ChaosRun>),
        "datasync" => {
            let scale = v.is_some_and(|v| v.starts_with("jetstream-"));
            add(v != Some("copy-encoding") && !scale, schema_of::<datasync::DatasyncRun>);
            add(is("copy-encoding"), schema_of::<datasync::DatasyncEncoding>);
            add(v.is_none() || scale, schema_of::<datasync::DatasyncScale>);
        }
        "delivery" => {
            add(starts("slow-") || starts("crowd-"), schema_of::<delivery::DeliverySlow>);
            add(starts("fast-"), schema_of::<delivery::DeliveryFast>);
            add(starts("storm-"), schema_of::<delivery::DeliveryStorm>);
            add(starts("upload-"), schema_of::<delivery::DeliveryUpload>);
            add(starts("compressed-"), schema_of::<delivery::DeliveryCompressed>);
            add(starts("encoding-"), schema_of::<delivery::DeliveryEncoding>);
            add(starts("rows-"), schema_of::<delivery::DeliveryRows>);
            add(starts("ranges-"), schema_of::<delivery::DeliveryRanges>);
        }
        "flow" => {
            add(!matches!(v, Some("throughput" | "summary")), schema_of::<flow::FlowRun>);
            add(is("throughput"), schema_of::<flow::FlowThroughput>);
            add(is("summary"), schema_of::<flow::FlowSummary>);
        }
        "jetstream" => add(is("faults"), schema_of::<jetstream::JetstreamFaults>),
        "offload" => {
            add(starts("checksum-"), schema_of::<offload::ChecksumRun>);
            add(starts("offload-") || starts("hop-"), schema_of::<offload::StageRun>);
            add(is("summary"), schema_of::<offload::OffloadSummary>);
        }
        "validation" => add(is("matrix"), schema_of::<validation::ValidationMatrix>),
        _ => return None,
    }
    Some(out)
}

/// Whether the dotted `path` through `value` reaches a number, a boolean
/// or a null (an absent `Option`) at its last segment.
fn reaches_leaf(value: &Value, path: &[&str]) -> bool {
    match (value, path) {
        (Value::Number(_) | Value::Bool(_) | Value::Null, []) => true,
        (Value::Object(map), [first, rest @ ..]) => map.get(*first).is_some_and(|v| reaches_leaf(v, rest)),
        _ => false,
    }
}

/// Whether a gate's metric `path` names a figure that results of
/// `scenario` (its `variant`, when the gate names one) produce:
/// `extra.<...>` must reach a number, boolean or optional leaf of one of
/// the [`schemas`] for them; `rss.*` and `lag.*` are the harness's own
/// series (`rss.growth_bytes` is computed); any other path must be a
/// top-level field of [`ScenarioResult`].
pub fn knows_metric(scenario: &str, variant: Option<&str>, path: &str) -> bool {
    let parts: Vec<&str> = path.split('.').collect();
    match parts.as_slice() {
        ["extra", rest @ ..] if !rest.is_empty() => {
            schemas(scenario, variant).is_some_and(|schemas| schemas.iter().any(|s| reaches_leaf(s, rest)))
        }
        ["rss" | "lag", _, ..] => true,
        [field] => serde_json::to_value(ScenarioResult::default())
            .ok()
            .and_then(|v| v.get(field).cloned())
            .is_some_and(|v| reaches_leaf(&v, &[])),
        _ => false,
    }
}

/// Whether `result` carries the figures registered for its scenario and
/// variant: every key of its `extra` is a field of one of the [`schemas`]
/// of that variant (an empty `extra` always conforms). Scenario tests call
/// it on what they wrote, so that the registry the gates' schema test reads
/// stays the one the scenarios write.
///
/// # Errors
///
/// The keys no registered type of the variant has, or that the scenario
/// has no figures registered.
pub fn conforms(result: &ScenarioResult) -> Result<(), String> {
    if result.extra.is_empty() {
        return Ok(());
    }
    let Some(schemas) = schemas(&result.scenario, Some(&result.variant)) else {
        return Err(format!("no figures registered for scenario `{}`", result.scenario));
    };
    let unknown: Vec<&str> = result
        .extra
        .keys()
        .filter(|key| !schemas.iter().any(|s| s.get(key.as_str()).is_some()))
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}/{} writes figures its registered types lack: {}",
            result.scenario,
            result.variant,
            unknown.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde::Deserialize;

    use super::*;

    /// The part of a gate this test needs (the gate crate owns the rest).
    #[derive(Debug, Deserialize)]
    struct Gate {
        name: String,
        scenario: String,
        #[serde(default)]
        variant: Option<String>,
        metric: String,
    }

    #[derive(Debug, Deserialize)]
    struct GateFile {
        #[serde(rename = "gate")]
        gates: Vec<Gate>,
    }

    /// The gates of `text` whose metric their scenario does not produce.
    fn unknown_metrics(text: &str) -> Vec<String> {
        let file: GateFile = toml::from_str(text).expect("gates file parses");
        assert!(!file.gates.is_empty(), "no gate in the file");
        file.gates
            .iter()
            .filter(|g| !knows_metric(&g.scenario, g.variant.as_deref(), &g.metric))
            .map(|g| {
                format!(
                    "{} ({}/{}): {}",
                    g.name,
                    g.scenario,
                    g.variant.as_deref().unwrap_or("*"),
                    g.metric
                )
            })
            .collect()
    }

    fn committed_gates() -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../gates.toml");
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    }

    #[test]
    fn every_committed_gate_names_a_figure_its_scenario_produces() {
        let unknown = unknown_metrics(&committed_gates());
        assert!(unknown.is_empty(), "gates naming figures nobody writes: {unknown:#?}");
    }

    #[test]
    fn a_gate_on_a_figure_its_scenario_does_not_produce_is_caught() {
        // A misspelt figure, another scenario's figure, and a figure of the
        // scenario that the named variant does not write.
        let doctored = committed_gates().replacen("metric = \"extra.violations\"", "metric = \"extra.violation\"", 1)
            + "\n[[gate]]\nname = \"made up\"\nkind = \"ratio\"\nscenario = \"offload\"\nmetric = \"extra.flat_spread_bytes\"\nmin = 1\n"
            + "\n[[gate]]\nname = \"wrong variant\"\nkind = \"ratio\"\nscenario = \"offload\"\nvariant = \"summary\"\nmetric = \"extra.ratio\"\nmin = 1\n";
        let unknown = unknown_metrics(&doctored);
        assert_eq!(unknown.len(), 3, "{unknown:#?}");
        assert!(unknown[0].starts_with("chaos: no invariant violation"), "{unknown:#?}");
        assert!(unknown[1].starts_with("made up"), "{unknown:#?}");
        assert!(
            unknown[2].starts_with("wrong variant (offload/summary)"),
            "{unknown:#?}"
        );
    }

    #[test]
    fn paths_resolve_through_nested_figures_and_the_harness_series() {
        assert!(knows_metric("cancellation", Some("hung"), "extra.latency.p99_us"));
        assert!(
            !knows_metric("cancellation", Some("hung"), "extra.latency"),
            "an object is not a figure"
        );
        assert!(
            !knows_metric("cancellation", Some("hung"), "extra.not_as_expected"),
            "shutdown's, not hung's"
        );
        assert!(
            knows_metric("cancellation", None, "extra.not_as_expected"),
            "any variant's"
        );
        assert!(
            knows_metric("flow", Some("summary"), "extra.flat_spread_bytes"),
            "an absent option exists"
        );
        assert!(!knows_metric("flow", Some("throughput"), "extra.flat_spread_bytes"));
        assert!(knows_metric("flow", Some("controlled-1"), "rss.growth_bytes"));
        assert!(knows_metric("flow", None, "lag.p99_us"));
        assert!(knows_metric("flow", None, "throughput_bps"));
        assert!(!knows_metric("flow", None, "throughput"));
        assert!(!knows_metric("nonesuch", None, "extra.ratio"));
        assert!(knows_metric(
            "bench",
            Some("engine_vs_raw/engine/65536"),
            "extra.ratio_vs_raw"
        ));
        assert!(knows_metric(
            "delivery",
            Some("storm-weir-pull"),
            "extra.fds_back_to_baseline"
        ));
        assert!(!knows_metric(
            "delivery",
            Some("slow-weir-pull"),
            "extra.fds_back_to_baseline"
        ));
        assert!(
            !knows_metric("offload", Some("lag-baseline-current_thread"), "extra.ratio"),
            "no figures"
        );
    }

    #[test]
    fn results_conform_to_their_variant_s_figures_or_are_named() {
        let mut result = ScenarioResult::new("offload", "checksum-sha256");
        result.set_figures(&offload::ChecksumRun::default());
        assert_eq!(conforms(&result), Ok(()));
        result.variant = "summary".into();
        let error = conforms(&result).unwrap_err();
        assert!(error.contains("offload/summary") && error.contains("ratio"), "{error}");
        result.scenario = "nonesuch".into();
        assert!(conforms(&result).unwrap_err().contains("no figures registered"));
        assert_eq!(
            conforms(&ScenarioResult::new("nonesuch", "x")),
            Ok(()),
            "nothing to conform"
        );
    }

    #[test]
    fn every_registered_scenario_has_object_schemas() {
        for scenario in SCENARIOS {
            let schemas = schemas(scenario, None).unwrap();
            assert!(!schemas.is_empty(), "{scenario}");
            assert!(schemas.iter().all(Value::is_object), "{scenario}: {schemas:?}");
        }
        assert!(schemas("nonesuch", None).is_none());
        assert_eq!(schemas("offload", Some("lag-baseline-multi_thread")), Some(Vec::new()));
    }
}
