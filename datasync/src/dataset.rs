//! The event log the mock API serves: every event, its malformed twins and
//! the API's repeats are a pure function of a seed and a position, so a test
//! can rebuild exactly what a correct job must have stored.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Event types the API emits; anything else is invalid.
pub const EVENT_TYPES: [&str; 8] = [
    "page_view",
    "click",
    "signup",
    "login",
    "add_to_cart",
    "purchase",
    "refund",
    "logout",
];

/// Milliseconds between two consecutive events' nominal timestamps; each
/// event adds a jitter below this, so timestamps strictly increase.
const STEP_MS: u64 = 10;
/// The first event's nominal time: 2024-01-01T00:00:00Z.
const EPOCH_UNIX_MS: u64 = 1_704_067_200_000;
/// The farthest back an API repeat reaches.
const MAX_REPEAT_DISTANCE: u64 = 200;

/// A 64-bit mixing function (SplitMix64's finalizer): turns a seed and a
/// position into independent-looking bits, without state.
pub fn mix(seed: u64, salt: u64, index: u64) -> u64 {
    let mut z = seed
        .wrapping_add(salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(index.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform draw in `[0, 1)` from [`mix`].
pub fn unit(seed: u64, salt: u64, index: u64) -> f64 {
    (mix(seed, salt, index) >> 11) as f64 / (1u64 << 53) as f64
}

/// Salts, so that each decision draws independent bits.
mod salt {
    pub const ID: u64 = 1;
    pub const BODY: u64 = 2;
    pub const MALFORMED: u64 = 3;
    pub const MALFORMED_KIND: u64 = 4;
    pub const REPEAT: u64 = 5;
    pub const REPEAT_DISTANCE: u64 = 6;
    pub const JITTER: u64 = 7;
}

/// How an injected malformed event is broken. The job must dead-letter it
/// with a reason, never store it and never drop it silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Malformation {
    /// The line is cut short: not JSON.
    Truncated,
    /// `id` is not a UUID.
    BadId,
    /// `type` is not one of [`EVENT_TYPES`].
    UnknownType,
    /// `timestamp` is not an RFC 3339 time.
    BadTimestamp,
    /// `payload` is not a JSON object.
    PayloadNotObject,
    /// `timestamp` is missing.
    MissingField,
}

impl Malformation {
    const ALL: [Malformation; 6] = [
        Malformation::Truncated,
        Malformation::BadId,
        Malformation::UnknownType,
        Malformation::BadTimestamp,
        Malformation::PayloadNotObject,
        Malformation::MissingField,
    ];

    /// The prefix of the dead-letter reason the job gives this malformation.
    pub fn reason_prefix(self) -> &'static str {
        match self {
            Malformation::Truncated => "invalid json",
            Malformation::BadId => "invalid id",
            Malformation::UnknownType => "unknown type",
            Malformation::BadTimestamp => "invalid timestamp",
            Malformation::PayloadNotObject => "payload is not a json object",
            Malformation::MissingField => "invalid json",
        }
    }
}

/// The deterministic event log: `events` positions from a seed, with a
/// seeded share of malformed events and of repeats (the API is
/// at-least-once: after some events it re-sends an earlier one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dataset {
    /// Seed of every id, body, malformation and repeat.
    pub seed: u64,
    /// Number of positions (distinct events) in the log.
    pub events: u64,
    /// Share of positions whose event is malformed, in `[0, 1]`.
    pub malformed_rate: f64,
    /// Share of positions followed by a repeat of an earlier event, in `[0, 1]`.
    pub repeat_rate: f64,
}

impl Dataset {
    /// A log of `events` positions with 0.1 % malformed events and 0.5 %
    /// repeats.
    pub fn new(seed: u64, events: u64) -> Self {
        Self {
            seed,
            events,
            malformed_rate: 0.001,
            repeat_rate: 0.005,
        }
    }

