//! The delivery scenario end to end, in this process, at a tiny size: every
//! phase and server writes its result, and the storm ends at the baseline.

use std::time::Duration;

use weir_delivery::{DeliveryParams, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_run_writes_every_result() {
    let out = tempfile::tempdir().unwrap();
    let mut params = DeliveryParams::default();
    params.file_size = 4 << 20;
    params.slow_clients = 4;
    params.slow_duration = Duration::from_millis(500);
    params.fast_rounds = 1;
    params.storm_clients = 20;
    params.storm_hangup_after = 256 << 10;
    let results = run(&params, out.path()).await.unwrap();
    assert_eq!(results.len(), 9);
    assert_eq!(weir_harness::load_results(out.path()).unwrap().len(), 9);
    for result in &results {
        assert!(result.is_ok(), "{}: {}", result.variant, result.outcome);
        assert_eq!(result.extra["server_isolation"], "in-process");
    }
    for storm in results.iter().filter(|r| r.variant.starts_with("storm-")) {
        assert_eq!(
            storm.extra["fds_back_to_baseline"], true,
            "{}: {:?}",
            storm.variant, storm.extra
        );
        assert_eq!(storm.extra["clients_hung_up"], 20 * params.storm_rounds);
    }
    let fast = results.iter().find(|r| r.variant == "fast-weir-pull").unwrap();
    assert!(fast.extra.contains_key("throughput_vs_serve_file"));
    assert_eq!(fast.bytes, 4 << 20);
}
