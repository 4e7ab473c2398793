//! The crash test: the job runs as a child process and is killed with
//! SIGKILL at seeded random moments, restarted each time, then run to the
//! end; the table must hold exactly the log's ids, the dead-letter table
//! exactly its malformed events.

use std::process::{Command, Stdio};
use std::time::Duration;

use weir_datasync::dataset::{Dataset, mix};

use crate::support::{API_KEY, assert_exact, database_url, fresh_db, quick_faults, schema, start_api};

const SEED: u64 = 0xC2A5_4000;
const KILLS: u64 = 12;

fn child(api_url: &str, schema: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weir-datasync"));
    command
        .args(["run", "--api-url", api_url, "--api-key", API_KEY, "--database-url"])
        .arg(database_url())
        .args(["--schema", schema, "--segment-events", "2000", "--no-progress"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_seeded_moments_loses_and_duplicates_nothing() {
    let data = Dataset {
        malformed_rate: 0.005,
        repeat_rate: 0.01,
        ..Dataset::new(SEED, 200_000)
    };
    let api = start_api(data, quick_faults()).await;
    let schema = schema("crash");
    let db = fresh_db(&schema).await;

    let mut killed_mid_run = 0;
    let mut progress = Vec::new();
    for kill in 0..KILLS {
        // 100..500 ms after the start: connecting, reading, COPYing or committing.
        let delay = Duration::from_millis(100 + mix(SEED, 1, kill) % 400);
        let mut process = child(&api.url(), &schema).spawn().expect("start the job");
        tokio::time::sleep(delay).await;
        let running = process.try_wait().expect("poll the job").is_none();
        if running {
            process.kill().expect("SIGKILL the job");
            killed_mid_run += 1;
        }
        let output = process.wait_with_output().expect("reap the job");
        if !running {
            assert!(
                output.status.success(),
                "a run that ended by itself failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        db.ensure_schema().await.expect("schema");
        let state = db.load_state("default").await.expect("state");
        progress.push(state.segments);
    }
    eprintln!("committed segments after each kill: {progress:?}");
    assert!(
        killed_mid_run >= 10,
        "only {killed_mid_run} kills landed while the job ran: {progress:?}"
    );
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "the committed position only moves forward: {progress:?}"
    );

    let before_final = db.load_state("default").await.expect("state");
    assert!(
        progress[0] < progress[progress.len() - 1],
        "kills landed after commits: {progress:?}"
    );
    assert!(!before_final.done, "the kills all landed before the log was committed");

    let output = child(&api.url(), &schema).output().expect("run the job to the end");
    assert!(
        output.status.success(),
        "the final run failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let state = db.load_state("default").await.expect("state");
    assert!(state.done);
    assert_exact(&db, &data).await;
    db.drop_schema().await.unwrap();
}
