//! A CPU-heavy stage run inline versus offloaded: the engine's own offload
//! (`spawn_blocking`), and a stream adapter that runs the stage on
//! `spawn_blocking` or on a dedicated rayon pool, so that the two pools are
//! compared through the same code path.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _, stream};
use sha2::Digest as _;
use tokio::sync::oneshot;
use weir::{BoxError, IngestOptions, NullSink, Transform, ingest};
use weir_harness::figures::offload::StageRun;
use weir_harness::{LagProbe, RssSampler, ScenarioResult};

use crate::{Error, TransformsParams};

/// What a [`Burn`] stage did, shared with whoever built it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BurnStats {
    /// Chunks burned.
    pub chunks: u64,
    /// CPU time spent burning.
    pub busy: Duration,
    /// The running SHA-256 chain over every chunk, in order: equal across
    /// runs only if every run saw the same chunks in the same order.
    pub state: [u8; 32],
}

/// A CPU-heavy pass-through stage: hashes each chunk `rounds` times with
/// SHA-256, chained into a running state, and passes the chunk on
/// unchanged.
#[derive(Debug, Clone)]
pub struct Burn {
    rounds: u32,
    offload: bool,
    stats: Arc<Mutex<BurnStats>>,
}

impl Burn {
    /// A stage hashing each chunk `rounds` times, inline.
    pub fn new(rounds: u32) -> Self {
        Self {
            rounds,
            offload: false,
            stats: Arc::default(),
        }
    }

    /// Declares the stage CPU-heavy to the engine (or not).
    #[must_use]
    pub fn offload(mut self, offload: bool) -> Self {
        self.offload = offload;
        self
    }

    /// What the stage has done so far.
    pub fn stats(&self) -> BurnStats {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Burns one chunk.
    pub fn burn(&mut self, chunk: &[u8]) {
        let started = Instant::now();
        let mut state = self.stats().state;
        for _ in 0..self.rounds {
            let mut hasher = sha2::Sha256::new();
            hasher.update(state);
            hasher.update(chunk);
            state.copy_from_slice(&hasher.finalize());
        }
        let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        stats.state = state;
        stats.chunks += 1;
        stats.busy += started.elapsed();
    }
}

impl Transform for Burn {
    fn name(&self) -> &str {
        "burn"
    }

    fn transform(&mut self, chunk: Bytes, out: &mut Vec<Bytes>) -> Result<(), BoxError> {
        self.burn(&chunk);
        out.push(chunk);
        Ok(())
    }

    fn cpu_heavy(&self) -> bool {
        self.offload
    }
}

/// Where the stream adapter runs the stage.
#[derive(Debug, Clone)]
pub enum Pool {
    /// Tokio's blocking pool, as the engine's offload does.
    SpawnBlocking,
    /// A dedicated rayon pool; the result comes back on a oneshot channel.
    Rayon(Arc<rayon::ThreadPool>),
}

impl Pool {
    /// Runs `job` on the pool and waits for it without blocking the runtime.
    ///
    /// # Errors
    ///
    /// When the job panicked or was dropped by the pool.
    pub async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
        match self {
            Self::SpawnBlocking => tokio::task::spawn_blocking(job).await.map_err(|e| e.to_string()),
            Self::Rayon(pool) => {
                let (reply, done) = oneshot::channel();
                pool.spawn(move || {
                    let _ = reply.send(catch_unwind(AssertUnwindSafe(job)));
                });
                match done.await {
                    Ok(Ok(value)) => Ok(value),
                    Ok(Err(_)) => Err("the job panicked on the rayon pool".to_owned()),
                    Err(_) => Err("the rayon pool dropped the job".to_owned()),
                }
            }
        }
    }
}

/// `source` with every chunk passed through `burn` on `pool`, one chunk at a
/// time and in order: the next chunk is not read before the previous one is
/// back, so there is no queue and backpressure holds.
pub fn offloaded<S>(source: S, burn: Burn, pool: Pool) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static
where
    S: Stream<Item = io::Result<Bytes>> + Send + 'static,
{
    stream::unfold(
        (Box::pin(source), Some(burn), pool),
        |(mut source, burn, pool)| async move {
            let mut burn = burn?;
            let chunk = match source.next().await? {
                Ok(chunk) => chunk,
                Err(error) => return Some((Err(error), (source, None, pool))),
            };
            let hop = pool
                .run(move || {
                    burn.burn(&chunk);
                    (burn, chunk)
                })
                .await;
            match hop {
                Ok((burn, chunk)) => Some((Ok(chunk), (source, Some(burn), pool))),
                Err(message) => Some((Err(io::Error::other(message)), (source, None, pool))),
            }
        },
    )
}

