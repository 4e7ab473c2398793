//! The runtime-lag probe: a task on the server's runtime that sleeps for a
//! fixed period and records how late it woke ([`RuntimeLag`]
//! in `/metrics`). A worker held by CPU-heavy work or a blocking call makes
//! every task on it late, the probe included.
//!
//! [`RuntimeLag`]: crate::metrics::RuntimeLag

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Samples until `token` is cancelled, one every `every`.
pub(crate) async fn probe(metrics: Metrics, every: Duration, token: CancellationToken) {
    loop {
        let due = Instant::now() + every;
        tokio::select! {
            () = token.cancelled() => break,
            () = tokio::time::sleep_until(due) => {}
        }
        metrics.record_lag(Instant::now().saturating_duration_since(due));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_blocked_runtime_shows_as_lag() {
        let metrics = Metrics::new();
        let token = CancellationToken::new();
        let task = tokio::spawn(probe(metrics.clone(), Duration::from_millis(5), token.clone()));
        tokio::time::sleep(Duration::from_millis(30)).await;
        // Hold the only worker for 50 ms: the probe's next timer fires late.
        std::thread::sleep(Duration::from_millis(50));
        tokio::time::sleep(Duration::from_millis(30)).await;
        token.cancel();
        task.await.unwrap();
        let lag = metrics.runtime_lag();
        assert!(lag.samples >= 3, "{lag:?}");
        assert!(lag.max_s >= 0.03, "{lag:?}");
        assert!(lag.p50_s < 0.03, "{lag:?}");
    }
}
