//! Controlled flow stays under a ceiling computed from the chunk size and
//! the writes in flight; unbounded flow grows with its input. Each test runs
//! in a process of its own under nextest, so RSS is this test's alone.

use weir_flow::{Case, CaseKind, DelayModel, FlowRun, SinkKind, SourceKind, UnboundedCap, Variant, run_case};

const MIB: u64 = 1 << 20;
const CHUNK: usize = 64 * 1024;
/// What the runtime, the sampler and the allocator may add whatever the
/// input: thread stacks touched, allocator arenas, the lag probe's samples.
const FIXED_SLACK: u64 = 4 * MIB;

fn case(variant: Variant, size: u64, delay_micros: u64) -> Case {
    Case {
        group: "adhoc".into(),
        kind: CaseKind::Flow {
            variant,
            source: SourceKind::Synthetic,
            sink: SinkKind::Slow(DelayModel::Fixed { micros: delay_micros }),
            size,
            cap: UnboundedCap::default(),
        },
        chunk_size: CHUNK,
        seed: 1,
        sample_millis: 2,
        run_id: "test".into(),
        work_dir: std::env::temp_dir(),
        inject: weir_harness::inject::Injection::default(),
    }
}

#[test]
fn controlled_flow_stays_under_its_ceiling() {
    let in_flight = 8;
    let size = 32 * MIB;
    let result = run_case(&case(
        Variant::Controlled {
            max_in_flight: in_flight,
        },
        size,
        100,
    ))
    .unwrap();
    assert_eq!(result.outcome, "ok");
    assert_eq!(result.bytes, size);
    // In flight, plus the chunk being generated and the one being dropped.
    let ceiling = (in_flight as u64 + 2) * CHUNK as u64 + FIXED_SLACK;
    let growth = result.rss.growth_bytes();
    assert!(growth < ceiling, "grew {growth} bytes, ceiling {ceiling}");
    assert!(growth < size / 4, "grew {growth} bytes for {size} bytes of input");
    assert_eq!(
        result.figures::<FlowRun>().unwrap().peak_in_flight,
        Some(in_flight as u64)
    );
}

#[test]
fn unbounded_flow_grows_with_its_input() {
    let size = 16 * MIB;
    let result = run_case(&case(Variant::Unbounded, size, 5000)).unwrap();
    assert_eq!(result.outcome, "ok");
    assert_eq!(result.bytes, size);
    let growth = result.rss.growth_bytes();
    assert!(growth >= size / 2, "grew only {growth} bytes for {size} bytes of input");
    let outstanding = result.figures::<FlowRun>().unwrap().peak_outstanding_bytes.unwrap();
    assert!(outstanding >= size / 2, "peak outstanding {outstanding}");
}

#[test]
fn the_unbounded_cap_stops_the_growth() {
    let mut capped = case(Variant::Unbounded, 64 * MIB, 5000);
    if let CaseKind::Flow { cap, .. } = &mut capped.kind {
        *cap = UnboundedCap {
            max_outstanding_bytes: 4 * MIB,
            max_millis: 60_000,
        };
    }
    let result = run_case(&capped).unwrap();
    assert!(result.outcome.starts_with("capped"), "{}", result.outcome);
    let figures = result.figures::<FlowRun>().unwrap();
    assert!(figures.peak_outstanding_bytes.unwrap() <= 4 * MIB + CHUNK as u64);
    assert!(figures.capped.is_some());
    assert!(figures.bytes_read.unwrap() < 64 * MIB, "reading went on to the end");
    assert!(result.rss.growth_bytes() < 4 * MIB + FIXED_SLACK);
}
