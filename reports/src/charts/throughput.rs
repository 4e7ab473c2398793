//! Throughput bars: the engine next to the plain `std::fs` loop it is
//! compared with, per sink.

use weir_harness::figures::flow::ThroughputRow;

use crate::model::{Bar, BarChart};

/// Grouped bars (GB/s) of each comparison: engine and plain loop side by side.
pub fn throughput_bars(rows: &[ThroughputRow], note: &str) -> BarChart {
    let mut bars = Vec::new();
    for row in rows {
        let group = format!(
            "file -> {}, {} KiB ({:.2}x)",
            row.sink,
            row.chunk_size / 1024,
            row.ratio
        );
        bars.push(Bar {
            group: group.clone(),
            name: "weir engine".to_owned(),
            value: row.engine_bps / 1e9,
        });
        bars.push(Bar {
            group,
            name: "plain std::fs loop".to_owned(),
            value: row.plain_bps / 1e9,
        });
    }
    BarChart {
        title: "Throughput: engine vs a plain std::fs loop (same file, same buffer)".to_owned(),
        note: note.to_owned(),
        y_label: "GB/s (best round)".to_owned(),
        bars,
    }
}
