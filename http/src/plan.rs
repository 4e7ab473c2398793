//! What to answer to a `GET` or `HEAD` of a representation, from its
//! conditional and `Range` headers, following RFC 9110 (sections 13 and 14).
//!
//! The policy, in RFC 9110's order of evaluation (13.2.2):
//!
//! 1. `If-Match` fails (strong comparison; `*` passes; a value naming no
//!    valid entity tag matches nothing) -> `412`. Without `If-Match`,
//!    `If-Unmodified-Since` earlier than `Last-Modified` -> `412`.
//! 2. `If-None-Match` matches (weak comparison; `*` matches) -> `304`.
//!    Only without `If-None-Match`: `If-Modified-Since` not earlier than
//!    `Last-Modified` -> `304`. Unparseable dates and entity-tag lists in
//!    these are ignored, as is an `If-Modified-Since` with several values.
//! 3. `Range` is considered for `GET` only (RFC 9110 14.2: `HEAD` ignores it),
//!    and only when `If-Range` (if present) holds: an entity tag must match
//!    strongly; a date must equal `Last-Modified` exactly and
//!    `Last-Modified` must be strong (at least a second old).
//! 4. A `Range` that is not a valid `bytes` ranges-specifier (unknown unit,
//!    bad syntax, reversed range, repeated header, non-ASCII), that has more
//!    than [`max_ranges`](crate::DeliveryConfig::max_ranges) ranges, or in
//!    which (sorted by start) more than one range begins inside the ones
//!    before it, is **ignored**: a full `200`. RFC 9110 14.2
//!    allows ignoring any of these, and ignoring never costs the server more
//!    than the plain `GET` anyone may send, so it cannot be used to amplify.
//! 5. A valid specifier none of whose ranges is satisfiable -> `416` with
//!    `Content-Range: bytes */len`. Unsatisfiable ranges beside satisfiable
//!    ones are dropped.
//! 6. One satisfiable range -> `206` with `Content-Range`. Several ->
//!    `206 multipart/byteranges`, parts in the order asked (RFC 9110 14.6),
//!    because a client asking for several ranges wants only those bytes; a
//!    full `200` would send the whole representation to save one header per
//!    part.

use std::num::NonZeroUsize;
use std::ops::Range;
use std::time::{Duration, SystemTime};

use headers::{Header, HeaderMapExt, IfMatch, IfModifiedSince, IfNoneMatch, IfUnmodifiedSince, LastModified};
use http::{HeaderMap, HeaderValue, Method, header};
use http_range_header::RangeUnsatisfiableError;

use crate::source::Representation;

/// The answer to one request for a representation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// `200` with the whole representation.
    Full,
    /// `206` with one range (half-open).
    Single(Range<u64>),
    /// `206 multipart/byteranges` with these ranges (half-open), in order.
    Multi(Vec<Range<u64>>),
    /// `304 Not Modified`.
    NotModified,
    /// `412 Precondition Failed`.
    PreconditionFailed,
    /// `416 Range Not Satisfiable`.
    Unsatisfiable,
}