    /// The event's id bytes (a version-4 UUID).
    pub fn id(&self, index: u64) -> [u8; 16] {
        let hi = mix(self.seed, salt::ID, index);
        let lo = mix(self.seed, salt::ID, index ^ (1 << 63));
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&hi.to_be_bytes());
        bytes[8..].copy_from_slice(&lo.to_be_bytes());
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        bytes
    }

    /// The event's nominal timestamp, milliseconds since the Unix epoch;
    /// strictly increasing with the position.
    pub fn timestamp_ms(&self, index: u64) -> u64 {
        EPOCH_UNIX_MS + index * STEP_MS + mix(self.seed, salt::JITTER, index) % STEP_MS
    }

    /// The watermark after `position` events: the timestamp of the last
    /// event before it, `None` at the start.
    pub fn watermark_ms(&self, position: u64) -> Option<u64> {
        position.checked_sub(1).map(|last| self.timestamp_ms(last))
    }

    /// The first position whose timestamp is at or after `since_ms`.
    pub fn position_since(&self, since_ms: u64) -> u64 {
        let Some(offset) = since_ms.checked_sub(EPOCH_UNIX_MS) else {
            return 0;
        };
        let candidate = offset / STEP_MS;
        if candidate >= self.events {
            return self.events;
        }
        if self.timestamp_ms(candidate) >= since_ms {
            candidate
        } else {
            candidate + 1
        }
    }

    /// How the event at `index` is malformed, if it is.
    pub fn malformation(&self, index: u64) -> Option<Malformation> {
        if unit(self.seed, salt::MALFORMED, index) >= self.malformed_rate {
            return None;
        }
        let kind = mix(self.seed, salt::MALFORMED_KIND, index) % Malformation::ALL.len() as u64;
        Some(Malformation::ALL[kind as usize])
    }

    /// The earlier position the API repeats right after `index`, if any.
    pub fn repeat_after(&self, index: u64) -> Option<u64> {
        if index == 0 || unit(self.seed, salt::REPEAT, index) >= self.repeat_rate {
            return None;
        }
        let distance = 1 + mix(self.seed, salt::REPEAT_DISTANCE, index) % MAX_REPEAT_DISTANCE.min(index);
        Some(index - distance)
    }

    /// Appends the event's NDJSON line (without the newline) to `out`.
    pub fn write_event(&self, index: u64, out: &mut Vec<u8>) {
        let malformation = self.malformation(index);
        let start = out.len();
        let id = self.id(index);
        let bits = mix(self.seed, salt::BODY, index);
        let kind = EVENT_TYPES[(bits % EVENT_TYPES.len() as u64) as usize];

        out.extend_from_slice(b"{\"id\":\"");
        if malformation == Some(Malformation::BadId) {
            let _ = write!(Bytes(out), "evt-{index:08}");
        } else {
            write_uuid(&id, out);
        }
        out.extend_from_slice(b"\",\"type\":\"");
        if malformation == Some(Malformation::UnknownType) {
            out.extend_from_slice(b"teleport");
        } else {
            out.extend_from_slice(kind.as_bytes());
        }
        out.push(b'"');
        match malformation {
            Some(Malformation::MissingField) => {}
            Some(Malformation::BadTimestamp) => out.extend_from_slice(b",\"timestamp\":\"2024-13-45T99:61:00Z\""),
            _ => {
                out.extend_from_slice(b",\"timestamp\":\"");
                let ts = UNIX_EPOCH + Duration::from_millis(self.timestamp_ms(index));
                let _ = write!(Bytes(out), "{}", humantime::format_rfc3339_millis(ts));
                out.push(b'"');
            }
        }
        out.extend_from_slice(b",\"payload\":");
        if malformation == Some(Malformation::PayloadNotObject) {
            let _ = write!(Bytes(out), "[{},{}]", bits % 1000, bits >> 54);
        } else {
            write_payload(index, bits, out);
        }
        out.push(b'}');
        if malformation == Some(Malformation::Truncated) {
            let len = out.len() - start;
            // Keep the id whole, so that two truncated events never collide.
            let keep = 44 + (bits >> 20) as usize % (len - 50);
            out.truncate(start + keep);
        }
    }

    /// The rendered line of the event at `index` (without the newline).
    pub fn event_line(&self, index: u64) -> Vec<u8> {
        let mut line = Vec::with_capacity(320);
        self.write_event(index, &mut line);
        line
    }

    /// What a correct job stores: the ids of every well-formed event, and
    /// the raw lines of every malformed one (whatever the repeats).
    pub fn expected(&self) -> Expected {
        let mut ids = BTreeSet::new();
        let mut dead_letters = BTreeSet::new();
        for index in 0..self.events {
            match self.malformation(index) {
                None => {
                    ids.insert(self.id(index));
                }
                Some(_) => {
                    dead_letters.insert(self.event_line(index));
                }
            }
        }
        Expected { ids, dead_letters }
    }
}

/// The stored state a correct job ends with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expected {
    /// Ids of the well-formed events.
    pub ids: BTreeSet<[u8; 16]>,
    /// Raw lines of the malformed events.
    pub dead_letters: BTreeSet<Vec<u8>>,
}

/// Writes `id` in the 8-4-4-4-12 hex form.
fn write_uuid(id: &[u8; 16], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in id.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push(b'-');
        }
        out.push(HEX[usize::from(byte >> 4)]);
        out.push(HEX[usize::from(byte & 0xf)]);
    }
}