/// The runtime flavours measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `new_current_thread`.
    CurrentThread,
    /// `new_multi_thread` with two workers.
    MultiThread,
}

impl Flavor {
    /// Both, current-thread first.
    pub const ALL: [Self; 2] = [Self::CurrentThread, Self::MultiThread];

    /// `"current_thread"` or `"multi_thread"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CurrentThread => "current_thread",
            Self::MultiThread => "multi_thread",
        }
    }

    fn runtime(self) -> Result<tokio::runtime::Runtime, Error> {
        let mut builder = match self {
            Self::CurrentThread => tokio::runtime::Builder::new_current_thread(),
            Self::MultiThread => {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                builder.worker_threads(2);
                builder
            }
        };
        builder.enable_all().build().map_err(|e| Error::Setup {
            what: "runtime",
            source: e.into(),
        })
    }
}

/// Where the CPU-heavy stage runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// A weir transform on the runtime's worker.
    Inline,
    /// The same work in a `map` over the source, on the runtime's worker:
    /// no weir stage, so the engine's yield after a millisecond of inline
    /// stage work never applies; only Tokio's coop budget (one unit per
    /// chunk pulled) makes the task yield.
    InlineNoYield,
    /// A weir transform declared CPU-heavy: the engine runs it with
    /// `spawn_blocking`.
    SpawnBlocking,
    /// The stream adapter on `spawn_blocking`.
    AdapterSpawnBlocking,
    /// The stream adapter on a dedicated rayon pool.
    AdapterRayon,
}

impl Way {
    /// Every way, inline first.
    pub const ALL: [Self; 5] = [
        Self::Inline,
        Self::InlineNoYield,
        Self::SpawnBlocking,
        Self::AdapterSpawnBlocking,
        Self::AdapterRayon,
    ];

    /// The variant-name part.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inline => "inline",
            Self::InlineNoYield => "inline-no-yield",
            Self::SpawnBlocking => "spawn_blocking",
            Self::AdapterSpawnBlocking => "adapter-spawn_blocking",
            Self::AdapterRayon => "adapter-rayon",
        }
    }

    /// `true` for every way that runs the stage off the runtime's workers.
    pub fn offloaded(self) -> bool {
        !matches!(self, Self::Inline | Self::InlineNoYield)
    }

    /// Whether `group` measures this way: the no-yield way only where the
    /// stage is CPU-heavy (on the cheap `hop` stage it is `inline`).
    fn in_group(self, group: &str) -> bool {
        self != Self::InlineNoYield || group == "offload"
    }
}

/// One measured run's inputs.
struct Case<'a> {
    group: &'static str,
    flavor: Flavor,
    way: Way,
    chunks: &'a [Bytes],
    count: usize,
    rounds: u32,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs one case on a fresh runtime with the lag probe beside it.
