//! Shared fixtures: a served directory with known files, a server on a
//! runtime of its own, and a model of the documented range policy.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use weir_http::{DeliveryConfig, FileReader, Metrics, Server};

/// Files in the served root: (name, length).
pub const FILES: [(&str, u64); 4] = [
    ("empty.bin", 0),
    ("one.bin", 1),
    ("small.bin", 1000),
    ("big.bin", 200_003),
];

/// Modification time of every test file: old enough for `If-Range` dates to
/// be strong validators.
pub const MTIME_SECS: u64 = 1_000_000_000;
/// `MTIME_SECS` as an HTTP date.
pub const MTIME_HTTP: &str = "Sun, 09 Sep 2001 01:46:40 GMT";

/// The deterministic content of a test file of `len` bytes.
pub fn content(len: u64) -> Vec<u8> {
    weir_harness::synthetic_bytes(len ^ 0x5eed, len, 4096)
}

/// A served directory: the [`FILES`], a subdirectory, a symlink inside, and
/// symlinks to a secret outside the root.
#[derive(Debug)]
pub struct Fixture {
    pub root: tempfile::TempDir,
    pub outside: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"secret").unwrap();
        for (name, len) in FILES {
            write_file(&root.path().join(name), &content(len));
        }
        std::fs::create_dir(root.path().join("sub")).unwrap();
        write_file(&root.path().join("sub/a b.bin"), b"spaced");
        std::os::unix::fs::symlink("small.bin", root.path().join("in-link")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("out-link")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("out-dir")).unwrap();
        Self { root, outside }
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    /// A big file of `len` bytes in the root, for transfers that take a while.
    pub fn add_big(&self, name: &str, len: u64) -> PathBuf {
        let path = self.root.path().join(name);
        weir_harness::write_test_file(&path, len, 7).unwrap();
        path
    }
}

fn write_file(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(MTIME_SECS))
        .unwrap();
}

/// Runs the async test `fn $test(path: SendPath)` once on each send path,
/// as the tests `$test::hyper` and `$test::sendfile`: every behaviour the
/// hyper path shows, the sendfile path must show too.
macro_rules! on_each_path {
    ($test:ident) => {
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn hyper() {
                super::$test(weir_http::SendPath::Hyper).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sendfile() {
                super::$test(weir_http::SendPath::Sendfile).await;
            }
        }
    };
}

/// Asserts that `sent` transfers went out by sendfile on the sendfile path
/// (so that its tests cannot pass on hyper's fallback alone), none on
/// hyper's.
pub fn assert_sendfile_transfers(path: weir_http::SendPath, metrics: &Metrics, sent: u64) {
    let expected = if path == weir_http::SendPath::Sendfile { sent } else { 0 };
    assert_eq!(metrics.snapshot().sendfile_transfers, expected, "{path:?}");
}

/// A server started on the current runtime.
pub async fn start(config: DeliveryConfig, reader: FileReader) -> Server {
    Server::bind_with(SocketAddr::from(([127, 0, 0, 1], 0)), config, reader)
        .await
        .unwrap()
}

/// A server on a runtime of its own (for proptest, whose cases are
/// synchronous): the address, the metrics, and the runtime to drive clients.
pub struct Background {
    pub runtime: tokio::runtime::Runtime,
    pub server: Option<Server>,
}

impl Background {
    pub fn start(config: DeliveryConfig, reader: FileReader) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime.block_on(start(config, reader));
        Self {
            runtime,
            server: Some(server),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().local_addr()
    }

    pub fn metrics(&self) -> Metrics {
        self.server.as_ref().unwrap().metrics().clone()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
    }
}

/// One range-spec as a client writes it.
#[derive(Debug, Clone, Copy)]
pub enum Spec {
    /// `a-b`, a <= b.
    FromTo(u64, u64),
    /// `a-`.
    From(u64),
    /// `-n`.
    Suffix(u64),
}

impl Spec {
    pub fn text(self) -> String {
        match self {
            Self::FromTo(a, b) => format!("{a}-{b}"),
            Self::From(a) => format!("{a}-"),
            Self::Suffix(n) => format!("-{n}"),
        }
    }

