//! The `jetstream` scenario: the DataSync job spread over worker processes
//! on a 3-node JetStream cluster of its own, under real faults. Workers are
//! SIGKILLed (which worker is seeded; some kills land between an item's
//! commit and its ack),
//! the queue's leader node is SIGKILLed and restarted, a worker is
//! SIGSTOPped for longer than `ack_wait` and resumed. At the end the stored
//! ids and dead letters must be exactly the log's, with no duplicates; the
//! time to recover from each fault is recorded. The faults are paced by
//! the load's progress (a share of the items acked before each), so every
//! one lands while items are left.
//!
//! Recovery is read from the workers' JSON logs: a fault that hit a worker
//! holding an item is over when that item is acked (by whichever worker
//! took it again: after `ack_wait` for a dead or stopped worker); a fault
//! that hit no item, and the leader's loss, are over at the next ack of
//! any item.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use weir_datasync::JobConfig;
use weir_datasync::api::ApiConfig;
use weir_datasync::cli::DEFAULT_API_KEY;
use weir_datasync::client::ApiClient;
use weir_datasync::dataset::Dataset;
use weir_datasync::pg::Db;
use weir_datasync::work::{self, ensure_queue, plan, publish_plan};
use weir_harness::ScenarioResult;
use weir_harness::figures::jetstream::{FaultRecovery, JetstreamFaults};

use crate::{ApiServer, Error, io_error};

/// The one variant: the fault run.
pub const VARIANT_FAULTS: &str = "faults";

/// The work queue the run creates on its own cluster.
const QUEUE: &str = "WORK_FAULTS";

/// Parameters of the fault run. `Default` is the quick profile (the one
/// `just test` runs); [`FaultParams::full`] the full one.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultParams {
    /// Events in the log.
    pub events: u64,
    /// Work items the log is planned into.
    pub items: u64,
    /// Worker processes running at a time.
    pub workers: usize,
    /// Worker kills, all kinds.
    pub kills: usize,
    /// Of those, kills between an item's commit and its ack.
    pub commit_ack_kills: usize,
    /// The workers' `ack_wait` (a stopped worker stays stopped one second
    /// longer).
    pub ack_wait: Duration,
    /// Event lines per segment.
    pub segment_events: u64,
    /// Seed of the log and of the fault schedule.
    pub seed: u64,
    /// PostgreSQL; `DATABASE_URL` or `.pg/env` when `None`.
    pub database_url: Option<String>,
    /// The worker process: program and arguments before the job's
    /// (`weir-lab datasync-worker`, or `weir-datasync worker`).
    pub worker_command: Vec<String>,
    /// The cluster's first port (client, cluster and monitoring ports are
    /// free ones from here up).
    pub nats_port: u16,
    /// The run fails when the load has not finished by then.
    pub deadline: Duration,
    /// The cluster's directory (a temporary one when `None`).
    pub cluster_dir: Option<PathBuf>,
}

impl Default for FaultParams {
    /// The quick profile: 300,000 events in 30 items, 3 workers, 6 kills
    /// (one between commit and ack), `ack_wait` 3 s.
    fn default() -> Self {
        Self {
            events: 300_000,
            items: 30,
            workers: 3,
            kills: 6,
            commit_ack_kills: 1,
            ack_wait: Duration::from_secs(3),
            segment_events: 20_000,
            seed: 42,
            database_url: None,
            worker_command: Vec::new(),
            nats_port: 15240,
            deadline: Duration::from_secs(300),
            cluster_dir: None,
        }
    }
}

impl FaultParams {
    /// The full profile: 3,000,000 events in 120 items, 12 kills (two
    /// between commit and ack).
    pub fn full() -> Self {
        Self {
            events: 3_000_000,
            items: 120,
            kills: 12,
            commit_ack_kills: 2,
            segment_events: 50_000,
            deadline: Duration::from_secs(1800),
            ..Self::default()
        }
    }
}