fn measure(
    case: &Case<'_>,
    params: &TransformsParams,
    rayon: &Arc<rayon::ThreadPool>,
) -> Result<ScenarioResult, Error> {
    let runtime = case.flavor.runtime()?;
    let chunk_size = case.chunks.first().map_or(0, Bytes::len);
    let bytes = (case.count * chunk_size) as u64;
    let variant = format!("{}-{}-{}", case.group, case.flavor.as_str(), case.way.as_str());
    let mut result = ScenarioResult::new("offload", variant);
    let burn = Burn::new(case.rounds);
    let stats = burn.clone();
    let (elapsed, outcome, lag, rss) = runtime.block_on(async {
        let rss = RssSampler::start(params.rss_interval);
        let probe = LagProbe::start(params.lag_interval);
        // Let the heartbeat start ticking before the stage can block it.
        tokio::time::sleep(params.lag_interval * 3).await;
        let source = {
            let chunks = case.chunks.to_vec();
            stream::iter((0..case.count).map(move |i| Ok(chunks[i % chunks.len()].clone())))
        };
        let options = IngestOptions::builder().chunk_size(chunk_size.max(1));
        let started = Instant::now();
        let outcome = match case.way {
            Way::Inline | Way::SpawnBlocking => {
                let options = options.transform(burn.offload(case.way == Way::SpawnBlocking)).build();
                ingest(source, NullSink, options).await
            }
            Way::InlineNoYield => {
                let mut burn = burn;
                let source = source.map(move |chunk: io::Result<Bytes>| chunk.inspect(|chunk| burn.burn(chunk)));
                ingest(source, NullSink, options.build()).await
            }
            Way::AdapterSpawnBlocking => {
                ingest(offloaded(source, burn, Pool::SpawnBlocking), NullSink, options.build()).await
            }
            Way::AdapterRayon => {
                let pool = Pool::Rayon(Arc::clone(rayon));
                ingest(offloaded(source, burn, pool), NullSink, options.build()).await
            }
        };
        let elapsed = started.elapsed();
        // A tick that came due while the stage blocked the runtime fires
        // now: let it be recorded before the probe is stopped.
        tokio::time::sleep(params.lag_interval * 3).await;
        let lag = probe.stop().await;
        (elapsed, outcome, lag, rss.stop())
    });
    let stats = stats.stats();
    result = result.with_transfer(bytes, elapsed);
    result.rss = rss;
    result.lag = Some(lag);
    match outcome {
        Ok(report) if report.bytes_written == bytes && stats.chunks == case.count as u64 => {}
        Ok(report) => {
            result.outcome = format!(
                "moved {} of {bytes} bytes, burned {} of {} chunks",
                report.bytes_written, stats.chunks, case.count
            );
        }
        Err(error) => result.outcome = error.to_string(),
    }
    let per_chunk = |d: Duration| d.as_secs_f64() * 1e6 / case.count.max(1) as f64;
    let params_json = &mut result.params;
    params_json.insert("group".into(), case.group.into());
    params_json.insert("flavor".into(), case.flavor.as_str().into());
    params_json.insert("way".into(), case.way.as_str().into());
    params_json.insert("offloaded".into(), case.way.offloaded().into());
    params_json.insert("chunks".into(), case.count.into());
    params_json.insert("chunk_size".into(), chunk_size.into());
    params_json.insert("rounds".into(), case.rounds.into());
    result.set_figures(&StageRun {
        per_chunk_cpu_us: per_chunk(stats.busy),
        per_chunk_us: per_chunk(elapsed),
        burn_state: hex(&stats.state),
        ..StageRun::default()
    });
    Ok(result)
}

/// The lag the probe reports on an idle runtime of `flavor`: the floor
/// under every other lag figure (Tokio's timer counts whole milliseconds).
fn baseline(flavor: Flavor, params: &TransformsParams) -> Result<ScenarioResult, Error> {
    let runtime = flavor.runtime()?;
    let idle = params.lag_interval * 100;
    let lag = runtime.block_on(async {
        let probe = LagProbe::start(params.lag_interval);
        tokio::time::sleep(idle).await;
        probe.stop().await
    });
    let mut result = ScenarioResult::new("offload", format!("lag-baseline-{}", flavor.as_str()));
    result = result.with_transfer(0, idle);
    result.lag = Some(lag);
    result.params.insert("group".into(), "baseline".into());
    result.params.insert("flavor".into(), flavor.as_str().into());
    Ok(result)
}

/// Picks the run with the median throughput of each way, and records the
/// spread of all of them in it.
fn median_run(mut runs: Vec<ScenarioResult>) -> Option<ScenarioResult> {
    runs.sort_by(|a, b| a.throughput_bps.total_cmp(&b.throughput_bps));
    let all_bps: Vec<f64> = runs.iter().map(|r| r.throughput_bps).collect();
    let all_p99: Vec<u64> = runs.iter().map(|r| r.lag.as_ref().map_or(0, |l| l.p99_us)).collect();
    let failed = runs.iter().find(|r| !r.is_ok()).map(|r| r.outcome.clone());
    let mut median = runs.swap_remove(runs.len().checked_sub(1)? / 2);
    let figures = median.figures::<StageRun>().unwrap_or_default();
    median.set_figures(&StageRun {
        runs_bps: all_bps,
        worst_lag_p99_us: all_p99.iter().max().copied().unwrap_or_default(),
        runs_lag_p99_us: all_p99,
        ..figures
    });
    if let Some(outcome) = failed {
        median.outcome = outcome;
    }
    Some(median)
}

