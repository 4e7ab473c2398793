//! The upload phase: many clients uploading at a fixed rate at once (server
//! RSS over time, every upload committed with its digest checked), then
//! uploads cut off at random points (no file, no temporary file, no
//! descriptor left, every abort counted). weir servers only: the baselines
//! take no uploads.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use futures_util::Stream;
use serde_json::json;
use sha2::Digest as _;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use weir_harness::ScenarioResult;
use weir_harness::figures::delivery::DeliveryUpload;
use weir_http::client::upload as send;

use crate::error::Error;
use crate::process::{ProcRssSampler, ProcStats, RunningServer};
use crate::serve::ServerKind;
use crate::{DeliveryParams, MIB, Phase, Scraped, isolation, result, settle_fds};

/// The directory under the served root that uploads go to.
const UPLOAD_DIR: &str = "uploads";
/// The scenario's bearer token (a lab server on loopback).
const TOKEN: &str = "weir-delivery-scenario-token";
/// Bytes per piece a paced client sends.
const PIECE: usize = 16 << 10;

/// `body` in pieces, at most `rate` bytes per second (`None`: as fast as
/// the connection takes them).
pub(crate) fn paced(body: Bytes, rate: Option<u64>) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let started = Instant::now();
    futures_util::stream::unfold(0usize, move |at| {
        let body = body.clone();
        async move {
            if at >= body.len() {
                return None;
            }
            if let Some(rate) = rate {
                let due = started + Duration::from_secs_f64(at as f64 / rate as f64);
                tokio::time::sleep_until(due.into()).await;
            }
            let end = (at + PIECE).min(body.len());
            Some((Ok(body.slice(at..end)), end))
        }
    })
}

async fn join_cutoff(client: tokio::task::JoinHandle<io::Result<()>>) -> Result<(), Error> {
    client
        .await
        .map_err(|e| Error::scenario("a cut-off client", e))?
        .map_err(|e| Error::scenario("a cut-off client", e))
}

fn digest_header(body: &[u8]) -> (String, String) {
    let digest = sha2::Sha256::digest(body);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let header = format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(digest));
    (hex, header)
}

