//! nginx as the delivery baseline users actually deploy: Debian's
//! `nginx-light` (installed by `scripts/nginx-install.sh`, `just
//! nginx-install`), run with a configuration of the scenario's own (one
//! worker, `sendfile on`, `tcp_nopush on`, `access_log off`, 127.0.0.1, a
//! free port, a pid file) in a directory of its own, and stopped by PID.
//!
//! The scenario measures the worker process: it owns every connection and
//! does every send. The master only forks it and waits for signals.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::Error;

/// Where Debian puts the binary when `PATH` lacks `/usr/sbin`.
const DEBIAN_NGINX: &str = "/usr/sbin/nginx";

/// The nginx binary: `$WEIR_NGINX`, `nginx` on `PATH`, or Debian's path.
///
/// # Errors
///
/// When none exists, with the command that installs it.
pub fn binary() -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os("WEIR_NGINX") {
        return Ok(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("nginx"))
        .chain([PathBuf::from(DEBIAN_NGINX)])
        .find(|candidate| candidate.is_file());
    on_path.ok_or_else(|| {
        Error::check("nginx not found: run `just nginx-install` (installs Debian's nginx-light), or set WEIR_NGINX")
    })
}

/// Debian's `worker_connections`: nginx allocates every connection's
/// structures when a worker starts, so more than a phase needs would count
/// against its memory.
const DEBIAN_WORKER_CONNECTIONS: usize = 768;

/// Connections beyond a phase's clients: fresh requests, warm-ups.
const SPARE_CONNECTIONS: usize = 64;

/// Room for connections still closing (nginx holds a slot until its
/// lingering close ends): with clients + 64 it logged "worker_connections
/// are not enough, reusing connections" and 4 of 1,000 clients failed.
fn connections_for(clients: usize) -> usize {
    DEBIAN_WORKER_CONNECTIONS.max(clients + clients / 4 + SPARE_CONNECTIONS)
}

/// The configuration the scenario runs nginx with: everything under
/// `prefix`, files under `root` served at `/files/`, Debian's connection
/// limit or room for `clients` (and those still closing), a listen backlog as deep
/// (nginx's default, 511, overflowed when 1,000 clients connected at once:
/// 32 of them failed; tokio's listener asks for 1,024).
fn config(prefix: &Path, root: &Path, port: u16, as_root: bool, clients: usize) -> String {
    let connections = connections_for(clients);
    let p = prefix.display();
    let mut text = String::new();
    // Workers of a root master default to `nobody`, who may not enter a
    // private temporary directory; the scenario's files are its own.
    if as_root {
        text.push_str("user root;\n");
    }
    let _ = write!(
        text,
        "daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile {files};
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{
    worker_connections {connections};
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    default_type application/octet-stream;
    client_body_temp_path {p}/body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog={connections};
        location /files/ {{
            alias {root}/;
        }}
    }}
}}
",
        root = root.display(),
        files = 2 * connections + SPARE_CONNECTIONS,
    );
    text
}

/// A running nginx (master and one worker).
#[derive(Debug)]
pub(crate) struct Nginx {
    master: Child,
    worker: u32,
    addr: SocketAddr,
    /// Configuration, pid file, logs and temporary paths; removed on drop.
    prefix: tempfile::TempDir,
    /// The master has been waited for: its pid may belong to another
    /// process now, so no signal goes to it again.
    stopped: bool,
}

impl Nginx {
    /// Starts nginx serving `root` at `/files/`, its configuration, pid file
    /// and logs in a temporary directory; waits until it accepts connections.
    pub(crate) fn start(root: &Path, clients: usize) -> Result<Self, Error> {
        let program = binary()?;
        let root =
            std::path::absolute(root).map_err(|e| Error::scenario(format!("resolving {}", root.display()), e))?;
        // A free port can be taken between the probe and nginx's bind: try
        // a few.
        let mut last = None;
        for _ in 0..3 {
            let prefix = tempfile::Builder::new()
                .prefix("weir-nginx-")
                .tempdir()
                .map_err(|e| Error::scenario("creating nginx's directory", e))?;
            match Self::try_start(&program, &root, prefix, clients) {
                Ok(nginx) => return Ok(nginx),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| Error::check("nginx did not start")))
    }

    fn try_start(program: &Path, root: &Path, dir: tempfile::TempDir, clients: usize) -> Result<Self, Error> {
        let prefix = dir.path();
        let port = TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| Error::scenario("finding a free port for nginx", e))?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let conf = prefix.join("nginx.conf");
        let as_root = rustix::process::geteuid().is_root();
        std::fs::write(&conf, config(prefix, root, port, as_root, clients))
            .map_err(|e| Error::scenario(format!("writing {}", conf.display()), e))?;
        let mut master = Command::new(program)
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(prefix.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| Error::scenario(format!("starting {}", program.display()), e))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = master.try_wait() {
                let log = std::fs::read_to_string(prefix.join("error.log")).unwrap_or_default();
                return Err(Error::check(format!(
                    "nginx exited at start ({status}); its log: {}",
                    log.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
                )));
            }
            let workers = weir_harness::child_pids(master.id());
            if let [worker] = workers[..]
                && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            {
                return Ok(Self {
                    master,
                    worker,
                    addr,
                    prefix: dir,
                    stopped: false,
                });
            }
            if Instant::now() >= deadline {
                let _ = master.kill();
                let _ = master.wait();
                return Err(Error::check(format!("nginx did not listen on {addr} within 10 s")));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Logs what nginx logged at `warn` or worse (its log goes with its
    /// directory): a refused or dropped client shows up here.
    fn report_log(&self) {
        let log = std::fs::read_to_string(self.prefix.path().join("error.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().filter(|l| !l.contains("[notice]")).collect();
        if let (Some(first), Some(last)) = (lines.first(), lines.last()) {
            tracing::warn!(lines = lines.len(), first, last, "nginx logged problems");
        }
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The worker's process id (the measured process).
    pub(crate) fn worker(&self) -> u32 {
        self.worker
    }

    /// Stops it: SIGTERM to the master (which stops the worker), SIGKILL to
    /// both after 10 s; waits for the master.
    pub(crate) fn stop(&mut self) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        let master = rustix::process::Pid::from_raw(self.master.id().cast_signed());
        if let Some(master) = master {
            let _ = rustix::process::kill_process(master, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.master.try_wait(), Ok(Some(_))) {
                self.report_log();
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        if let Some(worker) = rustix::process::Pid::from_raw(self.worker.cast_signed()) {
            let _ = rustix::process::kill_process(worker, rustix::process::Signal::KILL);
        }
        let _ = self.master.kill();
        let _ = self.master.wait();
        tracing::warn!(prefix = %self.prefix.path().display(), "nginx did not stop within 10 s; killed");
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_has_what_the_comparison_needs() {
        let text = config(Path::new("/p"), Path::new("/srv"), 8080, false, 10);
        for line in [
            "worker_processes 1;",
            "sendfile on;",
            "tcp_nopush on;",
            "access_log off;",
            "listen 127.0.0.1:8080 backlog=768;",
            "pid /p/nginx.pid;",
            "alias /srv/;",
            "worker_connections 768;",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("user root"));
        let crowd = config(Path::new("/p"), Path::new("/srv"), 1, true, 1000);
        assert!(crowd.starts_with("user root;"));
        assert!(crowd.contains("worker_connections 1314;"), "{crowd}");
    }
}
