//! Checksum transforms: pass every chunk through unchanged and report the
//! digest of the whole stream as the stage's summary.

use std::fmt::Write as _;

use bytes::Bytes;
use sha2::Digest as _;
use weir::{BoxError, StageReport, Transform};

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a `String` cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// The hex digest reported by the first checksum stage for `algorithm`
/// (`"sha256"`, `"blake3"` or `"crc32c"`), from a report's
/// [`stages`](weir::IngestReport::stages).
///
/// `None` when no such stage ran to the end of its input: a checksum stage
/// reports a digest only after `finish`, so a failed ingestion has none.
pub fn digest_in<'a>(stages: &'a [StageReport], algorithm: &str) -> Option<&'a str> {
    stages.iter().find_map(|stage| {
        let summary = stage.summary.as_deref()?;
        let (name, digest) = summary.split_once(':')?;
        (name == algorithm).then_some(digest)
    })
}

/// What differs between the checksum transforms: the running state of one
/// algorithm. [`Checksum`] does the rest (pass-through, summary, offload).
pub trait Algorithm: Default + Send + 'static {
    /// The stage's name, and the summary's prefix.
    const NAME: &'static str;

    /// Feeds the next bytes of the stream.
    fn update(&mut self, bytes: &[u8]);

    /// The digest of everything fed, as lowercase hex; the state is spent.
    fn finish_hex(&mut self) -> String;
}

/// A pass-through transform computing `A` over the whole stream.
///
/// Summary: `"<name>:<hex digest>"`, only once the input is complete (after
/// `finish`), so a failed ingestion reports none. Use the aliases
/// [`Sha256`], [`Blake3`] and [`Crc32c`].
#[derive(Debug, Clone, Default)]
pub struct Checksum<A> {
    state: A,
    digest: Option<String>,
    offload: bool,
}

impl<A: Algorithm> Checksum<A> {
    /// A fresh checksum, running inline on the runtime's worker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs the stage off the runtime's workers (see
    /// [`Transform::cpu_heavy`]); worth it only for large chunks.
    #[must_use]
    pub fn offload(mut self, offload: bool) -> Self {
        self.offload = offload;
        self
    }
}

impl<A: Algorithm> Transform for Checksum<A> {
    fn name(&self) -> &str {
        A::NAME
    }

    fn transform(&mut self, chunk: Bytes, out: &mut Vec<Bytes>) -> Result<(), BoxError> {
        self.state.update(&chunk);
        out.push(chunk);
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<Bytes>) -> Result<(), BoxError> {
        self.digest = Some(self.state.finish_hex());
        Ok(())
    }

    fn cpu_heavy(&self) -> bool {
        self.offload
    }

    fn summary(&self) -> Option<String> {
        self.digest.as_ref().map(|d| format!("{}:{d}", A::NAME))
    }
}

/// SHA-256 state, through the `sha2` crate (which uses the CPU's SHA
/// extensions when it has them, detected at run time).
#[derive(Debug, Clone, Default)]
pub struct Sha256State(sha2::Sha256);

impl Algorithm for Sha256State {
    const NAME: &'static str = "sha256";

    fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish_hex(&mut self) -> String {
        hex(&std::mem::take(&mut self.0).finalize())
    }
}

/// BLAKE3 state, through the `blake3` crate (SIMD: SSE4.1, AVX2 or AVX-512,
/// detected at run time).
#[derive(Debug, Clone, Default)]
pub struct Blake3State(blake3::Hasher);

impl Algorithm for Blake3State {
    const NAME: &'static str = "blake3";

    fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish_hex(&mut self) -> String {
        self.0.finalize().to_hex().to_string()
    }
}

/// CRC32C (Castagnoli) state, through the `crc32c` crate (the SSE4.2 or
/// ARMv8 CRC instructions when present, detected at run time); the digest
/// is the value in 8 hex digits, most significant first.
#[derive(Debug, Clone, Copy, Default)]
pub struct Crc32cState(u32);

impl Algorithm for Crc32cState {
    const NAME: &'static str = "crc32c";

    fn update(&mut self, bytes: &[u8]) {
        self.0 = crc32c::crc32c_append(self.0, bytes);
    }

    fn finish_hex(&mut self) -> String {
        format!("{:08x}", self.0)
    }
}

/// SHA-256 of the stream. Summary: `"sha256:<64 hex digits>"`.
pub type Sha256 = Checksum<Sha256State>;

/// BLAKE3 of the stream. Summary: `"blake3:<64 hex digits>"`.
pub type Blake3 = Checksum<Blake3State>;

/// CRC32C of the stream. Summary: `"crc32c:<8 hex digits>"`.
pub type Crc32c = Checksum<Crc32cState>;

#[cfg(test)]
mod tests {
    use super::*;

    /// A transform, its input chunks, and the summary expected.
    type Case = (Box<dyn Transform>, &'static [&'static [u8]], &'static str);

    /// Runs `transform` over `parts` as separate chunks, as the engine does.
    fn run(transform: &mut dyn Transform, parts: &[&[u8]]) -> Vec<u8> {
        let mut passed = Vec::new();
        for part in parts {
            let mut out = Vec::new();
            transform.transform(Bytes::copy_from_slice(part), &mut out).unwrap();
            passed.extend(out.iter().flat_map(|b| b.iter().copied()));
        }
        let mut out = Vec::new();
        transform.finish(&mut out).unwrap();
        assert!(out.is_empty());
        passed
    }

    #[test]
    fn known_vectors_match_whatever_the_chunking() {
        // "abc": FIPS 180-2 for SHA-256, the BLAKE3 reference, and the CRC32C
        // check value of "123456789" from RFC 3720's appendix.
        let cases: [Case; 4] = [
            (
                Box::new(Sha256::new()),
                &[b"a", b"bc"],
                "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                Box::new(Blake3::new()),
                &[b"ab", b"", b"c"],
                "blake3:6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
            ),
            (Box::new(Crc32c::new()), &[b"1234", b"56789"], "crc32c:e3069283"),
            (
                Box::new(Sha256::new()),
                &[],
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
        ];
        for (mut transform, parts, expected) in cases {
            assert_eq!(transform.summary(), None, "no digest before finish");
            let passed = run(transform.as_mut(), parts);
            assert_eq!(passed, parts.concat(), "data passes through unchanged");
            assert_eq!(transform.summary().as_deref(), Some(expected));
        }
    }

    #[test]
    fn digest_in_finds_the_algorithm_by_summary() {
        let mut plain = StageReport::default();
        plain.name = "upper".to_owned();
        let mut checksum = StageReport::default();
        checksum.name = "sha256".to_owned();
        checksum.summary = Some("sha256:abcd".to_owned());
        let stages = vec![plain, checksum];
        assert_eq!(digest_in(&stages, "sha256"), Some("abcd"));
        assert_eq!(digest_in(&stages, "blake3"), None);
    }

    #[test]
    fn offload_is_declared_to_the_engine() {
        assert!(!Sha256::new().cpu_heavy());
        assert!(Sha256::new().offload(true).cpu_heavy());
        assert!(Blake3::new().offload(true).cpu_heavy());
        assert!(Crc32c::new().offload(true).cpu_heavy());
    }
}
