//! `RssSampler`: resident set size sampled from a background thread.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The process's resident set size now, in bytes (0 if unknown).
pub fn current_rss() -> u64 {
    memory_stats::memory_stats().map_or(0, |m| m.physical_mem as u64)
}

/// RSS over one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RssSeries {
    /// `[milliseconds since start, bytes]`, one per sample.
    pub samples: Vec<[u64; 2]>,
    /// The first sample, taken when sampling started.
    pub baseline_bytes: u64,
    /// The largest sample.
    pub peak_bytes: u64,
}

impl RssSeries {
    /// Peak minus baseline: what the run itself added.
    pub fn growth_bytes(&self) -> u64 {
        self.peak_bytes.saturating_sub(self.baseline_bytes)
    }
}

/// Samples RSS every `interval` on a thread of its own, from
/// [`start`](RssSampler::start) to [`stop`](RssSampler::stop).
#[derive(Debug)]
pub struct RssSampler {
    stop: mpsc::Sender<()>,
    thread: thread::JoinHandle<RssSeries>,
}

impl RssSampler {
    /// Takes the baseline sample now and starts sampling.
    ///
    /// # Panics
    ///
    /// If the sampling thread cannot be spawned.
    pub fn start(interval: Duration) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let started = Instant::now();
        let baseline = current_rss();
        let thread = thread::Builder::new()
            .name("weir-rss-sampler".to_owned())
            .spawn(move || {
                let mut series = RssSeries {
                    samples: vec![[0, baseline]],
                    baseline_bytes: baseline,
                    peak_bytes: baseline,
                };
                loop {
                    let done = !matches!(stopped.recv_timeout(interval), Err(mpsc::RecvTimeoutError::Timeout));
                    let rss = current_rss();
                    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                    series.samples.push([ms, rss]);
                    series.peak_bytes = series.peak_bytes.max(rss);
                    if done {
                        return series;
                    }
                }
            })
            .expect("spawn the RSS sampler thread");
        Self { stop, thread }
    }

    /// Takes a last sample, stops, and returns the series.
    pub fn stop(self) -> RssSeries {
        let _ = self.stop.send(());
        self.thread.join().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_allocation_shows_up_in_the_peak() {
        let sampler = RssSampler::start(Duration::from_millis(2));
        let block = vec![7u8; 64 << 20];
        thread::sleep(Duration::from_millis(30));
        std::hint::black_box(&block);
        drop(block);
        let series = sampler.stop();
        assert!(series.growth_bytes() >= 60 << 20, "growth {}", series.growth_bytes());
        assert!(series.samples.len() >= 3);
        assert!(series.samples.windows(2).all(|w| w[0][0] <= w[1][0]));
    }
}
