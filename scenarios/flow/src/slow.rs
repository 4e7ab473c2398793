//! `SlowSink`: a device that takes one write at a time, each for a fixed or
//! seeded random delay, and then discards the chunk.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use tokio::sync::Mutex;
use tokio::time::Instant;
use weir::{BoxError, Cause, Sink};

use crate::case::DelayModel;

/// A slow sink modelled as a serial device: writes are served one at a
/// time, in the order they were issued, each taking the model's delay. Its
/// throughput is therefore one chunk per delay, whatever the number of
/// writes in flight, like a disk or a remote peer with a fixed bandwidth.
///
/// The device keeps its own clock (the time it is next free) so that timer
/// granularity does not add up: with several writes queued, each completes
/// one delay after the previous one. A lone write (one in flight) takes its
/// delay plus however late the timer fires (Tokio's timers have a 1 ms
/// resolution).
///
/// A chunk is held until its write completes, so the memory a caller ties
/// up is the number of writes outstanding times the chunk size: exactly
/// what backpressure is meant to bound.
#[derive(Debug)]
pub struct SlowSink {
    model: DelayModel,
    rng: Xoshiro256PlusPlus,
    device: Arc<Mutex<Option<Instant>>>,
}

impl SlowSink {
    /// A sink whose writes take `model`'s delays.
    pub fn new(model: DelayModel) -> Self {
        let seed = match model {
            DelayModel::Fixed { .. } => 0,
            DelayModel::Exponential { seed, .. } => seed,
        };
        Self {
            model,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            device: Arc::new(Mutex::new(None)),
        }
    }

    /// The next write's delay; drawn in call order, which is source order,
    /// so a seed gives the same sequence every run.
    fn next_delay(&mut self) -> Duration {
        match self.model {
            DelayModel::Fixed { micros } => Duration::from_micros(micros),
            DelayModel::Exponential { mean_micros, .. } => {
                // Inverse CDF on a uniform in [0, 1): -mean * ln(1 - u).
                let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                let micros = -(mean_micros as f64) * (1.0 - u).ln();
                Duration::from_secs_f64(micros.min(10.0 * mean_micros as f64) / 1e6)
            }
        }
    }
}

impl Sink for SlowSink {
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<> {
        let delay = self.next_delay();
        let device = Arc::clone(&self.device);
        let issued = Instant::now();
        async move {
            let mut free_at = device.lock().await;
            // Served from when it was issued or when the device became free,
            // whichever is later: queued writes complete one delay apart even
            // when a timer fires late.
            let done = free_at.map_or(issued, |at| at.max(issued)) + delay;
            tokio::time::sleep_until(done).await;
            *free_at = Some(done);
            drop(chunk);
            Ok(())
        }
    }

    async fn finalize(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    async fn abort(self, _cause: &Cause) -> Result<(), BoxError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_delays_repeat_and_average_near_the_mean() {
        let model = DelayModel::Exponential {
            mean_micros: 1000,
            seed: 9,
        };
        let mut a = SlowSink::new(model);
        let mut b = SlowSink::new(model);
        let first: Vec<Duration> = (0..2000).map(|_| a.next_delay()).collect();
        let second: Vec<Duration> = (0..2000).map(|_| b.next_delay()).collect();
        assert_eq!(first, second);
        let mean = first.iter().sum::<Duration>().as_secs_f64() / 2000.0;
        assert!((0.8e-3..1.2e-3).contains(&mean), "mean {mean}");
        assert!(first.iter().all(|d| *d <= Duration::from_millis(10)));
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn writes_are_served_one_at_a_time() {
        let mut sink = SlowSink::new(DelayModel::Fixed { micros: 1000 });
        let started = Instant::now();
        let writes: Vec<_> = (0..5).map(|_| sink.write(Bytes::from_static(b"x"))).collect();
        for write in writes {
            write.await.unwrap();
        }
        // Paused time: exactly five delays of virtual time, one after another.
        assert_eq!(started.elapsed(), Duration::from_millis(5));
        sink.finalize().await.unwrap();
    }
}
