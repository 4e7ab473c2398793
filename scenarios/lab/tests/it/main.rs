//! Integration tests of the weir-lab binary, run as a person would: the
//! built executable, its exit codes, stdout and stderr.

mod cli;
mod flow;
mod tidy;

use std::process::{Command, Output};

/// Runs the built `weir-lab` with `args` (no terminal, `CI` set: no
/// progress bar).
pub fn lab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir-lab"))
        .args(args)
        .env("CI", "true")
        .output()
        .expect("run weir-lab")
}

/// stdout and stderr as text.
pub fn texts(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
