//! The delivery scenario's figures: slow clients and a crowd of them
//! (memory, CPU, fresh-request latency), fast clients in paired rounds, and
//! the disconnect storm, per server; weir's against tower-http's `ServeFile`
//! and nginx's; and weir's alone: uploads, compressed delivery, identity
//! against compressed, with the server's runtime lag in each.

use serde::{Deserialize, Serialize};

use crate::PairedRatio;

/// Slow clients against one server (variants `slow-<server>`, and
/// `crowd-<server>` for the larger crowd).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliverySlow {
    /// `in-process` or `process` (the server measured on its own).
    pub server_isolation: String,
    /// Concurrent slow clients.
    pub clients: u64,
    /// The server's RSS when the clients started, bytes.
    pub server_baseline_rss_bytes: u64,
    /// (peak - baseline) / clients, bytes: what one slow connection costs.
    pub rss_per_client_bytes: f64,
    /// The server's peak RSS, bytes: the gated ceiling.
    pub server_peak_rss_bytes: u64,
    /// The same in MiB, for a reader of the JSON.
    pub server_peak_rss_mib: f64,
    /// The server's CPU time, seconds.
    pub server_cpu_s: f64,
    /// The server's minor page faults.
    pub server_minor_faults: u64,
    /// Bytes the clients received.
    pub delivered_bytes: u64,
    /// Server CPU seconds per delivered GiB.
    pub cpu_s_per_gib: f64,
    /// Each client's mean rate, bytes per second.
    pub mean_client_rate_bps: f64,
    /// The slowest time to first byte, seconds.
    pub ttfb_max_s: f64,
    /// Clients that failed.
    pub client_failures: u64,
    /// CPU per GiB over `ServeFile`'s (weir servers only, when the
    /// baseline ran).
    pub cpu_per_gib_vs_serve_file: Option<f64>,
    /// The server's run time from the scheduler (`/proc/<pid>/task/*/schedstat`),
    /// seconds: nanosecond resolution, where `server_cpu_s` counts 10 ms ticks.
    pub server_run_s: f64,
    /// The scenario process's CPU (the clients, when the server is a process
    /// of its own) over the same window, seconds.
    pub client_cpu_s: f64,
    /// Fresh requests (a new connection, one byte) made while the clients
    /// streamed: each one's time to its first body byte, milliseconds.
    pub fresh_request_ms: Vec<f64>,
    /// The slowest of them, milliseconds: the gated figure for the crowd.
    pub fresh_request_max_ms: f64,
    /// Peak RSS minus nginx's peak in the same phase, bytes (may be
    /// negative; not for nginx itself).
    pub peak_rss_over_nginx_bytes: Option<f64>,
    /// Peak RSS over nginx's.
    pub peak_rss_vs_nginx: Option<f64>,
    /// Server run time over nginx's over the same window.
    pub cpu_vs_nginx: Option<f64>,
    /// Crowd only: (crowd peak - slow peak) / (crowd clients - slow
    /// clients), bytes per connection, when both phases ran.
    pub rss_slope_bytes_per_client: Option<f64>,
    /// The server's runtime lag over the phase (weir servers only).
    pub server_lag: Option<ServerLag>,
    /// Transfers the server sent by `sendfile(2)` (weir servers only, from
    /// `/metrics`): every client's and fresh request's on the sendfile path,
    /// none on hyper's.
    pub server_sendfile_transfers: Option<u64>,
}

/// Fast clients against one server (variants `fast-<server>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliveryFast {
    /// `in-process` or `process`.
    pub server_isolation: String,
    /// Median download rate, bytes per second.
    pub median_throughput_bps: f64,
    /// Every download's rate.
    pub throughputs_bps: Vec<f64>,
    /// The server's CPU time, seconds.
    pub server_cpu_s: f64,
    /// Server CPU seconds per delivered GiB.
    pub cpu_s_per_gib: f64,
    /// The median of per-round ratios against `ServeFile` (weir servers
    /// only): the gated figure.
    pub throughput_vs_serve_file: Option<f64>,
    /// Largest minus smallest per-round ratio.
    pub throughput_vs_serve_file_spread: Option<f64>,
    /// Every round.
    pub paired_vs_serve_file: Option<PairedRatio>,
    /// CPU per GiB over `ServeFile`'s.
    pub cpu_per_gib_vs_serve_file: Option<f64>,
    /// The median of per-round ratios against nginx (not for nginx): the
    /// gated figure of issue 14.
    pub throughput_vs_nginx: Option<f64>,
    /// Largest minus smallest per-round ratio against nginx.
    pub throughput_vs_nginx_spread: Option<f64>,
    /// Every round against nginx.
    pub paired_vs_nginx: Option<PairedRatio>,
    /// The server's runtime lag over the phase (weir servers only).
    pub server_lag: Option<ServerLag>,
}

