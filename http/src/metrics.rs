//! The delivery server's Prometheus metrics (`prometheus-client`, OpenMetrics
//! text at `/metrics`), and the drop guards that keep the gauges and the
//! transfer outcomes right whatever ends a connection or a transfer.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram as Hdr;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// How a transfer (a response body) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransferOutcome {
    /// Every byte was handed to the connection.
    Completed,
    /// The body was dropped first: the client hung up, stalled past the
    /// write-stall timeout, or the server shut down.
    Aborted,
    /// The source failed (read error, or it ended early).
    Failed,
}

impl TransferOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Aborted => "aborted",
            Self::Failed => "failed",
        }
    }
}

/// How an upload ended (the `outcome` label of `weir_delivery_uploads_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UploadOutcome {
    /// The sink committed every byte.
    Committed,
    /// The client hung up (or its body broke off) mid-body: aborted.
    ClientGone,
    /// A chunked body passed the byte limit: aborted, `413`.
    TooLarge,
    /// The body's digest differs from the one the client sent: aborted, `400`.
    DigestMismatch,
    /// The body went idle past the idle timeout: aborted, `408`.
    IdleTimeout,
    /// The sink failed: aborted, `500`.
    Failed,
    /// Refused before the body was read: over the limit by `Content-Length`.
    RefusedTooLarge,
    /// Refused before the body was read: every upload slot taken (`503`).
    RefusedBusy,
    /// Refused before the body was read: no valid bearer token (`401`).
    RefusedUnauthorized,
    /// Refused before the body was read: a bad path, header or encoding.
    RefusedBadRequest,
}

impl UploadOutcome {
    /// Every outcome.
    pub const ALL: [Self; 10] = [
        Self::Committed,
        Self::ClientGone,
        Self::TooLarge,
        Self::DigestMismatch,
        Self::IdleTimeout,
        Self::Failed,
        Self::RefusedTooLarge,
        Self::RefusedBusy,
        Self::RefusedUnauthorized,
        Self::RefusedBadRequest,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Committed => "committed",
            Self::ClientGone => "client_gone",
            Self::TooLarge => "too_large",
            Self::DigestMismatch => "digest_mismatch",
            Self::IdleTimeout => "idle_timeout",
            Self::Failed => "failed",
            Self::RefusedTooLarge => "refused_too_large",
            Self::RefusedBusy => "refused_busy",
            Self::RefusedUnauthorized => "refused_unauthorized",
            Self::RefusedBadRequest => "refused_bad_request",
        }
    }

    /// `true` for an ingestion that started and was aborted.
    pub fn is_abort(self) -> bool {
        matches!(
            self,
            Self::ClientGone | Self::TooLarge | Self::DigestMismatch | Self::IdleTimeout | Self::Failed
        )
    }
}

