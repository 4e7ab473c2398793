//! `/metrics` in OpenMetrics text: bytes, connections, outcomes, time to
//! first byte, responses by status.

use weir_http::client::Client;
use weir_http::{DeliveryConfig, FileReader, SendPath};

use crate::support::{Fixture, start};

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} missing from:\n{text}"))
}

async fn metrics_count_what_was_sent(path: SendPath) {
    let fixture = Fixture::new();
    let server = start(
        DeliveryConfig::new(fixture.path()).with_send_path(path),
        FileReader::Pull,
    )
    .await;
    let mut client = Client::connect(server.local_addr()).await.unwrap();
    let mut sent = 0;
    for (path, range) in [
        ("/files/big.bin", None),
        ("/files/small.bin", Some("bytes=0-9")),
        ("/files/small.bin", Some("bytes=0-1,5-6")),
    ] {
        let headers: Vec<(&str, &str)> = range.map(|r| ("range", r)).into_iter().collect();
        sent += client.get(path, &headers).await.unwrap().body.len();
    }
    assert_eq!(client.get("/files/missing", &[]).await.unwrap().status, 404);
    let scrape = client.get("/metrics", &[]).await.unwrap();
    assert_eq!(scrape.status, 200);
    assert!(
        scrape
            .header("content-type")
            .starts_with("application/openmetrics-text")
    );
    let text = String::from_utf8(scrape.body.to_vec()).unwrap();
    assert_eq!(value(&text, "weir_delivery_sent_bytes_total") as usize, sent);
    assert_eq!(
        value(&text, "weir_delivery_transfers_total{outcome=\"completed\"}"),
        3.0
    );
    assert_eq!(value(&text, "weir_delivery_transfers_total{outcome=\"aborted\"}"), 0.0);
    assert_eq!(value(&text, "weir_delivery_time_to_first_byte_seconds_count"), 3.0);
    assert_eq!(value(&text, "weir_delivery_active_connections"), 1.0);
    assert_eq!(value(&text, "weir_delivery_responses_total{code=\"206\"}"), 2.0);
    assert_eq!(value(&text, "weir_delivery_responses_total{code=\"404\"}"), 1.0);
    assert!(text.trim_end().ends_with("# EOF"));
    // The whole file and the single range; the multipart answer is hyper's.
    crate::support::assert_sendfile_transfers(path, server.metrics(), 2);
    let post = client.fetch("POST", "/metrics", &[]).await.unwrap();
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), "GET, HEAD");
    server.shutdown().await;
}
on_each_path!(metrics_count_what_was_sent);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_lag_is_exposed_while_serving() {
    let fixture = crate::support::Fixture::new();
    let server = crate::support::start(
        weir_http::DeliveryConfig::new(fixture.path()),
        weir_http::FileReader::Pull,
    )
    .await;
    let metrics = server.metrics().clone();
    assert!(crate::support::eventually(|| metrics.runtime_lag().samples >= 5).await);
    let mut client = weir_http::client::Client::connect(server.local_addr()).await.unwrap();
    let text = client.get("/metrics", &[]).await.unwrap().body;
    let text = String::from_utf8_lossy(&text);
    for quantile in ["0.5", "0.99", "1"] {
        let line = format!("weir_delivery_runtime_lag_seconds{{quantile=\"{quantile}\"}} ");
        let value: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("{line} missing from:\n{text}"))
            .trim()
            .parse()
            .unwrap();
        assert!((0.0..1.0).contains(&value), "{line}{value}");
    }
    server.shutdown().await;
}
