//! The transforms scenario: what checksums cost inside an ingestion, and
//! where a CPU-heavy stage should run.
//!
//! - **checksum**: SHA-256, BLAKE3 and CRC32C as weir transforms versus a
//!   plain loop over the same hasher on the same in-memory chunks, in the
//!   same run, alternating, best of N each
//!   ([`TransformsParams::repetitions`]). Issue 5 asks for at least 0.9x
//!   the plain loop; the bounds the gates hold are in `gates.toml`.
//! - **offload**: a CPU-heavy pass-through stage ([`Burn`]) run inline, on
//!   the engine's offload (Tokio's blocking pool via `spawn_blocking`), and,
//!   for comparison, through a stream adapter on `spawn_blocking` and on a
//!   dedicated rayon pool with a oneshot reply ([`offload::Pool`]); each on
//!   a current-thread and a multi-thread runtime, with the harness's
//!   [`LagProbe`](weir_harness::LagProbe) running beside it. Expected:
//!   offloaded lag p99 under 5 ms (gated); inline lag p99 at least the
//!   per-chunk CPU time. A fifth way, `inline-no-yield`, does the same
//!   work in a `map` over the source instead of a weir stage: the engine's
//!   yield after a millisecond of inline stage work does not apply there,
//!   so it shows what that yield buys.
//! - **hop**: the four stage ways with almost no work per chunk, to measure
//!   what one hop to the pool costs.
//! - **lag-baseline**: the probe on an idle runtime of each flavour, the
//!   floor under every lag figure.
//! - **summary**: which pool wins, whether every way kept source order, and
//!   how much an inline stage blocks its runtime (the gates judge the
//!   figures).
//!
//! Every run writes one [`ScenarioResult`] JSON file. [`run`] builds its own
//! runtimes: call it from synchronous code.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod checksum;
pub mod offload;
mod summary;

use std::path::Path;
use std::time::Duration;

use weir_harness::{ScenarioResult, load_average};

pub use offload::Burn;
pub use summary::{summarize, summary_figures};
pub use weir_harness::figures::offload::{ChecksumRun, OffloadSummary, PoolComparison, StageRun};

const MIB: u64 = 1024 * 1024;

