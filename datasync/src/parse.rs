//! `ParseEvents`: the transform that turns NDJSON event lines into rows for
//! PostgreSQL (binary COPY tuples, or COPY text lines) and sets aside every
//! malformed line, with its reason, for the dead-letter table.

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use bytes::{BufMut as _, Bytes};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::Notify;
use weir::{BoxError, Transform};

use crate::dataset::EVENT_TYPES;
use crate::protocol;

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// The bytes PostgreSQL's binary COPY starts with: signature, flags, header
/// extension length.
pub const BINARY_COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The binary COPY trailer: a tuple with -1 fields.
pub const BINARY_COPY_TRAILER: &[u8] = &[0xff, 0xff];

/// The row format `ParseEvents` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFormat {
    /// Binary COPY tuples `(id uuid, type text, ts timestamptz, payload json)`,
    /// without header or trailer (the sink adds them).
    BinaryCopy,
    /// COPY text lines (tab-separated, escaped), one per event.
    Tsv,
}

/// A malformed event: its raw line and why it was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The line as received.
    pub raw: Vec<u8>,
    /// Why it was rejected (starts with a stable prefix: `invalid json`,
    /// `invalid id`, `unknown type`, `invalid timestamp`, `payload ...`).
    pub reason: String,
}

/// What the transform has parsed, shared with the sink that commits it.
#[derive(Debug, Default)]
pub struct ParseTally {
    /// Well-formed events written as rows.
    pub rows: u64,
    /// Well-formed events dropped because their id was already seen (in
    /// this segment or in the [`DedupWindow`]).
    pub repeats_dropped: u64,
    /// Malformed events, waiting to be committed.
    pub dead_letters: Vec<DeadLetter>,
    /// Well-formed events outside the job's time range (a ranged job reads
    /// past its end to the next checkpoint, and the API repeats earlier
    /// events): another range's to store.
    pub outside_range: u64,
}

/// Shared handle on a [`ParseTally`].
pub type SharedTally = Arc<Mutex<ParseTally>>;

/// The ids of the last few segments, so that a segment can drop the
/// API's repeats before they reach PostgreSQL.
///
/// Invariant (kept by the job): the window only holds ids that are
/// committed, or that belong to segments committing before the segment
/// that reads the window (whose failure fails it too). Dropping a repeat
/// found here therefore never loses an event. After a failed segment the
/// job clears the window.
#[derive(Debug)]
pub struct DedupWindow {
    segments: Mutex<VecDeque<Arc<HashSet<[u8; 16]>>>>,
    keep: usize,
}

impl DedupWindow {
    /// A window of the last `keep` segments.
    pub fn new(keep: usize) -> Self {
        Self {
            segments: Mutex::new(VecDeque::new()),
            keep: keep.max(1),
        }
    }

    /// The segments in the window now.
    pub fn snapshot(&self) -> Vec<Arc<HashSet<[u8; 16]>>> {
        self.segments
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Adds a finished segment's ids, forgetting the oldest beyond `keep`.
    pub fn publish(&self, ids: HashSet<[u8; 16]>) {
        if let Ok(mut segments) = self.segments.lock() {
            segments.push_back(Arc::new(ids));
            while segments.len() > self.keep {
                segments.pop_front();
            }
        }
    }

    /// Forgets everything (after a failed segment).
    pub fn clear(&self) {
        if let Ok(mut segments) = self.segments.lock() {
            segments.clear();
        }
    }
}

/// One well-formed event, borrowed from its line.
#[derive(Debug, PartialEq, Eq)]
pub struct Event<'a> {
    /// The id.
    pub id: uuid::Uuid,
    /// The type (one of [`EVENT_TYPES`]).
    pub kind: Cow<'a, str>,
    /// Microseconds since 2000-01-01 UTC (PostgreSQL's epoch).
    pub pg_micros: i64,
    /// The timestamp as sent.
    pub timestamp: Cow<'a, str>,
    /// The payload object, as sent.
    pub payload: &'a str,
}

#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// Parses and validates one event line.
///
/// # Errors
///
/// The reason the line is malformed.
pub fn parse_event(line: &[u8]) -> Result<Event<'_>, String> {
    let wire: Wire<'_> = serde_json::from_slice(line).map_err(|e| format!("invalid json: {e}"))?;
    let id = uuid::Uuid::try_parse(&wire.id).map_err(|e| format!("invalid id {:?}: {e}", wire.id))?;
    if !EVENT_TYPES.contains(&wire.kind.as_ref()) {
        return Err(format!("unknown type {:?}", wire.kind));
    }
    let time = humantime::parse_rfc3339(&wire.timestamp)
        .map_err(|e| format!("invalid timestamp {:?}: {e}", wire.timestamp))?;
    let unix_us = match time.duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_micros()),
        Err(before) => i64::try_from(before.duration().as_micros()).map(|us| -us),
    }
    .map_err(|_| format!("invalid timestamp {:?}: out of range", wire.timestamp))?;
    let payload = wire.payload.get();
    if !payload.starts_with('{') {
        return Err("payload is not a json object".to_owned());
    }
    if payload.contains("\\u") {
        check_escapes(payload)?;
    }
    Ok(Event {
        id,
        kind: wire.kind,
        pg_micros: unix_us - PG_EPOCH_OFFSET_US,
        timestamp: wire.timestamp,
        payload,
    })
}

