//! Per-connection and global byte rates, measured as ratios against an
//! unthrottled server in the same test.

use std::num::NonZeroU64;
use std::time::Instant;

use weir_http::client::download;
use weir_http::{DeliveryConfig, FileReader};

use crate::support::{Fixture, start};

const SIZE: u64 = 2 << 20;
const RATE: u64 = 4 << 20;

async fn timed(addr: std::net::SocketAddr, clients: usize) -> f64 {
    let started = Instant::now();
    let downloads: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(download(addr, "/files/two.bin", None, None, None)))
        .collect();
    for d in downloads {
        assert_eq!(d.await.unwrap().unwrap().bytes, SIZE);
    }
    started.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rates_hold_per_connection_and_across_connections() {
    let fixture = Fixture::new();
    fixture.add_big("two.bin", SIZE);
    let free = start(DeliveryConfig::new(fixture.path()), FileReader::Pull).await;
    let per_connection = start(
        DeliveryConfig::new(fixture.path()).with_per_connection_rate(NonZeroU64::new(RATE)),
        FileReader::Pull,
    )
    .await;
    let global = start(
        DeliveryConfig::new(fixture.path()).with_global_rate(NonZeroU64::new(RATE)),
        FileReader::Pull,
    )
    .await;
    let unthrottled = timed(free.local_addr(), 2).await;
    // Two connections at 4 MiB/s each: 2 MiB takes about 0.5 s.
    let each = timed(per_connection.local_addr(), 2).await;
    // Two connections sharing 4 MiB/s: 4 MiB takes about 1 s.
    let shared = timed(global.local_addr(), 2).await;
    assert!(
        each > 10.0 * unthrottled,
        "per-connection {each:.3} s vs unthrottled {unthrottled:.3} s"
    );
    assert!(
        shared > 1.5 * each,
        "global {shared:.3} s vs per-connection {each:.3} s"
    );
    for server in [free, per_connection, global] {
        server.shutdown().await;
    }
}