type OutcomeLabels = [(&'static str, &'static str); 1];
type CodeLabels = [(&'static str, u16); 1];

struct Inner {
    registry: Registry,
    sent_bytes: Counter,
    active_connections: Gauge,
    accepted_connections: Counter,
    refused_connections: Counter,
    active_transfers: Gauge,
    completed: Counter,
    aborted: Counter,
    failed: Counter,
    time_to_first_byte: Histogram,
    sendfile_transfers: Counter,
    responses: Family<CodeLabels, Counter>,
    received_bytes: Counter,
    active_uploads: Gauge,
    uploads: Family<OutcomeLabels, Counter>,
    /// Every runtime-lag sample since the server started, microseconds.
    /// `None` only if the histogram could not be made (its bounds are
    /// constants that hdrhistogram accepts).
    lag: Mutex<Option<Hdr<u64>>>,
    /// Its p50, p99 and max, refreshed on each exposition.
    lag_gauges: Family<OutcomeLabels, Gauge<f64, AtomicU64>>,
}

/// How late the server's runtime ran a timer, over every sample since the
/// server started (the lag probe's, one every 10 ms): Rust's counterpart of
/// Node's event-loop delay. A runtime whose workers are blocked (CPU-heavy
/// work inline, a blocking call) shows it here.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct RuntimeLag {
    /// Samples taken.
    pub samples: u64,
    /// Median lateness, seconds.
    pub p50_s: f64,
    /// 99th percentile, seconds.
    pub p99_s: f64,
    /// The latest timer, seconds.
    pub max_s: f64,
}

/// The server's metrics; cheap to clone (one shared registry).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("snapshot", &self.snapshot())
            .field("runtime_lag", &self.runtime_lag())
            .finish()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The metrics' current values, for tests and scenario results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Body bytes handed to connections.
    pub sent_bytes: u64,
    /// Connections open now.
    pub active_connections: i64,
    /// Response bodies being sent now.
    pub active_transfers: i64,
    /// Transfers that completed.
    pub completed: u64,
    /// Transfers that were aborted.
    pub aborted: u64,
    /// Transfers whose source failed.
    pub failed: u64,
    /// Transfers whose body went out by `sendfile(2)` (counted when they
    /// start, whatever their outcome).
    pub sendfile_transfers: u64,
    /// Upload body bytes received (committed or not).
    pub received_bytes: u64,
    /// Uploads running now.
    pub active_uploads: i64,
    /// Uploads committed.
    pub uploads_committed: u64,
    /// Uploads that started and were aborted, whatever the reason.
    pub uploads_aborted: u64,
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("weir_delivery");
        let sent_bytes = Counter::default();
        registry.register_with_unit(
            "sent",
            "Response body bytes handed to client connections",
            Unit::Bytes,
            sent_bytes.clone(),
        );
        let active_connections = Gauge::default();
        registry.register(
            "active_connections",
            "Client connections open now",
            active_connections.clone(),
        );
        let accepted_connections = Counter::default();
        registry.register(
            "accepted_connections",
            "Client connections accepted",
            accepted_connections.clone(),
        );
        let refused_connections = Counter::default();
        registry.register(
            "refused_connections",
            "Client connections closed at once because max_connections were open",
            refused_connections.clone(),
        );
        let active_transfers = Gauge::default();
        registry.register(
            "active_transfers",
            "Response bodies being sent now",
            active_transfers.clone(),
        );
        let transfers = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "transfers",
            "Finished response bodies by outcome: completed (every byte handed to the connection), aborted (client gone, stalled or shutdown), failed (source error)",
            transfers.clone(),
        );
        let outcome = |o: TransferOutcome| transfers.get_or_create(&[("outcome", o.as_str())]).clone();
        let (completed, aborted, failed) = (
            outcome(TransferOutcome::Completed),
            outcome(TransferOutcome::Aborted),
            outcome(TransferOutcome::Failed),
        );
        // 100 us to about 6.5 s.
        let time_to_first_byte = Histogram::new(exponential_buckets(0.0001, 2.0, 17));
        registry.register_with_unit(
            "time_to_first_byte",
            "From request received to the first body chunk handed to the connection",
            Unit::Seconds,
            time_to_first_byte.clone(),
        );
        let sendfile_transfers = Counter::default();
        registry.register(
            "sendfile_transfers",
            "Response bodies sent from the file by sendfile(2) (the sendfile path), whatever their outcome",
            sendfile_transfers.clone(),
        );
        let responses = Family::<CodeLabels, Counter>::default();
        registry.register("responses", "Responses by status code", responses.clone());
        let received_bytes = Counter::default();
        registry.register_with_unit(
            "received",
            "Upload body bytes received, committed or not",
            Unit::Bytes,
            received_bytes.clone(),
        );
        let active_uploads = Gauge::default();
        registry.register("active_uploads", "Uploads running now", active_uploads.clone());
        let uploads = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "uploads",
            "Finished uploads by outcome: committed; aborted mid-body (client_gone, too_large, digest_mismatch, idle_timeout, failed); refused before the body (refused_*)",
            uploads.clone(),
        );
        for outcome in UploadOutcome::ALL {
            let _ = uploads.get_or_create(&[("outcome", outcome.as_str())]);
        }
        let lag_gauges = Family::<OutcomeLabels, Gauge<f64, AtomicU64>>::default();
        registry.register_with_unit(
            "runtime_lag",
            "How late the runtime ran the lag probe's 10 ms timer since the server started: quantile 0.5, 0.99 and 1 (the max)",
            Unit::Seconds,
            lag_gauges.clone(),
        );
        // 1 us to 60 s, 3 significant digits; the bounds are valid constants.
        let lag = Hdr::new_with_bounds(1, 60_000_000, 3).ok();
        Self {
            inner: Arc::new(Inner {
                registry,
                sent_bytes,
                active_connections,
                accepted_connections,
                refused_connections,
                active_transfers,
                completed,
                aborted,
                failed,
                time_to_first_byte,
                sendfile_transfers,
                responses,
                received_bytes,
                active_uploads,
                uploads,
                lag: Mutex::new(lag),
                lag_gauges,
            }),
        }
    }

    /// Records one lag-probe sample.
    pub(crate) fn record_lag(&self, late: Duration) {
        let micros = u64::try_from(late.as_micros()).unwrap_or(u64::MAX).max(1);
        let mut lag = self.inner.lag.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(lag) = lag.as_mut() {
            lag.saturating_record(micros);
        }
    }

    /// The runtime lag so far (see [`RuntimeLag`]).
    pub fn runtime_lag(&self) -> RuntimeLag {
        let lag = self.inner.lag.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(lag) = lag.as_ref().filter(|l| !l.is_empty()) else {
            return RuntimeLag::default();
        };
        let seconds = |micros: u64| micros as f64 / 1e6;
        RuntimeLag {
            samples: lag.len(),
            p50_s: seconds(lag.value_at_quantile(0.5)),
            p99_s: seconds(lag.value_at_quantile(0.99)),
            max_s: seconds(lag.max()),
        }
    }

    /// The OpenMetrics text exposition (what `/metrics` returns).
    pub fn render(&self) -> String {
        let lag = self.runtime_lag();
        for (quantile, value) in [("0.5", lag.p50_s), ("0.99", lag.p99_s), ("1", lag.max_s)] {
            self.inner
                .lag_gauges
                .get_or_create(&[("quantile", quantile)])
                .set(value);
        }
        let mut text = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.inner.registry);
        text
    }

    /// The current values.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let inner = &self.inner;
        MetricsSnapshot {
            sent_bytes: inner.sent_bytes.get(),
            active_connections: inner.active_connections.get(),
            active_transfers: inner.active_transfers.get(),
            completed: inner.completed.get(),
            aborted: inner.aborted.get(),
            failed: inner.failed.get(),
            sendfile_transfers: inner.sendfile_transfers.get(),
            received_bytes: inner.received_bytes.get(),
            active_uploads: inner.active_uploads.get(),
            uploads_committed: self.uploads(UploadOutcome::Committed),
            uploads_aborted: UploadOutcome::ALL
                .into_iter()
                .filter(|o| o.is_abort())
                .map(|o| self.uploads(o))
                .sum(),
        }
    }

    /// Uploads that ended with `outcome`.
    pub fn uploads(&self, outcome: UploadOutcome) -> u64 {
        self.inner.uploads.get_or_create(&[("outcome", outcome.as_str())]).get()
    }

    pub(crate) fn upload_ended(&self, outcome: UploadOutcome) {
        self.inner.uploads.get_or_create(&[("outcome", outcome.as_str())]).inc();
    }

    pub(crate) fn received(&self, bytes: usize) {
        self.inner.received_bytes.inc_by(bytes as u64);
    }

    /// Counts an upload running until the guard drops.
    pub(crate) fn upload(&self) -> UploadGuard {
        self.inner.active_uploads.inc();
        UploadGuard { metrics: self.clone() }
    }

    pub(crate) fn response(&self, code: u16) {
        self.inner.responses.get_or_create(&[("code", code)]).inc();
    }

    pub(crate) fn refused_connection(&self) {
        self.inner.refused_connections.inc();
    }

    /// Counts a connection open until the guard drops.
    pub(crate) fn connection(&self) -> ConnectionGuard {
        self.inner.accepted_connections.inc();
        self.inner.active_connections.inc();
        ConnectionGuard { metrics: self.clone() }
    }

    /// Counts a transfer active until the guard drops; a guard dropped
    /// without an outcome counts as aborted.
    pub(crate) fn transfer(&self, requested: Instant) -> TransferGuard {
        self.inner.active_transfers.inc();
        TransferGuard {
            metrics: self.clone(),
            requested,
            first_byte: false,
            outcome: None,
        }
    }
}