/// PostgreSQL's `jsonb` refuses `\u0000` and lone surrogates, which JSON
/// allows: refuse them here too, so that every stored payload can later be
/// cast to `jsonb` (and one event can never fail a whole COPY).
fn check_escapes(payload: &str) -> Result<(), String> {
    let value: serde_json::Value =
        serde_json::from_str(payload).map_err(|e| format!("payload is not valid for jsonb: {e}"))?;
    if payload.contains("\\u0000") || value.to_string().contains('\0') {
        return Err("payload holds \\u0000, which jsonb rejects".to_owned());
    }
    Ok(())
}

/// Appends `event` as one binary COPY tuple.
pub fn encode_binary(event: &Event<'_>, out: &mut Vec<u8>) {
    out.put_i16(4);
    out.put_i32(16);
    out.put_slice(event.id.as_bytes());
    out.put_i32(event.kind.len() as i32);
    out.put_slice(event.kind.as_bytes());
    out.put_i32(8);
    out.put_i64(event.pg_micros);
    // `json`'s binary form is its text.
    out.put_i32(event.payload.len() as i32);
    out.put_slice(event.payload.as_bytes());
}

/// Appends `text` escaped for COPY's text format.
fn escape_text(text: &str, out: &mut Vec<u8>) {
    for &byte in text.as_bytes() {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.push(byte),
        }
    }
}

/// Appends `event` as one COPY text line (`id`, `type`, `ts`, `payload`).
pub fn encode_tsv(event: &Event<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(
        event
            .id
            .hyphenated()
            .encode_lower(&mut uuid::Uuid::encode_buffer())
            .as_bytes(),
    );
    out.push(b'\t');
    escape_text(&event.kind, out);
    out.push(b'\t');
    escape_text(&event.timestamp, out);
    out.push(b'\t');
    escape_text(event.payload, out);
    out.push(b'\n');
}

/// The transform: NDJSON lines in, rows out (in frames of about
/// `frame_bytes`), malformed lines to the shared tally. Checkpoint lines are
/// skipped: the source tracks them.
#[derive(Debug)]
pub struct ParseEvents {
    format: RowFormat,
    frame_bytes: usize,
    /// A line split across chunks.
    carry: Vec<u8>,
    frame: Vec<u8>,
    rows: u64,
    repeats_dropped: u64,
    dead_letters: Vec<DeadLetter>,
    tally: SharedTally,
    /// Ids of earlier segments (see [`DedupWindow`]) and of this one.
    window: Option<Arc<DedupWindow>>,
    earlier: Vec<Arc<HashSet<[u8; 16]>>>,
    seen: HashSet<[u8; 16]>,
    /// Notified after the last line has been parsed.
    end: Option<Arc<Notify>>,
    /// Unix microseconds: events before the first or at or after the second
    /// belong to another range.
    since_us: Option<i64>,
    until_us: Option<i64>,
    outside_range: u64,
}

impl ParseEvents {
    /// A parser writing `format` rows in frames of about `frame_bytes`.
    pub fn new(format: RowFormat, frame_bytes: usize, tally: SharedTally) -> Self {
        Self {
            format,
            frame_bytes: frame_bytes.max(1),
            carry: Vec::new(),
            frame: Vec::with_capacity(frame_bytes + 1024),
            rows: 0,
            repeats_dropped: 0,
            dead_letters: Vec::new(),
            tally,
            window: None,
            earlier: Vec::new(),
            seen: HashSet::new(),
            end: None,
            since_us: None,
            until_us: None,
            outside_range: 0,
        }
    }

    /// Keeps only well-formed events at or after `since_ms` and before
    /// `until_ms` (Unix milliseconds; `None`: unbounded): the time range of
    /// a work item, so that neighbouring ranges store disjoint events.
    /// Malformed events (their time may not parse) are kept as dead letters
    /// either way; their digest makes a second copy harmless.
    #[must_use]
    pub fn within(mut self, since_ms: Option<u64>, until_ms: Option<u64>) -> Self {
        let us = |ms: u64| i64::try_from(ms.saturating_mul(1000)).unwrap_or(i64::MAX);
        self.since_us = since_ms.map(us);
        self.until_us = until_ms.map(us);
        self
    }

