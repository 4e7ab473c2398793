//! Compressed delivery: a client reading a compressible file zstd-encoded
//! at a fixed rate (server RSS growth, runtime lag, the decompressed body
//! checked against the file), and identity against compressed delivery as
//! fast as the client reads, in paired interleaved rounds (throughput, CPU,
//! lag). weir servers only.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use http_body_util::{BodyExt as _, Empty};
use serde_json::json;
use weir::{IngestOptions, NullSink};
use weir_harness::figures::delivery::{DeliveryCompressed, DeliveryEncoding};
use weir_harness::{PairedRatio, ScenarioResult};
use weir_http::client::Client;
use weir_transforms::{Decompress, Sha256, digest_in};

use crate::error::Error;
use crate::process::{ProcRssSampler, ProcStats, RunningServer};
use crate::serve::ServerKind;
use crate::{DeliveryParams, GIB, Phase, Scraped, isolation, result, settle_fds};

/// The compressible file, beside the scenario's random one.
pub(crate) const TEXT_FILE: &str = "delivery-text.csv";
/// The coding measured.
const CODING: &str = "zstd";

/// Writes the compressible file (kept across runs when its size matches)
/// and returns its SHA-256.
pub(crate) async fn prepare(dir: &Path, size: u64, seed: u64) -> Result<String, Error> {
    let path = dir.join(TEXT_FILE);
    let digest = tokio::task::spawn_blocking(move || {
        weir_harness::write_text_file(&path, size, seed)?;
        sha256_of_file(&path)
    })
    .await
    .map_err(|e| Error::scenario("writing the compressible file", e))?
    .map_err(|e| Error::scenario("writing the compressible file", e))?;
    Ok(digest)
}