/// The lag baselines, then the offload and hop-cost runs: every way once
/// per round, rounds interleaved, the median run of each way kept.
pub(crate) fn run(params: &TransformsParams) -> Result<Vec<ScenarioResult>, Error> {
    let rayon = rayon::ThreadPoolBuilder::new()
        .num_threads(params.rayon_threads)
        .thread_name(|i| format!("weir-rayon-{i}"))
        .build()
        .map_err(|e| Error::Setup {
            what: "rayon pool",
            source: e.into(),
        })?;
    let rayon = Arc::new(rayon);
    let distinct = |size: usize, seed: u64| -> Vec<Bytes> {
        (0..8u64)
            .map(|i| Bytes::from(weir_harness::synthetic_bytes(seed + i, size as u64, size)))
            .collect()
    };
    let heavy = distinct(params.heavy_chunk_size, params.seed);
    let light = distinct(params.hop_chunk_size, params.seed + 100);
    let heavy_count =
        usize::try_from(params.heavy_bytes.div_ceil(params.heavy_chunk_size as u64)).unwrap_or(usize::MAX);
    let mut results = Vec::new();
    for flavor in Flavor::ALL {
        results.push(baseline(flavor, params)?);
    }
    for (group, chunks, count, rounds, repetitions) in [
        (
            "offload",
            &heavy,
            heavy_count,
            params.heavy_rounds,
            params.offload_repetitions,
        ),
        ("hop", &light, params.hop_chunks, 1, params.hop_repetitions),
    ] {
        for flavor in Flavor::ALL {
            let mut runs: Vec<Vec<ScenarioResult>> = vec![Vec::new(); Way::ALL.len()];
            for _ in 0..repetitions {
                for (i, way) in Way::ALL.into_iter().enumerate().filter(|(_, way)| way.in_group(group)) {
                    let case = Case {
                        group,
                        flavor,
                        way,
                        chunks,
                        count,
                        rounds,
                    };
                    runs[i].push(measure(&case, params, &rayon)?);
                }
            }
            results.extend(runs.into_iter().filter_map(median_run));
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burn_chains_its_state_in_order() {
        let mut a = Burn::new(2);
        let mut b = Burn::new(2);
        a.burn(b"one");
        a.burn(b"two");
        b.burn(b"two");
        b.burn(b"one");
        assert_ne!(a.stats().state, b.stats().state);
        assert_eq!(a.stats().chunks, 2);
    }

    #[test]
    fn both_pools_run_jobs_and_report_panics() {
        let rayon = Arc::new(rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap());
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        for pool in [Pool::SpawnBlocking, Pool::Rayon(rayon)] {
            assert_eq!(runtime.block_on(pool.run(|| 6 * 7)), Ok(42));
            let panicked = runtime.block_on(pool.run(|| -> u32 { panic!("boom") }));
            assert!(panicked.is_err(), "{pool:?}");
        }
    }

    #[test]
    fn the_adapter_keeps_order_and_stops_after_a_source_error() {
        let rayon = Arc::new(rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap());
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let items: Vec<io::Result<Bytes>> = vec![
            Ok(Bytes::from_static(b"a")),
            Ok(Bytes::from_static(b"b")),
            Err(io::Error::other("broken")),
            Ok(Bytes::from_static(b"never")),
        ];
        let burn = Burn::new(1);
        let stats = burn.clone();
        let out: Vec<io::Result<Bytes>> =
            runtime.block_on(offloaded(stream::iter(items), burn, Pool::Rayon(rayon)).collect());
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].as_ref().unwrap(), &Bytes::from_static(b"a"));
        assert_eq!(out[1].as_ref().unwrap(), &Bytes::from_static(b"b"));
        assert!(out[2].is_err());
        let mut expected = Burn::new(1);
        expected.burn(b"a");
        expected.burn(b"b");
        assert_eq!(stats.stats().state, expected.stats().state);
    }
}
