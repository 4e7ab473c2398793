//! Deterministic, seeded input generated on the fly: a 10 GiB run needs no
//! 10 GiB file.

use std::io::{self, Write};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// `len` pseudo-random bytes from `seed`, in chunks of `chunk_size`
/// (xoshiro256++, several GB/s). The same seed, length and chunk size give
/// the same bytes; with chunk sizes that are multiples of 8 the bytes do not
/// depend on the chunk size at all.
#[derive(Debug)]
pub struct SyntheticSource {
    rng: Xoshiro256PlusPlus,
    remaining: u64,
    chunk_size: usize,
}

impl SyntheticSource {
    /// A source of `len` bytes; `chunk_size` of 0 is treated as 1.
    pub fn new(seed: u64, len: u64, chunk_size: usize) -> Self {
        Self {
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            remaining: len,
            chunk_size: chunk_size.max(1),
        }
    }

    fn next_chunk(&mut self) -> Option<Bytes> {
        if self.remaining == 0 {
            return None;
        }
        let n = usize::try_from(self.remaining).map_or(self.chunk_size, |r| r.min(self.chunk_size));
        let mut buffer = vec![0u8; n];
        self.rng.fill_bytes(&mut buffer);
        self.remaining -= n as u64;
        Some(Bytes::from(buffer))
    }
}

impl Stream for SyntheticSource {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.get_mut().next_chunk().map(Ok))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let chunks = usize::try_from(self.remaining.div_ceil(self.chunk_size as u64)).unwrap_or(usize::MAX);
        (chunks, Some(chunks))
    }
}

/// All of a synthetic source's bytes at once, for checking small runs.
pub fn synthetic_bytes(seed: u64, len: u64, chunk_size: usize) -> Vec<u8> {
    let mut source = SyntheticSource::new(seed, len, chunk_size);
    let mut all = Vec::new();
    while let Some(chunk) = source.next_chunk() {
        all.extend_from_slice(&chunk);
    }
    all
}

/// Writes a synthetic source's bytes to `path` (1 MiB chunks), for
/// file-backed runs; skips the work when a file of that length is there.
///
/// # Errors
///
/// Any I/O error creating or writing the file.
pub fn write_test_file(path: &Path, len: u64, seed: u64) -> io::Result<()> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() == len) {
        return Ok(());
    }
    let mut file = io::BufWriter::new(std::fs::File::create(path)?);
    let mut source = SyntheticSource::new(seed, len, 1 << 20);
    while let Some(chunk) = source.next_chunk() {
        file.write_all(&chunk)?;
    }
    file.into_inner().map_err(io::IntoInnerError::into_error)?.sync_all()
}

/// Writes `len` bytes of compressible text to `path`: CSV lines of a
/// seeded event log (`sequence,user-NNNNN,event,value`), which zstd at its
/// default level shrinks about fourfold; skips the work when a file of that
/// length is there.
///
/// # Errors
///
/// Any I/O error creating or writing the file.
pub fn write_text_file(path: &Path, len: u64, seed: u64) -> io::Result<()> {
    use std::fmt::Write as _;
    const EVENTS: [&str; 8] = ["view", "click", "search", "cart", "buy", "login", "logout", "share"];
    if std::fs::metadata(path).is_ok_and(|m| m.len() == len) {
        return Ok(());
    }
    let mut file = io::BufWriter::new(std::fs::File::create(path)?);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut written = 0u64;
    let mut line = String::new();
    for sequence in 0u64.. {
        if written >= len {
            break;
        }
        let r = rng.next_u64();
        line.clear();
        let event = EVENTS[usize::try_from((r >> 20) % 8).unwrap_or(0)];
        let _ = writeln!(
            line,
            "{sequence:010},user-{:05},{event},{}",
            r % 50_000,
            (r >> 32) % 1_000_000
        );
        let take = usize::try_from((len - written).min(line.len() as u64)).unwrap_or(line.len());
        file.write_all(&line.as_bytes()[..take])?;
        written += take as u64;
    }
    file.into_inner().map_err(io::IntoInnerError::into_error)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_files_have_the_length_asked_and_are_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        write_text_file(&path, 100_000, 3).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 100_000);
        assert!(text.starts_with("0000000000,user-"));
        assert!(text.lines().take(100).all(|l| l.split(',').count() == 4));
    }

    #[test]
    fn same_seed_same_bytes_and_chunking_does_not_matter() {
        let a = synthetic_bytes(7, 100_000, 4096);
        let b = synthetic_bytes(7, 100_000, 64);
        let c = synthetic_bytes(8, 100_000, 4096);
        assert_eq!(a.len(), 100_000);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn test_file_holds_the_synthetic_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        write_test_file(&path, 3_000_000, 42).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), synthetic_bytes(42, 3_000_000, 1 << 20));
    }
}
