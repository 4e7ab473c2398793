//! Helpers shared by the integration tests.

use std::io;

use bytes::Bytes;
use futures_util::Stream;
use futures_util::stream;

/// `data` as a source of chunks of `chunk` bytes.
pub fn chunked(data: &[u8], chunk: usize) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let chunks: Vec<io::Result<Bytes>> = data.chunks(chunk).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    stream::iter(chunks)
}

/// Newline-delimited text records of varying length, `len` bytes in all.
pub fn records(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut n = 0u64;
    while out.len() < len {
        let width = (n * 7919 % 97) as usize;
        out.extend_from_slice(format!("record {n} {}\n", "x".repeat(width)).as_bytes());
        n += 1;
    }
    out.truncate(len);
    out
}

/// SHA-256 of `data`, in hex, by the `sha2` crate directly.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}
