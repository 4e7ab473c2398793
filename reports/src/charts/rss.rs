//! RSS over time: controlled vs unbounded on the same axes, and the
//! flat-memory sizes.

use weir_harness::ScenarioResult;

use super::MAX_POINTS;
use crate::model::{LineChart, Series, downsample_max};

fn rss_series(name: String, result: &ScenarioResult) -> Series {
    let points: Vec<(f64, f64)> = result
        .rss
        .samples
        .iter()
        .map(|[ms, bytes]| (*ms as f64 / 1000.0, *bytes as f64 / f64::from(1 << 20)))
        .collect();
    Series {
        name,
        points: downsample_max(&points, MAX_POINTS),
    }
}

/// RSS over time of each `(label, result)` on the same axes; `y_log` for a
/// logarithmic RSS axis (to see the flat lines next to the growing one).
pub fn controlled_vs_unbounded(runs: &[(String, &ScenarioResult)], note: &str, y_log: bool) -> LineChart {
    LineChart {
        title: if y_log {
            "RSS over time, controlled vs unbounded (log scale)".to_owned()
        } else {
            "RSS over time, controlled vs unbounded".to_owned()
        },
        note: note.to_owned(),
        x_label: "seconds since start".to_owned(),
        y_label: "resident memory (MiB)".to_owned(),
        y_log,
        series: runs.iter().map(|(label, r)| rss_series(label.clone(), r)).collect(),
    }
}

/// RSS over time of the flat-memory runs, one line per input size.
pub fn flat_memory(runs: &[(String, &ScenarioResult)], note: &str) -> LineChart {
    LineChart {
        title: "Flat memory: synthetic -> NullSink at every size".to_owned(),
        note: note.to_owned(),
        x_label: "seconds since start".to_owned(),
        y_label: "resident memory (MiB)".to_owned(),
        y_log: false,
        series: runs.iter().map(|(label, r)| rss_series(label.clone(), r)).collect(),
    }
}
