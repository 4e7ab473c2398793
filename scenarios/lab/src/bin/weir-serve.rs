//! `weir-serve`: one delivery server (weir's, or the tower-http `ServeFile`
//! baseline) in a process that holds nothing else, until Ctrl-C or, with
//! `--exit-on-stdin-eof`, until standard input closes.
//!
//! The same server as `weir-lab serve`, without the lab's scenarios,
//! reports and gate linked in: the delivery scenario measures every server
//! process in this binary, so that its RSS is the server's, as an nginx
//! worker's is nginx's. `cargo build --release -p weir-lab` builds it beside
//! `weir-lab`.

use std::process::ExitCode;

use clap::Parser;
use weir_delivery::cli::{ServeArgs, serve};

/// Serves files over HTTP.
#[derive(Debug, Parser)]
#[command(name = "weir-serve", version, about)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

fn main() -> ExitCode {
    // One level from RUST_LOG (`warn`, `debug`, ...; errors only when it
    // is unset or unreadable), not weir-lab's per-target filter: that one
    // links a regex engine into every server process the scenario measures.
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|text| text.parse::<tracing::level_filters::LevelFilter>().ok())
        .unwrap_or(tracing::level_filters::LevelFilter::ERROR);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match serve(&cli.serve) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("weir-serve: {}", weir_harness::error_text(&error));
            ExitCode::FAILURE
        }
    }
}
