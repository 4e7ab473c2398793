//! A tiny real flow run through the binary: every case in a child process,
//! results written, then the report rendered from them.

use crate::{lab, texts};

#[test]
fn a_tiny_flow_run_and_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let out = dir.path().join("out");
    let output = lab(&[
        "run",
        "flow",
        "--variant",
        "controlled,unbounded",
        "--size",
        "1MiB",
        "--sink",
        "slow",
        "--out",
        results.to_str().unwrap(),
        "--json",
    ]);
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "{stderr}");
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let variants: Vec<&str> = lines.iter().map(|r| r["variant"].as_str().unwrap()).collect();
    assert_eq!(variants, ["controlled-1", "controlled-8", "unbounded", "summary"]);
    for r in &lines[..3] {
        assert_eq!(r["bytes"], 1 << 20);
        assert_eq!(r["params"]["sink"], "slow-1ms");
    }
    assert_eq!(weir_harness::load_results(&results).unwrap().len(), 4);

    let report = lab(&["report", results.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let (stdout, stderr) = texts(&report);
    assert!(report.status.success(), "{stderr}");
    assert!(stdout.contains("index.md"), "{stdout}");
    let index = std::fs::read_to_string(out.join("index.md")).unwrap();
    assert!(index.contains("figures/flow-rss-controlled-vs-unbounded.svg"));
}