/// Why the scenario could not run (a failed measurement is recorded in its
/// result's `outcome` instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A parameter is out of range.
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    /// A runtime or thread pool could not be built.
    #[error("could not build the {what}")]
    Setup {
        /// What was being built.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A result file could not be written.
    #[error("could not write a result to {dir}")]
    Write {
        /// The output directory.
        dir: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Parameters of a transforms run. `Default` is the quick profile (a few
/// seconds); [`TransformsParams::full`] is the write-up's.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformsParams {
    /// Seed of the generated data.
    pub seed: u64,
    /// Bytes hashed per checksum run.
    pub checksum_bytes: u64,
    /// Chunk size of the checksum runs.
    pub checksum_chunk_size: usize,
    /// Runs of each side (plain loop and transform) per algorithm; the best
    /// of each is compared.
    pub repetitions: usize,
    /// Bytes through the CPU-heavy stage per offload run.
    pub heavy_bytes: u64,
    /// Chunk size of the offload runs.
    pub heavy_chunk_size: usize,
    /// SHA-256 passes over each chunk in the CPU-heavy stage (the CPU time
    /// per chunk grows with it).
    pub heavy_rounds: u32,
    /// Runs of each way in the offload group (interleaved); the run with
    /// the median throughput is kept.
    pub offload_repetitions: usize,
    /// Runs of each way in the hop-cost group, likewise (hop runs are short
    /// and noisy, so they get more).
    pub hop_repetitions: usize,
    /// Chunks through each pool in the hop-cost runs.
    pub hop_chunks: usize,
    /// Chunk size of the hop-cost runs.
    pub hop_chunk_size: usize,
    /// Interval of the runtime-lag heartbeat.
    pub lag_interval: Duration,
    /// RSS sampling interval.
    pub rss_interval: Duration,
    /// Threads of the dedicated rayon pool. One by default: the stage runs
    /// one chunk at a time, as on the blocking pool, and idle rayon workers
    /// spin before they sleep, taking CPU from the runtime.
    pub rayon_threads: usize,
}

impl Default for TransformsParams {
    /// The quick profile: 128 MiB per checksum run, 7 runs each; 32 MiB
    /// through the CPU-heavy stage (16 SHA-256 passes per 256 KiB chunk),
    /// 3 runs of each way; 10,000 hops, 7 runs of each way.
    fn default() -> Self {
        Self {
            seed: 42,
            checksum_bytes: 128 * MIB,
            checksum_chunk_size: weir::DEFAULT_CHUNK_SIZE,
            repetitions: 7,
            heavy_bytes: 32 * MIB,
            heavy_chunk_size: 256 * 1024,
            heavy_rounds: 16,
            offload_repetitions: 3,
            hop_repetitions: 7,
            hop_chunks: 10_000,
            hop_chunk_size: 4096,
            lag_interval: Duration::from_millis(1),
            rss_interval: Duration::from_millis(10),
            rayon_threads: 1,
        }
    }
}

impl TransformsParams {
    /// The full profile: 1 GiB per checksum run, 9 runs each; 128 MiB
    /// through the CPU-heavy stage, 5 runs of each way; 50,000 hops, 15
    /// runs of each way (a few minutes on two cores).
    pub fn full() -> Self {
        Self {
            checksum_bytes: 1024 * MIB,
            repetitions: 9,
            heavy_bytes: 128 * MIB,
            offload_repetitions: 5,
            hop_repetitions: 15,
            hop_chunks: 50_000,
            ..Self::default()
        }
    }

    fn validate(&self) -> Result<(), Error> {
        let invalid = |what: &str| Err(Error::InvalidParams(what.to_owned()));
        let chunk_ok = |size: usize| (1..=weir::MAX_CHUNK_SIZE).contains(&size);
        if !chunk_ok(self.checksum_chunk_size) || !chunk_ok(self.heavy_chunk_size) || !chunk_ok(self.hop_chunk_size) {
            return invalid("chunk sizes must be 1 byte ..= weir::MAX_CHUNK_SIZE");
        }
        if self.checksum_bytes == 0 || self.heavy_bytes == 0 || self.hop_chunks == 0 {
            return invalid("sizes and counts must be at least 1");
        }
        if self.repetitions == 0
            || self.offload_repetitions == 0
            || self.hop_repetitions == 0
            || self.heavy_rounds == 0
            || self.rayon_threads == 0
        {
            return invalid("repetitions, rounds and rayon threads must be at least 1");
        }
        if self.lag_interval.is_zero() || self.rss_interval.is_zero() {
            return invalid("intervals must be greater than zero");
        }
        Ok(())
    }

    fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut map = serde_json::Map::new();
        let mut put = |key: &str, value: serde_json::Value| {
            map.insert(key.to_owned(), value);
        };
        put("seed", self.seed.into());
        put("checksum_bytes", self.checksum_bytes.into());
        put("checksum_chunk_size", self.checksum_chunk_size.into());
        put("repetitions", self.repetitions.into());
        put("heavy_bytes", self.heavy_bytes.into());
        put("heavy_chunk_size", self.heavy_chunk_size.into());
        put("heavy_rounds", self.heavy_rounds.into());
        put("offload_repetitions", self.offload_repetitions.into());
        put("hop_repetitions", self.hop_repetitions.into());
        put("hop_chunks", self.hop_chunks.into());
        put("hop_chunk_size", self.hop_chunk_size.into());
        put(
            "lag_interval_us",
            u64::try_from(self.lag_interval.as_micros()).unwrap_or(u64::MAX).into(),
        );
        put("rayon_threads", self.rayon_threads.into());
        map
    }
}

/// Runs the whole scenario and writes each result to `out`; returns them,
/// the summary last.
///
/// # Errors
///
/// Invalid parameters, a runtime or pool that cannot be built, or a result
/// that cannot be written. A measurement that fails is recorded in its
/// result's `outcome` instead (and fails the gates on it).
///
/// # Panics
///
/// When called from inside a Tokio runtime (it builds and blocks on its
/// own).
pub fn run(params: &TransformsParams, out: &Path) -> Result<Vec<ScenarioResult>, Error> {
    params.validate()?;
    let load_before = load_average();
    let mut results = Vec::new();
    results.extend(checksum::run(params)?);
    results.extend(offload::run(params)?);
    let mut summary = ScenarioResult::new("offload", "summary");
    // Timings on a shared machine are only as good as its load: keep it.
    summary.set_figures(&OffloadSummary {
        load_average_before: load_before,
        load_average_after: load_average(),
        ..summary_figures(&results)
    });
    results.push(summary);
    for result in &mut results {
        for (key, value) in params.to_json() {
            result.params.entry(key).or_insert(value);
        }
        result.write_to(out).map_err(|source| Error::Write {
            dir: out.display().to_string(),
            source,
        })?;
    }
    Ok(results)
}