/// The disconnect storm against one server (variants `storm-<server>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliveryStorm {
    /// `in-process` or `process`.
    pub server_isolation: String,
    /// The server's open descriptors before the storms.
    pub fds_before: u64,
    /// The most during them.
    pub fds_peak: u64,
    /// After the last one settled.
    pub fds_after: u64,
    /// After each storm settled.
    pub fds_after_each_storm: Vec<u64>,
    /// Every storm ended with no more descriptors than before: the gated
    /// figure.
    pub fds_back_to_baseline: bool,
    /// How long each storm took to settle, milliseconds.
    pub settle_ms_each_storm: Vec<f64>,
    /// The server's RSS before the storms, bytes.
    pub rss_before_bytes: u64,
    /// The server's threads before the storms.
    pub threads_before: u64,
    /// After each storm.
    pub threads_after_each_storm: Vec<u64>,
    /// RSS after each storm, bytes.
    pub rss_after_each_storm_bytes: Vec<u64>,
    /// Last minus before.
    pub rss_retained_bytes: u64,
    /// Last minus after the first storm: growth here is a leak.
    pub rss_growth_after_first_storm_bytes: u64,
    /// Clients that hung up mid-transfer.
    pub clients_hung_up: u64,
    /// The server's own count of aborted transfers, when it exports one.
    pub server_aborted_transfers: Option<u64>,
    /// Its transfers still active afterwards.
    pub server_active_transfers_after: Option<i64>,
    /// The server's runtime lag over the phase (weir servers only).
    pub server_lag: Option<ServerLag>,
    /// Transfers the server sent by `sendfile(2)`, warm-ups included (weir
    /// servers only).
    pub server_sendfile_transfers: Option<u64>,
}

/// The server's runtime lag over a phase, from its `/metrics` (the lag
/// probe's samples since the server process started: every phase runs a
/// fresh server).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerLag {
    /// Median, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// The latest timer, milliseconds.
    pub max_ms: f64,
}

/// Concurrent paced uploads, then uploads cut off at random points, against
/// one weir server (variant `upload-weir-pull`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliveryUpload {
    /// `in-process` or `process`.
    pub server_isolation: String,
    /// Concurrent uploads.
    pub uploads: u64,
    /// Bytes per upload.
    pub upload_bytes: u64,
    /// Each client's sending rate, bytes per second.
    pub rate_bps: u64,
    /// Uploads the server committed (`201`, its SHA-256 equal to the
    /// client's `Content-Digest`, the file of the right size).
    pub committed: u64,
    /// Every upload committed: the gated figure.
    pub all_committed: bool,
    /// The server's RSS when the uploads started, bytes.
    pub server_baseline_rss_bytes: u64,
    /// The server's peak RSS during them, bytes: the gated ceiling.
    pub server_peak_rss_bytes: u64,
    /// The same in MiB.
    pub server_peak_rss_mib: f64,
    /// Peak minus baseline, bytes.
    pub rss_growth_bytes: u64,
    /// The server's CPU over the uploads, seconds.
    pub server_cpu_s: f64,
    /// Wall time of the concurrent uploads, seconds.
    pub elapsed_s: f64,
    /// Uploads cut off mid-body (the client hangs up at a random point).
    pub cutoffs: u64,
    /// Of those, the aborts the server counted (`client_gone`).
    pub cutoff_aborts_counted: u64,
    /// Files left in the upload directory afterwards (should be 0).
    pub cutoff_leftover_files: u64,
    /// Temporary files left there (should be 0).
    pub cutoff_temp_files: u64,
    /// Server descriptors open afterwards above the count before (should be 0).
    pub cutoff_fds_over_baseline: u64,
    /// The server's runtime lag over the phase.
    pub server_lag: ServerLag,
}

/// A compressed download of a compressible file by a client reading at a
/// fixed rate (variant `compressed-weir-pull`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliveryCompressed {
    /// `in-process` or `process`.
    pub server_isolation: String,
    /// `zstd` or `gzip`.
    pub coding: String,
    /// The server runtime's worker threads (a multi-thread runtime).
    pub server_threads: u64,
    /// The file's size, bytes.
    pub file_bytes: u64,
    /// The encoded body's size, bytes.
    pub encoded_bytes: u64,
    /// file / encoded.
    pub compression_ratio: f64,
    /// The client's reading rate (of encoded bytes), bytes per second.
    pub client_rate_bps: u64,
    /// The decompressed body's SHA-256 equals the file's: the gated figure.
    pub body_matches: bool,
    /// The server's RSS when the download started, bytes.
    pub server_baseline_rss_bytes: u64,
    /// Its peak during the download, bytes.
    pub server_peak_rss_bytes: u64,
    /// Peak minus baseline, bytes: the gated ceiling.
    pub rss_growth_bytes: u64,
    /// The server's CPU, seconds.
    pub server_cpu_s: f64,
    /// Wall time of the download, seconds.
    pub elapsed_s: f64,
    /// The server's runtime lag over the phase (gated: p99).
    pub server_lag: ServerLag,
}

