//! The delivery scenario's figures: slow clients (memory and CPU), fast
//! clients in paired rounds, and the disconnect storm, per server.

use serde::{Deserialize, Serialize};

use crate::PairedRatio;

/// Slow clients against one server (variants `slow-<server>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliverySlow {
    /// `in-process` or `process` (the server measured on its own).
    pub server_isolation: String,
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