/// Runs the fault run and writes its result to `out`.
///
/// # Errors
///
/// No database, no worker command, a cluster that does not start, or a
/// failure writing the result. A load that ends wrong (not exact, items
/// left, a deadline passed) is a result with that outcome.
pub fn run(params: &FaultParams, out: &Path) -> Result<Vec<ScenarioResult>, Error> {
    if params.worker_command.is_empty() {
        return Err(Error::Config(
            "the jetstream scenario needs a worker command (weir-lab datasync-worker)".to_owned(),
        ));
    }
    if params.kills < params.commit_ack_kills || params.workers == 0 || params.items == 0 {
        return Err(Error::Config(format!(
            "the fault run needs workers >= 1, items >= 1 and kills >= commit_ack_kills (got {} workers, {} items, {} kills, {} between commit and ack)",
            params.workers, params.items, params.kills, params.commit_ack_kills
        )));
    }
    let url = match &params.database_url {
        Some(url) => url.clone(),
        None => weir_datasync::pg::database_url(Path::new("."))?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(io_error("building the runtime"))?;
    let mut result = ScenarioResult::new("jetstream", VARIANT_FAULTS);
    for (key, value) in [
        ("events", serde_json::json!(params.events)),
        ("items", serde_json::json!(params.items)),
        ("workers", serde_json::json!(params.workers)),
        ("kills", serde_json::json!(params.kills)),
        ("commit_ack_kills", serde_json::json!(params.commit_ack_kills)),
        ("ack_wait_ms", serde_json::json!(params.ack_wait.as_millis() as u64)),
        ("segment_events", serde_json::json!(params.segment_events)),
        ("seed", serde_json::json!(params.seed)),
    ] {
        result.params.insert(key.to_owned(), value);
    }
    let dataset = Dataset {
        malformed_rate: 0.005,
        repeat_rate: 0.01,
        ..Dataset::new(params.seed, params.events)
    };
    let mut api_config = ApiConfig::new(dataset, DEFAULT_API_KEY);
    // Typical faults with no wait in `Retry-After`: the faults under test
    // are the workers' and the cluster's.
    api_config.faults = weir_datasync::api::FaultRates {
        retry_after_s: 0,
        ..weir_datasync::api::FaultRates::typical()
    };
    api_config.checkpoint_every = 200;
    let server = ApiServer::start(api_config)?;
    let mut cluster = Cluster::start(params.cluster_dir.clone(), params.nats_port, false)?;
    let outcome = runtime.block_on(drive(params, &mut cluster, &url, &server.url(), dataset));
    drop(cluster);
    server.stop();
    match outcome {
        Ok(figures) => {
            if figures.queue_left != 0 {
                result.outcome = format!("error: {} items left on the queue", figures.queue_left);
            } else if let Some(problem) = &figures.problem {
                result.outcome = format!("error: the load is not exact: {problem}");
            }
            result = result.with_transfer(0, Duration::from_secs_f64(figures.elapsed_s));
            result.set_figures(&figures);
        }
        Err(error) => result.outcome = format!("error: {error}"),
    }
    result.write_to(out).map_err(io_error("writing the result"))?;
    Ok(vec![result])
}

/// A JetStream cluster started by `scripts/nats-up.sh` in a directory of
/// its own (the fault run kills its leader: the shared `just nats-up`
/// cluster is left alone), stopped by PID when dropped. Tests use it for
/// faults of their own (a stopped cluster).
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    env: HashMap<String, String>,
    restarted: Vec<Child>,
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts").join(name)
}

impl Cluster {
    /// Starts 3 nodes (one when `single`) on free ports from `port` up, in
    /// `dir` (a temporary directory when `None`), and waits until JetStream
    /// answers on every node.
    ///
    /// # Errors
    ///
    /// The script failed (no `nats-server` and no way to install it, no
    /// free port) or wrote no env file.
    pub fn start(dir: Option<PathBuf>, port: u16, single: bool) -> Result<Self, Error> {
        let (dir, temp) = match dir {
            Some(dir) => (dir, None),
            None => {
                let temp = tempfile::tempdir().map_err(io_error("making the cluster's directory"))?;
                (temp.path().to_owned(), Some(temp))
            }
        };
        let status = Command::new("bash")
            .arg(script("nats-up.sh"))
            .args(single.then_some("--single"))
            .env("WEIR_NATS_DIR", &dir)
            .env("WEIR_NATS_PORT", port.to_string())
            .stdout(Stdio::null())
            .status()
            .map_err(io_error("running scripts/nats-up.sh"))?;
        if !status.success() {
            return Err(Error::Config(format!(
                "scripts/nats-up.sh failed ({status}) for a cluster in {}",
                dir.display()
            )));
        }
        let text = std::fs::read_to_string(dir.join("env")).map_err(io_error("reading the cluster's env file"))?;
        let env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Ok(Self {
            dir,
            _temp: temp,
            env,
            restarted: Vec::new(),
        })
    }