const COUNTRIES: [&str; 8] = ["DE", "FR", "US", "GB", "JP", "BR", "IN", "NL"];
const DEVICES: [&str; 4] = ["mobile", "desktop", "tablet", "tv"];
const CURRENCIES: [&str; 4] = ["EUR", "USD", "GBP", "JPY"];

/// A payload of about 200 bytes: a JSON object of typical event fields.
fn write_payload(index: u64, bits: u64, out: &mut Vec<u8>) {
    let more = mix(bits, 11, index);
    let _ = write!(
        Bytes(out),
        "{{\"user_id\":\"u_{:08}\",\"session\":\"{:016x}\",\"amount\":{}.{:02},\"currency\":\"{}\",\
         \"country\":\"{}\",\"device\":\"{}\",\"page\":\"/catalog/item/{}\",\"referrer\":\"https://ref.example/r/{}\",\
         \"tags\":[\"t{}\",\"t{}\"],\"seq\":{index}}}",
        (bits >> 8) % 10_000_000,
        more,
        (more >> 8) % 5_000,
        (more >> 24) % 100,
        CURRENCIES[(more >> 32) as usize % CURRENCIES.len()],
        COUNTRIES[(more >> 36) as usize % COUNTRIES.len()],
        DEVICES[(more >> 40) as usize % DEVICES.len()],
        (more >> 42) % 1_000_000,
        (bits >> 30) % 100_000,
        (more >> 50) % 16,
        (more >> 56) % 16,
    );
}

/// `fmt::Write` over a byte vector.
struct Bytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Formats Unix milliseconds as RFC 3339 with milliseconds (`...T..:..:...123Z`).
pub fn format_ms(unix_ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(unix_ms)).to_string()
}

/// Parses an RFC 3339 time to Unix milliseconds; `None` when it is not one
/// or lies before the epoch.
pub fn parse_ms(text: &str) -> Option<u64> {
    let time = humantime::parse_rfc3339(text).ok()?;
    let since = time.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    u64::try_from(since.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_deterministic_and_distinct() {
        let a = Dataset::new(7, 1000);
        let b = Dataset::new(7, 1000);
        let c = Dataset::new(8, 1000);
        assert_eq!(a.event_line(42), b.event_line(42));
        assert_ne!(a.event_line(42), c.event_line(42));
        let ids: BTreeSet<_> = (0..1000).map(|i| a.id(i)).collect();
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    fn well_formed_lines_parse_and_carry_a_payload_of_about_200_bytes() {
        let data = Dataset {
            malformed_rate: 0.0,
            ..Dataset::new(1, 100)
        };
        for index in 0..100 {
            let line = data.event_line(index);
            let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
            let id = value["id"].as_str().unwrap();
            assert_eq!(uuid::Uuid::parse_str(id).unwrap().as_bytes(), &data.id(index));
            let payload = serde_json::to_string(&value["payload"]).unwrap();
            assert!(
                (150..=260).contains(&payload.len()),
                "payload of {} bytes",
                payload.len()
            );
            assert_eq!(
                parse_ms(value["timestamp"].as_str().unwrap()),
                Some(data.timestamp_ms(index))
            );
        }
    }

    #[test]
    fn timestamps_increase_and_since_finds_the_position() {
        let data = Dataset::new(3, 5000);
        for index in 1..5000 {
            assert!(data.timestamp_ms(index) > data.timestamp_ms(index - 1));
        }
        for index in [0, 1, 17, 4999] {
            assert_eq!(data.position_since(data.timestamp_ms(index)), index);
            assert_eq!(data.position_since(data.timestamp_ms(index) + 1), index + 1);
        }
        assert_eq!(data.position_since(0), 0);
    }

    #[test]
    fn malformations_and_repeats_follow_their_rates() {
        let data = Dataset {
            malformed_rate: 0.05,
            repeat_rate: 0.1,
            ..Dataset::new(11, 20_000)
        };
        let malformed = (0..data.events).filter(|&i| data.malformation(i).is_some()).count();
        let repeats = (0..data.events).filter(|&i| data.repeat_after(i).is_some()).count();
        assert!((800..1200).contains(&malformed), "{malformed} malformed");
        assert!((1700..2300).contains(&repeats), "{repeats} repeats");
        for index in 0..data.events {
            if let Some(earlier) = data.repeat_after(index) {
                assert!(earlier < index);
            }
        }
        let expected = data.expected();
        assert_eq!(expected.ids.len() + expected.dead_letters.len(), 20_000);
    }
}