/// Decides how to answer `method` with `headers` for `rep` at time `now`.
pub fn plan(
    method: &Method,
    headers: &HeaderMap,
    rep: &Representation,
    max_ranges: NonZeroUsize,
    now: SystemTime,
) -> Plan {
    let etag = rep.etag();
    let last_modified = rep.last_modified();

    // 1. If-Match / If-Unmodified-Since.
    if headers.contains_key(header::IF_MATCH) {
        if let Some(if_match) = headers.typed_get::<IfMatch>() {
            let passes = if_match.is_any() || etag.is_some_and(|tag| if_match.precondition_passes(tag));
            if !passes {
                return Plan::PreconditionFailed;
            }
        }
    } else if let (Some(since), Some(modified)) = (headers.typed_get::<IfUnmodifiedSince>(), last_modified)
        && !since.precondition_passes(modified)
    {
        return Plan::PreconditionFailed;
    }

    // 2. If-None-Match / If-Modified-Since.
    let get_or_head = method == Method::GET || method == Method::HEAD;
    if headers.contains_key(header::IF_NONE_MATCH) {
        if let Some(if_none_match) = headers.typed_get::<IfNoneMatch>() {
            let matches =
                if_none_match == IfNoneMatch::any() || etag.is_some_and(|tag| !if_none_match.precondition_passes(tag));
            if matches && get_or_head {
                return Plan::NotModified;
            }
        }
    } else if get_or_head
        && let (Some(since), Some(modified)) = (single_value::<IfModifiedSince>(headers), last_modified)
        && !since.is_modified(modified)
    {
        return Plan::NotModified;
    }

    // 3. Range, for GET, when If-Range holds.
    if method != Method::GET {
        return Plan::Full;
    }
    let mut ranges = headers.get_all(header::RANGE).iter();
    let (Some(range), None) = (ranges.next(), ranges.next()) else {
        return Plan::Full;
    };
    if let Some(if_range) = headers.get(header::IF_RANGE)
        && !if_range_holds(if_range, rep, now)
    {
        return Plan::Full;
    }
    let Ok(range) = range.to_str() else {
        return Plan::Full;
    };

    // 4.-6. The ranges themselves.
    let parsed = match http_range_header::parse_range_header_with_max_ranges(range, max_ranges) {
        Ok(parsed) => parsed,
        Err(_) => return Plan::Full,
    };
    match parsed.validate(rep.len()) {
        Ok(valid) => {
            let mut valid: Vec<Range<u64>> = valid.into_iter().map(|r| *r.start()..r.end() + 1).collect();
            match valid.len() {
                // Only for an empty representation with a suffix range.
                0 => Plan::Full,
                1 => Plan::Single(valid.remove(0)),
                _ => Plan::Multi(valid),
            }
        }
        Err(RangeUnsatisfiableError::Unsatisfiable) => Plan::Unsatisfiable,
        Err(_) => Plan::Full,
    }
}

/// A header decoded only when it has exactly one value (RFC 9110 13.1.3:
/// `If-Modified-Since` with more than one member is ignored).
fn single_value<H: Header>(headers: &HeaderMap) -> Option<H> {
    let mut values = headers.get_all(H::name()).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => H::decode(&mut std::iter::once(value)).ok(),
        _ => None,
    }
}