/// Keeps `active_connections` right: decremented on drop.
#[derive(Debug)]
pub(crate) struct ConnectionGuard {
    metrics: Metrics,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.metrics.inner.active_connections.dec();
    }
}

/// Keeps `active_uploads` right: decremented on drop.
#[derive(Debug)]
pub(crate) struct UploadGuard {
    metrics: Metrics,
}

impl Drop for UploadGuard {
    fn drop(&mut self) {
        self.metrics.inner.active_uploads.dec();
    }
}

/// One response body's accounting.
#[derive(Debug)]
pub(crate) struct TransferGuard {
    metrics: Metrics,
    requested: Instant,
    first_byte: bool,
    outcome: Option<TransferOutcome>,
}

impl TransferGuard {
    /// Counts `bytes` handed to the connection (the first time, records the
    /// time to first byte).
    pub(crate) fn sent(&mut self, bytes: usize) {
        if !self.first_byte {
            self.first_byte = true;
            self.metrics
                .inner
                .time_to_first_byte
                .observe(self.requested.elapsed().as_secs_f64());
        }
        self.metrics.inner.sent_bytes.inc_by(bytes as u64);
    }

    /// Counts this transfer as sent by `sendfile(2)`.
    pub(crate) fn by_sendfile(&mut self) {
        self.metrics.inner.sendfile_transfers.inc();
    }

