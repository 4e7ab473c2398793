//! Renders a report from synthetic flow results written as JSON files.

use std::path::Path;

use expect_test::expect;
use serde_json::json;
use weir_harness::figures::flow::{FlowThroughput, summarize};
use weir_harness::{LagSeries, Machine, RssSeries, ScenarioResult};

const MIB: u64 = 1 << 20;

fn result(variant: &str, group: &str, sink: &str, size: u64, growth: u64) -> ScenarioResult {
    let mut r = ScenarioResult {
        scenario: "flow".into(),
        variant: variant.into(),
        outcome: "ok".into(),
        machine: Machine {
            cpu_model: "Test CPU".into(),
            cores: 2,
            memory_bytes: 24 << 30,
            os: "Test OS".into(),
            rustc: "rustc 1.0".into(),
        },
        git_revision: Some("abc123".into()),
        started_unix_s: 1_700_000_000,
        ..ScenarioResult::default()
    }
    .with_transfer(size, std::time::Duration::from_secs(2));
    for (key, value) in [
        ("group", json!(group)),
        ("sink", json!(sink)),
        ("source", json!("synthetic")),
        ("size", json!(size)),
        ("chunk_size", json!(65536)),
        ("run_id", json!("run-1")),
    ] {
        r.params.insert(key.into(), value);
    }
    let base = 4 * MIB;
    r.rss = RssSeries {
        samples: (0..=20).map(|i| [i * 100, base + growth * i / 20]).collect(),
        baseline_bytes: base,
        peak_bytes: base + growth,
    };
    r.lag = Some(LagSeries {
        samples: (0..20).map(|i| [i * 100, 500 + i * 10]).collect(),
        p50_us: 600,
        p99_us: 690,
        max_us: 690,
    });
    r
}

fn write_results(dir: &Path) {
    let mut results = vec![
        result("controlled-1", "backpressure", "slow-1ms", 64 * MIB, MIB),
        result("unbounded", "backpressure", "slow-1ms", 64 * MIB, 60 * MIB),
        result("controlled-1", "flat-memory", "null", 8 * MIB, MIB),
        result("controlled-1", "flat-memory", "null", 32 * MIB, MIB + MIB / 8),
    ];
    let mut throughput = result("throughput", "throughput", "null", 256 * MIB, MIB);
    throughput.lag = None;
    throughput.set_figures(&FlowThroughput {
        baseline: "std::fs read loop, own thread".into(),
        engine_bps: 9.5e9,
        plain_bps: 10e9,
        ratio: 0.95,
        ..FlowThroughput::default()
    });
    results.push(throughput);
    // The summary the flow scenario writes after its cases.
    let mut summary = result("summary", "summary", "", 0, 0);
    summary.set_figures(&summarize(&results));
    results.push(summary);
    let mut other = result("fast", "x", "null", MIB, 0);
    other.scenario = "elsewhere".into();
    results.push(other);
    for r in &results {
        r.write_to(dir).unwrap();
    }
}

