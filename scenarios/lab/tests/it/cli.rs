//! Listing and bad arguments: clear errors and non-zero exits, never a panic.

use crate::{lab, texts};

#[test]
fn list_names_every_scenario() {
    let output = lab(&["list"]);
    assert!(output.status.success());
    let (stdout, _) = texts(&output);
    assert!(stdout.lines().any(|l| l.starts_with("flow ")), "{stdout}");

    let names = lab(&["list", "--names"]);
    let (stdout, _) = texts(&names);
    assert!(stdout.lines().any(|l| l == "flow"), "{stdout}");
}

#[test]
fn bad_arguments_are_refused_with_a_reason() {
    let cases: [(&[&str], &str); 5] = [
        (&["run", "nope"], "invalid value 'nope'"),
        (&["run", "flow", "--size", "0"], "size must be at least 1 byte"),
        (&["run", "flow", "--size", "lots"], "expected e.g. 100MiB"),
        (&["run", "flow", "--variant", "sideways"], "unknown variant `sideways`"),
        (&["run", "flow", "--sink", "tape"], "unknown sink `tape`"),
    ];
    for (args, expected) in cases {
        let output = lab(args);
        let (_, stderr) = texts(&output);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn errors_print_their_cause_chain() {
    let dir = tempfile::tempdir().unwrap();
    let output = lab(&["report", dir.path().join("missing").to_str().unwrap()]);
    let (_, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("error: rendering the report"), "{stderr}");
    assert!(stderr.contains("caused by: reading results from"), "{stderr}");

    let child = lab(&["__child", "flow", "--case", "{not json"]);
    let (_, stderr) = texts(&child);
    assert_eq!(child.status.code(), Some(1));
    assert!(stderr.contains("parsing the flow case"), "{stderr}");
}