    fn var(&self, key: &str) -> Result<&str, Error> {
        self.env
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| Error::Config(format!("the cluster's env file has no {key}")))
    }

    /// The nodes' client addresses.
    ///
    /// # Errors
    ///
    /// The env file names none.
    pub fn servers(&self) -> Result<Vec<String>, Error> {
        Ok(weir_jetstream::parse_servers(self.var("NATS_URL")?)?)
    }

    /// SIGKILLs node `node` (1-based).
    ///
    /// # Errors
    ///
    /// No such node, or `kill` failed.
    pub fn kill(&self, node: usize) -> Result<(), Error> {
        let file = self.var(&format!("WEIR_NATS_{node}_PID_FILE"))?;
        let pid = std::fs::read_to_string(file).map_err(io_error("reading a node's PID file"))?;
        signal("KILL", pid.trim())
    }

    /// Starts node `node` again with its config and store (stopped when
    /// the cluster is dropped), and waits (up to 30 s) until it accepts
    /// clients.
    ///
    /// # Errors
    ///
    /// No such node, or the server did not start or listen.
    pub fn restart(&mut self, node: usize) -> Result<(), Error> {
        let log = std::fs::File::create(self.dir.join(format!("n{node}/restart.log")))
            .map_err(io_error("creating the restarted node's log"))?;
        let child = Command::new("nats-server")
            .args(["-c", self.var(&format!("WEIR_NATS_{node}_CONFIG"))?])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(io_error("restarting nats-server"))?;
        self.restarted.push(child);
        let url = self.var(&format!("WEIR_NATS_{node}_URL"))?;
        let address = url.trim_start_matches("nats://").to_owned();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&address).is_err() {
            if Instant::now() > deadline {
                return Err(Error::Queue(format!(
                    "the restarted node n{node} did not listen on {address} in 30 s"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script("nats-down.sh"))
            .env("WEIR_NATS_DIR", &self.dir)
            .stdout(Stdio::null())
            .status();
        for node in &mut self.restarted {
            // Stopped by nats-down.sh (its PID file is the restarted one's);
            // killed here when that failed, and reaped either way.
            let _ = node.kill();
            let _ = node.wait();
        }
    }
}

fn signal(name: &str, pid: &str) -> Result<(), Error> {
    let status = Command::new("kill")
        .args([&format!("-{name}"), pid])
        .status()
        .map_err(io_error("running kill"))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Io {
            context: format!("kill -{name} {pid}"),
            source: std::io::Error::other(status.to_string()),
        })
    }
}

/// xorshift64*: the schedule's seeded choices.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1) as u64) as usize
    }
}

/// What a worker's JSON log line says, when it is one the run follows.
#[derive(Debug, PartialEq)]
enum Said {
    Started(String),
    Holding(String),
    Acked { item: String, redelivered: u64 },
    AlreadyDone,
}

fn said(line: &str) -> Option<Said> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = value.get("fields")?;
    let item = || {
        fields
            .get("item")
            .and_then(|i| i.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    match fields.get("message")?.as_str()? {
        "item started" => Some(Said::Started(item())),
        "holding before the ack" => Some(Said::Holding(item())),
        "item acked" => Some(Said::Acked {
            item: item(),
            redelivered: fields
                .get("redelivered")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0),
        }),
        "item committed" if fields.get("already_done").and_then(serde_json::Value::as_bool) == Some(true) => {
            Some(Said::AlreadyDone)
        }
        _ => None,
    }
}

/// One worker process, its stdout read line by line on a thread of its own.
struct Worker {
    child: Child,
    /// The item it is on (from its last "item started").
    holds: Option<String>,
}

/// Kills the worker processes still running when dropped.
struct Workers(Vec<Worker>);

impl Drop for Workers {
    fn drop(&mut self) {
        for worker in &mut self.0 {
            let _ = worker.child.kill();
            let _ = worker.child.wait();
        }
    }
}

fn spawn_worker(
    program: &str,
    args: &[String],
    index: usize,
    lines: &mpsc::Sender<(usize, String)>,
) -> Result<Worker, Error> {
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| Error::Io {
            context: format!("starting the worker `{program}`"),
            source,
        })?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::Config("the worker has no stdout".to_owned()))?;
    let lines = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send((index, line)).is_err() {
                break;
            }
        }
    });
    Ok(Worker { child, holds: None })
}

/// What a recovery waits for.
#[derive(Debug)]
enum Awaits {
    Item(String),
    AnyAck,
}

/// The faults injected so far, each waiting for its recovery.
struct Ledger {
    started: Instant,
    faults: Vec<(FaultRecovery, Instant, Awaits)>,
}

impl Ledger {
    fn record(&mut self, kind: &str, item: Option<String>) {
        let awaits = item.clone().map_or(Awaits::AnyAck, Awaits::Item);
        let now = Instant::now();
        let fault = FaultRecovery {
            kind: kind.to_owned(),
            at_s: now.duration_since(self.started).as_secs_f64(),
            item,
            recovery_s: None,
        };
        self.faults.push((fault, now, awaits));
    }