    /// Sets the outcome (the first one set wins).
    pub(crate) fn finish(&mut self, outcome: TransferOutcome) {
        self.outcome.get_or_insert(outcome);
    }
}

impl Drop for TransferGuard {
    fn drop(&mut self) {
        let inner = &self.metrics.inner;
        match self.outcome.unwrap_or(TransferOutcome::Aborted) {
            TransferOutcome::Completed => inner.completed.inc(),
            TransferOutcome::Aborted => inner.aborted.inc(),
            TransferOutcome::Failed => inner.failed.inc(),
        };
        inner.active_transfers.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_and_the_exposition_names_everything() {
        let metrics = Metrics::new();
        {
            let _connection = metrics.connection();
            let mut done = metrics.transfer(Instant::now());
            done.sent(10);
            done.finish(TransferOutcome::Completed);
            let mut dropped = metrics.transfer(Instant::now());
            dropped.sent(5);
            assert_eq!(metrics.snapshot().active_transfers, 2);
            assert_eq!(metrics.snapshot().active_connections, 1);
        }
        metrics.response(206);
        for ms in [1, 1, 2] {
            metrics.record_lag(Duration::from_millis(ms));
        }
        let lag = metrics.runtime_lag();
        assert_eq!(lag.samples, 3);
        assert!(
            (lag.p50_s - 0.001).abs() < 1e-5 && (lag.max_s - 0.002).abs() < 1e-5,
            "{lag:?}"
        );
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.sent_bytes, 15);
        assert_eq!((snapshot.completed, snapshot.aborted, snapshot.failed), (1, 1, 0));
        assert_eq!((snapshot.active_transfers, snapshot.active_connections), (0, 0));
        let text = metrics.render();
        for needle in [
            "weir_delivery_sent_bytes_total 15",
            "weir_delivery_active_connections 0",
            "weir_delivery_transfers_total{outcome=\"completed\"} 1",
            "weir_delivery_transfers_total{outcome=\"aborted\"} 1",
            "weir_delivery_time_to_first_byte_seconds_count 2",
            "weir_delivery_responses_total{code=\"206\"} 1",
            "weir_delivery_runtime_lag_seconds{quantile=\"0.99\"} 0.002",
            "weir_delivery_uploads_total{outcome=\"client_gone\"} 0",
            "# EOF",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
    }
}
