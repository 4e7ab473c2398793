//! Checksum transforms versus a plain loop over the same hasher, on the
//! same in-memory chunks, in the same run.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream;
use sha2::Digest as _;
use weir::{IngestOptions, NullSink, Transform, ingest};
use weir_harness::figures::offload::ChecksumRun;
use weir_harness::{RssSampler, ScenarioResult};
use weir_transforms::{Blake3, Crc32c, Sha256, digest_in};

use crate::{Error, TransformsParams};

/// The algorithms measured.
#[derive(Debug, Clone, Copy)]
enum Algorithm {
    Sha256,
    Blake3,
    Crc32c,
}

impl Algorithm {
    const ALL: [Self; 3] = [Self::Sha256, Self::Blake3, Self::Crc32c];

    fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Blake3 => "blake3",
            Self::Crc32c => "crc32c",
        }
    }

    /// The plain loop: the same crate and calls the transform makes.
    fn plain(self, chunks: &[Bytes]) -> String {
        match self {
            Self::Sha256 => {
                let mut hasher = sha2::Sha256::new();
                for chunk in chunks {
                    hasher.update(chunk);
                }
                hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
            }
            Self::Blake3 => {
                let mut hasher = blake3::Hasher::new();
                for chunk in chunks {
                    hasher.update(chunk);
                }
                hasher.finalize().to_hex().to_string()
            }
            Self::Crc32c => {
                let mut crc = 0;
                for chunk in chunks {
                    crc = crc32c::crc32c_append(crc, chunk);
                }
                format!("{crc:08x}")
            }
        }
    }

    fn transform(self) -> Box<dyn Transform> {
        match self {
            Self::Sha256 => Box::new(Sha256::new()),
            Self::Blake3 => Box::new(Blake3::new()),
            Self::Crc32c => Box::new(Crc32c::new()),
        }
    }
}

/// The same chunks through `ingest` with the checksum stage into a
/// `NullSink`; returns the digest the stage reported.
async fn through_engine(algorithm: Algorithm, chunks: &[Bytes], chunk_size: usize) -> Result<String, String> {
    let source = stream::iter(chunks.iter().cloned().map(Ok));
    let options = IngestOptions::builder()
        .chunk_size(chunk_size)
        .boxed_transform(algorithm.transform())
        .build();
    let report = ingest(source, NullSink, options).await.map_err(|e| e.to_string())?;
    digest_in(&report.stages, algorithm.name())
        .map(str::to_owned)
        .ok_or_else(|| "no digest in the report".to_owned())
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// One result per algorithm.
pub(crate) fn run(params: &TransformsParams) -> Result<Vec<ScenarioResult>, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Setup {
            what: "current-thread runtime",
            source: e.into(),
        })?;
    let data = Bytes::from(weir_harness::synthetic_bytes(
        params.seed,
        params.checksum_bytes,
        params.checksum_chunk_size,
    ));
    let chunks: Vec<Bytes> = (0..data.len())
        .step_by(params.checksum_chunk_size)
        .map(|start| data.slice(start..data.len().min(start + params.checksum_chunk_size)))
        .collect();
    let bytes = params.checksum_bytes;
    let mut results = Vec::new();
    for algorithm in Algorithm::ALL {
        let mut result = ScenarioResult::new("offload", format!("checksum-{}", algorithm.name()));
        let expected = algorithm.plain(&chunks);
        let rss = RssSampler::start(params.rss_interval);
        let started = Instant::now();
        let (mut plain_times, mut engine_times) = (Vec::new(), Vec::new());
        let mut outcome = Ok(());
        for round in 0..params.repetitions {
            // Alternate which side goes first, so that drift favours neither.
            let order = if round % 2 == 0 { [false, true] } else { [true, false] };
            for engine in order {
                let clock = Instant::now();
                let digest = if engine {
                    let digest = runtime.block_on(through_engine(algorithm, &chunks, params.checksum_chunk_size));
                    engine_times.push(clock.elapsed());
                    digest
                } else {
                    let digest = algorithm.plain(&chunks);
                    plain_times.push(clock.elapsed());
                    Ok(digest)
                };
                let checked = digest.and_then(|d| {
                    if d == expected {
                        Ok(())
                    } else {
                        Err(format!("digest {d} differs from the plain loop's {expected}"))
                    }
                });
                if outcome.is_ok() {
                    outcome = checked;
                }
            }
        }
        result.rss = rss.stop();
        let total = started.elapsed();
        let best_plain = plain_times.iter().min().copied().unwrap_or_default();
        let best_engine = engine_times.iter().min().copied().unwrap_or_default();
        let median_plain = median(&mut plain_times);
        let median_engine = median(&mut engine_times);
        let bps = |d: Duration| {
            if d.is_zero() {
                0.0
            } else {
                bytes as f64 / d.as_secs_f64()
            }
        };
        let ratio = |plain: Duration, engine: Duration| {
            if engine.is_zero() {
                0.0
            } else {
                plain.as_secs_f64() / engine.as_secs_f64()
            }
        };
        result = result.with_transfer(bytes, best_engine);
        result.params.insert("algorithm".into(), algorithm.name().into());
        result.params.insert("size".into(), bytes.into());
        result
            .params
            .insert("chunk_size".into(), params.checksum_chunk_size.into());
        result.set_figures(&ChecksumRun {
            digest: expected,
            plain_bps: bps(best_plain),
            engine_bps: bps(best_engine),
            ratio: ratio(best_plain, best_engine),
            median_plain_bps: bps(median_plain),
            median_engine_bps: bps(median_engine),
            median_ratio: ratio(median_plain, median_engine),
            repetitions: params.repetitions as u64,
            measured_s: total.as_secs_f64(),
        });
        if let Err(error) = outcome {
            result.outcome = error;
        }
        results.push(result);
    }
    Ok(results)
}
