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

/// SHA-256 of the stream, through the `sha2` crate (which uses the CPU's SHA
/// extensions when it has them, detected at run time).
///
/// Summary: `"sha256:<64 hex digits>"`, once the input is complete.
#[derive(Debug, Clone, Default)]
pub struct Sha256 {
    hasher: sha2::Sha256,
    digest: Option<String>,
    offload: bool,
}

impl Sha256 {
    /// A fresh hasher, running inline on the runtime's worker.
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

impl Transform for Sha256 {
    fn name(&self) -> &str {
        "sha256"
    }

    fn transform(&mut self, chunk: Bytes, out: &mut Vec<Bytes>) -> Result<(), BoxError> {
        self.hasher.update(&chunk);
        out.push(chunk);
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<Bytes>) -> Result<(), BoxError> {
        let digest = std::mem::take(&mut self.hasher).finalize();
        self.digest = Some(hex(&digest));
        Ok(())
    }

    fn cpu_heavy(&self) -> bool {
        self.offload
    }

    fn summary(&self) -> Option<String> {
        self.digest.as_ref().map(|d| format!("sha256:{d}"))
    }
}

/// BLAKE3 of the stream, through the `blake3` crate (SIMD: SSE4.1, AVX2 or
/// AVX-512, detected at run time).
///
/// Summary: `"blake3:<64 hex digits>"`, once the input is complete.
#[derive(Debug, Clone, Default)]
pub struct Blake3 {
    hasher: blake3::Hasher,
    digest: Option<String>,
    offload: bool,
}

impl Blake3 {
    /// A fresh hasher, running inline on the runtime's worker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs the stage off the runtime's workers (see
    /// [`Transform::cpu_heavy`]).
    #[must_use]
    pub fn offload(mut self, offload: bool) -> Self {
        self.offload = offload;
        self
    }
}

impl Transform for Blake3 {
    fn name(&self) -> &str {
        "blake3"
    }

    fn transform(&mut self, chunk: Bytes, out: &mut Vec<Bytes>) -> Result<(), BoxError> {
        self.hasher.update(&chunk);
        out.push(chunk);
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<Bytes>) -> Result<(), BoxError> {
        self.digest = Some(self.hasher.finalize().to_hex().to_string());
        Ok(())
    }

    fn cpu_heavy(&self) -> bool {
        self.offload
    }

    fn summary(&self) -> Option<String> {
        self.digest.as_ref().map(|d| format!("blake3:{d}"))
    }
}

/// CRC32C (Castagnoli) of the stream, through the `crc32c` crate (the SSE4.2
/// or ARMv8 CRC instructions when present, detected at run time).
///
/// Summary: `"crc32c:<8 hex digits>"` (the value, most significant digit
/// first), once the input is complete.
#[derive(Debug, Clone, Default)]
pub struct Crc32c {
    crc: u32,
    finished: bool,
    offload: bool,
}

impl Crc32c {
    /// A fresh checksum, running inline on the runtime's worker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs the stage off the runtime's workers (see
    /// [`Transform::cpu_heavy`]).
    #[must_use]
    pub fn offload(mut self, offload: bool) -> Self {
        self.offload = offload;
        self
    }
}

impl Transform for Crc32c {
    fn name(&self) -> &str {
        "crc32c"
    }

    fn transform(&mut self, chunk: Bytes, out: &mut Vec<Bytes>) -> Result<(), BoxError> {
        self.crc = crc32c::crc32c_append(self.crc, &chunk);
        out.push(chunk);
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<Bytes>) -> Result<(), BoxError> {
        self.finished = true;
        Ok(())
    }

    fn cpu_heavy(&self) -> bool {
        self.offload
    }

    fn summary(&self) -> Option<String> {
        self.finished.then(|| format!("crc32c:{:08x}", self.crc))
    }
}

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