    fn outside(&self, event: &Event<'_>) -> bool {
        let unix_us = event.pg_micros + PG_EPOCH_OFFSET_US;
        self.since_us.is_some_and(|s| unix_us < s) || self.until_us.is_some_and(|u| unix_us >= u)
    }

    /// Drops events whose id is in `window` (as it is now) or was already
    /// seen in this segment, and publishes this segment's ids to `window`
    /// once the last line is parsed.
    #[must_use]
    pub fn dedup(mut self, window: Arc<DedupWindow>) -> Self {
        self.earlier = window.snapshot();
        self.window = Some(window);
        self
    }

    /// Notifies `end` (one permit) once the last line has been parsed (and
    /// the ids published): the next segment may start then.
    #[must_use]
    pub fn notify_end(mut self, end: Arc<Notify>) -> Self {
        self.end = Some(end);
        self
    }

    /// `true` when the event must be dropped as a repeat.
    fn repeat(&mut self, id: &[u8; 16]) -> bool {
        if self.window.is_none() {
            return false;
        }
        if self.earlier.iter().any(|ids| ids.contains(id)) {
            return true;
        }
        !self.seen.insert(*id)
    }

    fn line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() || line.starts_with(protocol::CHECKPOINT_PREFIX) {
            return;
        }
        match parse_event(line) {
            Ok(event) if self.outside(&event) => self.outside_range += 1,
            Ok(event) if self.repeat(event.id.as_bytes()) => self.repeats_dropped += 1,
            Ok(event) => {
                match self.format {
                    RowFormat::BinaryCopy => encode_binary(&event, &mut self.frame),
                    RowFormat::Tsv => encode_tsv(&event, &mut self.frame),
                }
                self.rows += 1;
            }
            Err(reason) => self.dead_letters.push(DeadLetter {
                raw: line.to_vec(),
                reason,
            }),
        }
    }

    fn flush(&mut self, out: &mut Vec<Bytes>, force: bool) {
        if self.frame.len() >= self.frame_bytes || (force && !self.frame.is_empty()) {
            let frame = std::mem::replace(&mut self.frame, Vec::with_capacity(self.frame_bytes + 1024));
            out.push(Bytes::from(frame));
        }
        if let Ok(mut tally) = self.tally.lock() {
            tally.rows += std::mem::take(&mut self.rows);
            tally.repeats_dropped += std::mem::take(&mut self.repeats_dropped);
            tally.outside_range += std::mem::take(&mut self.outside_range);
            tally.dead_letters.append(&mut self.dead_letters);
        }
    }
}

impl Transform for ParseEvents {
    fn name(&self) -> &str {
        "parse-events"
    }