    fn acked(&mut self, item: &str) {
        let now = Instant::now();
        for (fault, at, awaits) in &mut self.faults {
            let done = match awaits {
                Awaits::Item(waited) => waited == item,
                Awaits::AnyAck => true,
            };
            if done && fault.recovery_s.is_none() {
                fault.recovery_s = Some(now.duration_since(*at).as_secs_f64());
            }
        }
    }

    fn count(&self, kind: &str) -> u64 {
        self.faults.iter().filter(|(f, ..)| f.kind == kind).count() as u64
    }
}

fn worker_args(params: &FaultParams, job: &JobConfig, cluster: &Cluster) -> Result<Vec<String>, Error> {
    let (_, base) = params
        .worker_command
        .split_first()
        .ok_or_else(|| Error::Config("no worker command".to_owned()))?;
    let mut args: Vec<String> = base.to_vec();
    args.extend(crate::worker_job_args(job, &cluster.servers()?, QUEUE));
    let ack_wait = format!("{}ms", params.ack_wait.as_millis());
    for arg in [
        "--ack-wait",
        &ack_wait,
        "--idle-exit",
        "4s",
        "--hold-before-ack",
        "300ms",
    ] {
        args.push(arg.to_owned());
    }
    Ok(args)
}

/// The leader node of the queue's RAFT group (`n<N>` names node N).
async fn queue_leader(js: &async_nats::jetstream::Context) -> Option<usize> {
    let mut stream = js.get_stream(QUEUE).await.ok()?;
    let leader = stream.info().await.ok()?.cluster.clone()?.leader?;
    leader.trim_start_matches('n').parse().ok()
}

