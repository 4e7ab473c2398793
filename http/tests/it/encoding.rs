//! Compressed delivery: `Accept-Encoding` negotiation, bodies that
//! decompress to the file, `Vary` and entity tags, identity ranges, and a
//! stalled client that pins a bounded amount and leaves nothing behind.

use std::io::Read as _;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use weir_harness::open_fds;
use weir_http::client::Client;
use weir_http::{DeliveryConfig, FileReader};

use crate::support::{Fixture, content, eventually, start};

/// A compressible file: text lines with a counter.
fn text(len: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(len + 64);
    let mut i = 0u64;
    while bytes.len() < len {
        bytes.extend_from_slice(format!("line {i:08} of a compressible file, value={}\n", i % 97).as_bytes());
        i += 1;
    }
    bytes.truncate(len);
    bytes
}

fn decode(coding: &str, body: &[u8]) -> Vec<u8> {
    match coding {
        "zstd" => zstd::decode_all(body).unwrap(),
        "gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body).read_to_end(&mut out).unwrap();
            out
        }
        other => panic!("unexpected coding {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_files_are_compressed_as_asked_and_decompress_to_the_file() {
    let fixture = Fixture::new();
    let file = text(4 << 20);
    std::fs::write(fixture.path().join("text.txt"), &file).unwrap();
    let server = start(DeliveryConfig::new(fixture.path()), FileReader::Pull).await;
    let mut client = Client::connect(server.local_addr()).await.unwrap();
    let identity = client.get("/files/text.txt", &[]).await.unwrap();
    assert_eq!(identity.header("content-encoding"), "");
    assert_eq!(identity.header("vary"), "accept-encoding");
    assert_eq!(identity.header("content-length"), file.len().to_string());
    let identity_tag = identity.header("etag").to_owned();
    for (accept, coding) in [
        ("zstd", "zstd"),
        ("gzip", "gzip"),
        ("gzip;q=0.5, zstd;q=0.9", "zstd"),
        ("zstd;q=0, *", "gzip"),
    ] {
        let got = client
            .get("/files/text.txt", &[("accept-encoding", accept)])
            .await
            .unwrap();
        assert_eq!(got.status, 200);
        assert_eq!(got.header("content-encoding"), coding, "{accept}");
        assert_eq!(got.header("vary"), "accept-encoding");
        assert_eq!(got.header("content-length"), "", "an encoded body is chunked");
        let tag = got.header("etag");
        assert_eq!(tag, format!("{}-{coding}\"", identity_tag.trim_end_matches('"')));
        assert!(got.body.len() < file.len() / 4, "{coding}: {} bytes", got.body.len());
        assert_eq!(decode(coding, &got.body), file, "{accept}");
        let head = client
            .fetch("HEAD", "/files/text.txt", &[("accept-encoding", accept.as_bytes())])
            .await
            .unwrap();
        assert_eq!(head.header("content-encoding"), coding);
        assert!(head.body.is_empty());
    }
    // Random bytes and tiny files too.
    let random = content(200_003);
    let got = client
        .get("/files/big.bin", &[("accept-encoding", "zstd")])
        .await
        .unwrap();
    assert_eq!(decode("zstd", &got.body), random);
    let one = client
        .get("/files/one.bin", &[("accept-encoding", "gzip")])
        .await
        .unwrap();
    assert_eq!(decode("gzip", &one.body), content(1));
    let empty = client
        .get("/files/empty.bin", &[("accept-encoding", "gzip")])
        .await
        .unwrap();
    assert_eq!((empty.status.as_u16(), empty.header("content-encoding")), (200, ""));
    let metrics = server.metrics().snapshot();
    assert_eq!((metrics.failed, metrics.aborted), (0, 0));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_are_of_the_identity_bytes_and_odd_headers_get_identity() {
    let fixture = Fixture::new();
    let server = start(DeliveryConfig::new(fixture.path()), FileReader::Pull).await;
    let mut client = Client::connect(server.local_addr()).await.unwrap();
    let file = content(200_003);
    let ranged = client
        .get(
            "/files/big.bin",
            &[("accept-encoding", "zstd, gzip"), ("range", "bytes=10-19")],
        )
        .await
        .unwrap();
    assert_eq!(ranged.status, 206);
    assert_eq!(ranged.header("content-encoding"), "");
    assert_eq!(ranged.header("content-range"), "bytes 10-19/200003");
    assert_eq!(ranged.body.to_vec(), file[10..20]);
    for odd in [
        "gzip;q=7",
        "br",
        "zstd;q=0, gzip;q=0",
        "identity",
        "gzip;q=0.12345",
        ";;,,",
    ] {
        let got = client.get("/files/big.bin", &[("accept-encoding", odd)]).await.unwrap();
        assert_eq!(got.status, 200, "{odd}");
        assert_eq!(got.header("content-encoding"), "", "{odd}");
        assert_eq!(got.body.to_vec(), file, "{odd}");
    }
    server.shutdown().await;
    // Compression off: no encoding, no Vary.
    let mut config = DeliveryConfig::new(fixture.path());
    config.compression = false;
    let server = start(config, FileReader::Pull).await;
    let mut client = Client::connect(server.local_addr()).await.unwrap();
    let got = client
        .get("/files/big.bin", &[("accept-encoding", "zstd")])
        .await
        .unwrap();
    assert_eq!((got.header("content-encoding"), got.header("vary")), ("", ""));
    assert_eq!(got.body.to_vec(), file);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_compressed_download_pins_little_and_leaves_nothing_behind() {
    let fixture = Fixture::new();
    fixture.add_big("huge.bin", 32 << 20);
    let server = start(DeliveryConfig::new(fixture.path()), FileReader::Pull).await;
    let addr = server.local_addr();
    let metrics = server.metrics().clone();
    // Warm-up, so runtime and blocking-pool threads exist before the baseline.
    let mut warm = Client::connect(addr).await.unwrap();
    warm.get("/files/small.bin", &[("accept-encoding", "zstd")])
        .await
        .unwrap();
    drop(warm);
    assert!(eventually(|| metrics.snapshot().active_connections == 0).await);
    let baseline = open_fds();
    let mut client = Client::connect(addr).await.unwrap();
    let request = http::Request::get("/files/huge.bin")
        .header("accept-encoding", "zstd")
        .body(Empty::new())
        .unwrap();
    let response = client.send(request).await.unwrap();
    assert_eq!(response.headers()["content-encoding"], "zstd");
    let mut body = response.into_body();
    assert!(body.frame().await.is_some());
    // Hold the body unread: the server stops after a bounded amount (the
    // channel slot, the write in flight, hyper's buffer, the sockets').
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = metrics.snapshot().sent_bytes;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        metrics.snapshot().sent_bytes,
        sent,
        "nothing more is sent while the client stalls"
    );
    assert!(
        sent < 8 << 20,
        "{sent} bytes of a 32 MiB file went out to a stalled client"
    );
    drop(body);
    drop(client);
    let settled = eventually(|| {
        let s = metrics.snapshot();
        s.active_transfers == 0 && s.active_connections == 0 && open_fds() <= baseline
    })
    .await;
    assert!(
        settled,
        "{:?}, {} descriptors, baseline {baseline}",
        metrics.snapshot(),
        open_fds()
    );
    assert_eq!(metrics.snapshot().aborted, 1);
    server.shutdown().await;
}