fn sha256_of_file(path: &Path) -> io::Result<String> {
    use sha2::Digest as _;
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// What one download of the text file saw.
struct Fetched {
    /// Bytes on the wire.
    wire: u64,
    /// The SHA-256 of the (decoded) body.
    sha256: String,
    elapsed: Duration,
}

/// GETs the text file (`coding`: `Accept-Encoding`, or identity), reading
/// at most `rate` wire bytes per second, and hashes what it decodes: the
/// body goes through `weir::ingest` with weir-transforms' `Decompress` and
/// `Sha256` into a `NullSink`.
async fn fetch(addr: std::net::SocketAddr, coding: Option<&str>, rate: Option<u64>) -> Result<Fetched, Error> {
    let mut client = Client::connect(addr).await?;
    let mut request = http::Request::get(format!("/files/{TEXT_FILE}")).header(http::header::HOST, addr.to_string());
    if let Some(coding) = coding {
        request = request.header(http::header::ACCEPT_ENCODING, coding);
    }
    let request = request
        .body(Empty::new())
        .map_err(|e| Error::scenario("building a request", e))?;
    let started = Instant::now();
    let response = client.send(request).await?;
    let got = response
        .headers()
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if response.status() != 200 || got.as_deref() != coding {
        return Err(Error::check(format!(
            "GET {TEXT_FILE} with {coding:?}: {} with Content-Encoding {got:?}",
            response.status()
        )));
    }
    let wire = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let body = paced_body(response.into_body(), rate, std::sync::Arc::clone(&wire));
    let mut options = IngestOptions::builder().chunk_size(64 << 10);
    if coding.is_some() {
        options = options.transform(Decompress::zstd());
    }
    let report = weir::ingest(body, NullSink, options.transform(Sha256::new()).build())
        .await
        .map_err(|e| Error::scenario("decoding a compressed download", e))?;
    let sha256 = digest_in(&report.stages, "sha256").unwrap_or_default().to_owned();
    Ok(Fetched {
        wire: wire.load(std::sync::atomic::Ordering::Relaxed),
        sha256,
        elapsed: started.elapsed(),
    })
}

/// A response body as a stream of chunks, read no faster than `rate`.
fn paced_body(
    body: hyper::body::Incoming,
    rate: Option<u64>,
    wire: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let started = Instant::now();
    futures_util::stream::unfold(body, move |mut body| {
        let wire = std::sync::Arc::clone(&wire);
        async move {
            loop {
                let frame = match body.frame().await? {
                    Ok(frame) => frame,
                    Err(error) => return Some((Err(io::Error::other(error)), body)),
                };
                let Ok(data) = frame.into_data() else { continue };
                let seen = wire.fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed) + data.len() as u64;
                if let Some(rate) = rate {
                    let due = started + Duration::from_secs_f64(seen as f64 / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                return Some((Ok(data), body));
            }
        }
    })
}

/// The slow compressed download.
pub(crate) async fn slow(
    params: &DeliveryParams,
    dir: &Path,
    kind: ServerKind,
    digest: &str,
) -> Result<ScenarioResult, Error> {
    let server = RunningServer::start(&params.launch, &crate::options(params, dir, kind), 1)?;
    let stats = ProcStats::new(server.pid());
    // Warm-up: an identity request, so the runtime's threads exist; the
    // compressor's state is part of what is measured.
    crate::download(server.addr, &format!("/files/{TEXT_FILE}"), None, Some(1 << 20), None).await?;
    settle_fds(stats, None).await;
    let sampler = ProcRssSampler::start(stats, params.sample_every)?;
    let cpu_before = stats.cpu_seconds();
    let fetched = fetch(server.addr, Some(CODING), Some(params.compressed_rate)).await;
    let cpu = stats.cpu_seconds() - cpu_before;
    let rss = sampler.stop();
    let lag = Scraped::from(server.addr).await?.lag();
    server.stop();
    let fetched = fetched?;

    let mut result = result(params, Phase::Compressed, kind).with_transfer(fetched.wire, fetched.elapsed);
    result
        .params
        .insert("compressed_file_size".into(), json!(params.compressed_file_size));
    result
        .params
        .insert("compressed_rate".into(), json!(params.compressed_rate));
    let (baseline, peak) = (rss.baseline_bytes, rss.peak_bytes);
    result.rss = rss;
    let matches = fetched.sha256 == digest;
    result.set_figures(&DeliveryCompressed {
        server_isolation: isolation(params, kind).to_owned(),
        coding: CODING.to_owned(),
        server_threads: params.server_threads as u64,
        file_bytes: params.compressed_file_size,
        encoded_bytes: fetched.wire,
        compression_ratio: params.compressed_file_size as f64 / fetched.wire.max(1) as f64,
        client_rate_bps: params.compressed_rate,
        body_matches: matches,
        server_baseline_rss_bytes: baseline,
        server_peak_rss_bytes: peak,
        rss_growth_bytes: peak.saturating_sub(baseline),
        server_cpu_s: cpu,
        elapsed_s: fetched.elapsed.as_secs_f64(),
        server_lag: lag,
    });
    if !matches {
        result.outcome = format!(
            "the decompressed body's sha256 {} is not the file's {digest}",
            fetched.sha256
        );
    }
    Ok(result)
}

/// Identity against compressed, as fast as the client reads: two fresh
/// servers, one download of each per round, the first alternating.
pub(crate) async fn compare(
    params: &DeliveryParams,
    dir: &Path,
    kind: ServerKind,
    digest: &str,
) -> Result<ScenarioResult, Error> {
    let options = crate::options(params, dir, kind);
    let identity = RunningServer::start(&params.launch, &options, 1)?;
    let encoded = RunningServer::start(&params.launch, &options, 1)?;
    let servers = [(&identity, None), (&encoded, Some(CODING))];
    for (server, coding) in servers {
        fetch(server.addr, coding, None).await?;
    }
    let mut rates = [Vec::new(), Vec::new()];
    let mut cpu = [0.0f64; 2];
    let mut wire = 0u64;
    for round in 0..params.encoding_rounds {
        for offset in 0..2 {
            let i = (round + offset) % 2;
            let (server, coding) = servers[i];
            let stats = ProcStats::new(server.pid());
            let before = stats.cpu_seconds();
            let fetched = fetch(server.addr, coding, None).await?;
            cpu[i] += stats.cpu_seconds() - before;
            if fetched.sha256 != digest {
                return Err(Error::check(format!("{coding:?} delivery decoded to the wrong bytes")));
            }
            if coding.is_some() {
                wire += fetched.wire;
            }
            rates[i].push(params.compressed_file_size as f64 / fetched.elapsed.as_secs_f64());
        }
    }
    let identity_lag = Scraped::from(identity.addr).await?.lag();
    let encoded_lag = Scraped::from(encoded.addr).await?.lag();
    identity.stop();
    encoded.stop();
    let paired = PairedRatio::from_pairs(rates[1].iter().copied().zip(rates[0].iter().copied()));
    let gib = params.compressed_file_size as f64 * params.encoding_rounds as f64 / GIB;
    let mut result = result(params, Phase::Encoding, kind);
    result
        .params
        .insert("compressed_file_size".into(), json!(params.compressed_file_size));
    result
        .params
        .insert("encoding_rounds".into(), json!(params.encoding_rounds));
    result.bytes = params.compressed_file_size * params.encoding_rounds as u64;
    result.throughput_bps = weir_harness::median(&rates[1]);
    result.set_figures(&DeliveryEncoding {
        server_isolation: isolation(params, kind).to_owned(),
        coding: CODING.to_owned(),
        file_bytes: params.compressed_file_size,
        rounds: params.encoding_rounds as u64,
        identity_throughput_bps: weir_harness::median(&rates[0]),
        encoded_throughput_bps: weir_harness::median(&rates[1]),
        encoded_vs_identity: paired.as_ref().map(|p| p.median),
        paired_encoded_vs_identity: paired,
        identity_cpu_s_per_gib: cpu[0] / gib,
        encoded_cpu_s_per_gib: cpu[1] / gib,
        wire_bytes_per_file_byte: wire as f64 / (params.compressed_file_size as f64 * params.encoding_rounds as f64),
        identity_lag,
        encoded_lag,
    });
    Ok(result)
}
