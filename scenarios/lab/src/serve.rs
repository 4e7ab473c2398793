//! `weir-lab serve`: runs a delivery server (weir's, or the tower-http
//! `ServeFile` baseline) until Ctrl-C; the delivery scenario also starts its
//! server processes this way.

use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::path::PathBuf;

use clap::Args;
use weir_delivery::serve::{SendPath, ServeOptions, ServerKind};

/// Arguments of `weir-lab serve`.
#[derive(Debug, Args)]
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
    #[arg(long, value_parser = crate::parse_bytes, default_value = "32KiB")]
    pub chunk_size: u64,
    /// hyper's per-connection buffer ceiling (a stalled connection holds less than this plus one chunk).
    #[arg(long, value_parser = crate::parse_bytes, default_value = "16KiB")]
    pub connection_buffer: u64,
    /// Per-connection rate in bytes per second, e.g. `1MiB`.
    #[arg(long, value_parser = crate::parse_bytes)]
    pub rate: Option<u64>,
    /// Rate across all connections in bytes per second.
    #[arg(long, value_parser = crate::parse_bytes)]
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

/// Runs the server `args` describe until it is stopped.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let mut options = ServeOptions::new(args.root.clone());
    options.addr = args.addr;
    options.server = args.server;
    options.file.clone_from(&args.file);
    options.chunk_size = usize::try_from(args.chunk_size)?;
    options.connection_buffer = usize::try_from(args.connection_buffer)?;
    options.rate = args.rate.and_then(NonZeroU64::new);
    options.global_rate = args.global_rate.and_then(NonZeroU64::new);
    options.threads = args.threads;
    options.send_path = args.send_path;
    options.exit_on_stdin_eof = args.exit_on_stdin_eof;
    options.upload_token.clone_from(&args.upload_token);
    options.max_uploads = args.max_uploads;
    options.rows_url.clone_from(&args.rows_url);
    options.rows_tables.clone_from(&args.rows_table);
    weir_delivery::serve::serve(&options)?;
    Ok(())
}
