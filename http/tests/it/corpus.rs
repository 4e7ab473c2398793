//! A corpus of malformed and hostile `Range` and conditional headers (and a
//! few methods), each answered with the status the documented policy gives
//! and never a panic: the connection survives every case and the server
//! still answers afterwards.

use weir_http::client::Client;
use weir_http::{DeliveryConfig, FileReader, SendPath};

use crate::support::{Fixture, MTIME_HTTP, start};

const PATH: &str = "/files/small.bin";

/// Header fields of one case: name and raw value bytes.
type Fields = Vec<(&'static str, Vec<u8>)>;

/// One case: method, fields, expected status.
type Case = (&'static str, Fields, u16);

/// `{etag}` in a value stands for the file's entity tag.
fn corpus() -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    let mut range = |value: &[u8], status: u16| cases.push(("GET", vec![("range", value.to_vec())], status));

    // Satisfiable, including odd but valid spellings.
    for (value, status) in [
        ("bytes=0-0", 206),
        ("bytes=999-999", 206),
        ("bytes=-1", 206),
        ("bytes=0-", 206),
        ("bytes=-1000", 206),
        ("bytes=-5000", 206),
        ("bytes=0-999999999999", 206),
        ("BYTES=0-1", 206),
        ("Bytes=0-1", 206),
        ("bytes= 0-1", 206),
        ("bytes=0-1,", 206),
        ("bytes=,0-1", 206),
        ("bytes=000-001", 206),
        ("bytes=0-1, 3-4", 206),
        ("bytes=0-1,\t3-4", 206),
        ("bytes=0-0,0-0", 206),
        ("bytes=10-20,0-5", 206),
        ("bytes=0-1,5000-6000", 206),
        ("bytes=-0,0-0", 206),
        ("bytes=99999999999999999999-,0-0", 206),
        // Trailing whitespace is not part of a field value (RFC 9110 5.5).
        ("bytes=0-1 ", 206),
        ("bytes=0-1\t", 206),
    ] {
        range(value.as_bytes(), status);
    }
    // Valid but unsatisfiable: 416 with `bytes */1000`.
    for value in [
        "bytes=1000-",
        "bytes=1000-1000",
        "bytes=1000-2000",
        "bytes=-0",
        "bytes=5000-6000,7000-",
        "bytes=18446744073709551615-",
        "bytes=99999999999999999999-",
        "bytes=1000-,1001-,-0",
    ] {
        range(value.as_bytes(), 416);
    }
    // Malformed, unknown units, abusive: ignored, full 200 (RFC 9110 14.2).
    let long_digits = format!("bytes=0-{}", "9".repeat(31));
    let many = format!(
        "bytes={}",
        (0..17)
            .map(|i| format!("{}-{}", i * 10, i * 10 + 1))
            .collect::<Vec<_>>()
            .join(",")
    );
    let hundreds = format!(
        "bytes={}",
        (0..300).map(|i| format!("{i}-{i}")).collect::<Vec<_>>().join(",")
    );
    let overlapping = format!("bytes={}", vec!["0-10"; 50].join(","));
    let commas = format!("bytes={}0-1", ",".repeat(4000));
    for value in [
        "",
        " ",
        "bytes",
        "bytes=",
        "bytes=-",
        "bytes=--1",
        "bytes=1-0",
        "bytes=5-1,0-1",
        "bytes=a-b",
        "bytes=0x10-20",
        "bytes=+1-2",
        "bytes=-+1",
        "bytes=1--2",
        "bytes=1-2-3",
        "bytes = 0-1",
        "bytes=0 -1",
        "bytes=0- 1",
        "bytes=0.5-1",
        "bytes=1e3-",
        "bytes=0-1;0-2",
        "bytes=0-1,x",
        "bytes=0-1,,,,,,,,,,,,,,,,,2-3",
        "bytes=-1-",
        "items=0-1",
        "bytes:0-1",
        "bytes 0-1",
        "none",
        "bytes=0-10,5-15,8-20",
        "bytes=0-0,0-0,0-0",
        "=0-1",
        "0-1",
        "bytes=\"0-1\"",
        "bytes=0-1\"",
        "bytes=%30-1",
    ] {
        range(value.as_bytes(), 200);
    }
    for value in [&long_digits, &many, &hundreds, &overlapping, &commas] {
        range(value.as_bytes(), 200);
    }
    // obs-text bytes: not ASCII, so not a valid ranges-specifier.
    range(b"bytes=\xd9\xa3-\xd9\xa4", 200);
    range(b"bytes=0-1\xff", 200);
    range(b"\x80\x81", 200);
    // Two Range fields: not one valid specifier.
    cases.push((
        "GET",
        vec![("range", b"bytes=0-1".to_vec()), ("range", b"bytes=2-3".to_vec())],
        200,
    ));
    // HEAD ignores Range.
    cases.push(("HEAD", vec![("range", b"bytes=0-1".to_vec())], 200));
    cases.push(("HEAD", vec![("range", b"bytes=5000-".to_vec())], 200));

    // Conditionals.
    let mut conditional = |headers: &[(&'static str, &str)], status: u16| {
        let headers = headers.iter().map(|(n, v)| (*n, v.as_bytes().to_vec())).collect();
        cases.push(("GET", headers, status));
    };
    let before = "Sun, 09 Sep 2001 01:46:39 GMT";
    let after = "Sun, 09 Sep 2001 01:46:41 GMT";
    for (headers, status) in [
        (&[("if-none-match", "{etag}")][..], 304),
        (&[("if-none-match", "W/{etag}")], 304),
        (&[("if-none-match", "*")], 304),
        (&[("if-none-match", "\"other\", {etag}")], 304),
        (&[("if-none-match", "\"other\"")], 200),
        (&[("if-none-match", "unquoted")], 200),
        (&[("if-none-match", "\"")], 200),
        (&[("if-none-match", "")], 200),
        (&[("if-none-match", "W/")], 200),
        (&[("if-none-match", "\"a\"\"b\"")], 200),
        (&[("if-modified-since", MTIME_HTTP)], 304),
        (&[("if-modified-since", after)], 304),
        (&[("if-modified-since", "Sun, 31 Dec 2119 23:59:59 GMT")], 304),
        (&[("if-modified-since", before)], 200),
        (&[("if-modified-since", "Sunday, 09-Sep-01 01:46:40 GMT")], 304),
        (&[("if-modified-since", "Sun Sep  9 01:46:40 2001")], 304),
        (&[("if-modified-since", "yesterday")], 200),
        (&[("if-modified-since", "")], 200),
        (&[("if-modified-since", "Sun, 99 Sep 2001 01:46:40 GMT")], 200),
        (&[("if-modified-since", "1000000000")], 200),
        (
            &[("if-none-match", "\"other\""), ("if-modified-since", MTIME_HTTP)],
            200,
        ),
        (&[("if-none-match", "{etag}"), ("if-modified-since", before)], 304),
        (&[("if-match", "{etag}")], 200),
        (&[("if-match", "*")], 200),
        (&[("if-match", "\"other\"")], 412),
        (&[("if-match", "W/{etag}")], 412),
        // An If-Match naming no valid entity tag matches nothing.
        (&[("if-match", "garbage")], 412),
        (&[("if-unmodified-since", MTIME_HTTP)], 200),
        (&[("if-unmodified-since", before)], 412),
        (&[("if-unmodified-since", "garbage")], 200),
        (&[("if-match", "{etag}"), ("if-unmodified-since", before)], 200),
        (&[("if-match", "\"other\""), ("if-none-match", "{etag}")], 412),
        (&[("if-range", "{etag}"), ("range", "bytes=0-1")], 206),
        (&[("if-range", "\"other\""), ("range", "bytes=0-1")], 200),
        (&[("if-range", "W/{etag}"), ("range", "bytes=0-1")], 200),
        (&[("if-range", MTIME_HTTP), ("range", "bytes=0-1")], 206),
        (&[("if-range", before), ("range", "bytes=0-1")], 200),
        (&[("if-range", after), ("range", "bytes=0-1")], 200),
        (&[("if-range", "garbage"), ("range", "bytes=0-1")], 200),
        (&[("if-range", ""), ("range", "bytes=0-1")], 200),
        (&[("if-range", "{etag}")], 200),
        (&[("if-range", "{etag}"), ("range", "bytes=5000-")], 416),
        (&[("if-range", "\"other\""), ("range", "bytes=5000-")], 200),
        (&[("if-none-match", "{etag}"), ("range", "bytes=0-1")], 304),
        (&[("if-none-match", "\"other\""), ("range", "bytes=0-1")], 206),
    ] {
        conditional(headers, status);
    }
    // Methods other than GET and HEAD.
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        cases.push((method, vec![("range", b"bytes=0-1".to_vec())], 405));
    }
    cases
}

async fn every_hostile_header_gets_its_status_and_the_server_survives(path: SendPath) {
    let fixture = Fixture::new();
    let server = start(
        DeliveryConfig::new(fixture.path()).with_send_path(path),
        FileReader::Pull,
    )
    .await;
    let mut client = Client::connect(server.local_addr()).await.unwrap();
    let head = client.fetch("HEAD", PATH, &[]).await.unwrap();
    let etag = head.header("etag").to_owned();
    assert!(etag.starts_with('"'), "etag {etag:?}");

    let cases = corpus();
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let mut wrong = Vec::new();
    for (method, headers, status) in &cases {
        let headers: Vec<(&str, Vec<u8>)> = headers
            .iter()
            .map(|(n, v)| match std::str::from_utf8(v) {
                Ok(text) => (*n, text.replace("{etag}", &etag).into_bytes()),
                Err(_) => (*n, v.clone()),
            })
            .collect();
        let borrowed: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        if path == SendPath::Sendfile {
            // A request hyper answers keeps its connection: a fresh one per
            // case puts every case the sendfile path takes on that path.
            client = Client::connect(server.local_addr()).await.unwrap();
        }
        let fetched = match client.fetch(method, PATH, &borrowed).await {
            Ok(fetched) => fetched,
            Err(error) => panic!("{method} {headers:?}: the exchange failed: {error}"),
        };
        if fetched.status.as_u16() != *status {
            wrong.push(format!(
                "{method} {headers:?}: got {}, expected {status}",
                fetched.status
            ));
        }
        match fetched.status.as_u16() {
            200 if *method == "GET" => assert_eq!(fetched.body.len(), 1000),
            416 => assert_eq!(fetched.header("content-range"), "bytes */1000"),
            304 => {
                assert!(fetched.body.is_empty());
                assert_eq!(fetched.header("etag"), etag);
            }
            _ => {}
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
    let after = client.get(PATH, &[]).await.unwrap();
    assert_eq!((after.status.as_u16(), after.body.len()), (200, 1000));
    if path == SendPath::Sendfile {
        let by_sendfile = server.metrics().snapshot().sendfile_transfers;
        assert!(
            by_sendfile >= 50,
            "only {by_sendfile} of the cases went out by sendfile"
        );
    }
    server.shutdown().await;
}
on_each_path!(every_hostile_header_gets_its_status_and_the_server_survives);
