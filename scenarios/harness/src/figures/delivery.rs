//! The delivery scenario's figures: slow clients and a crowd of them
//! (memory, CPU, fresh-request latency), fast clients in paired rounds, and
//! the disconnect storm, per server; weir's against tower-http's `ServeFile`
//! and nginx's.

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
}
