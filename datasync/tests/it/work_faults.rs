//! The distributed job under real faults, on a 3-node JetStream cluster of
//! its own: worker processes SIGKILLed at seeded moments (one of them
//! between an item's commit and its ack), the queue's leader node SIGKILLed
//! and restarted, a worker SIGSTOPped for longer than `ack_wait` and
//! resumed. At the end the stored ids and dead letters are exactly the
//! log's, with no duplicates.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use weir_datasync::client::ApiClient;
use weir_datasync::work::{self, ensure_queue, plan, publish_plan};

use crate::support::{API_KEY, assert_exact, database_url, dataset, fresh_db, job_config, schema, start_api};

const EVENTS: u64 = 300_000;
const ITEMS: u64 = 30;
const WORKERS: usize = 3;
const KILLS: usize = 6;
const ACK_WAIT: Duration = Duration::from_secs(3);

/// A 3-node cluster started by `scripts/nats-up.sh` in a directory of its
/// own, stopped (by PID) when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

impl Cluster {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("cluster dir");
        let status = Command::new("bash")
            .arg(root().join("scripts/nats-up.sh"))
            .env("WEIR_NATS_DIR", dir.path())
            .env("WEIR_NATS_PORT", "45220")
            .stdout(Stdio::null())
            .status()
            .expect("run scripts/nats-up.sh");
        assert!(
            status.success(),
            "scripts/nats-up.sh failed (is nats-server installable? `just nats-up` installs it)"
        );
        let text = std::fs::read_to_string(dir.path().join("env")).expect("the cluster's env file");
        let env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self { dir, env }
    }

    fn servers(&self) -> Vec<String> {
        self.env["NATS_URL"].split(',').map(str::to_owned).collect()
    }

    fn pid(&self, node: usize) -> String {
        std::fs::read_to_string(&self.env[&format!("WEIR_NATS_{node}_PID_FILE")])
            .expect("pid file")
            .trim()
            .to_owned()
    }

    fn kill(&self, node: usize) {
        signal("KILL", &self.pid(node));
    }

    fn restart(&self, node: usize) -> Child {
        let log = std::fs::File::create(self.dir.path().join(format!("n{node}/restart.log"))).expect("log");
        Command::new("nats-server")
            .args(["-c", &self.env[&format!("WEIR_NATS_{node}_CONFIG")]])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("restart nats-server")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(root().join("scripts/nats-down.sh"))
            .env("WEIR_NATS_DIR", self.dir.path())
            .stdout(Stdio::null())
            .status();
    }
}

fn signal(name: &str, pid: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), pid])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{name} {pid}");
}

/// xorshift64*: the schedule's seeded choices.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}

struct Worker {
    child: Child,
}