    fn transform(&mut self, chunk: Bytes, out: &mut Vec<Bytes>) -> Result<(), BoxError> {
        let mut rest = &chunk[..];
        if !self.carry.is_empty() {
            match memchr::memchr(b'\n', rest) {
                Some(end) => {
                    let mut line = std::mem::take(&mut self.carry);
                    line.extend_from_slice(&rest[..end]);
                    self.line(&line);
                    rest = &rest[end + 1..];
                }
                None => {
                    self.carry.extend_from_slice(rest);
                    return Ok(());
                }
            }
        }
        while let Some(end) = memchr::memchr(b'\n', rest) {
            self.line(&rest[..end]);
            rest = &rest[end + 1..];
            if self.frame.len() >= self.frame_bytes {
                self.flush(out, false);
            }
        }
        self.carry.extend_from_slice(rest);
        self.flush(out, false);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<Bytes>) -> Result<(), BoxError> {
        if !self.carry.is_empty() {
            let line = std::mem::take(&mut self.carry);
            self.line(&line);
        }
        self.flush(out, true);
        if let Some(window) = &self.window {
            window.publish(std::mem::take(&mut self.seen));
        }
        if let Some(end) = &self.end {
            end.notify_one();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{Dataset, Malformation};

    #[test]
    fn every_malformation_is_rejected_with_its_reason() {
        let data = Dataset {
            malformed_rate: 0.2,
            ..Dataset::new(9, 3_000)
        };
        let mut seen = std::collections::HashSet::new();
        for index in 0..data.events {
            let line = data.event_line(index);
            match (data.malformation(index), parse_event(&line)) {
                (None, Ok(event)) => assert_eq!(event.id.as_bytes(), &data.id(index)),
                (Some(kind), Err(reason)) => {
                    assert!(reason.starts_with(kind.reason_prefix()), "{kind:?}: {reason}");
                    seen.insert(kind);
                }
                (expected, got) => panic!("event {index}: expected {expected:?}, got {got:?}"),
            }
        }
        assert!(seen.contains(&Malformation::Truncated) && seen.contains(&Malformation::MissingField));
        assert_eq!(seen.len(), 6);
    }

    #[test]
    fn payloads_jsonb_would_refuse_are_rejected() {
        let id = "c0ffee00-0000-4000-8000-000000000000";
        let line = |payload: &str| {
            format!(r#"{{"id":"{id}","type":"click","timestamp":"2024-01-01T00:00:00Z","payload":{payload}}}"#)
        };
        assert!(parse_event(line(r#"{"a":"\u0041"}"#).as_bytes()).is_ok());
        assert!(
            parse_event(line(r#"{"a":"\u0000"}"#).as_bytes())
                .unwrap_err()
                .contains("u0000")
        );
        assert!(
            parse_event(line(r#""text""#).as_bytes())
                .unwrap_err()
                .starts_with("payload is not")
        );
    }

    #[test]
    fn binary_tuples_have_the_declared_lengths() {
        let data = Dataset {
            malformed_rate: 0.0,
            ..Dataset::new(1, 1)
        };
        let line = data.event_line(0);
        let event = parse_event(&line).unwrap();
        let mut out = Vec::new();
        encode_binary(&event, &mut out);
        assert_eq!(i16::from_be_bytes([out[0], out[1]]), 4);
        let mut at = 2;
        for expected in [Some(16), Some(event.kind.len()), Some(8), Some(event.payload.len())] {
            let len = i32::from_be_bytes(out[at..at + 4].try_into().unwrap()) as usize;
            assert_eq!(Some(len), expected);
            at += 4 + len;
        }
        assert_eq!(at, out.len());
    }

    #[test]
    fn repeats_are_dropped_within_a_segment_and_across_the_window() {
        let data = Dataset {
            malformed_rate: 0.0,
            ..Dataset::new(6, 10)
        };
        let ndjson = |indices: &[u64]| {
            let mut out = Vec::new();
            for &i in indices {
                data.write_event(i, &mut out);
                out.push(b'\n');
            }
            Bytes::from(out)
        };
        let window = Arc::new(DedupWindow::new(2));
        let run = |indices: &[u64]| {
            let tally = SharedTally::default();
            let mut parse = ParseEvents::new(RowFormat::Tsv, 1 << 20, Arc::clone(&tally)).dedup(Arc::clone(&window));
            let mut out = Vec::new();
            parse.transform(ndjson(indices), &mut out).unwrap();
            parse.finish(&mut out).unwrap();
            let tally = tally.lock().unwrap();
            (tally.rows, tally.repeats_dropped)
        };
        assert_eq!(run(&[0, 1, 2, 1]), (3, 1));
        assert_eq!(run(&[3, 2, 4]), (2, 1));
        assert_eq!(run(&[5, 6]), (2, 0));
        // Segment [0, 1, 2] has left the window of two.
        assert_eq!(run(&[0, 7]), (2, 0));
        window.clear();
        assert_eq!(run(&[7]), (1, 0));
    }

    #[test]
    fn tsv_escapes_what_copy_text_needs_escaped() {
        let mut out = Vec::new();
        escape_text("a\\b\tc\nd\re", &mut out);
        assert_eq!(out, b"a\\\\b\\tc\\nd\\re");
    }

    #[test]
    fn lines_split_across_chunks_are_parsed_once() {
        let data = Dataset::new(4, 50);
        let mut ndjson = Vec::new();
        for index in 0..50 {
            data.write_event(index, &mut ndjson);
            ndjson.push(b'\n');
        }
        ndjson.extend_from_slice(b"{\"next_cursor\":\"x\",\"watermark\":null,\"remaining\":0,\"final\":true}\n");
        let tally = SharedTally::default();
        let mut parse = ParseEvents::new(RowFormat::Tsv, 1 << 20, Arc::clone(&tally));
        let mut out = Vec::new();
        for piece in ndjson.chunks(37) {
            parse.transform(Bytes::copy_from_slice(piece), &mut out).unwrap();
        }
        parse.finish(&mut out).unwrap();
        let text: Vec<u8> = out.concat();
        let tally = tally.lock().unwrap();
        let malformed = (0..50).filter(|&i| data.malformation(i).is_some()).count() as u64;
        assert_eq!(tally.rows + tally.dead_letters.len() as u64, 50);
        assert_eq!(tally.dead_letters.len() as u64, malformed);
        assert_eq!(text.iter().filter(|&&b| b == b'\n').count() as u64, tally.rows);
    }
}
