//! Uploads: exact commits with digests, refusals before the body (401, 405,
//! 413, 415, 503), aborts mid-body (chunked overrun, digest mismatch, idle,
//! hang-ups at random points) that leave no file, no temporary file and no
//! descriptor, and concurrent uploads of one name that readers never see
//! torn.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::stream;
use sha2::Digest as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_harness::open_fds;
use weir_http::client::{Client, upload};
use weir_http::{DeliveryConfig, FileReader, Server, UploadConfig, UploadOutcome};

use crate::support::{Fixture, content, eventually, start};

const TOKEN: &str = "test-token-0123456789";
const AUTH: (&str, &str) = ("authorization", "Bearer test-token-0123456789");

fn writable(root: &Path, uploads: UploadConfig) -> DeliveryConfig {
    DeliveryConfig::new(root).with_uploads(uploads)
}

async fn server(fixture: &Fixture) -> Server {
    server_with(fixture, UploadConfig::new(TOKEN)).await
}

async fn server_with(fixture: &Fixture, uploads: UploadConfig) -> Server {
    start(writable(fixture.path(), uploads), FileReader::Pull).await
}

fn digest_header(bytes: &[u8]) -> String {
    let digest = sha2::Sha256::digest(bytes);
    format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(digest))
}

fn chunks(bytes: Vec<u8>, size: usize) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send + 'static {
    let bytes = Bytes::from(bytes);
    let pieces: Vec<io::Result<Bytes>> = (0..bytes.len())
        .step_by(size.max(1))
        .map(|at| Ok(bytes.slice(at..(at + size).min(bytes.len()))))
        .collect();
    stream::iter(pieces)
}

/// Names in `dir` (not recursing), sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn temp_files(dir: &Path) -> Vec<String> {
    names(dir).into_iter().filter(|n| n.ends_with(".weir-tmp")).collect()
}

/// Sends `head` (and `body`) on a raw socket, then reads until the server
/// closes or `until` appears; returns what was read.
async fn raw(addr: std::net::SocketAddr, head: &str, body: &[u8], until: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    if !body.is_empty() {
        stream.write_all(body).await.unwrap();
    }
    read_until(&mut stream, until).await
}