/// Identity against compressed delivery of the same compressible file, as
/// fast as the client reads, in paired interleaved rounds on two fresh
/// servers (one per representation, so that each one's lag is its own)
/// (variant `encoding-weir-pull`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliveryEncoding {
    /// `in-process` or `process`.
    pub server_isolation: String,
    /// The coding compared with identity.
    pub coding: String,
    /// The file's size, bytes.
    pub file_bytes: u64,
    /// Rounds (one download of each representation per round).
    pub rounds: u64,
    /// Median identity rate, file bytes per second.
    pub identity_throughput_bps: f64,
    /// Median compressed rate, file bytes per second (the client
    /// decompresses as it reads).
    pub encoded_throughput_bps: f64,
    /// Compressed over identity, paired per round.
    pub paired_encoded_vs_identity: Option<PairedRatio>,
    /// Its median.
    pub encoded_vs_identity: Option<f64>,
    /// Server CPU seconds per file GiB, identity.
    pub identity_cpu_s_per_gib: f64,
    /// The same, compressed.
    pub encoded_cpu_s_per_gib: f64,
    /// Bytes on the wire per file byte, compressed.
    pub wire_bytes_per_file_byte: f64,
    /// The identity server's runtime lag.
    pub identity_lag: ServerLag,
    /// The compressing server's runtime lag.
    pub encoded_lag: ServerLag,
}

/// Rows of a PostgreSQL table streamed as CSV to a client reading at a
/// fixed rate, then a hang-up mid-stream (variant `rows-weir-pull`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliveryRows {
    /// `in-process` or `process`.
    pub server_isolation: String,
    /// Rows in the table.
    pub rows: u64,
    /// Rows the client received (CSV lines after the header).
    pub rows_received: u64,
    /// Every row arrived: the gated figure.
    pub all_rows: bool,
    /// Bytes received.
    pub body_bytes: u64,
    /// The client's reading rate, bytes per second.
    pub client_rate_bps: u64,
    /// The server's RSS when the stream started, bytes.
    pub server_baseline_rss_bytes: u64,
    /// Its peak during it, bytes.
    pub server_peak_rss_bytes: u64,
    /// Peak minus baseline, bytes: the gated ceiling.
    pub rss_growth_bytes: u64,
    /// The server's CPU, seconds.
    pub server_cpu_s: f64,
    /// Wall time of the stream, seconds.
    pub elapsed_s: f64,
    /// From the client's hang-up to the query's end in `pg_stat_activity`,
    /// milliseconds (gated); 60,000 when it did not end within a minute.
    pub query_end_after_hangup_ms: f64,
    /// The server's runtime lag over the phase.
    pub server_lag: ServerLag,
}

/// Seeded random single ranges against one server (variants
/// `ranges-<server>`), every body checked against the file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliveryRanges {
    /// How the server ran.
    pub server_isolation: String,
    /// Range requests sent.
    pub requests: u64,
    /// Concurrent keep-alive clients.
    pub clients: u64,
    /// The longest range asked, bytes.
    pub max_range_bytes: u64,
    /// Answered 206 with the right `Content-Range` and the file's bytes.
    pub ok: u64,
    /// Answered otherwise.
    pub mismatches: u64,
    /// Every request answered right (and at least one sent).
    pub all_ok: bool,
    /// Body bytes received in right answers.
    pub bytes: u64,
    /// Requests per second, the median of the rounds.
    pub requests_per_s: f64,
    /// Each round's requests per second.
    pub rounds_requests_per_s: Vec<f64>,
    /// Request latency (sent to whole body read), median, milliseconds.
    pub latency_p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub latency_p99_ms: f64,
    /// The server process's CPU over the rounds, seconds.
    pub server_cpu_s: f64,
    /// Requests per second over nginx's, the median of paired rounds.
    pub requests_per_s_vs_nginx: Option<f64>,
    /// Those rounds.
    pub paired_vs_nginx: Option<crate::PairedRatio>,
    /// The server's runtime lag at the end of the phase (weir servers).
    pub server_lag: Option<ServerLag>,
}
