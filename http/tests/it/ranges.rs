//! The range property: for random `Range` headers on files of several sizes,
//! every answer (status, `Content-Range`, body or multipart parts) equals
//! what the documented policy says of the file's bytes. One server, one
//! keep-alive client connection for all cases.

use std::cell::{Cell, RefCell};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use weir_http::client::Client;
use weir_http::{DeliveryConfig, FileReader, SendPath};

use crate::support::{Background, Expected, FILES, Fixture, Spec, content, expected, parse_multipart};

const MAX_RANGES: usize = 16;

fn spec(len: u64) -> impl Strategy<Value = Spec> {
    // Positions near the file's bounds are where the off-by-ones live.
    let position = prop_oneof![
        4 => 0..len + 2,
        1 => Just(len.saturating_sub(1)),
        1 => len..len + 1000,
        1 => (u64::MAX - 10)..u64::MAX,
    ];
    prop_oneof![
        3 => (position.clone(), 0..len.max(1) * 2).prop_map(|(a, extra)| Spec::FromTo(a, a.saturating_add(extra))),
        1 => position.prop_map(Spec::From),
        1 => prop_oneof![0..len + 2, Just(u64::MAX)].prop_map(Spec::Suffix),
    ]
}

fn case() -> impl Strategy<Value = (usize, Vec<Spec>)> {
    (0..FILES.len()).prop_flat_map(|file| {
        let len = FILES[file].1;
        let count = prop_oneof![8 => 1..=3usize, 2 => 4..=MAX_RANGES, 1 => (MAX_RANGES + 1)..=MAX_RANGES + 4];
        (
            Just(file),
            count.prop_flat_map(move |n| proptest::collection::vec(spec(len), n)),
        )
    })
}

fn check(background: &Background, client: &mut Client, file: usize, specs: &[Spec]) -> Result<(), TestCaseError> {
    let (name, len) = FILES[file];
    let header = format!("bytes={}", specs.iter().map(|s| s.text()).collect::<Vec<_>>().join(","));
    let fetched = background
        .runtime
        .block_on(client.get(&format!("/files/{name}"), &[("range", &header)]))
        .map_err(|e| TestCaseError::fail(format!("{header}: {e}")))?;
    let bytes = content(len);
    let slice = |r: &std::ops::Range<u64>| bytes[r.start as usize..r.end as usize].to_vec();
    match expected(specs, len, MAX_RANGES) {
        Expected::Full => {
            prop_assert_eq!(fetched.status, 200, "{}", header);
            prop_assert_eq!(&fetched.body[..], &bytes[..], "{}", header);
        }
        Expected::Unsatisfiable => {
            prop_assert_eq!(fetched.status, 416, "{}", header);
            prop_assert_eq!(fetched.header("content-range"), format!("bytes */{len}"));
            prop_assert!(fetched.body.is_empty());
        }
        Expected::Single(range) => {
            prop_assert_eq!(fetched.status, 206, "{}", header);
            let content_range = format!("bytes {}-{}/{len}", range.start, range.end - 1);
            prop_assert_eq!(fetched.header("content-range"), content_range);
            prop_assert_eq!(fetched.body.to_vec(), slice(&range), "{}", header);
        }
        Expected::Multi(ranges) => {
            prop_assert_eq!(fetched.status, 206, "{}", header);
            let parts = parse_multipart(fetched.header("content-type"), &fetched.body).map_err(TestCaseError::fail)?;
            prop_assert_eq!(parts.len(), ranges.len(), "{}", header);
            for ((content_range, data), range) in parts.iter().zip(&ranges) {
                prop_assert_eq!(content_range, &format!("bytes {}-{}/{len}", range.start, range.end - 1));
                prop_assert_eq!(data, &slice(range), "{}", header);
            }
        }
    }
    prop_assert_eq!(fetched.header("content-length"), fetched.body.len().to_string());
    Ok(())
}

fn run(reader: FileReader, path: SendPath, cases: u32) {
    let fixture = Fixture::new();
    let background = Background::start(DeliveryConfig::new(fixture.path()).with_send_path(path), reader);
    let client = RefCell::new(background.runtime.block_on(Client::connect(background.addr())).unwrap());
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let checked = Cell::new(0u32);
    let outcome = runner.run(&case(), |(file, specs)| {
        checked.set(checked.get() + 1);
        if path == SendPath::Sendfile {
            // A multipart answer hands its connection to hyper for good: a
            // fresh one per case keeps every single range on sendfile.
            *client.borrow_mut() = background.runtime.block_on(Client::connect(background.addr())).unwrap();
        }
        check(&background, &mut client.borrow_mut(), file, &specs)
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    assert!(checked.get() >= cases, "only {} cases ran", checked.get());
    let snapshot = background.metrics().snapshot();
    assert_eq!((snapshot.failed, snapshot.active_transfers), (0, 0));
    if path == SendPath::Sendfile {
        // Most cases are one range or the whole file (the rest multipart
        // or bodiless): they went out by sendfile.
        assert!(
            snapshot.sendfile_transfers > u64::from(cases) / 3,
            "{} of {cases} by sendfile",
            snapshot.sendfile_transfers
        );
    }
}

#[test]
fn random_ranges_match_the_files_slices_with_pull_reads() {
    run(FileReader::Pull, SendPath::Hyper, 1200);
}

#[test]
fn random_ranges_match_the_files_slices_by_sendfile() {
    // Multipart answers among them go through hyper on the same connection.
    run(FileReader::Pull, SendPath::Sendfile, 1200);
}

#[test]
fn random_ranges_match_the_files_slices_with_read_ahead() {
    run(FileReader::ReadAhead, SendPath::Hyper, 300);
}
