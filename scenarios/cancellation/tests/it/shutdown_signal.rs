//! The shutdown demo under a real signal from outside: `weir-shutdown-demo`
//! runs 50 ingestions of different lengths under a registry; this test
//! sends it SIGTERM (or SIGINT) once it is ready and checks that what could
//! finish within the grace finished, the rest were aborted, the process
//! exited 0 with a summary, and no temporary file is left.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use serde_json::Value;

/// Waits for the child to exit, killing it after `limit`.
fn wait_with_limit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("weir-shutdown-demo did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run_demo(signal: Signal) -> (Value, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir-shutdown-demo"))
        .args(["--dir"])
        .arg(dir.path())
        .args([
            "--ingestions",
            "50",
            "--longest-ms",
            "2000",
            "--grace-ms",
            "600",
            "--late",
            "3",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "the demo announces its signal handlers");
    kill_process(Pid::from_child(&child), signal).unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = wait_with_limit(&mut child, Duration::from_secs(60));
    assert!(status.success(), "exit status {status}");
    let json: Value = serde_json::from_str(rest.trim()).unwrap_or_else(|e| panic!("{e}: {rest}"));
    (json, dir)
}

fn check(json: &Value, dir: &std::path::Path) {
    let summary = &json["summary"];
    let completed = summary["completed"].as_u64().unwrap();
    let aborted = summary["aborted"].as_u64().unwrap();
    assert_eq!(completed + aborted, 50, "{summary}");
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["refused"], 3);

    let records = json["records"].as_array().unwrap();
    let with = |expected: &'static str| records.iter().filter(move |r| r["expected"] == expected);
    assert!(
        with("finish").count() > 0 && with("abort").count() > 0,
        "both kinds are exercised"
    );
    for r in with("finish") {
        assert_eq!(r["outcome"], "committed", "could finish within the grace: {r}");
    }
    for r in with("abort") {
        assert_eq!(r["outcome"], "shutdown", "could not finish within the grace: {r}");
        assert_eq!(r["aborts"], 1, "aborted exactly once: {r}");
    }
    for r in records {
        assert_eq!(r["as_expected"], true, "{r}");
        assert_eq!(r["violations"], 0, "{r}");
    }
    for late in json["late"].as_array().unwrap() {
        assert_eq!(late["refused"], true, "{late}");
        assert_eq!(late["source_dropped"], true, "{late}");
        assert_eq!(late["sink_aborted_once"], true, "{late}");
    }
    // The counts the figures derive from the records, and what was
    // released.
    for count in ["not_as_expected", "violations", "late_not_clean", "active_at_end"] {
        assert_eq!(json[count], 0, "{count}: {json}");
    }
    for (before, after) in [
        ("fds_before", "fds_after"),
        ("threads_before", "threads_after"),
        ("tasks_before", "tasks_after"),
    ] {
        assert!(
            json[after].as_u64().unwrap() <= json[before].as_u64().unwrap(),
            "{after}: {json}"
        );
    }
    assert_eq!(json["temp_files_left"].as_array().unwrap().len(), 0, "{json}");
    assert_eq!(json["target_mismatches"].as_array().unwrap().len(), 0, "{json}");

    // Targets exist for exactly the committed file ingestions, and no
    // temporary file is left.
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.iter().all(|n| !n.ends_with(".weir-tmp")), "{names:?}");
    let mut committed_files: Vec<String> = records
        .iter()
        .filter(|r| r["sink"] == "file" && r["outcome"] == "committed")
        .map(|r| format!("shutdown-{:03}.bin", r["index"].as_u64().unwrap()))
        .collect();
    committed_files.sort();
    assert_eq!(names, committed_files);
}

#[test]
fn sigterm_drains_what_can_finish_and_aborts_the_rest() {
    let (json, dir) = run_demo(Signal::TERM);
    check(&json, dir.path());
}

#[test]
fn sigint_shuts_down_the_same_way() {
    let (json, dir) = run_demo(Signal::INT);
    check(&json, dir.path());
}
