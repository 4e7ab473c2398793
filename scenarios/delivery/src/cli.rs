//! The server's command line, shared by `weir-lab serve` and the lean
//! `weir-serve` binary the scenario measures: [`ServeArgs`] is
//! [`ServeOptions::to_args`] read back.

use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::path::PathBuf;

use clap::Args;
use weir_harness::parse_bytes;

use crate::error::Error;
use crate::serve::{SendPath, ServeOptions, ServerKind};

/// The options of a server process.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The directory served under `/files/`.
    #[arg(long)]
    pub root: PathBuf,
    /// Address to listen on (port 0: any free port, printed on start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// `weir-sendfile` (plain file bodies by sendfile(2)), `weir-pull` (every body through hyper), `weir-read-ahead`, or `tower-serve-file` (the baseline).
    #[arg(long, default_value = "weir-sendfile")]
    pub server: ServerKind,
    /// For `tower-serve-file`: the file under the root served at every path.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Bytes read per chunk, e.g. `32KiB`.
    #[arg(long, value_parser = parse_bytes, default_value = "32KiB")]
    pub chunk_size: u64,
    /// hyper's per-connection buffer ceiling (a stalled connection holds less than this plus one chunk).
    #[arg(long, value_parser = parse_bytes, default_value = "16KiB")]
    pub connection_buffer: u64,
    /// Per-connection rate in bytes per second, e.g. `1MiB`.
    #[arg(long, value_parser = parse_bytes)]
    pub rate: Option<u64>,
    /// Rate across all connections in bytes per second.
    #[arg(long, value_parser = parse_bytes)]
    pub global_rate: Option<u64>,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// How a weir server sends plain file bodies: `hyper` (copied through
    /// user space) or `sendfile`; by default as `--server` says (`weir-sendfile`: sendfile).
    #[arg(long)]
    pub send_path: Option<SendPath>,
    /// Shut down when standard input closes (how the scenario stops it).
    #[arg(long)]
    pub exit_on_stdin_eof: bool,
    /// Accept uploads (PUT/POST) from holders of this bearer token (at least 16 characters; visible in the process list).
    #[arg(long)]
    pub upload_token: Option<String>,
    /// Uploads at once, with --upload-token.
    #[arg(long, default_value_t = 64)]
    pub max_uploads: usize,
    /// Serve rows of --rows-table tables of this PostgreSQL database under /rows/ (a postgres:// URL).
    #[arg(long)]
    pub rows_url: Option<String>,
    /// A table (or schema.table) served under /rows/, with --rows-url; repeatable.
    #[arg(long)]
    pub rows_table: Vec<String>,
}

impl ServeArgs {
    /// The server options these arguments describe.
    ///
    /// # Errors
    ///
    /// When a size does not fit this machine's `usize`.
    pub fn to_options(&self) -> Result<ServeOptions, Error> {
        let size = |name: &str, value: u64| {
            usize::try_from(value).map_err(|_| Error::Config(format!("--{name} {value} does not fit in memory here")))
        };
        let mut options = ServeOptions::new(self.root.clone());
        options.addr = self.addr;
        options.server = self.server;
        options.file.clone_from(&self.file);
        options.chunk_size = size("chunk-size", self.chunk_size)?;
        options.connection_buffer = size("connection-buffer", self.connection_buffer)?;
        options.rate = self.rate.and_then(NonZeroU64::new);
        options.global_rate = self.global_rate.and_then(NonZeroU64::new);
        options.threads = self.threads;
        options.send_path = self.send_path;
        options.exit_on_stdin_eof = self.exit_on_stdin_eof;
        options.upload_token.clone_from(&self.upload_token);
        options.max_uploads = self.max_uploads;
        options.rows_url.clone_from(&self.rows_url);
        options.rows_tables.clone_from(&self.rows_table);
        Ok(options)
    }
}

/// Runs the server `args` describe until Ctrl-C (or, with
/// `--exit-on-stdin-eof`, until standard input closes).
///
/// # Errors
///
/// When the options are invalid or the server fails to start.
pub fn serve(args: &ServeArgs) -> Result<(), Error> {
    crate::serve::serve(&args.to_options()?)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn the_arguments_a_scenario_passes_read_back_as_the_same_options() {
        let mut options = ServeOptions::new("/srv/files");
        options.server = ServerKind::WeirPull;
        options.file = Some("big.bin".into());
        options.chunk_size = 64 << 10;
        options.rate = NonZeroU64::new(1 << 20);
        options.global_rate = NonZeroU64::new(8 << 20);
        options.threads = 1;
        options.send_path = Some(SendPath::Hyper);
        options.upload_token = Some("a-token-of-sixteen-chars".to_owned());
        options.max_uploads = 3;
        options.exit_on_stdin_eof = true;
        options.rows_url = Some("postgres://127.0.0.1/x".to_owned());
        options.rows_tables = vec!["a".to_owned(), "s.b".to_owned()];
        let mut argv = vec![std::ffi::OsString::from("weir-serve")];
        argv.extend(options.to_args());
        let read = Cli::try_parse_from(argv).unwrap().serve.to_options().unwrap();
        assert_eq!(format!("{read:?}"), format!("{options:?}"));
    }

    #[test]
    fn a_zero_size_is_refused_on_the_command_line() {
        let error = Cli::try_parse_from(["weir-serve", "--root", ".", "--chunk-size", "0"]).unwrap_err();
        assert!(error.to_string().contains("at least 1 byte"), "{error}");
    }
}
