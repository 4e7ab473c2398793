//! The servers under measurement: each in a process of its own (so that the
//! clients' memory and CPU never count), or in this process for quick
//! checks; and what `/proc` says about them (RSS, peak RSS, CPU time, open
//! descriptors).

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use weir_harness::RssSeries;

use crate::error::Error;
use crate::serve::{READY_PREFIX, ServeOptions, ServerKind, start};

/// How the scenario runs its servers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Launch {
    /// Each server in a child process: `program args... <serve options>`
    /// (for `weir-lab`: the `weir-serve` binary beside it). Server RSS and CPU are the
    /// child's alone.
    Command {
        /// The executable.
        program: PathBuf,
        /// Arguments before the serve options (`["serve"]` for `weir-lab serve`).
        args: Vec<OsString>,
    },
    /// Each server on a runtime of its own in this process. RSS and CPU are
    /// then the whole process's, clients included: for quick checks only,
    /// and marked `server_isolation: in-process` in the results.
    InProcess,
}

impl Launch {
    /// The lean `weir-serve` binary beside the running executable (cargo
    /// builds it with `weir-lab`): a server process holds the server's code
    /// alone, not every scenario's, so its RSS is the server's.
    ///
    /// # Errors
    ///
    /// When the running executable's path is unknown or `weir-serve` is not
    /// beside it.
    pub fn weir_serve_beside_current_exe() -> Result<Self, Error> {
        let exe = std::env::current_exe().map_err(|e| Error::scenario("locating the running executable", e))?;
        let program = exe.with_file_name(format!("weir-serve{}", std::env::consts::EXE_SUFFIX));
        if !program.is_file() {
            return Err(Error::Config(format!(
                "{} is missing: the delivery scenario runs its servers in it (`cargo build --release -p weir-lab` builds it beside weir-lab)",
                program.display()
            )));
        }
        Ok(Self::Command {
            program,
            args: Vec::new(),
        })
    }

    /// The server processes' program (its file name), for results; `None`
    /// in process.
    pub fn program_name(&self) -> Option<String> {
        match self {
            Self::Command { program, args } => {
                let name = program
                    .file_name()
                    .map_or_else(|| program.display().to_string(), |n| n.to_string_lossy().into_owned());
                Some(
                    args.iter()
                        .fold(name, |line, arg| format!("{line} {}", arg.to_string_lossy())),
                )
            }
            Self::InProcess => None,
        }
    }

    /// `process` or `in-process`, for results.
    pub fn isolation(&self) -> &'static str {
        match self {
            Self::Command { .. } => "process",
            Self::InProcess => "in-process",
        }
    }
}

/// A server started for a phase of the scenario.
#[derive(Debug)]
pub(crate) struct RunningServer {
    pub(crate) kind: ServerKind,
    pub(crate) addr: SocketAddr,
    pid: u32,
    running: Running,
}

#[derive(Debug)]
enum Running {
    Child(Child),
    InProcess {
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        thread: Option<thread::JoinHandle<()>>,
    },
    /// nginx, always a process tree of its own whatever the [`Launch`].
    Nginx(crate::nginx::Nginx),
}

impl RunningServer {
    /// Starts a server and waits until it listens; nginx is configured for
    /// `clients` concurrent connections.
    pub(crate) fn start(launch: &Launch, options: &ServeOptions, clients: usize) -> Result<Self, Error> {
        if options.server == ServerKind::Nginx {
            let nginx = crate::nginx::Nginx::start(&options.root, clients)?;
            return Ok(Self {
                kind: ServerKind::Nginx,
                addr: nginx.addr(),
                pid: nginx.worker(),
                running: Running::Nginx(nginx),
            });
        }
        match launch {
            Launch::Command { program, args } => Self::spawn(program, args, options),
            Launch::InProcess => Self::in_process(options),
        }
    }

