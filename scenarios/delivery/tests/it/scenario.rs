//! The delivery scenario end to end, in this process, at a tiny size: every
//! phase and server writes its result, and the storm ends at the baseline.

use std::time::Duration;

use weir_delivery::{DeliveryParams, run};
use weir_harness::figures::delivery::{
    DeliveryCompressed, DeliveryEncoding, DeliveryFast, DeliveryRanges, DeliveryRows, DeliverySlow, DeliveryStorm,
    DeliveryUpload,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_run_writes_every_result() {
    let out = tempfile::tempdir().unwrap();
    let mut params = DeliveryParams::default();
    params.file_size = 4 << 20;
    params.slow_clients = 4;
    params.slow_duration = Duration::from_millis(500);
    params.crowd_clients = 12;
    params.crowd_duration = Duration::from_millis(500);
    params.fast_rounds = 1;
    params.storm_clients = 20;
    params.storm_hangup_after = 256 << 10;
    params.upload_clients = 8;
    params.upload_bytes = 256 << 10;
    params.upload_rate = 1 << 20;
    params.cutoffs = 20;
    params.compressed_file_size = 2 << 20;
    params.compressed_rate = 4 << 20;
    params.encoding_rounds = 2;
    params.rows = 20_000;
    params.rows_rate = 8 << 20;
    params.range_requests = 40;
    params.range_rounds = 2;
    let results = run(&params, out.path()).await.unwrap();
    // 5 phases x 5 servers (nginx included: `just nginx-install`), and
    // weir-pull's upload, compressed, encoding and rows phases (PostgreSQL:
    // `just pg-up`; without it the run fails, naming it).
    assert_eq!(results.len(), 29);
    assert_eq!(weir_harness::load_results(out.path()).unwrap().len(), 29);
    for result in &results {
        assert!(result.is_ok(), "{}: {}", result.variant, result.outcome);
        weir_harness::figures::conforms(result).unwrap();
    }
    for slow in results.iter().filter(|r| r.variant.starts_with("slow-")) {
        let f = slow.figures::<DeliverySlow>().unwrap();
        let nginx = slow.variant.ends_with("nginx");
        assert_eq!(f.server_isolation, if nginx { "process" } else { "in-process" });
        assert_eq!(f.peak_rss_over_nginx_bytes.is_some(), !nginx, "{}: {f:?}", slow.variant);
        assert!(
            f.cpu_vs_nginx.is_some() != nginx && !f.fresh_request_ms.is_empty(),
            "{f:?}"
        );
        assert!(
            f.delivered_bytes > 0 && f.server_peak_rss_bytes > 0,
            "{}: {f:?}",
            slow.variant
        );
        let baseline = slow.variant.ends_with("tower-serve-file");
        assert_eq!(
            f.server_lag.is_some(),
            slow.variant.contains("weir"),
            "{}: {f:?}",
            slow.variant
        );
        assert_eq!(
            f.cpu_per_gib_vs_serve_file.is_some(),
            !baseline,
            "{}: {f:?}",
            slow.variant
        );
    }
    for storm in results.iter().filter(|r| r.variant.starts_with("storm-")) {
        let f = storm.figures::<DeliveryStorm>().unwrap();
        assert!(f.fds_back_to_baseline, "{}: {f:?}", storm.variant);
        assert_eq!(f.clients_hung_up, 20 * params.storm_rounds as u64);
    }
    for crowd in results.iter().filter(|r| r.variant.starts_with("crowd-")) {
        let f = crowd.figures::<DeliverySlow>().unwrap();
        assert_eq!(f.clients, 12);
        // Every client and fresh request of the sendfile path by sendfile,
        // none of the others'.
        let by_sendfile = f.server_sendfile_transfers.unwrap_or(0);
        if crowd.variant.ends_with("weir-sendfile") {
            assert!(by_sendfile > 12, "{f:?}");
        } else {
            assert_eq!(by_sendfile, 0, "{}: {f:?}", crowd.variant);
        }
        assert!(
            f.rss_slope_bytes_per_client.is_some() && f.fresh_request_max_ms > 0.0,
            "{f:?}"
        );
    }
    let fast = results.iter().find(|r| r.variant == "fast-weir-pull").unwrap();
    let f = fast.figures::<DeliveryFast>().unwrap();
    assert!(f.throughput_vs_serve_file.is_some(), "{f:?}");
    assert!(f.throughput_vs_nginx.is_some() && f.paired_vs_nginx.is_some(), "{f:?}");
    assert_eq!(
        fast.metric("extra.throughput_vs_serve_file"),
        f.throughput_vs_serve_file
    );
    assert_eq!(fast.bytes, 4 << 20);
    for ranges in results.iter().filter(|r| r.variant.starts_with("ranges-")) {
        let f = ranges.figures::<DeliveryRanges>().unwrap();
        assert!(f.all_ok && f.ok == 40 && f.mismatches == 0, "{}: {f:?}", ranges.variant);
        assert_eq!(f.rounds_requests_per_s.len(), 2);
        assert_eq!(f.paired_vs_nginx.is_some(), !ranges.variant.ends_with("nginx"), "{f:?}");
    }
    let upload = results.iter().find(|r| r.variant == "upload-weir-pull").unwrap();
    let f = upload.figures::<DeliveryUpload>().unwrap();
    assert!(f.all_committed && f.committed == 8, "{f:?}");
    assert_eq!(f.cutoff_aborts_counted, 20, "{f:?}");
    assert_eq!(
        (f.cutoff_leftover_files, f.cutoff_temp_files, f.cutoff_fds_over_baseline),
        (0, 0, 0),
        "{f:?}"
    );
    assert!(f.server_lag.max_ms > 0.0, "{f:?}");
    let compressed = results.iter().find(|r| r.variant == "compressed-weir-pull").unwrap();
    let f = compressed.figures::<DeliveryCompressed>().unwrap();
    assert!(f.body_matches && f.compression_ratio > 2.0, "{f:?}");
    assert_eq!(f.file_bytes, 2 << 20);
    let encoding = results.iter().find(|r| r.variant == "encoding-weir-pull").unwrap();
    let f = encoding.figures::<DeliveryEncoding>().unwrap();
    assert!(
        f.encoded_vs_identity.is_some() && f.identity_throughput_bps > 0.0,
        "{f:?}"
    );
    assert!(
        f.wire_bytes_per_file_byte > 0.0 && f.wire_bytes_per_file_byte < 0.5,
        "{f:?}"
    );
    let rows = results.iter().find(|r| r.variant == "rows-weir-pull").unwrap();
    let f = rows.figures::<DeliveryRows>().unwrap();
    assert!(f.all_rows && f.rows_received == 20_000, "{f:?}");
    assert!(f.query_end_after_hangup_ms < 60_000.0, "{f:?}");
}