async fn read_until(stream: &mut TcpStream, until: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
            if String::from_utf8_lossy(&seen).contains(until) {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("the server answered");
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_access_is_off_unless_configured_and_needs_the_token() {
    let fixture = Fixture::new();
    let read_only = start(DeliveryConfig::new(fixture.path()), FileReader::Pull).await;
    let body = content(1000);
    let refused = upload(
        read_only.local_addr(),
        "PUT",
        "/files/new.bin",
        &[AUTH],
        chunks(body.clone(), 100),
        Some(1000),
    )
    .await
    .unwrap();
    assert_eq!(refused.status, 405);
    assert_eq!(refused.header("allow"), "GET, HEAD");
    read_only.shutdown().await;

    let server = server(&fixture).await;
    let addr = server.local_addr();
    for headers in [
        vec![],
        vec![("authorization", "Bearer wrong-token-0123456789")],
        vec![("authorization", "Basic dGVzdDp0ZXN0")],
    ] {
        let refused = upload(
            addr,
            "PUT",
            "/files/new.bin",
            &headers,
            chunks(body.clone(), 100),
            Some(1000),
        )
        .await
        .unwrap();
        assert_eq!(refused.status, 401, "{headers:?}");
        assert_eq!(refused.header("www-authenticate"), "Bearer realm=\"weir\"");
    }
    assert!(!fixture.path().join("new.bin").exists());
    let created = upload(
        addr,
        "POST",
        "/files/new.bin",
        &[AUTH],
        chunks(body.clone(), 100),
        Some(1000),
    )
    .await
    .unwrap();
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(std::fs::read(fixture.path().join("new.bin")).unwrap(), body);
    let metrics = server.metrics().clone();
    assert_eq!(metrics.uploads(UploadOutcome::RefusedUnauthorized), 3);
    assert_eq!(metrics.uploads(UploadOutcome::Committed), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_commits_exactly_with_its_digest_checked() {
    const LEN: u64 = 1 << 30;
    const CHUNK: usize = 256 << 10;
    let fixture = Fixture::new();
    let server = server_with(&fixture, UploadConfig::new(TOKEN).with_max_bytes(LEN)).await;
    // One 256 KiB block of synthetic bytes, repeated with its index stamped
    // in: 1 GiB without holding 1 GiB.
    let block = content(CHUNK as u64);
    let piece = move |i: u64| {
        let mut bytes = block.clone();
        bytes[..8].copy_from_slice(&i.to_le_bytes());
        Bytes::from(bytes)
    };
    let blocks = LEN / CHUNK as u64;
    let mut hasher = sha2::Sha256::new();
    for i in 0..blocks {
        hasher.update(piece(i));
    }
    let digest = hasher.finalize();
    let header = format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(digest));
    let source = stream::iter((0..blocks).map(move |i| Ok(piece(i))));
    let done = upload(
        server.local_addr(),
        "PUT",
        "/files/gib.bin",
        &[AUTH, ("content-digest", &header)],
        source,
        Some(LEN),
    )
    .await
    .unwrap();
    assert_eq!(done.status, 201, "{:?}", done.body);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let reply = String::from_utf8_lossy(&done.body).into_owned();
    assert!(reply.contains(&format!("\"bytes\":{LEN}")), "{reply}");
    assert!(reply.contains(&hex), "{reply}");
    assert_eq!(done.header("repr-digest"), header);
    // The committed file hashes to the same digest.
    let path = fixture.path().join("gib.bin");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), LEN);
    let on_disk = tokio::task::spawn_blocking(move || {
        use std::io::Read as _;
        let mut file = std::fs::File::open(path).unwrap();
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).unwrap();
            if n == 0 {
                break hasher.finalize();
            }
            hasher.update(&buf[..n]);
        }
    })
    .await
    .unwrap();
    assert_eq!(on_disk, digest);
    assert!(temp_files(fixture.path()).is_empty());
    assert_eq!(server.metrics().snapshot().received_bytes, LEN);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_content_length_gets_413_before_the_body() {
    let fixture = Fixture::new();
    let server = server_with(&fixture, UploadConfig::new(TOKEN).with_max_bytes(1000)).await;
    let addr = server.local_addr();
    // No body is ever sent: the answer comes from the headers alone, and an
    // `Expect: 100-continue` client is never told to go on.
    for expect in ["", "expect: 100-continue\r\n"] {
        let head = format!(
            "PUT /files/large.bin HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ncontent-length: 1001\r\n{expect}\r\n"
        );
        let answer = raw(addr, &head, b"", "\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(!answer.contains("100 Continue"), "{answer}");
    }
    assert!(!fixture.path().join("large.bin").exists());
    assert_eq!(server.metrics().uploads(UploadOutcome::RefusedTooLarge), 2);
    assert_eq!(server.metrics().snapshot().received_bytes, 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_100_continue_is_honoured() {
    let fixture = Fixture::new();
    let server = server(&fixture).await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    let head = format!(
        "PUT /files/go.bin HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let interim = read_until(&mut stream, "\r\n\r\n").await;
    assert!(interim.starts_with("HTTP/1.1 100 Continue"), "{interim}");
    stream.write_all(b"hello").await.unwrap();
    let answer = read_until(&mut stream, "}\n").await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert_eq!(std::fs::read(fixture.path().join("go.bin")).unwrap(), b"hello");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_past_the_limit_is_aborted_with_413() {
    let fixture = Fixture::new();
    let server = server_with(&fixture, UploadConfig::new(TOKEN).with_max_bytes(10_000)).await;
    let head = format!(
        "PUT /files/over.bin HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    // 11 chunks of 1,000 bytes: the 11th passes the limit; the client then
    // waits for the answer.
    let mut body = Vec::new();
    for _ in 0..11 {
        body.extend_from_slice(b"3e8\r\n");
        body.extend_from_slice(&[b'x'; 1000]);
        body.extend_from_slice(b"\r\n");
    }
    let answer = raw(server.local_addr(), &head, &body, "bytes\n").await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("limit of 10000 bytes"), "{answer}");
    let metrics = server.metrics().clone();
    assert!(eventually(|| metrics.snapshot().active_uploads == 0).await);
    assert_eq!(metrics.uploads(UploadOutcome::TooLarge), 1);
    assert_eq!(names(fixture.path()).iter().filter(|n| n.contains("over")).count(), 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_past_the_concurrency_limit_get_503_with_retry_after() {
    let fixture = Fixture::new();
    let server = server_with(&fixture, UploadConfig::new(TOKEN).with_max_concurrent(2)).await;
    let addr = server.local_addr();
    let metrics = server.metrics().clone();
    // Two uploads hold their slots: headers and half their bodies sent.
    let mut held = Vec::new();
    for i in 0..2 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "PUT /files/held{i}.bin HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ncontent-length: 10\r\n\r\nhello"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        held.push(stream);
    }
    assert!(eventually(|| metrics.snapshot().active_uploads == 2).await);
    let one_byte = || async {
        upload(
            addr,
            "PUT",
            "/files/third.bin",
            &[AUTH],
            chunks(b"x".to_vec(), 1),
            Some(1),
        )
        .await
        .unwrap()
    };
    let busy = one_byte().await;
    assert_eq!(busy.status, 503);
    assert_eq!(busy.header("retry-after"), "1");
    for stream in &mut held {
        stream.write_all(b"world").await.unwrap();
        let answer = read_until(stream, "}\n").await;
        assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    }
    assert_eq!(std::fs::read(fixture.path().join("held0.bin")).unwrap(), b"helloworld");
    assert!(!fixture.path().join("third.bin").exists());
    assert_eq!(metrics.uploads(UploadOutcome::RefusedBusy), 1);
    // The slots are free again.
    let later = one_byte().await;
    assert_eq!(later.status, 201);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_cut_offs_leave_no_file_no_temp_file_and_no_descriptor() {
    const LEN: usize = 256 << 10;
    let fixture = Fixture::new();
    std::fs::create_dir(fixture.path().join("in")).unwrap();
    let dir = fixture.path().join("in");
    // Slots for every client: a batch may start while the last one's aborts
    // still hold theirs.
    let server = server_with(&fixture, UploadConfig::new(TOKEN).with_max_concurrent(250)).await;
    let addr = server.local_addr();
    let metrics = server.metrics().clone();
    // Warm-up: one complete upload (and removal), so runtime threads and
    // lazily opened descriptors exist before the baseline.
    let warm = upload(
        addr,
        "PUT",
        "/files/in/warm.bin",
        &[AUTH],
        chunks(content(LEN as u64), 8192),
        Some(LEN as u64),
    )
    .await
    .unwrap();
    assert_eq!(warm.status, 201);
    std::fs::remove_file(dir.join("warm.bin")).unwrap();
    assert!(eventually(|| metrics.snapshot().active_uploads == 0).await);
    let baseline = open_fds();
    let body = Arc::new(content(LEN as u64));
    let mut clients = Vec::new();
    for i in 0..200u64 {
        // Cut points spread over the whole body (never its last byte),
        // half of them announced by Content-Length, half chunked.
        let cut = (i.wrapping_mul(2_654_435_761) % (LEN as u64 - 1)) as usize;
        let body = Arc::clone(&body);
        clients.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let head = if i % 2 == 0 {
                format!("PUT /files/in/cut{i}.bin HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ncontent-length: {LEN}\r\n\r\n")
            } else {
                format!("PUT /files/in/cut{i}.bin HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ntransfer-encoding: chunked\r\n\r\n{LEN:x}\r\n")
            };
            stream.write_all(head.as_bytes()).await.unwrap();
            let _ = stream.write_all(&body[..cut]).await;
            // Give the server a moment to be mid-body, then hang up.
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(stream);
        }));
        if clients.len() == 50 {
            for client in clients.drain(..) {
                client.await.unwrap();
            }
        }
    }
    for client in clients {
        client.await.unwrap();
    }
    let settled = eventually(|| {
        let s = metrics.snapshot();
        s.active_uploads == 0 && s.uploads_aborted == 200 && open_fds() <= baseline && names(&dir).is_empty()
    })
    .await;
    let snapshot = metrics.snapshot();
    assert!(
        settled,
        "{snapshot:?}; {} descriptors open, baseline {baseline}; left: {:?}; outcomes {:?}",
        open_fds(),
        names(&dir),
        UploadOutcome::ALL.map(|o| (o.as_str(), metrics.uploads(o)))
    );
    assert_eq!(metrics.uploads(UploadOutcome::ClientGone), 200);
    assert_eq!(snapshot.uploads_committed, 1);
    assert!(
        names(&dir).is_empty(),
        "no file and no temporary file: {:?}",
        names(&dir)
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_of_one_name_are_atomic_for_readers() {
    const LEN: u64 = 2 << 20;
    let fixture = Fixture::new();
    let server = server(&fixture).await;
    let addr = server.local_addr();
    let bodies: Vec<Vec<u8>> = (0..6u8).map(|i| vec![b'a' + i; LEN as usize]).collect();
    // Something is there before the first commit.
    std::fs::write(fixture.path().join("shared.bin"), &bodies[0]).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let reader = {
        let stop = stop.clone();
        let bodies = bodies.clone();
        tokio::spawn(async move {
            let mut client = Client::connect(addr).await.unwrap();
            let mut reads = 0u32;
            while !stop.is_cancelled() {
                let got = client.get("/files/shared.bin", &[]).await.unwrap();
                assert_eq!(got.status, 200);
                assert!(
                    bodies.iter().any(|b| b[..] == got.body[..]),
                    "a torn read: {} bytes",
                    got.body.len()
                );
                reads += 1;
            }
            reads
        })
    };
    let uploads: Vec<_> = bodies
        .iter()
        .map(|body| {
            let body = body.clone();
            tokio::spawn(async move {
                upload(
                    addr,
                    "PUT",
                    "/files/shared.bin",
                    &[AUTH],
                    chunks(body, 16 << 10),
                    Some(LEN),
                )
                .await
                .unwrap()
                .status
            })
        })
        .collect();
    for upload in uploads {
        assert_eq!(upload.await.unwrap(), 200, "each one replaced the file");
    }
    stop.cancel();
    assert!(reader.await.unwrap() > 0);
    let last = std::fs::read(fixture.path().join("shared.bin")).unwrap();
    assert!(bodies.contains(&last));
    assert!(temp_files(fixture.path()).is_empty());
    assert_eq!(server.metrics().uploads(UploadOutcome::Committed), 6);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_uploads_get_a_clear_status_and_leave_nothing() {
    let fixture = Fixture::new();
    let mut uploads = UploadConfig::new(TOKEN);
    uploads.idle_timeout = Duration::from_millis(300);
    let server = start(writable(fixture.path(), uploads), FileReader::Pull).await;
    let addr = server.local_addr();
    let before = names(fixture.path());
    let body = content(5000);
    let send = |path: &'static str, headers: Vec<(&'static str, String)>| {
        let body = body.clone();
        async move {
            let mut all: Vec<(&str, &str)> = vec![AUTH];
            all.extend(headers.iter().map(|(n, v)| (*n, v.as_str())));
            upload(addr, "PUT", path, &all, chunks(body, 1000), Some(5000))
                .await
                .unwrap()
        }
    };
    let wrong = digest_header(b"something else");
    // (path, extra headers, status, what the body says)
    type Case = (&'static str, Vec<(&'static str, String)>, u16, &'static str);
    let cases: Vec<Case> = vec![
        (
            "/files/d.bin",
            vec![("content-digest", wrong.clone())],
            400,
            "digest mismatch",
        ),
        ("/files/d.bin", vec![("repr-digest", wrong)], 400, "digest mismatch"),
        (
            "/files/d.bin",
            vec![("content-digest", "sha-256=:bm90:".into())],
            400,
            "base64 32-byte",
        ),
        (
            "/files/d.bin",
            vec![("content-digest", "sha-256".into())],
            400,
            "algorithm=:base64:",
        ),
        (
            "/files/d.bin",
            vec![("content-encoding", "gzip".into())],
            415,
            "identity",
        ),
        ("/files/..%2fescape.bin", vec![], 404, "names no file"),
        ("/files/out-dir/escape.bin", vec![], 403, "leaves the served root"),
        ("/files/missing/x.bin", vec![], 409, "does not exist"),
        ("/files/sub", vec![], 409, "directory"),
        ("/files/.x.1.weir-tmp", vec![], 403, "temporary"),
        ("/files/", vec![], 404, "names no file"),
    ];
    for (path, headers, code, says) in cases {
        let answer = send(path, headers.clone()).await;
        let text = String::from_utf8_lossy(&answer.body).into_owned();
        assert_eq!(answer.status, code, "{path} {headers:?}: {text}");
        assert!(text.contains(says), "{path} {headers:?}: {text}");
    }
    assert!(!fixture.outside.path().join("escape.bin").exists());
    // A matching digest commits.
    let right = digest_header(&body);
    let ok = send(
        "/files/d.bin",
        vec![("content-digest", right.clone()), ("repr-digest", right)],
    )
    .await;
    assert_eq!(ok.status, 201);
    std::fs::remove_file(fixture.path().join("d.bin")).unwrap();
    // Oversize headers: hyper's limit, before any handler runs.
    let huge = "x".repeat(64 << 10);
    let answer = raw(
        addr,
        &format!("PUT /files/h.bin HTTP/1.1\r\nhost: x\r\nx-huge: {huge}\r\ncontent-length: 1\r\n\r\n"),
        b"",
        "\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // A body that stops sending: 408 after the idle timeout.
    let head = format!(
        "PUT /files/idle.bin HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ncontent-length: 10\r\n\r\n"
    );
    let answer = raw(addr, &head, b"abc", "\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let metrics = server.metrics().clone();
    assert!(eventually(|| metrics.snapshot().active_uploads == 0).await);
    assert_eq!(metrics.uploads(UploadOutcome::DigestMismatch), 2);
    assert_eq!(metrics.uploads(UploadOutcome::IdleTimeout), 1);
    assert_eq!(names(fixture.path()), before, "nothing added, nothing left behind");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_are_uploaded_through_the_object_store_sink_or_not_at_all() {
    use object_store::ObjectStore;
    use object_store::local::LocalFileSystem;
    let fixture = Fixture::new();
    let bucket = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(bucket.path()).unwrap());
    let config = writable(fixture.path(), UploadConfig::new(TOKEN)).with_objects(store);
    let server = start(config, FileReader::Pull).await;
    let addr = server.local_addr();
    let body = content(300_001);
    let created = upload(
        addr,
        "PUT",
        "/objects/dir/obj.bin",
        &[AUTH, ("repr-digest", &digest_header(&body))],
        chunks(body.clone(), 7000),
        Some(300_001),
    )
    .await
    .unwrap();
    assert_eq!(created.status, 201, "{:?}", created.body);
    let mut client = Client::connect(addr).await.unwrap();
    let fetched = client.get("/objects/dir/obj.bin", &[]).await.unwrap();
    assert_eq!(fetched.body.to_vec(), body);
    // A digest mismatch and a hang-up mid-body leave no object.
    let wrong = upload(
        addr,
        "PUT",
        "/objects/dir/bad.bin",
        &[AUTH, ("repr-digest", &digest_header(b"x"))],
        chunks(body.clone(), 7000),
        Some(300_001),
    )
    .await
    .unwrap();
    assert_eq!(wrong.status, 400);
    let head = format!(
        "PUT /objects/dir/cut.bin HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ncontent-length: 300001\r\n\r\n"
    );
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..100_000]).await.unwrap();
    drop(stream);
    let metrics = server.metrics().clone();
    assert!(
        eventually(|| metrics.uploads(UploadOutcome::ClientGone) == 1 && metrics.snapshot().active_uploads == 0).await
    );
    assert_eq!(client.get("/objects/dir/bad.bin", &[]).await.unwrap().status, 404);
    assert_eq!(client.get("/objects/dir/cut.bin", &[]).await.unwrap().status, 404);
    assert_eq!(names(&bucket.path().join("dir")), vec!["obj.bin".to_owned()]);
    server.shutdown().await;
}
