//! Paths cannot leave the served root: `..`, encoded separators and dots,
//! and symlinks out are refused (404 or 403), over the hyper client and
//! over raw request lines that no client library would normalize.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_http::client::Client;
use weir_http::{DeliveryConfig, FileReader, SendPath};

use crate::support::{Fixture, start};

async fn raw_status(addr: std::net::SocketAddr, target: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(!text.contains("secret"), "{target} leaked: {text}");
    text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

async fn nothing_outside_the_root_can_be_reached(path: SendPath) {
    for reader in [FileReader::Pull, FileReader::ReadAhead] {
        let fixture = Fixture::new();
        let server = start(DeliveryConfig::new(fixture.path()).with_send_path(path), reader).await;
        let addr = server.local_addr();
        let mut client = Client::connect(addr).await.unwrap();
        let outside = fixture.outside.path().file_name().unwrap().to_str().unwrap().to_owned();
        let not_found = [
            "/files/".to_owned(),
            "/files/..".to_owned(),
            "/files/../secret".to_owned(),
            format!("/files/../{outside}/secret"),
            "/files/%2e%2e/secret".to_owned(),
            "/files/%2E%2E/%2E%2E/etc/passwd".to_owned(),
            "/files/sub/..%2f..%2fsecret".to_owned(),
            "/files/sub%2f..%2f..%2fetc%2fpasswd".to_owned(),
            "/files/..%5c..%5csecret".to_owned(),
            "/files/sub/%2e%2e/small.bin".to_owned(),
            "/files//etc/passwd".to_owned(),
            "/files/%2fetc%2fpasswd".to_owned(),
            "/files/small.bin%00.txt".to_owned(),
            "/files/./small.bin".to_owned(),
            "/files/sub".to_owned(),
            "/files/missing".to_owned(),
            "/files/small.bin/".to_owned(),
            "/files/%ff".to_owned(),
            "/etc/passwd".to_owned(),
            "/".to_owned(),
        ];
        for path in &not_found {
            let fetched = client.get(path, &[]).await.unwrap();
            assert_eq!(fetched.status, 404, "{path}");
            assert!(fetched.body.is_empty(), "{path}");
        }
        for path in ["/files/out-link", "/files/out-dir/secret"] {
            let fetched = client.get(path, &[]).await.unwrap();
            assert_eq!(fetched.status, 403, "{path}");
            assert!(fetched.body.is_empty(), "{path}");
        }
        let inside = client.get("/files/in-link", &[]).await.unwrap();
        assert_eq!((inside.status.as_u16(), inside.body.len()), (200, 1000));
        for target in [
            "/files/../secret",
            "/files/sub/../../secret",
            "/files/%2e%2e/secret",
            "/files/out-link",
        ] {
            let status = raw_status(addr, target).await;
            assert!(status == 404 || status == 403, "{target}: {status}");
        }
        // Absolute-form targets are not a way around the prefix either.
        assert_eq!(raw_status(addr, "http://x/files/../secret").await, 404);
        server.shutdown().await;
    }
}
on_each_path!(nothing_outside_the_root_can_be_reached);
