//! Range requests: seeded random single ranges (`bytes=a-b`, and suffix
//! ranges `bytes=-n`) of the served file, from a few keep-alive clients at
//! once, against every server. Each body is checked against the file's own
//! bytes at that offset (status 206, `Content-Range`, length, content);
//! rounds alternate between the servers, so that requests per second are
//! compared as the median of paired rounds.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use weir_harness::figures::delivery::DeliveryRanges;
use weir_harness::{PairedRatio, ScenarioResult};
use weir_http::client::Client;

use crate::error::Error;
use crate::process::{ProcStats, RunningServer};
use crate::serve::ServerKind;
use crate::{DeliveryParams, FILE_NAME, Phase, isolation, result, server_lag, start};

/// One range: its header and the bytes it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    /// `Some(first)` for `bytes=first-last`, `None` for a suffix range.
    first: Option<u64>,
    start: u64,
    len: u64,
}

impl Range {
    fn header(&self) -> String {
        match self.first {
            Some(first) => format!("bytes={first}-{}", first + self.len - 1),
            None => format!("bytes=-{}", self.len),
        }
    }
}

/// splitmix64: the seeded choice of every range.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Request `n`'s range of a file of `size` bytes (one in ten a suffix
/// range), at most `max_len` long.
fn range(seed: u64, n: u64, size: u64, max_len: u64) -> Range {
    let a = mix(seed ^ n.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let len = 1 + mix(a) % max_len.min(size);
    if a.is_multiple_of(10) {
        Range {
            first: None,
            start: size - len,
            len,
        }
    } else {
        let start = a % (size - len + 1);
        Range {
            first: Some(start),
            start,
            len,
        }
    }
}

/// What one round against one server saw.
#[derive(Debug, Default)]
struct Round {
    ok: u64,
    mismatches: u64,
    bytes: u64,
    latencies_ms: Vec<f64>,
    requests_per_s: f64,
    first_mismatch: Option<String>,
}

/// `requests` ranges (numbered from `first`) over `clients` keep-alive
/// connections to `server`, every body checked against `file`.
async fn round(
    server: &RunningServer,
    file: &Arc<File>,
    params: &DeliveryParams,
    first: u64,
    requests: u64,
) -> Result<Round, Error> {
    let path = format!("/files/{FILE_NAME}");
    let started = Instant::now();
    let clients = params.range_clients.max(1) as u64;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (addr, path, file) = (server.addr, path.clone(), Arc::clone(file));
            let (seed, size, max_len) = (params.seed, params.file_size, params.range_max_bytes);
            tokio::spawn(async move {
                let mut client = Client::connect(addr).await?;
                let mut seen = Round::default();
                let mut expected = Vec::new();
                for n in (first + c..first + requests).step_by(clients as usize) {
                    let r = range(seed, n, size, max_len);
                    let header = r.header();
                    let asked = Instant::now();
                    let got = client.get(&path, &[("range", &header)]).await?;
                    seen.latencies_ms.push(asked.elapsed().as_secs_f64() * 1e3);
                    expected.resize(usize::try_from(r.len).unwrap_or(usize::MAX), 0);
                    file.read_exact_at(&mut expected, r.start)
                        .map_err(|e| Error::scenario("reading the served file", e))?;
                    let content_range = format!("bytes {}-{}/{size}", r.start, r.start + r.len - 1);
                    let fine = got.status == http::StatusCode::PARTIAL_CONTENT
                        && got.header("content-range") == content_range
                        && got.body.as_ref() == expected.as_slice();
                    if fine {
                        seen.ok += 1;
                        seen.bytes += r.len;
                    } else {
                        seen.mismatches += 1;
                        seen.first_mismatch.get_or_insert_with(|| {
                            format!(
                                "{header}: status {}, content-range {:?} (wanted {content_range:?}), {} body bytes \
                                 (wanted {})",
                                got.status,
                                got.header("content-range"),
                                got.body.len(),
                                r.len
                            )
                        });
                    }
                }
                Ok::<_, Error>(seen)
            })
        })
        .collect();
    let mut total = Round::default();
    for task in tasks {
        let seen = task.await.map_err(|e| Error::scenario("a range client", e))??;
        total.ok += seen.ok;
        total.mismatches += seen.mismatches;
        total.bytes += seen.bytes;
        total.latencies_ms.extend(seen.latencies_ms);
        if total.first_mismatch.is_none() {
            total.first_mismatch = seen.first_mismatch;
        }
    }
    total.requests_per_s = requests as f64 / started.elapsed().as_secs_f64().max(f64::EPSILON);
    Ok(total)
}

