//! Runtime lag over time: how late a 10 ms heartbeat on the runtime fired.

use weir_harness::ScenarioResult;

use super::MAX_POINTS;
use crate::model::{LineChart, Series, downsample_max};

/// Lag over time of each `(label, result)` that probed it.
pub fn lag_over_time(runs: &[(String, &ScenarioResult)], note: &str) -> LineChart {
    let series = runs
        .iter()
        .filter_map(|(label, r)| {
            let lag = r.lag.as_ref()?;
            let points: Vec<(f64, f64)> = lag
                .samples
                .iter()
                .map(|[ms, us]| (*ms as f64 / 1000.0, *us as f64 / 1000.0))
                .collect();
            Some(Series {
                name: format!("{label} (p99 {:.2} ms)", lag.p99_us as f64 / 1000.0),
                points: downsample_max(&points, MAX_POINTS),
            })
        })
        .collect();
    LineChart {
        title: "Runtime lag: how late a 10 ms heartbeat fired".to_owned(),
        note: note.to_owned(),
        x_label: "seconds since start".to_owned(),
        y_label: "lag (ms)".to_owned(),
        y_log: false,
        series,
    }
}