    fn spawn(program: &PathBuf, args: &[OsString], options: &ServeOptions) -> Result<Self, Error> {
        let mut options = options.clone();
        options.exit_on_stdin_eof = true;
        let mut child = Command::new(program)
            .args(args)
            .args(options.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| Error::scenario(format!("starting {}", program.display()), e))?;
        let pid = child.id();
        let stdout = child.stdout.take();
        let (ready, line) = mpsc::channel();
        thread::spawn(move || {
            let mut text = String::new();
            if let Some(stdout) = stdout {
                let _ = BufReader::new(stdout).read_line(&mut text);
            }
            let _ = ready.send(text);
        });
        let text = line.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        let addr = text
            .trim()
            .strip_prefix(READY_PREFIX)
            .and_then(|a| a.parse::<SocketAddr>().ok());
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::check(format!(
                "{} {} did not report a listening address (printed {text:?})",
                program.display(),
                options.server.name()
            )));
        };
        Ok(Self {
            kind: options.server,
            addr,
            pid,
            running: Running::Child(child),
        })
    }

    fn in_process(options: &ServeOptions) -> Result<Self, Error> {
        let kind = options.server;
        let options = options.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, listening) = mpsc::channel::<Result<SocketAddr, String>>();
        let thread = thread::Builder::new()
            .name(format!("weir-serve-{}", options.server.name()))
            .spawn(move || {
                let runtime = match crate::serve::runtime(&options).build() {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready.send(Err(error.to_string()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match start(&options).await {
                        Ok(server) => {
                            let _ = ready.send(Ok(server.local_addr()));
                            let _ = stopped.await;
                            server.shutdown().await;
                        }
                        Err(error) => {
                            let _ = ready.send(Err(error.to_string()));
                        }
                    }
                });
            })
            .map_err(|e| Error::scenario("starting the server thread", e))?;
        let addr = listening
            .recv_timeout(Duration::from_secs(20))
            .map_err(|e| Error::scenario("waiting for the in-process server", e))?
            .map_err(|e| Error::check(format!("in-process server failed to start: {e}")))?;
        Ok(Self {
            kind,
            addr,
            pid: std::process::id(),
            running: Running::InProcess {
                stop: Some(stop),
                thread: Some(thread),
            },
        })
    }

    /// The server's process id (this process's when in-process; nginx's
    /// worker).
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Stops the server gracefully (or kills it after 10 s) and waits for it.
    pub(crate) fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        match &mut self.running {
            Running::Child(child) => {
                // Closing stdin asks for a graceful shutdown.
                drop(child.stdin.take());
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    if matches!(child.try_wait(), Ok(Some(_))) {
                        return;
                    }
                    thread::sleep(Duration::from_millis(20));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
            Running::Nginx(nginx) => nginx.stop(),
            Running::InProcess { stop, thread } => {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
                if let Some(thread) = thread.take() {
                    let _ = thread.join();
                }
            }
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// What `/proc` says about a process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcStats {
    pid: u32,
}

impl ProcStats {
    pub(crate) fn new(pid: u32) -> Self {
        Self { pid }
    }

    /// Resident set size now, bytes.
    pub(crate) fn rss(self) -> u64 {
        let statm = std::fs::read_to_string(format!("/proc/{}/statm", self.pid)).unwrap_or_default();
        let pages = statm
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(0);
        pages * rustix::param::page_size() as u64
    }

    /// The kernel's high-water mark of the resident set, bytes (`VmHWM`).
    pub(crate) fn peak_rss(self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    /// User plus system CPU time of every thread so far, seconds.
    pub(crate) fn cpu_seconds(self) -> f64 {
        weir_harness::cpu_seconds(self.pid, false).unwrap_or(0.0)
    }

    /// Time the scheduler ran every thread so far, seconds: the first field
    /// of each `/proc/<pid>/task/<tid>/schedstat`, in nanoseconds, so that
    /// a short window is not rounded to 10 ms ticks. Threads that ended are
    /// missed, which is why the servers' worker threads must outlive the
    /// window (they do: runtimes keep their workers, nginx its one process).
    pub(crate) fn run_seconds(self) -> f64 {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid)) else {
            return 0.0;
        };
        let nanos: u64 = tasks
            .filter_map(|task| {
                let text = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
                text.split_whitespace().next()?.parse::<u64>().ok()
            })
            .sum();
        nanos as f64 / 1e9
    }

    /// Minor page faults so far (pages the process touched for the first
    /// time, e.g. after its allocator returned memory to the kernel).
    pub(crate) fn minor_faults(self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        // minflt is field 10; `after` starts at field 3.
        after
            .split_whitespace()
            .nth(7)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Threads of the process now.
    pub(crate) fn threads(self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Open file descriptors.
    pub(crate) fn open_fds(self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid)).map_or(0, Iterator::count)
    }
}

/// Samples a process's RSS on a thread of its own.
#[derive(Debug)]
pub(crate) struct ProcRssSampler {
    stop: mpsc::Sender<()>,
    thread: thread::JoinHandle<RssSeries>,
}

impl ProcRssSampler {
    pub(crate) fn start(stats: ProcStats, interval: Duration) -> Result<Self, Error> {
        let (stop, stopped) = mpsc::channel::<()>();
        let started = Instant::now();
        let thread = thread::Builder::new()
            .name("weir-delivery-rss".to_owned())
            .spawn(move || {
                let baseline = stats.rss();
                let mut series = RssSeries {
                    samples: vec![[0, baseline]],
                    baseline_bytes: baseline,
                    peak_bytes: baseline,
                };
                loop {
                    let done = !matches!(stopped.recv_timeout(interval), Err(mpsc::RecvTimeoutError::Timeout));
                    let rss = stats.rss();
                    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                    series.samples.push([ms, rss]);
                    series.peak_bytes = series.peak_bytes.max(rss);
                    if done {
                        return series;
                    }
                }
            })
            .map_err(|e| Error::scenario("starting the RSS sampler", e))?;
        Ok(Self { stop, thread })
    }

    pub(crate) fn stop(self) -> RssSeries {
        let _ = self.stop.send(());
        self.thread.join().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_reads_back_sensibly() {
        let stats = ProcStats::new(std::process::id());
        assert!(stats.rss() > 0);
        assert!(stats.peak_rss() >= stats.rss() / 2);
        assert!(stats.open_fds() >= 3);
        let run_before = stats.run_seconds();
        let spin = Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(stats.cpu_seconds() > 0.0);
        // The scheduler's count moves with the spin (nanoseconds, so even a
        // descheduled spin adds some).
        assert!(stats.run_seconds() > run_before, "{run_before}");
    }
}
