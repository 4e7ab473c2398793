//! Per-connection and global byte rates: a throttled transfer takes at
//! least what its bytes cost at the rate (less the bucket's one burst),
//! whatever the load, and an unthrottled one less.

use std::num::NonZeroU64;
use std::time::Instant;

use weir_http::client::download;
use weir_http::{DeliveryConfig, FileReader, SendPath};

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

async fn rates_hold_per_connection_and_across_connections(path: SendPath) {
    let fixture = Fixture::new();
    fixture.add_big("two.bin", SIZE);
    let free = start(
        DeliveryConfig::new(fixture.path()).with_send_path(path),
        FileReader::Pull,
    )
    .await;
    let per_connection = start(
        DeliveryConfig::new(fixture.path())
            .with_send_path(path)
            .with_per_connection_rate(NonZeroU64::new(RATE)),
        FileReader::Pull,
    )
    .await;
    let global = start(
        DeliveryConfig::new(fixture.path())
            .with_send_path(path)
            .with_global_rate(NonZeroU64::new(RATE)),
        FileReader::Pull,
    )
    .await;
    let unthrottled = timed(free.local_addr(), 2).await;
    // Two connections at 4 MiB/s each: 2 MiB takes about 0.5 s.
    let each = timed(per_connection.local_addr(), 2).await;
    // Two connections sharing 4 MiB/s: 4 MiB takes about 1 s.
    let shared = timed(global.local_addr(), 2).await;
    // The bucket starts with one burst of a tenth of a second's bytes;
    // the rest is paid at the rate. A loaded machine can only slow a
    // transfer, so these lower bounds hold under any load.
    let burst = RATE as f64 / 10.0;
    let floor = |bytes: f64| 0.95 * (bytes - burst) / RATE as f64;
    assert!(
        each >= floor(SIZE as f64),
        "per-connection {each:.3} s, at least {:.3} s expected",
        floor(SIZE as f64)
    );
    assert!(
        shared >= floor(2.0 * SIZE as f64),
        "global {shared:.3} s, at least {:.3} s expected",
        floor(2.0 * SIZE as f64)
    );
    assert!(
        unthrottled < each,
        "unthrottled {unthrottled:.3} s vs per-connection {each:.3} s"
    );
    for server in [free, per_connection, global] {
        crate::support::assert_sendfile_transfers(path, server.metrics(), 2);
        server.shutdown().await;
    }
}
on_each_path!(rates_hold_per_connection_and_across_connections);
