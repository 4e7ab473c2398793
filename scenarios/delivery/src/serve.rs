//! Running a server as a process: [`ServeOptions`] (what `weir-serve`
//! parses, and what the scenario passes to the server processes it starts)
//! and [`serve`], which runs until Ctrl-C or, when asked, until its standard
//! input closes.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::path::PathBuf;

pub use weir_http::SendPath;
use weir_http::{DeliveryConfig, FileReader, Server, UploadConfig};

use crate::error::Error;

/// The line prefix a server prints (once, on stdout) when it is listening;
/// the address follows.
pub const READY_PREFIX: &str = "weir-delivery listening on ";

/// Which server to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerKind {
    /// weir-delivery with pull-based positional reads, every body through
    /// hyper.
    WeirPull,
    /// weir-delivery with plain file bodies sent by `sendfile(2)` (the rest
    /// through hyper, with pull reads).
    WeirSendfile,
    /// weir-delivery with the engine's read-ahead `FileSource`.
    WeirReadAhead,
    /// tower-http's `ServeFile`, the baseline behind weir's accept loop.
    TowerServeFile,
    /// nginx (Debian's `nginx-light`, one worker, sendfile): the baseline
    /// users deploy. Started by the scenario itself, never by `weir-lab serve`.
    Nginx,
}

impl ServerKind {
    /// Every kind, in report order.
    pub const ALL: [Self; 5] = [
        Self::WeirPull,
        Self::WeirSendfile,
        Self::WeirReadAhead,
        Self::TowerServeFile,
        Self::Nginx,
    ];

    /// The name on command lines and in results.
    pub fn name(self) -> &'static str {
        match self {
            Self::WeirPull => "weir-pull",
            Self::WeirSendfile => "weir-sendfile",
            Self::WeirReadAhead => "weir-read-ahead",
            Self::TowerServeFile => "tower-serve-file",
            Self::Nginx => "nginx",
        }
    }

    /// The file reader of a weir kind.
    pub fn reader(self) -> Option<FileReader> {
        match self {
            Self::WeirPull | Self::WeirSendfile => Some(FileReader::Pull),
            Self::WeirReadAhead => Some(FileReader::ReadAhead),
            Self::TowerServeFile | Self::Nginx => None,
        }
    }

    /// The send path of a weir kind.
    pub fn send_path(self) -> Option<SendPath> {
        match self {
            Self::WeirPull | Self::WeirReadAhead => Some(SendPath::Hyper),
            Self::WeirSendfile => Some(SendPath::Sendfile),
            Self::TowerServeFile | Self::Nginx => None,
        }
    }
}

impl std::str::FromStr for ServerKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|k| k.name() == text).ok_or_else(|| {
            format!(
                "unknown server {text:?} (expected weir-pull, weir-sendfile, weir-read-ahead, tower-serve-file or nginx)"
            )
        })
    }
}

/// Everything a server process (`weir-serve`, `weir-lab serve`) takes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Address to bind (port 0: any free port).
    pub addr: SocketAddr,
    /// Which server.
    pub server: ServerKind,
    /// The served directory.
    pub root: PathBuf,
    /// For `tower-serve-file`: the file (relative to `root`) served at every path.
    pub file: Option<PathBuf>,
    /// Chunk size, bytes.
    pub chunk_size: usize,
    /// hyper's per-connection buffer ceiling, bytes.
    pub connection_buffer: usize,
    /// Per-connection byte rate.
    pub rate: Option<NonZeroU64>,
    /// Global byte rate.
    pub global_rate: Option<NonZeroU64>,
    /// Runtime worker threads.
    pub threads: usize,
    /// How a weir server sends plain file bodies; `None`: as its kind says.
    pub send_path: Option<SendPath>,
    /// Shut down gracefully when standard input reaches end of file (how a
    /// parent process stops its server).
    pub exit_on_stdin_eof: bool,
    /// Turns uploads on for holders of this bearer token (weir servers).
    /// A lab option: on a command line it is visible to every local user.
    pub upload_token: Option<String>,
    /// Uploads at once (with `upload_token`).
    pub max_uploads: usize,
    /// Serves rows of `rows_tables` from this PostgreSQL database under
    /// `/rows/` (weir servers). A lab option: visible on the command line.
    pub rows_url: Option<String>,
    /// The tables served under `/rows/`.
    pub rows_tables: Vec<String>,
}