    /// The bytes this spec selects of a representation of `len` bytes, if
    /// satisfiable (RFC 9110 14.1.2).
    fn resolve(self, len: u64) -> Option<Range<u64>> {
        match self {
            Self::FromTo(a, b) => (a < len).then(|| a..b.min(len - 1) + 1),
            Self::From(a) => (a < len).then_some(a..len),
            Self::Suffix(0) => None,
            Self::Suffix(n) => Some(len.saturating_sub(n)..len),
        }
    }
}

/// What the documented policy answers to `Range: bytes=<specs>` on a
/// representation of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Expected {
    Full,
    Single(Range<u64>),
    Multi(Vec<Range<u64>>),
    Unsatisfiable,
}

/// The model: at most `max_ranges` specs, unsatisfiable ones dropped (416
/// when none is left; a full 200 for an empty representation with a
/// satisfiable suffix), and, sorted by start, at most one range beginning
/// inside the ranges before it.
pub fn expected(specs: &[Spec], len: u64, max_ranges: usize) -> Expected {
    if specs.len() > max_ranges {
        return Expected::Full;
    }
    if len == 0 {
        let any_suffix = specs.iter().any(|s| matches!(s, Spec::Suffix(n) if *n > 0));
        return if any_suffix {
            Expected::Full
        } else {
            Expected::Unsatisfiable
        };
    }
    let ranges: Vec<Range<u64>> = specs.iter().filter_map(|s| s.resolve(len)).collect();
    match ranges.len() {
        0 => Expected::Unsatisfiable,
        1 => Expected::Single(ranges[0].clone()),
        _ => {
            let mut sorted = ranges.clone();
            sorted.sort_by_key(|r| r.start);
            let mut reach = sorted[0].end;
            let mut overlaps = 0;
            for r in &sorted[1..] {
                if r.start < reach {
                    overlaps += 1;
                }
                reach = reach.max(r.end);
            }
            if overlaps > 1 {
                Expected::Full
            } else {
                Expected::Multi(ranges)
            }
        }
    }
}

/// The parts of a `multipart/byteranges` body: (Content-Range, bytes).
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let boundary = content_type
        .strip_prefix("multipart/byteranges; boundary=")
        .ok_or_else(|| format!("content type {content_type:?}"))?;
    let mut rest = body;
    let mut parts = Vec::new();
    let mut delimiter = format!("--{boundary}").into_bytes();
    loop {
        rest = rest
            .strip_prefix(delimiter.as_slice())
            .ok_or_else(|| format!("expected a delimiter at {:?}", &rest[..rest.len().min(40)]))?;
        if let Some(end) = rest.strip_prefix(b"--\r\n") {
            return if end.is_empty() {
                Ok(parts)
            } else {
                Err("bytes after the close delimiter".into())
            };
        }
        rest = rest.strip_prefix(b"\r\n").ok_or("no CRLF after a delimiter")?;
        let head_end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("unterminated part head")?;
        let head = std::str::from_utf8(&rest[..head_end]).map_err(|e| e.to_string())?;
        rest = &rest[head_end + 4..];
        let content_range = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Range: "))
            .ok_or("part without Content-Range")?
            .to_owned();
        let (first, last) = content_range
            .strip_prefix("bytes ")
            .and_then(|r| r.split_once('/'))
            .and_then(|(r, _)| r.split_once('-'))
            .ok_or("bad part Content-Range")?;
        let n = (last.parse::<usize>().map_err(|e| e.to_string())? + 1)
            .checked_sub(first.parse::<usize>().map_err(|e| e.to_string())?)
            .ok_or("reversed part range")?;
        if rest.len() < n {
            return Err("part shorter than its Content-Range".into());
        }
        parts.push((content_range, rest[..n].to_vec()));
        rest = &rest[n..];
        delimiter = format!("\r\n--{boundary}").into_bytes();
    }
}

/// Waits up to 20 s for `condition`; the outcome is the condition's last value.
pub async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}