fn spawn_worker(index: usize, args: &[String], lines: &mpsc::Sender<(usize, String)>) -> Worker {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir-datasync"))
        .arg("worker")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn a worker");
    let stdout = child.stdout.take().expect("stdout");
    let lines = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send((index, line)).is_err() {
                break;
            }
        }
    });
    Worker { child }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_a_leader_loss_and_a_stopped_worker_leave_the_load_exact() {
    let cluster = Cluster::start();
    let js = work::connect(&cluster.servers())
        .await
        .expect("connect to the test cluster");
    let schema = schema("work_faults");
    let db = fresh_db(&schema).await;
    let data = dataset(81, EVENTS);
    let api = start_api(data, crate::support::quick_faults()).await;
    let queue = "WORK_FAULTS";
    ensure_queue(&js, queue, 3).await.expect("the work queue");
    let client = ApiClient::new(&api.url(), API_KEY, job_config(&api.url(), &schema).retry).unwrap();
    let items = plan(&client, "faults", ITEMS).await.unwrap();
    assert_eq!(publish_plan(&js, queue, &items).await.unwrap().queued, ITEMS);

    let args: Vec<String> = [
        "--api-url",
        &api.url(),
        "--api-key",
        API_KEY,
        "--database-url",
        &database_url(),
        "--schema",
        &schema,
        "--segment-events",
        "20000",
        "--no-progress",
        "--nats",
        &cluster.servers().join(","),
        "--queue",
        queue,
        "--ack-wait",
        "3s",
        "--idle-exit",
        "4s",
        "--hold-before-ack",
        "300ms",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (lines_tx, lines) = mpsc::channel();
    let mut workers: Vec<Worker> = (0..WORKERS).map(|i| spawn_worker(i, &args, &lines_tx)).collect();

    let mut rng = Rng(0x005E_ED0F_FA17);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    let (mut kills, mut commit_ack_kills) = (0usize, 0usize);
    let mut leader_killed: Option<(usize, Instant)> = None;
    let mut restarted: Vec<Child> = Vec::new();
    let mut stopped: Option<(usize, Instant)> = None;
    let mut stop_done = false;
    let mut next_fault = started + Duration::from_millis(1500);
    let mut faults: Vec<(String, Instant)> = Vec::new();
    let mut recoveries: Vec<(String, Duration)> = Vec::new();
    let mut acked = 0usize;
    loop {
        assert!(
            Instant::now() < deadline,
            "the load did not finish in 300 s: {acked} acks, faults {faults:?}"
        );
        // What the workers said.
        while let Ok((index, line)) = lines.try_recv() {
            if line.contains("item acked") {
                acked += 1;
                for (fault, at) in faults.drain(..) {
                    recoveries.push((fault, at.elapsed()));
                }
            }
            if line.contains("holding before the ack") && commit_ack_kills == 0 && kills < KILLS {
                // Committed, not yet acked: the window the exactly-once
                // design must survive.
                workers[index].child.kill().expect("SIGKILL a worker");
                let _ = workers[index].child.wait();
                workers[index] = spawn_worker(index, &args, &lines_tx);
                kills += 1;
                commit_ack_kills += 1;
                faults.push(("kill between commit and ack".to_owned(), Instant::now()));
            }
        }
        let now = Instant::now();
        if let Some((node, at)) = leader_killed
            && restarted.is_empty()
            && at.elapsed() > Duration::from_secs(2)
        {
            restarted.push(cluster.restart(node));
        }
        if let Some((index, at)) = stopped
            && at.elapsed() > ACK_WAIT + Duration::from_secs(1)
        {
            signal("CONT", &workers[index].child.id().to_string());
            stopped = None;
            stop_done = true;
        }
        if now >= next_fault {
            next_fault = now + Duration::from_millis(700 + rng.below(900) as u64);
            if kills >= 3 && leader_killed.is_none() {
                let mut stream = js.get_stream(queue).await.expect("the queue");
                let leader = stream
                    .info()
                    .await
                    .ok()
                    .and_then(|i| i.cluster.clone())
                    .and_then(|c| c.leader);
                if let Some(node) = leader.and_then(|l| l.trim_start_matches('n').parse::<usize>().ok()) {
                    cluster.kill(node);
                    leader_killed = Some((node, Instant::now()));
                    faults.push((format!("leader n{node} killed"), Instant::now()));
                }
            } else if kills >= 4 && !stop_done && stopped.is_none() {
                let index = rng.below(WORKERS);
                signal("STOP", &workers[index].child.id().to_string());
                stopped = Some((index, Instant::now()));
                faults.push((format!("worker {index} stopped"), Instant::now()));
            } else if kills < KILLS {
                let index = rng.below(WORKERS);
                if stopped.is_none_or(|(s, _)| s != index) {
                    workers[index].child.kill().expect("SIGKILL a worker");
                    let _ = workers[index].child.wait();
                    workers[index] = spawn_worker(index, &args, &lines_tx);
                    kills += 1;
                    faults.push((format!("worker {index} killed"), Instant::now()));
                }
            }
        }
        let faults_done = kills >= KILLS && commit_ack_kills > 0 && !restarted.is_empty() && stop_done;
        if faults_done && workers.iter_mut().all(|w| w.child.try_wait().ok().flatten().is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for node in &mut restarted {
        // Stopped by the cluster's drop (its PID file is the restarted one).
        let _ = node.try_wait();
    }
    eprintln!("faults and recovery (time to the next ack): {recoveries:?}");
    let mut stream = js.get_stream(queue).await.expect("the queue");
    assert_eq!(stream.info().await.unwrap().state.messages, 0, "every item acked");
    assert!(
        kills >= KILLS && commit_ack_kills >= 1,
        "{kills} kills, {commit_ack_kills} between commit and ack"
    );
    assert_exact(&db, &data).await;
    api.shutdown().await;
}