/// Plans, starts the workers, injects the faults, waits for the load to
/// end and checks it.
async fn drive(
    params: &FaultParams,
    cluster: &mut Cluster,
    url: &str,
    api_url: &str,
    dataset: Dataset,
) -> Result<JetstreamFaults, Error> {
    let js = work::connect(&cluster.servers()?).await?;
    let mut job = JobConfig::new(api_url, DEFAULT_API_KEY, url);
    job.schema = "datasync_faults".to_owned();
    job.segment_events = params.segment_events;
    let db = Db::connect(url, &job.schema).await?;
    db.drop_schema().await?;
    ensure_queue(&js, QUEUE, 3).await?;
    let started = Instant::now();
    let client = ApiClient::new(api_url, DEFAULT_API_KEY, job.retry)?;
    let items = plan(&client, "faults", params.items).await?;
    publish_plan(&js, QUEUE, &items).await?;

    let program = params.worker_command[0].clone();
    let args = worker_args(params, &job, cluster)?;
    let (lines_tx, lines) = mpsc::channel();
    let mut workers = Workers(Vec::new());
    for index in 0..params.workers {
        workers.0.push(spawn_worker(&program, &args, index, &lines_tx)?);
    }
    let mut ledger = Ledger {
        started,
        faults: Vec::new(),
    };
    let mut rng = Rng(params.seed ^ 0x005E_ED0F_FA17);
    let deadline = started + params.deadline;
    let (mut kills, mut commit_ack_kills) = (0usize, 0usize);
    let mut leader_killed: Option<(usize, Instant)> = None;
    let mut restarted = false;
    let mut stopped: Option<(usize, Instant)> = None;
    let mut stop_done = false;
    // The scheduled faults (plain kills, the leader kill, the stop) are
    // paced by the load's progress, not by the clock: the j-th of them
    // waits for j / (scheduled + 1) of the items to be acked, so each
    // lands while items are left to recover with, on a fast machine as on
    // a loaded one.
    let scheduled = params.kills - params.commit_ack_kills + 2;
    let mut acked: HashSet<String> = HashSet::new();
    let (mut redelivered_acks, mut already_done) = (0u64, 0u64);
    // Kills between commit and ack are spread over the run: one after
    // every `kills / commit_ack_kills` plain kills.
    let commit_ack_every = params.kills / params.commit_ack_kills.max(1);
    loop {
        if Instant::now() > deadline {
            return Err(Error::Queue(format!(
                "the load did not finish in {:?}: {kills} kills so far",
                params.deadline
            )));
        }
        while let Ok((index, line)) = lines.try_recv() {
            match said(&line) {
                Some(Said::Started(item)) => workers.0[index].holds = Some(item),
                Some(Said::Acked { item, redelivered }) => {
                    workers.0[index].holds = None;
                    redelivered_acks += u64::from(redelivered > 0);
                    ledger.acked(&item);
                    acked.insert(item);
                }
                Some(Said::AlreadyDone) => already_done += 1,
                Some(Said::Holding(item))
                    if commit_ack_kills < params.commit_ack_kills
                        && kills < params.kills
                        && kills >= commit_ack_kills * commit_ack_every =>
                {
                    // Committed, not yet acked: the window the exactly-once
                    // design must survive.
                    let worker = &mut workers.0[index];
                    let _ = worker.child.kill();
                    let _ = worker.child.wait();
                    *worker = spawn_worker(&program, &args, index, &lines_tx)?;
                    kills += 1;
                    commit_ack_kills += 1;
                    ledger.record("kill-between-commit-and-ack", Some(item));
                }
                _ => {}
            }
        }
        if let Some((node, at)) = leader_killed
            && !restarted
            && at.elapsed() > Duration::from_secs(2)
        {
            cluster.restart(node)?;
            restarted = true;
        }
        if let Some((index, at)) = stopped
            && at.elapsed() > params.ack_wait + Duration::from_secs(1)
        {
            signal("CONT", &workers.0[index].child.id().to_string())?;
            stopped = None;
            stop_done = true;
        }
        let plain_kills = kills - commit_ack_kills;
        let injected = plain_kills + usize::from(leader_killed.is_some()) + usize::from(stop_done || stopped.is_some());
        let faults_done = kills >= params.kills && restarted && stop_done;
        if (injected < scheduled || commit_ack_kills < params.commit_ack_kills) && acked.len() >= items.len() {
            return Err(Error::Queue(format!(
                "the load ended before the fault schedule did: {kills} of {} kills, leader killed: {}, stopped: {}",
                params.kills,
                leader_killed.is_some(),
                stop_done || stopped.is_some()
            )));
        }
        if injected < scheduled && acked.len() * (scheduled + 1) >= (injected + 1) * items.len() {
            if plain_kills >= 3 && leader_killed.is_none() {
                if let Some(node) = queue_leader(&js).await {
                    cluster.kill(node)?;
                    leader_killed = Some((node, Instant::now()));
                    ledger.record("leader-kill", None);
                }
            } else if plain_kills >= 4 && !stop_done && stopped.is_none() {
                let index = rng.below(params.workers);
                signal("STOP", &workers.0[index].child.id().to_string())?;
                stopped = Some((index, Instant::now()));
                let item = workers.0[index].holds.clone();
                ledger.record("stop", item);
            } else if kills + (params.commit_ack_kills - commit_ack_kills) < params.kills {
                let index = rng.below(params.workers);
                if stopped.is_none_or(|(s, _)| s != index) {
                    let worker = &mut workers.0[index];
                    let item = worker.holds.take();
                    let _ = worker.child.kill();
                    let _ = worker.child.wait();
                    *worker = spawn_worker(&program, &args, index, &lines_tx)?;
                    kills += 1;
                    ledger.record("kill", item);
                }
            }
        }
        if faults_done
            && workers
                .0
                .iter_mut()
                .all(|w| w.child.try_wait().ok().flatten().is_some())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The last lines (acks of the last items).
    while let Ok((_, line)) = lines.try_recv() {
        if let Some(Said::Acked { item, redelivered }) = said(&line) {
            redelivered_acks += u64::from(redelivered > 0);
            ledger.acked(&item);
        }
    }
    let elapsed_s = started.elapsed().as_secs_f64();
    drop(workers);
    let queue_left = work::items_left(&js, QUEUE, "workers").await?;
    let problem = weir_datasync::verify(&db, &dataset).await?;
    db.drop_schema().await?;
    let mut recoveries: Vec<f64> = ledger.faults.iter().filter_map(|(f, ..)| f.recovery_s).collect();
    recoveries.sort_by(f64::total_cmp);
    Ok(JetstreamFaults {
        events: params.events,
        items: params.items,
        workers: params.workers as u64,
        kills: kills as u64,
        commit_ack_kills: commit_ack_kills as u64,
        leader_kills: ledger.count("leader-kill"),
        stops: ledger.count("stop"),
        recovery_max_s: recoveries.last().copied(),
        recovery_median_s: (!recoveries.is_empty()).then(|| recoveries[recoveries.len() / 2]),
        unrecovered: (ledger.faults.len() - recoveries.len()) as u64,
        faults: ledger.faults.into_iter().map(|(f, ..)| f).collect(),
        redelivered_acks,
        already_done,
        elapsed_s,
        events_per_s: params.events as f64 / elapsed_s.max(f64::EPSILON),
        queue_left,
        exact: problem.is_none(),
        problem,
    })
}
