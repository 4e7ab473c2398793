//! A whole run with a tiny profile: every case measured in this process,
//! every result and the summary written, the summary's figures computed.

use weir_flow::{FlowParams, FlowSummary, run};

const KIB: u64 = 1 << 10;

#[test]
fn a_tiny_run_writes_every_result_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let params = FlowParams {
        backpressure_size: 256 * KIB,
        flat_sizes: vec![64 * KIB, 256 * KIB],
        throughput_size: 512 * KIB,
        throughput_rounds: 1,
        throughput_large_chunk: Some(128 * 1024),
        work_dir: dir.path().to_path_buf(),
        ..FlowParams::default()
    };
    let out = dir.path().join("results");
    let results = run(&params, &out).unwrap();
    // 4 backpressure + 2 flat-memory + 3 throughput cases, then the summary.
    assert_eq!(results.len(), 10);
    assert_eq!(weir_harness::load_results(&out).unwrap().len(), 10);
    let summary = results.last().unwrap();
    assert_eq!(summary.variant, "summary");
    let figures = summary.figures::<FlowSummary>().unwrap();
    assert_eq!(figures.flat_memory.len(), 2, "{figures:?}");
    assert_eq!(figures.flows.len(), 4, "{figures:?}");
    assert_eq!(figures.throughput.len(), 3, "{figures:?}");
    assert!(figures.flat_spread_bytes.is_some());
    for r in &results {
        weir_harness::figures::conforms(r).unwrap();
    }
    for r in &results[..9] {
        assert!(
            r.is_ok() || r.outcome.starts_with("capped"),
            "{}: {}",
            r.variant,
            r.outcome
        );
        assert!(!r.rss.samples.is_empty());
    }
    // The scratch directory (inputs, outputs) is gone.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|n| n != "results")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