/// Runs the phase against a fresh `kind` server.
pub(crate) async fn run(params: &DeliveryParams, dir: &Path, kind: ServerKind) -> Result<ScenarioResult, Error> {
    let uploads_dir = dir.join(UPLOAD_DIR);
    if uploads_dir.exists() {
        std::fs::remove_dir_all(&uploads_dir).map_err(|e| Error::scenario("clearing the upload directory", e))?;
    }
    std::fs::create_dir_all(&uploads_dir).map_err(|e| Error::scenario("creating the upload directory", e))?;
    let mut options = crate::options(params, dir, kind);
    options.upload_token = Some(TOKEN.to_owned());
    options.max_uploads = params.upload_clients + params.cutoffs;
    let server = RunningServer::start(&params.launch, &options, params.upload_clients)?;
    let stats = ProcStats::new(server.pid());
    let addr = server.addr;
    let auth = format!("Bearer {TOKEN}");
    let len = params.upload_bytes;
    let body = Bytes::from(weir_harness::synthetic_bytes(params.seed, len, 1 << 20));
    let (hex, header) = digest_header(&body);
    let headers = [("authorization", auth.as_str()), ("content-digest", header.as_str())];

    // Warm-up: one upload, so threads and allocator arenas exist before the
    // baseline.
    let warm = send(
        addr,
        "PUT",
        "/files/uploads/warm.bin",
        &headers,
        paced(body.clone(), None),
        Some(len),
    )
    .await?;
    if warm.status != 201 {
        return Err(Error::check(format!("the warm-up upload got {}", warm.status)));
    }
    std::fs::remove_file(uploads_dir.join("warm.bin")).map_err(|e| Error::scenario("removing the warm-up", e))?;
    settle_fds(stats, None).await;
    let sampler = ProcRssSampler::start(stats, params.sample_every)?;
    let cpu_before = stats.cpu_seconds();
    let started = Instant::now();
    let clients: Vec<_> = (0..params.upload_clients)
        .map(|i| {
            let body = body.clone();
            let (auth, header) = (auth.clone(), header.clone());
            let rate = params.upload_rate;
            tokio::spawn(async move {
                let headers = [("authorization", auth.as_str()), ("content-digest", header.as_str())];
                let path = format!("/files/{UPLOAD_DIR}/u{i}.bin");
                send(addr, "PUT", &path, &headers, paced(body, Some(rate)), Some(len)).await
            })
        })
        .collect();
    let mut committed = 0u64;
    let mut failures = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        match client.await {
            Ok(Ok(reply)) if reply.status == 201 && String::from_utf8_lossy(&reply.body).contains(&hex) => {
                let size = std::fs::metadata(uploads_dir.join(format!("u{i}.bin"))).map_or(0, |m| m.len());
                if size == len {
                    committed += 1;
                } else {
                    failures.push(format!("upload {i} committed {size} of {len} bytes"));
                }
            }
            Ok(Ok(reply)) => failures.push(format!(
                "upload {i}: {} {}",
                reply.status,
                String::from_utf8_lossy(&reply.body).trim()
            )),
            Ok(Err(error)) => failures.push(error.to_string()),
            Err(join) => failures.push(join.to_string()),
        }
    }
    let elapsed = started.elapsed();
    let cpu = stats.cpu_seconds() - cpu_before;
    let rss = sampler.stop();
    for i in 0..params.upload_clients {
        let _ = std::fs::remove_file(uploads_dir.join(format!("u{i}.bin")));
    }

    // Cut-offs: each client sends its head and part of its body, then hangs up.
    let fds_before = settle_fds(stats, None).await;
    let gone_before = Scraped::from(addr).await?.uploads("client_gone");
    let cut_len = (PIECE * 16) as u64;
    let prefix = body.slice(..usize::try_from(cut_len.min(len)).unwrap_or(0));
    let mut batch = Vec::new();
    for i in 0..params.cutoffs as u64 {
        let cut = usize::try_from(i.wrapping_mul(2_654_435_761) % (prefix.len() as u64).max(1)).unwrap_or(0);
        let prefix = prefix.clone();
        let auth = auth.clone();
        batch.push(tokio::spawn(async move {
            let framing = if i % 2 == 0 {
                format!("content-length: {}\r\n\r\n", prefix.len())
            } else {
                format!("transfer-encoding: chunked\r\n\r\n{:x}\r\n", prefix.len())
            };
            let head = format!(
                "PUT /files/{UPLOAD_DIR}/cut{i}.bin HTTP/1.1\r\nhost: weir\r\nauthorization: {auth}\r\n{framing}"
            );
            let mut stream = TcpStream::connect(addr).await?;
            stream.write_all(head.as_bytes()).await?;
            let _ = stream.write_all(&prefix[..cut]).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(stream);
            Ok::<(), io::Error>(())
        }));
        if batch.len() == 50 {
            for client in batch.drain(..) {
                join_cutoff(client).await?;
            }
        }
    }
    for client in batch {
        join_cutoff(client).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut counted, mut leftovers, mut temps, mut fds) = (0, 0, 0, 0);
    while Instant::now() < deadline {
        counted = Scraped::from(addr)
            .await?
            .uploads("client_gone")
            .saturating_sub(gone_before);
        let names: Vec<String> = std::fs::read_dir(&uploads_dir)
            .map_err(|e| Error::scenario("listing the upload directory", e))?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        temps = names.iter().filter(|n| n.ends_with(".weir-tmp")).count() as u64;
        leftovers = names.len() as u64 - temps;
        fds = stats.open_fds().saturating_sub(fds_before) as u64;
        if counted >= params.cutoffs as u64 && leftovers + temps + fds == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lag = Scraped::from(addr).await?.lag();
    server.stop();

    let mut result = result(params, Phase::Upload, kind).with_transfer(committed * len, elapsed);
    result
        .params
        .insert("upload_clients".into(), json!(params.upload_clients));
    result.params.insert("upload_bytes".into(), json!(len));
    result.params.insert("upload_rate".into(), json!(params.upload_rate));
    result.params.insert("cutoffs".into(), json!(params.cutoffs));
    let (baseline, peak) = (rss.baseline_bytes, rss.peak_bytes);
    result.rss = rss;
    result.set_figures(&DeliveryUpload {
        server_isolation: isolation(params, kind).to_owned(),
        uploads: params.upload_clients as u64,
        upload_bytes: len,
        rate_bps: params.upload_rate,
        committed,
        all_committed: committed == params.upload_clients as u64,
        server_baseline_rss_bytes: baseline,
        server_peak_rss_bytes: peak,
        server_peak_rss_mib: peak as f64 / MIB,
        rss_growth_bytes: peak.saturating_sub(baseline),
        server_cpu_s: cpu,
        elapsed_s: elapsed.as_secs_f64(),
        cutoffs: params.cutoffs as u64,
        cutoff_aborts_counted: counted,
        cutoff_leftover_files: leftovers,
        cutoff_temp_files: temps,
        cutoff_fds_over_baseline: fds,
        server_lag: lag,
    });
    if let Some(first) = failures.first() {
        result.outcome = format!(
            "{} of {} uploads failed; first: {first}",
            failures.len(),
            params.upload_clients
        );
    }
    Ok(result)
}