#[test]
fn a_report_renders_from_result_files() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let out = dir.path().join("out");
    let publish = dir.path().join("publish");
    write_results(&results);
    // A write-up with a generated block: the report fills it in.
    std::fs::create_dir_all(&publish).unwrap();
    let begin = weir_reports::splice::begin("figures/backpressure-results.md");
    let end = weir_reports::splice::END;
    std::fs::write(
        publish.join("backpressure.md"),
        format!("# Write-up\n\n{begin}\n\nstale\n\n{end}\n\nConclusion.\n"),
    )
    .unwrap();

    // A gates file of its own: the snapshot below shows how verdicts
    // render, and must not change whenever a committed bound moves.
    let gates = dir.path().join("gates.toml");
    std::fs::write(
        &gates,
        r#"
[[gate]]
name = "flow: flat memory peak RSS"
kind = "memory"
scenario = "flow"
where = "group=flat-memory"
metric = "rss.peak_bytes"
max = 16777216

[[gate]]
name = "flow: file -> FileSink vs plain loop"
kind = "ratio"
scenario = "flow"
variant = "throughput"
where = "sink=file"
metric = "extra.ratio"
min = 0.8

[[gate]]
name = "flow: file -> NullSink vs plain loop"
kind = "ratio"
scenario = "flow"
variant = "throughput"
where = "sink=null"
metric = "extra.ratio"
min = 0.8
"#,
    )
    .unwrap();
    let index = weir_reports::render_dir_gated(&results, None, &out, Some(&publish), &gates).unwrap();
    assert_eq!(index, out.join("index.md"));
    let text = std::fs::read_to_string(&index).unwrap();
    for figure in [
        "flow-rss-controlled-vs-unbounded",
        "flow-rss-controlled-vs-unbounded-log",
        "flow-lag",
        "flow-flat-memory",
        "flow-throughput",
    ] {
        assert!(
            text.contains(&format!("figures/{figure}.svg")),
            "{figure} missing from the index"
        );
        for ext in ["svg", "png"] {
            assert!(out.join(format!("figures/{figure}.{ext}")).is_file());
            assert!(publish.join(format!("figures/{figure}.{ext}")).is_file());
        }
    }
    assert!(text.contains("## elsewhere"), "scenarios without a section get a table");

    let snippet = std::fs::read_to_string(publish.join("README-snippet.md")).unwrap();
    expect![[r#"
        <!-- generated by `just publish` (weir-reports), which splices it into README.md; do not edit -->

        ![RSS over time, controlled vs unbounded](reports/figures/flow-rss-controlled-vs-unbounded.svg)

        *Resident memory while moving 64.00 MiB into a sink that serves one write at a time: weir (controlled) adds at most 1.00 MiB; spawning every write without waiting (unbounded) adds 60.00 MiB. Measured on Test CPU, 2 cores, 24 GiB, Test OS | 2023-11-14 22:13 UTC | rev abc123.*

        | input (synthetic -> NullSink) | peak RSS | baseline RSS | growth | throughput |
        |---|---|---|---|---|
        | 8.00 MiB | 5.00 MiB | 4.00 MiB | 1.00 MiB | 4 MB/s |
        | 32.00 MiB | 5.12 MiB | 4.00 MiB | 1.12 MiB | 17 MB/s |

        Slope of peak RSS against input size: 5461.3 KiB per GiB of input; largest minus smallest peak: 128.0 KiB.

        ### Headline figures

        Each figure is read from the results by `weir-lab report` (`just bench-all` runs flow, delivery and datasync at full size, the rest at their default profile; `just gate` re-checks the ratios and ceilings in CI). Newest run: Test CPU, 2 cores, 24 GiB, Test OS | 2023-11-14 22:13 UTC | rev abc123.

        | what | figure | measured by |
        |---|---|---|
        | controlled flow, 1 ms slow sink, 64.00 MiB | +1.00 MiB RSS (in-flight 1); unbounded: +60.00 MiB | `weir-lab run flow` |
    "#]]
    .assert_eq(&snippet);

    let tables = std::fs::read_to_string(publish.join("figures/flow-tables.md")).unwrap();
    expect![[r#"
        <!-- generated by `just publish`; do not edit -->

        Measured on Test CPU, 2 cores, 24 GiB, Test OS | 2023-11-14 22:13 UTC | rev abc123.

        ### Gates

        Gates (`gates.toml`, the same verdicts as `just gate`, before re-measuring a breach): 3 of 4 pass.

        | gate | scenario/variant | metric | measured | bound | margin | result |
        | --- | --- | --- | --- | --- | --- | --- |
        | flow: flat memory peak RSS | flow/controlled-1 | `rss.peak_bytes` | 5.00 MiB | <= 16.00 MiB | +69% | pass |
        | flow: flat memory peak RSS | flow/controlled-1 | `rss.peak_bytes` | 5.12 MiB | <= 16.00 MiB | +68% | pass |
        | flow: file -> FileSink vs plain loop | flow/(missing) | `extra.ratio` | missing | >= 0.800 | - | **FAIL** |
        | flow: file -> NullSink vs plain loop | flow/throughput | `extra.ratio` | 0.950 | >= 0.800 | +19% | pass |

        ### Controlled vs unbounded

        | variant | source -> sink | input | RSS growth | peak RSS | time | lag p99 | load avg | outcome |
        |---|---|---|---|---|---|---|---|---|
        | controlled-1 | synthetic -> slow-1ms | 64.00 MiB | 1.00 MiB | 5.00 MiB | 2.0 s | 0.69 ms | - | ok |
        | unbounded | synthetic -> slow-1ms | 64.00 MiB | 60.00 MiB | 64.00 MiB | 2.0 s | 0.69 ms | - | ok |

        ### Flat memory

        | input (synthetic -> NullSink) | peak RSS | baseline RSS | growth | throughput |
        |---|---|---|---|---|
        | 8.00 MiB | 5.00 MiB | 4.00 MiB | 1.00 MiB | 4 MB/s |
        | 32.00 MiB | 5.12 MiB | 4.00 MiB | 1.12 MiB | 17 MB/s |

        Slope of peak RSS against input size: 5461.3 KiB per GiB of input; largest minus smallest peak: 128.0 KiB.

        ### Throughput

        | comparison | buffer | file | weir engine | plain loop | ratio |
        |---|---|---|---|---|---|
        | file -> null vs std::fs read loop, own thread | 64.0 KiB | 256.00 MiB | 9500 MB/s | 10.0 GB/s | 0.95x |

    "#]]
    .assert_eq(&tables);

    let writeup = std::fs::read_to_string(publish.join("backpressure.md")).unwrap();
    expect![[r#"
        # Write-up

        <!-- begin generated: figures/backpressure-results.md, spliced by `just publish`; do not edit -->

        The bounds are the gates' (`gates.toml`).

        - **Controlled flow stays flat.** Moving 64.00 MiB into the slow device, RSS grew by 1.00 MiB (controlled-1 -> slow-1ms); peak RSS 5.00 MiB to 5.00 MiB.
        - **Unbounded flow grows with the input.** The same 64.00 MiB into slow-1ms grew RSS by 60.00 MiB (0.94 of the input); the run took 2.0 s.
        - **Flat memory.** Peak RSS 5.00 MiB at 8.00 MiB, 5.12 MiB at 32.00 MiB: a spread of 128.0 KiB, each peak at most 16.00 MiB, a slope of 5461.3 KiB per GiB of input.
        - **Runtime lag.** p99 0.69 ms to 0.69 ms across these runs, controlled or not.
        - **Throughput, file -> null.** 0.95x the std::fs read loop, own thread, 64.0 KiB buffers (9500 MB/s vs 10.0 GB/s).
        - **The seed's claim** (the Node library's README): 45 MB RSS at 100 MB, 48 MB at 1 GB, 52 MB at 10 GB. **weir, measured:** peak RSS 5.00 MiB at 8.00 MiB, 5.12 MiB at 32.00 MiB. *Setups:* the seed: Node v20 reading a file with a read stream, its sink and how RSS was sampled not described; weir: a seeded synthetic source into `NullSink`, RSS sampled every 10 ms during the run.
        - **The seed's claim** (the Node library's Milestone 2): flat at about 155 MB RSS with backpressure. **weir, measured:** peak RSS at most 5.00 MiB (every controlled run above). *Setups:* the seed: a 200 MB to 1 GB file into a sink that waits 50 to 200 ms per write, RSS of the whole Node process; weir: the slow device model of the Method section (a far larger speed mismatch), RSS of the whole process.
        - **The seed's claim** (the Node library's Milestone 2): 250 to 300 MB RSS and rising without backpressure (a 1 GB file, 200 ms per write). **weir, measured:** peak RSS 64.00 MiB. *Setups:* the seed's loop fires writes without awaiting them and its file stream still buffers; weir's unbounded variant spawns every write as a task and reads on, so nothing holds the source back.

        *Measured on Test CPU, 2 cores, 24 GiB, Test OS | 2023-11-14 22:13 UTC | rev abc123. Reproduce: `cargo run --release -p weir-lab -- run flow --full`, then `just publish`.*

        <!-- end generated -->

        Conclusion.
    "#]].assert_eq(&writeup);
}

#[test]
fn an_empty_results_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let error = weir_reports::render_dir(dir.path(), &dir.path().join("out"), None).unwrap_err();
    assert!(error.to_string().contains("no result JSON files"), "{error}");
    let missing = weir_reports::render_dir(&dir.path().join("nope"), &dir.path().join("out"), None).unwrap_err();
    assert!(missing.to_string().contains("reading results from"), "{missing}");
}
