//! `SplitLines`: newline-delimited records across chunk boundaries, with a
//! bound on how long a record may grow.

use bytes::{Bytes, BytesMut};
use weir::{BoxError, Transform};

use crate::error::TransformError;

/// Default longest record accepted by [`SplitLines`]: 1 MiB.
pub const DEFAULT_MAX_RECORD: usize = 1024 * 1024;

/// Splits the stream into newline-delimited records, whatever the chunk
/// boundaries.
///
/// Every output chunk ends on a record boundary: each record keeps its
/// trailing `\n`, so the output concatenates back to the input byte for
/// byte. The last record may lack the newline; it is emitted at the end of
/// the input. By default each record is its own chunk; with
/// [`aligned`](SplitLines::aligned) the complete records of one input chunk
/// go out together as one chunk (cheaper when records are small and the
/// next stage only needs whole records).
///
/// Memory is bounded: a record longer than the limit (its newline excluded)
/// fails the ingestion with [`TransformError::RecordTooLong`] as soon as it
/// grows past it, instead of being buffered without end. Records that fit
/// in one input chunk are passed on without copying; only a record spanning
/// chunks is copied, once.
#[derive(Debug)]
pub struct SplitLines {
    max_record: usize,
    aligned: bool,
    /// The start of a record whose newline has not arrived yet.
    partial: BytesMut,
    /// Records emitted so far.
    records: u64,
}

impl Default for SplitLines {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_RECORD)
    }
}

impl SplitLines {
    /// A splitter refusing records longer than `max_record` bytes (the
    /// newline excluded), emitting one chunk per record.
    pub fn new(max_record: usize) -> Self {
        Self {
            max_record,
            aligned: false,
            partial: BytesMut::new(),
            records: 0,
        }
    }

    /// Emits the complete records of each input chunk as one chunk, instead
    /// of one chunk per record.
    #[must_use]
    pub fn aligned(mut self) -> Self {
        self.aligned = true;
        self
    }

    fn too_long(&self) -> BoxError {
        Box::new(TransformError::RecordTooLong {
            record: self.records,
            limit: self.max_record,
        })
    }

    /// Checks the length of the record that `partial` starts and `tail`
    /// (without its newline) continues.
    fn check(&self, tail: usize) -> Result<(), BoxError> {
        if self.partial.len() + tail > self.max_record {
            return Err(self.too_long());
        }
        Ok(())
    }
}

impl Transform for SplitLines {
    fn name(&self) -> &str {
        "split-lines"
    }

    fn transform(&mut self, mut chunk: Bytes, out: &mut Vec<Bytes>) -> Result<(), BoxError> {
        // Complete the record carried over from earlier chunks.
        if !self.partial.is_empty() {
            let Some(newline) = memchr::memchr(b'\n', &chunk) else {
                self.check(chunk.len())?;
                self.partial.extend_from_slice(&chunk);
                return Ok(());
            };
            self.check(newline)?;
            self.partial.extend_from_slice(&chunk.split_to(newline + 1));
            out.push(self.partial.split().freeze());
            self.records += 1;
        }
        // Records wholly inside this chunk, without copying.
        let mut start = 0;
        let mut aligned_end = 0;
        for newline in memchr::memchr_iter(b'\n', &chunk) {
            if newline - start > self.max_record {
                return Err(self.too_long());
            }
            if !self.aligned {
                out.push(chunk.slice(start..=newline));
            }
            self.records += 1;
            start = newline + 1;
            aligned_end = start;
        }
        if self.aligned && aligned_end > 0 {
            out.push(chunk.slice(..aligned_end));
        }
        // The start of the next record waits for its newline.
        let rest = &chunk[start..];
        self.check(rest.len())?;
        self.partial.extend_from_slice(rest);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<Bytes>) -> Result<(), BoxError> {
        if !self.partial.is_empty() {
            out.push(self.partial.split().freeze());
            self.records += 1;
        }
        Ok(())
    }

    fn summary(&self) -> Option<String> {
        Some(format!("records:{}", self.records))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(mut splitter: SplitLines, chunks: &[&str]) -> Result<Vec<String>, BoxError> {
        let mut out = Vec::new();
        for chunk in chunks {
            splitter.transform(Bytes::copy_from_slice(chunk.as_bytes()), &mut out)?;
        }
        splitter.finish(&mut out)?;
        Ok(out
            .into_iter()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect())
    }

    #[test]
    fn records_span_chunk_boundaries() {
        let records = split(SplitLines::new(16), &["ab", "c\nde\n", "", "f", "g\n\nh"]).unwrap();
        assert_eq!(records, ["abc\n", "de\n", "fg\n", "\n", "h"]);
    }

    #[test]
    fn aligned_mode_emits_whole_records_per_chunk() {
        let records = split(SplitLines::new(16).aligned(), &["ab", "c\nde\nf", "g\n\nh"]).unwrap();
        assert_eq!(records, ["abc\n", "de\n", "fg\n", "\n", "h"]);
        let records = split(SplitLines::new(16).aligned(), &["a\nb\nc\nd"]).unwrap();
        assert_eq!(records, ["a\nb\nc\n", "d"]);
    }

    #[test]
    fn a_record_at_the_limit_passes_and_one_past_it_fails() {
        assert_eq!(split(SplitLines::new(3), &["ab", "c\n"]).unwrap(), ["abc\n"]);
        for chunks in [&["abcd\n"][..], &["ab", "cd\n"], &["ab", "cd"], &["a\nbc", "de"]] {
            let error = split(SplitLines::new(3), chunks).unwrap_err();
            let error = error.downcast_ref::<TransformError>().unwrap();
            assert!(
                matches!(error, TransformError::RecordTooLong { limit: 3, .. }),
                "{chunks:?}: {error}"
            );
        }
    }

    #[test]
    fn buffering_stops_at_the_limit_without_a_newline() {
        let mut splitter = SplitLines::new(1000);
        let chunk = Bytes::from(vec![b'x'; 400]);
        let mut out = Vec::new();
        splitter.transform(chunk.clone(), &mut out).unwrap();
        splitter.transform(chunk.clone(), &mut out).unwrap();
        assert!(splitter.transform(chunk, &mut out).is_err());
        assert!(splitter.partial.len() <= 1000);
        assert!(out.is_empty());
    }

    #[test]
    fn records_are_counted_in_the_summary() {
        let mut splitter = SplitLines::default();
        let mut out = Vec::new();
        splitter.transform(Bytes::from_static(b"a\nb\nc"), &mut out).unwrap();
        splitter.finish(&mut out).unwrap();
        assert_eq!(splitter.summary().as_deref(), Some("records:3"));
    }
}