impl ServeOptions {
    /// Serve `root` on 127.0.0.1 (any port) with weir's defaults (the
    /// sendfile path).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let defaults = DeliveryConfig::new(PathBuf::new());
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            server: ServerKind::WeirSendfile,
            root: root.into(),
            file: None,
            chunk_size: defaults.chunk_size,
            connection_buffer: defaults.connection_buffer,
            rate: None,
            global_rate: None,
            threads: 2,
            send_path: None,
            exit_on_stdin_eof: false,
            upload_token: None,
            max_uploads: 64,
            rows_url: None,
            rows_tables: Vec::new(),
        }
    }

    /// The delivery configuration these options describe.
    pub fn config(&self) -> DeliveryConfig {
        let mut config = DeliveryConfig::new(self.root.clone())
            .with_chunk_size(self.chunk_size)
            .with_per_connection_rate(self.rate)
            .with_global_rate(self.global_rate)
            .with_send_path(self.send_path.or(self.server.send_path()).unwrap_or_default());
        config.connection_buffer = self.connection_buffer;
        if let Some(token) = &self.upload_token {
            config = config.with_uploads(UploadConfig::new(token.clone()).with_max_concurrent(self.max_uploads));
        }
        if let Some(url) = &self.rows_url {
            config.rows = Some(weir_http::RowsConfig::new(url.clone(), self.rows_tables.clone()));
        }
        config
    }

    /// The command-line arguments [`crate::cli::ServeArgs`] parses back into
    /// these options (`weir-serve`'s, or `weir-lab serve`'s after the
    /// `serve` word).
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--addr".into(),
            self.addr.to_string().into(),
            "--server".into(),
            self.server.name().into(),
            "--root".into(),
            self.root.clone().into(),
            "--chunk-size".into(),
            self.chunk_size.to_string().into(),
            "--connection-buffer".into(),
            self.connection_buffer.to_string().into(),
            "--threads".into(),
            self.threads.to_string().into(),
        ];
        if let Some(path) = self.send_path {
            args.extend(["--send-path".into(), path.name().into()]);
        }
        if let Some(file) = &self.file {
            args.extend(["--file".into(), file.clone().into()]);
        }
        if let Some(rate) = self.rate {
            args.extend(["--rate".into(), rate.to_string().into()]);
        }
        if let Some(rate) = self.global_rate {
            args.extend(["--global-rate".into(), rate.to_string().into()]);
        }
        if let Some(token) = &self.upload_token {
            args.extend([
                "--upload-token".into(),
                token.into(),
                "--max-uploads".into(),
                self.max_uploads.to_string().into(),
            ]);
        }
        if let Some(url) = &self.rows_url {
            args.extend(["--rows-url".into(), url.into()]);
            for table in &self.rows_tables {
                args.extend(["--rows-table".into(), table.into()]);
            }
        }
        if self.exit_on_stdin_eof {
            args.push("--exit-on-stdin-eof".into());
        }
        args
    }
}

/// Binds the server `options` describe on the current runtime.
///
/// # Errors
///
/// Invalid options, an unusable root, a missing baseline file, a failed bind.
pub async fn start(options: &ServeOptions) -> Result<Server, Error> {
    let config = options.config();
    match options.server.reader() {
        Some(reader) => Ok(Server::bind_with(options.addr, config, reader).await?),
        None if options.server == ServerKind::Nginx => Err(Error::Config(
            "nginx is started by the delivery scenario (its own configuration), not by `serve`".to_owned(),
        )),
        None => {
            let file = options
                .file
                .as_ref()
                .ok_or_else(|| Error::Config("tower-serve-file needs --file".to_owned()))?;
            crate::baseline::serve_file(options.addr, &options.root.join(file), &config).await
        }
    }
}

/// Blocking-pool threads of a weir server: it uses the pool only to open
/// files (microseconds each), so a burst of requests queues its opens on a
/// few threads instead of leaving dozens of idle threads (and their stacks)
/// behind. tower-http's `ServeFile` reads every chunk on the pool, so its
/// runtime keeps tokio's default.
const WEIR_BLOCKING_THREADS: usize = 8;

/// The multi-threaded runtime a server of `options` runs on.
pub fn runtime(options: &ServeOptions) -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .worker_threads(options.threads.max(1))
        .thread_name("weir-serve")
        .enable_all();
    if options.server.reader().is_some() {
        builder.max_blocking_threads(WEIR_BLOCKING_THREADS);
    }
    builder
}

/// Runs a server until Ctrl-C (or standard input's end, when asked), on a
/// runtime of its own with `options.threads` workers. Prints
/// [`READY_PREFIX`] and the address on stdout once listening.
///
/// # Errors
///
/// As [`start`], or when the runtime cannot be built.
pub fn serve(options: &ServeOptions) -> Result<(), Error> {
    let runtime = runtime(options)
        .build()
        .map_err(|e| Error::scenario("building the server runtime", e))?;
    runtime.block_on(async {
        let server = start(options).await?;
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{READY_PREFIX}{}", server.local_addr());
        let _ = stdout.flush();
        drop(stdout);
        let stdin_closed = async {
            if options.exit_on_stdin_eof {
                let _ = tokio::task::spawn_blocking(|| {
                    let mut sink = [0u8; 64];
                    let mut stdin = std::io::stdin();
                    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
                })
                .await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; shutting down"),
            () = stdin_closed => tracing::info!("standard input closed; shutting down"),
        }
        server.shutdown().await;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_options_become_arguments() {
        for kind in ServerKind::ALL {
            assert_eq!(kind.name().parse::<ServerKind>(), Ok(kind));
        }
        assert!("apache".parse::<ServerKind>().is_err());
        let mut options = ServeOptions::new("/srv");
        options.rate = NonZeroU64::new(1 << 20);
        options.exit_on_stdin_eof = true;
        options.send_path = Some(SendPath::Hyper);
        let args: Vec<String> = options
            .to_args()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert!(args.windows(2).any(|w| w[0] == "--rate" && w[1] == "1048576"));
        assert!(args.windows(2).any(|w| w[0] == "--server" && w[1] == "weir-sendfile"));
        assert!(args.windows(2).any(|w| w[0] == "--send-path" && w[1] == "hyper"));
        assert_eq!(options.config().send_path, SendPath::Hyper, "the flag wins");
        assert_eq!(ServeOptions::new("/srv").config().send_path, SendPath::Sendfile);
        let mut pull = ServeOptions::new("/srv");
        pull.server = ServerKind::WeirPull;
        assert_eq!(pull.config().send_path, SendPath::Hyper);
        assert_eq!(args.last().map(String::as_str), Some("--exit-on-stdin-eof"));
        assert!(options.config().validate().is_ok());
    }
}