/// The ranges phase: every server, `range_rounds` interleaved rounds of
/// `range_requests / range_rounds` requests each.
pub(crate) async fn run(params: &DeliveryParams, dir: &Path) -> Result<Vec<ScenarioResult>, Error> {
    let file = Arc::new(File::open(dir.join(FILE_NAME)).map_err(|e| Error::scenario("opening the served file", e))?);
    let servers = params
        .servers
        .iter()
        .map(|&kind| start(params, dir, kind, params.range_clients))
        .collect::<Result<Vec<_>, _>>()?;
    let rounds = params.range_rounds.max(1);
    let per_round = (params.range_requests / rounds as u64).max(1);
    // Warm-up: a connection and a few ranges each.
    for server in &servers {
        round(server, &file, params, u64::MAX / 2, params.range_clients as u64).await?;
    }
    let mut seen: Vec<Vec<Round>> = servers.iter().map(|_| Vec::new()).collect();
    let mut cpu = vec![0.0; servers.len()];
    for r in 0..rounds {
        for offset in 0..servers.len() {
            let i = (r + offset) % servers.len();
            let stats = ProcStats::new(servers[i].pid());
            let cpu_before = stats.cpu_seconds();
            // Every server is asked the same ranges in the same round.
            seen[i].push(round(&servers[i], &file, params, r as u64 * per_round, per_round).await?);
            cpu[i] += stats.cpu_seconds() - cpu_before;
        }
    }
    let rates = |i: usize| seen[i].iter().map(|r| r.requests_per_s).collect::<Vec<f64>>();
    let nginx = servers.iter().position(|s| s.kind == ServerKind::Nginx);
    let mut results = Vec::new();
    for (i, server) in servers.into_iter().enumerate() {
        let kind = server.kind;
        let lag = server_lag(&server, kind).await;
        server.stop();
        let mut latencies: Vec<f64> = seen[i].iter().flat_map(|r| r.latencies_ms.iter().copied()).collect();
        latencies.sort_by(f64::total_cmp);
        let vs_nginx = nginx
            .filter(|&n| n != i)
            .and_then(|n| PairedRatio::from_pairs(rates(i).into_iter().zip(rates(n))));
        let ok: u64 = seen[i].iter().map(|r| r.ok).sum();
        let mismatches: u64 = seen[i].iter().map(|r| r.mismatches).sum();
        let bytes: u64 = seen[i].iter().map(|r| r.bytes).sum();
        let median = weir_harness::median(&rates(i));
        let mut result = result(params, Phase::Ranges, kind);
        result.bytes = bytes;
        result.elapsed_s = if median > 0.0 {
            (ok + mismatches) as f64 / median
        } else {
            0.0
        };
        result.throughput_bps = if result.elapsed_s > 0.0 {
            bytes as f64 / result.elapsed_s
        } else {
            0.0
        };
        if let Some(first) = seen[i].iter().find_map(|r| r.first_mismatch.clone()) {
            result.outcome = format!("error: {mismatches} ranges answered wrong, first: {first}");
        }
        result.set_figures(&DeliveryRanges {
            server_isolation: isolation(params, kind).to_owned(),
            requests: ok + mismatches,
            clients: params.range_clients as u64,
            max_range_bytes: params.range_max_bytes,
            ok,
            mismatches,
            all_ok: mismatches == 0 && ok > 0,
            bytes,
            requests_per_s: median,
            rounds_requests_per_s: rates(i),
            latency_p50_ms: weir_harness::quantile(&latencies, 0.5),
            latency_p99_ms: weir_harness::quantile(&latencies, 0.99),
            server_cpu_s: cpu[i],
            requests_per_s_vs_nginx: vs_nginx.as_ref().map(|p| p.median),
            paired_vs_nginx: vs_nginx,
            server_lag: lag,
        });
        results.push(result);
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_stay_inside_the_file_and_mix_suffix_ranges_in() {
        let size = 10_000;
        let ranges: Vec<Range> = (0..2_000).map(|n| range(7, n, size, 4096)).collect();
        for r in &ranges {
            assert!(r.len >= 1 && r.len <= 4096 && r.start + r.len <= size, "{r:?}");
        }
        let suffixes = ranges.iter().filter(|r| r.first.is_none()).count();
        assert!((100..400).contains(&suffixes), "{suffixes} suffix ranges of 2000");
        assert_eq!(range(7, 3, size, 4096), range(7, 3, size, 4096), "seeded");
        let r = Range {
            first: Some(10),
            start: 10,
            len: 5,
        };
        assert_eq!(r.header(), "bytes=10-14");
        let suffix = Range {
            first: None,
            start: 9_995,
            len: 5,
        };
        assert_eq!(suffix.header(), "bytes=-5");
        assert_eq!(range(1, 1, 1, 4096).len, 1, "a one-byte file");
    }
}
