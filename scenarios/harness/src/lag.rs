//! `LagProbe`: how late a heartbeat on the runtime fires.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Runtime lag over one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LagSeries {
    /// `[milliseconds since start, lag in microseconds]`, one per tick.
    pub samples: Vec<[u64; 2]>,
    /// Median lag, microseconds.
    pub p50_us: u64,
    /// 99th percentile lag, microseconds.
    pub p99_us: u64,
    /// Largest lag, microseconds.
    pub max_us: u64,
}

/// A heartbeat task that sleeps `interval` and records how much later than
/// asked it woke: Rust's counterpart of Node's event-loop delay.
#[derive(Debug)]
pub struct LagProbe {
    stop: oneshot::Sender<()>,
    task: JoinHandle<LagSeries>,
}

impl LagProbe {
    /// Spawns the heartbeat on the current runtime.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn start(interval: Duration) -> Self {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut samples = Vec::new();
            loop {
                let due = Instant::now() + interval;
                tokio::select! {
                    _ = &mut stopped => break,
                    () = tokio::time::sleep_until(due) => {
                        let now = Instant::now();
                        let lag = u64::try_from(now.saturating_duration_since(due).as_micros()).unwrap_or(u64::MAX);
                        let at = u64::try_from(now.duration_since(started).as_millis()).unwrap_or(u64::MAX);
                        samples.push([at, lag]);
                    }
                }
            }
            summarize(samples)
        });
        Self { stop, task }
    }

    /// Stops the heartbeat and returns the series.
    pub async fn stop(self) -> LagSeries {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

fn summarize(samples: Vec<[u64; 2]>) -> LagSeries {
    let mut series = LagSeries {
        samples,
        ..LagSeries::default()
    };
    // 1 us ..= 1 hour.
    let Ok(mut histogram) = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3) else {
        return series;
    };
    for [_, lag] in &series.samples {
        histogram.saturating_record((*lag).max(1));
    }
    if !histogram.is_empty() {
        series.p50_us = histogram.value_at_quantile(0.5);
        series.p99_us = histogram.value_at_quantile(0.99);
        series.max_us = histogram.max();
    }
    series
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_blocked_runtime_shows_up_as_lag() {
        let probe = LagProbe::start(Duration::from_millis(5));
        tokio::time::sleep(Duration::from_millis(30)).await;
        // Block the only worker for 60 ms.
        std::thread::sleep(Duration::from_millis(60));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let lag = probe.stop().await;
        assert!(lag.max_us >= 50_000, "max lag {} us: {:?}", lag.max_us, lag.samples);
        assert!(lag.samples.len() >= 3);
    }
}