/// RFC 9110 13.1.5: an entity tag must match strongly; a date must equal
/// `Last-Modified` exactly, and only a strong `Last-Modified` (at least one
/// second before now) counts.
fn if_range_holds(value: &HeaderValue, rep: &Representation, now: SystemTime) -> bool {
    if let Ok(tag) = headers::ETag::decode(&mut std::iter::once(value)) {
        let if_range = headers::IfRange::etag(tag);
        return rep.etag().is_some_and(|etag| !if_range.is_modified(Some(etag), None));
    }
    let (Ok(date), Some(modified)) = (LastModified::decode(&mut std::iter::once(value)), rep.last_modified()) else {
        return false;
    };
    let strong = modified + Duration::from_secs(1) <= now;
    strong && date == LastModified::from(modified)
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::source::{ByteStream, RangeOpen};

    #[derive(Debug)]
    struct NoBytes;

    impl RangeOpen for NoBytes {
        fn open(&self, _: Range<u64>, _: usize) -> io::Result<ByteStream> {
            Err(io::Error::other("not read in these tests"))
        }
    }

    fn rep(len: u64) -> Representation {
        Representation::new(len, NoBytes)
            .with_etag(Some("\"v1\"".parse().unwrap()))
            .with_last_modified(Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000)))
    }

    fn answer(method: Method, pairs: &[(&str, &str)], len: u64) -> Plan {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        plan(
            &method,
            &headers,
            &rep(len),
            NonZeroUsize::new(16).unwrap(),
            SystemTime::now(),
        )
    }

    #[test]
    fn ranges_follow_the_documented_policy() {
        let get = |range: &str| answer(Method::GET, &[("range", range)], 1000);
        assert_eq!(get("bytes=0-99"), Plan::Single(0..100));
        assert_eq!(get("bytes=-100"), Plan::Single(900..1000));
        assert_eq!(get("bytes=990-"), Plan::Single(990..1000));
        assert_eq!(get("bytes=0-5000"), Plan::Single(0..1000));
        assert_eq!(get("bytes=0-1,5-6"), Plan::Multi(vec![0..2, 5..7]));
        assert_eq!(get("bytes=5-6,0-1"), Plan::Multi(vec![5..7, 0..2]));
        assert_eq!(get("bytes=0-1,2000-3000"), Plan::Single(0..2));
        assert_eq!(get("bytes=1000-"), Plan::Unsatisfiable);
        assert_eq!(get("bytes=-0"), Plan::Unsatisfiable);
        for ignored in [
            "bytes=5-1",
            "items=0-1",
            "bytes=abc",
            "bytes 0-1",
            "bytes=0-1,x",
            "bytes=0-10,1-9,2-8",
        ] {
            assert_eq!(get(ignored), Plan::Full, "{ignored}");
        }
        let seventeen = (0..17)
            .map(|i| format!("{}-{}", i * 10, i * 10 + 1))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(get(&format!("bytes={seventeen}")), Plan::Full);
        assert_eq!(answer(Method::HEAD, &[("range", "bytes=0-1")], 1000), Plan::Full);
        assert_eq!(
            answer(Method::GET, &[("range", "bytes=0-1"), ("range", "bytes=2-3")], 1000),
            Plan::Full
        );
        assert_eq!(answer(Method::GET, &[("range", "bytes=-5")], 0), Plan::Full);
        assert_eq!(answer(Method::GET, &[("range", "bytes=0-")], 0), Plan::Unsatisfiable);
    }

    #[test]
    fn conditionals_follow_rfc_9110_precedence() {
        let lm = "Sun, 09 Sep 2001 01:46:40 GMT";
        let before = "Sun, 09 Sep 2001 01:46:39 GMT";
        let get = |pairs: &[(&str, &str)]| answer(Method::GET, pairs, 1000);
        assert_eq!(get(&[("if-none-match", "\"v1\"")]), Plan::NotModified);
        assert_eq!(get(&[("if-none-match", "W/\"v1\"")]), Plan::NotModified);
        assert_eq!(get(&[("if-none-match", "\"v0\", \"v1\"")]), Plan::NotModified);
        assert_eq!(get(&[("if-none-match", "*")]), Plan::NotModified);
        assert_eq!(get(&[("if-none-match", "\"v2\"")]), Plan::Full);
        assert_eq!(get(&[("if-modified-since", lm)]), Plan::NotModified);
        assert_eq!(get(&[("if-modified-since", before)]), Plan::Full);
        // If-None-Match present: If-Modified-Since is not consulted.
        assert_eq!(
            get(&[("if-none-match", "\"v2\""), ("if-modified-since", lm)]),
            Plan::Full
        );
        assert_eq!(get(&[("if-modified-since", "yesterday")]), Plan::Full);
        assert_eq!(get(&[("if-match", "\"v2\"")]), Plan::PreconditionFailed);
        assert_eq!(get(&[("if-match", "W/\"v1\"")]), Plan::PreconditionFailed);
        assert_eq!(get(&[("if-match", "\"v1\"")]), Plan::Full);
        assert_eq!(get(&[("if-unmodified-since", before)]), Plan::PreconditionFailed);
        assert_eq!(get(&[("if-unmodified-since", lm)]), Plan::Full);
        assert_eq!(
            get(&[("if-range", "\"v1\""), ("range", "bytes=0-0")]),
            Plan::Single(0..1)
        );
        assert_eq!(get(&[("if-range", "\"v0\""), ("range", "bytes=0-0")]), Plan::Full);
        assert_eq!(get(&[("if-range", "W/\"v1\""), ("range", "bytes=0-0")]), Plan::Full);
        assert_eq!(get(&[("if-range", lm), ("range", "bytes=0-0")]), Plan::Single(0..1));
        assert_eq!(get(&[("if-range", before), ("range", "bytes=0-0")]), Plan::Full);
        assert_eq!(get(&[("if-range", "garbage"), ("range", "bytes=0-0")]), Plan::Full);
        assert_eq!(
            answer(Method::HEAD, &[("if-none-match", "\"v1\"")], 10),
            Plan::NotModified
        );
    }
}
