//! Request heads as raw bytes on a socket, on both send paths: pipelined
//! requests, HTTP/1.0, `Connection: close`, a head split across writes, an
//! oversized head and a slowloris client all get what hyper gives them; and
//! the same requests on both paths get the same status, headers and body.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_http::{DeliveryConfig, FileReader, SendPath};

use crate::support::{Fixture, content, start};

/// Everything the server sends until it closes the connection (at most
/// 10 s).
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server closed the connection")
        .unwrap();
    answer
}

/// Sends `request` on a fresh connection and reads until the server closes.
async fn answer_to(addr: std::net::SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    until_closed(&mut stream).await
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).filter(|w| *w == needle).count()
}

async fn raw_requests_are_answered_as_hyper_answers_them(path: SendPath) {
    let fixture = Fixture::new();
    let server = start(
        DeliveryConfig::new(fixture.path()).with_send_path(path),
        FileReader::Pull,
    )
    .await;
    let addr = server.local_addr();
    let small = content(1000);

    // Keep-alive, a head split across two writes, then `Connection: close`.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /files/small.bin HTTP/1.1\r\nHo").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(b"st: x\r\nRange: bytes=0-9\r\n\r\n").await.unwrap();
    let mut first = vec![0u8; 1];
    stream.read_exact(&mut first).await.unwrap();
    stream
        .write_all(b"HEAD /files/small.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /files/small.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = first;
    answer.extend(until_closed(&mut stream).await);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 206 Partial Content\r\n"), "{text}");
    assert_eq!(count(&answer, b"HTTP/1.1 206 "), 1, "{text}");
    assert_eq!(count(&answer, b"HTTP/1.1 200 "), 2, "{text}");
    assert_eq!(count(&answer, b"content-length: 1000\r\n"), 2, "{text}");
    assert!(answer.ends_with(&small), "the last body is the file");
    assert!(text.contains("connection: close\r\n"), "{text}");

    // HTTP/1.0 and pipelined requests in one write.
    let answer = answer_to(
        addr,
        b"GET /files/one.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /files/one.bin HTTP/1.0\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&answer);
    assert_eq!(count(&answer, b"HTTP/1.1 200 OK\r\n"), 1, "{text}");
    assert_eq!(count(&answer, b"HTTP/1.0 200 OK\r\n"), 1, "{text}");

    // A head larger than the connection buffer: hyper's 431.
    let huge = format!(
        "GET /files/one.bin HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(64 << 10)
    );
    // The server may refuse before the whole head is written.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(huge.as_bytes()).await;
    let answer = until_closed(&mut stream).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    // Garbage: hyper's 400.
    let answer = answer_to(addr, b"GET /files/one.bin HTTP/1.1\r\nHo st\r\n\r\n").await;
    assert!(
        answer.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    server.shutdown().await;
}
on_each_path!(raw_requests_are_answered_as_hyper_answers_them);

async fn a_head_that_never_ends_is_closed_after_the_header_timeout(path: SendPath) {
    let fixture = Fixture::new();
    let mut config = DeliveryConfig::new(fixture.path()).with_send_path(path);
    config.header_read_timeout = Duration::from_millis(300);
    let server = start(config, FileReader::Pull).await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream.write_all(b"GET /files/one.bin HTTP/1.1\r\n").await.unwrap();
    for _ in 0..3 {
        // A header line now and then, never the end of the head.
        tokio::time::sleep(Duration::from_millis(50)).await;
        if stream.write_all(b"X-Slow: 1\r\n").await.is_err() {
            break;
        }
    }
    let answer = until_closed(&mut stream).await;
    assert!(
        !answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        crate::support::eventually(|| server.metrics().snapshot().active_connections == 0).await,
        "{:?}",
        server.metrics().snapshot()
    );
    server.shutdown().await;
}
on_each_path!(a_head_that_never_ends_is_closed_after_the_header_timeout);

/// One exchange on a fresh connection: the status line, the header lines
/// but `date` in sorted order (hyper moves some), the body.
async fn exchange(addr: std::net::SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = until_closed(&mut stream).await;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("").to_owned();
    let mut fields: Vec<&str> = lines.filter(|line| !line.starts_with("date: ")).collect();
    fields.sort_unstable();
    format!("{status}\r\n{}\r\n\r\n{body}", fields.join("\r\n"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_paths_give_the_same_status_headers_and_body() {
    let fixture = Fixture::new();
    let config = |path| DeliveryConfig::new(fixture.path()).with_send_path(path);
    let hyper = start(config(SendPath::Hyper), FileReader::Pull).await;
    let sendfile = start(config(SendPath::Sendfile), FileReader::Pull).await;
    let etag = exchange(
        hyper.local_addr(),
        "HEAD /files/small.bin HTTP/1.1\r\nConnection: close\r\n\r\n",
    )
    .await
    .lines()
    .find_map(|l| l.strip_prefix("etag: ").map(str::to_owned))
    .unwrap();
    let cases = [
        ("GET /files/small.bin", String::new()),
        ("HEAD /files/small.bin", String::new()),
        ("GET /files/empty.bin", String::new()),
        ("GET /files/big.bin", "Range: bytes=100-199\r\n".to_owned()),
        ("GET /files/big.bin", "Range: bytes=-5\r\n".to_owned()),
        ("GET /files/small.bin", "Range: bytes=5000-\r\n".to_owned()),
        ("GET /files/small.bin", format!("If-None-Match: {etag}\r\n")),
        (
            "GET /files/small.bin",
            format!("If-Range: {etag}\r\nRange: bytes=1-2\r\n"),
        ),
        ("GET /files/small.bin", "If-Match: \"other\"\r\n".to_owned()),
        ("GET /files/small.bin", "Accept-Encoding: identity\r\n".to_owned()),
        ("GET /files/missing", String::new()),
        ("GET /files/out-link", String::new()),
        ("GET /files/sub", String::new()),
    ];
    for (line, headers) in &cases {
        let request = format!("{line} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n");
        let (a, b) = (
            exchange(hyper.local_addr(), &request).await,
            exchange(sendfile.local_addr(), &request).await,
        );
        assert!(a.starts_with("HTTP/1.1 "), "{request}: {a}");
        assert_eq!(a, b, "{request}");
    }
    // Every case with a body went out by sendfile on the sendfile server.
    assert_eq!(sendfile.metrics().snapshot().sendfile_transfers, 5);
    // A connection is counted closed just after its socket closes.
    for server in [&hyper, &sendfile] {
        let metrics = server.metrics();
        assert!(crate::support::eventually(|| metrics.snapshot().active_connections == 0).await);
    }
    assert_eq!(hyper.metrics().snapshot(), {
        let mut same = sendfile.metrics().snapshot();
        same.sendfile_transfers = 0;
        same
    });
    hyper.shutdown().await;
    sendfile.shutdown().await;
}
