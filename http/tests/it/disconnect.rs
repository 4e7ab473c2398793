//! Clients that hang up mid-transfer, or stop reading: the transfer is
//! counted as aborted, the file is closed, and descriptors and transfers
//! return to the baseline.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use weir_harness::open_fds;
use weir_http::client::{Client, download};
use weir_http::{DeliveryConfig, FileReader, SendPath};

use crate::support::{Fixture, eventually, start};

const BIG: u64 = 32 << 20;

async fn a_storm_of_hang_ups_leaves_no_descriptor_or_transfer_behind(path: SendPath) {
    for reader in [FileReader::Pull, FileReader::ReadAhead] {
        let fixture = Fixture::new();
        fixture.add_big("huge.bin", BIG);
        let server = start(DeliveryConfig::new(fixture.path()).with_send_path(path), reader).await;
        let addr = server.local_addr();
        // Warm-up: runtime threads and lazily opened descriptors exist first.
        download(addr, "/files/huge.bin", None, Some(1 << 20), None)
            .await
            .unwrap();
        assert!(eventually(|| server.metrics().snapshot().active_transfers == 0).await);
        let baseline = open_fds();
        let aborted_before = server.metrics().snapshot().aborted;

        let clients: Vec<_> = (0..200)
            .map(|_| tokio::spawn(download(addr, "/files/huge.bin", None, Some(256 << 10), None)))
            .collect();
        for client in clients {
            let seen = client.await.unwrap().unwrap();
            assert!(seen.bytes >= 256 << 10 && seen.bytes < BIG, "read {} bytes", seen.bytes);
        }
        let metrics = server.metrics().clone();
        let settled = eventually(|| {
            let snapshot = metrics.snapshot();
            snapshot.active_transfers == 0 && snapshot.active_connections == 0 && open_fds() <= baseline
        })
        .await;
        let snapshot = metrics.snapshot();
        assert!(
            settled,
            "{reader:?}: {snapshot:?}, {} descriptors open, baseline {baseline}",
            open_fds()
        );
        assert_eq!(snapshot.aborted - aborted_before, 200, "{reader:?}");
        let sent_by_sendfile = if path == SendPath::Sendfile { 201 } else { 0 };
        assert_eq!(snapshot.sendfile_transfers, sent_by_sendfile, "{reader:?}");
        assert_eq!(snapshot.failed, 0);
        server.shutdown().await;
    }
}
on_each_path!(a_storm_of_hang_ups_leaves_no_descriptor_or_transfer_behind);

async fn a_client_that_stops_reading_is_cut_off_by_the_stall_timeout(path: SendPath) {
    let fixture = Fixture::new();
    fixture.add_big("huge.bin", BIG);
    let config = DeliveryConfig::new(fixture.path())
        .with_send_path(path)
        .with_write_stall_timeout(Some(Duration::from_millis(300)));
    let server = start(config, FileReader::Pull).await;
    let mut client = Client::connect(server.local_addr()).await.unwrap();
    let request = http::Request::get("/files/huge.bin").body(Empty::new()).unwrap();
    let response = client.send(request).await.unwrap();
    assert_eq!(response.status(), 200);
    // Read one frame, then hold the body without reading.
    let mut body = response.into_body();
    assert!(body.frame().await.is_some());
    let metrics = server.metrics().clone();
    assert!(
        eventually(|| metrics.snapshot().aborted == 1).await,
        "{:?}",
        metrics.snapshot()
    );
    assert_eq!(metrics.snapshot().active_transfers, 0);
    assert!(metrics.snapshot().sent_bytes < BIG);
    crate::support::assert_sendfile_transfers(path, &metrics, 1);
    drop(body);
    server.shutdown().await;
}
on_each_path!(a_client_that_stops_reading_is_cut_off_by_the_stall_timeout);

async fn shutdown_ends_stalled_transfers_after_the_grace_period(path: SendPath) {
    let fixture = Fixture::new();
    fixture.add_big("huge.bin", BIG);
    let mut config = DeliveryConfig::new(fixture.path()).with_send_path(path);
    config.shutdown_grace = Duration::from_millis(200);
    let server = start(config, FileReader::ReadAhead).await;
    let mut client = Client::connect(server.local_addr()).await.unwrap();
    let request = http::Request::get("/files/huge.bin").body(Empty::new()).unwrap();
    let response = client.send(request).await.unwrap();
    let metrics = server.metrics().clone();
    assert!(eventually(|| metrics.snapshot().active_transfers == 1).await);
    server.shutdown().await;
    let snapshot = metrics.snapshot();
    assert_eq!(
        (snapshot.active_transfers, snapshot.active_connections, snapshot.aborted),
        (0, 0, 1)
    );
    drop(response);
}
on_each_path!(shutdown_ends_stalled_transfers_after_the_grace_period);
