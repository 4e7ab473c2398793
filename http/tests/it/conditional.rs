//! HEAD, validators and `304 Not Modified` over real requests.

use weir_http::client::Client;
use weir_http::{DeliveryConfig, FileReader, SendPath};

use crate::support::{Fixture, MTIME_HTTP, content, start};

async fn head_describes_the_file_without_a_body(path: SendPath) {
    let fixture = Fixture::new();
    let server = start(
        DeliveryConfig::new(fixture.path()).with_send_path(path),
        FileReader::Pull,
    )
    .await;
    let mut client = Client::connect(server.local_addr()).await.unwrap();
    let head = client.fetch("HEAD", "/files/big.bin", &[]).await.unwrap();
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), "200003");
    assert_eq!(head.header("accept-ranges"), "bytes");
    assert_eq!(head.header("last-modified"), MTIME_HTTP);
    assert!(head.header("etag").starts_with('"'));
    let get = client.get("/files/big.bin", &[]).await.unwrap();
    assert_eq!(get.header("etag"), head.header("etag"));
    assert_eq!(get.body.to_vec(), content(200_003));
    let empty = client.get("/files/empty.bin", &[]).await.unwrap();
    assert_eq!((empty.status.as_u16(), empty.body.len()), (200, 0));
    let spaced = client.get("/files/sub/a%20b.bin", &[]).await.unwrap();
    assert_eq!(&spaced.body[..], b"spaced");
    assert_eq!(server.metrics().snapshot().completed, 3);
    // The empty file's body is no transfer to send.
    crate::support::assert_sendfile_transfers(path, server.metrics(), 2);
    server.shutdown().await;
}
on_each_path!(head_describes_the_file_without_a_body);

async fn a_fresh_validator_gets_304_and_a_changed_file_does_not(path: SendPath) {
    let fixture = Fixture::new();
    let server = start(
        DeliveryConfig::new(fixture.path()).with_send_path(path),
        FileReader::Pull,
    )
    .await;
    let mut client = Client::connect(server.local_addr()).await.unwrap();
    let first = client.get("/files/small.bin", &[]).await.unwrap();
    let etag = first.header("etag").to_owned();
    let cached = client
        .get("/files/small.bin", &[("if-none-match", &etag)])
        .await
        .unwrap();
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());
    assert_eq!(cached.header("etag"), etag);
    assert_eq!(cached.header("last-modified"), MTIME_HTTP);
    let head = client
        .fetch(
            "HEAD",
            "/files/small.bin",
            &[("if-modified-since", MTIME_HTTP.as_bytes())],
        )
        .await
        .unwrap();
    assert_eq!(head.status, 304);

    std::fs::write(fixture.path().join("small.bin"), b"changed").unwrap();
    let changed = client
        .get("/files/small.bin", &[("if-none-match", &etag)])
        .await
        .unwrap();
    assert_eq!(changed.status, 200);
    assert_eq!(&changed.body[..], b"changed");
    assert_ne!(changed.header("etag"), etag);
    let resumed = client
        .get("/files/small.bin", &[("if-range", &etag), ("range", "bytes=2-")])
        .await
        .unwrap();
    assert_eq!((resumed.status.as_u16(), &resumed.body[..]), (200, &b"changed"[..]));
    server.shutdown().await;
}
on_each_path!(a_fresh_validator_gets_304_and_a_changed_file_does_not);
