//! Shared pieces of weir's criterion benches: the sources and sinks they
//! measure with, and the raw loops they compare against.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::io;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use weir::{BoxError, Cause, Sink};

/// A source that copies `total` bytes out of `data` into fresh chunks of
/// `chunk` bytes, as a read would: the per-byte work a real source does.
pub fn copying_source(data: &Bytes, chunk: usize) -> impl Stream<Item = io::Result<Bytes>> + Send + use<> {
    let data = data.clone();
    let chunks = data.len().div_ceil(chunk);
    stream::iter((0..chunks).map(move |i| {
        let end = ((i + 1) * chunk).min(data.len());
        Ok(Bytes::copy_from_slice(&data[i * chunk..end]))
    }))
}

/// The hand-rolled loop the engine is measured against: pull, write, await,
/// then finalize. No backpressure bound beyond the await, no timeout, no
/// cancellation, no atomic cleanup.
///
/// # Errors
///
/// The first error, with no cleanup.
pub async fn raw_loop<St, Si>(source: St, mut sink: Si) -> Result<u64, BoxError>
where
    St: Stream<Item = io::Result<Bytes>>,
    Si: Sink,
{
    let mut source = std::pin::pin!(source);
    let mut bytes = 0u64;
    while let Some(chunk) = source.next().await {
        let chunk = chunk?;
        bytes += chunk.len() as u64;
        sink.write(chunk).await?;
    }
    sink.finalize().await?;
    Ok(bytes)
}

/// A sink whose every write takes a fixed time (a remote store's latency),
/// and which overlaps writes freely.
#[derive(Debug, Clone, Copy)]
pub struct LatencySink {
    /// Time per write.
    pub latency: Duration,
}

impl Sink for LatencySink {
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<> {
        let latency = self.latency;
        async move {
            drop(chunk);
            tokio::time::sleep(latency).await;
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

/// The two sides of a bench pair (`raw`, then `engine`), measured in
/// alternating rounds so that a change of load on the machine hits both
/// sides alike; criterion itself runs one bench id after the other.
///
/// The first bench id's routine ([`Alternating::first`]) runs each of its
/// `iters` rounds beside one round of the other side, in alternating
/// order, returns the time of its own rounds and keeps the other side's
/// total for that call. Criterion calls a routine for its warm-up (1, 2,
/// 4, ... iterations, until a wall-clock time has passed) and then once
/// per sample. The second bench id's routine ([`Alternating::second`])
/// answers its k-th sample with the other side's mean round over the first
/// id's k-th sample, times the iterations asked, so that both ids' samples
/// cover the same pairs; its warm-up calls replay the first id's warm-up
/// calls of the same size. A replayed call sleeps as long as the time it
/// reports, because criterion ends a warm-up by the wall clock; calls
/// beyond those kept measure new pairs. Each bench id reports only its own
/// side's time, so criterion's estimates (and the gate's `raw / engine`)
/// stay per side.
#[derive(Debug)]
pub struct Alternating {
    /// Samples per bench id (the group's `sample_size`).
    samples: usize,
    /// Per call of `first`: its iterations and the second side's total.
    kept: Vec<(u64, Duration)>,
    /// Calls of `second` so far in its warm-up, and in its samples.
    warm_up: u32,
    sampled: Option<usize>,
    /// Which side went first in the last pair.
    flip: bool,
}

impl Alternating {
    /// A pair for a group of `samples` samples per bench id.
    pub fn new(samples: usize) -> Self {
        Self {
            samples,
            kept: Vec::new(),
            warm_up: 0,
            sampled: None,
            flip: false,
        }
    }

    /// `iters` pairs of rounds, in alternating order: the totals of the
    /// first side and of the second.
    fn pairs(
        &mut self,
        iters: u64,
        first: &mut impl FnMut() -> Duration,
        second: &mut impl FnMut() -> Duration,
    ) -> (Duration, Duration) {
        let (mut a, mut b) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..iters {
            self.flip = !self.flip;
            if self.flip {
                a += first();
                b += second();
            } else {
                b += second();
                a += first();
            }
        }
        (a, b)
    }

    /// The first bench id's `iter_custom` body: `iters` rounds of `first`,
    /// each beside a round of `second`, whose total is kept.
    pub fn first(
        &mut self,
        iters: u64,
        mut first: impl FnMut() -> Duration,
        mut second: impl FnMut() -> Duration,
    ) -> Duration {
        let (a, b) = self.pairs(iters, &mut first, &mut second);
        self.kept.push((iters, b));
        a
    }

    /// The second bench id's `iter_custom` body: `iters` rounds of `second`
    /// replayed from the matching call of `first` (scaled to `iters`), or
    /// else measured now, each beside a round of `first`.
    pub fn second(
        &mut self,
        iters: u64,
        mut first: impl FnMut() -> Duration,
        mut second: impl FnMut() -> Duration,
    ) -> Duration {
        // The warm-up doubles from one iteration; the first call that does
        // not is the first sample.
        let kept = if self.sampled.is_none() && iters == 1 << self.warm_up {
            self.warm_up += 1;
            self.kept.get(self.warm_up as usize - 1).filter(|&&(n, _)| n == iters)
        } else {
            let sample = self.sampled.map_or(0, |k| k + 1);
            self.sampled = Some(sample);
            let first_samples = self.kept.len().saturating_sub(self.samples);
            self.kept.get(first_samples + sample)
        };
        let Some(&(kept_iters, total)) = kept else {
            return self.pairs(iters, &mut first, &mut second).1;
        };
        let replayed = if kept_iters == iters {
            total
        } else {
            total.mul_f64(iters as f64 / kept_iters as f64)
        };
        std::thread::sleep(replayed);
        replayed
    }
}

/// Times one round of an async routine on `rt`, from inside the runtime
/// (the `block_on` entry and exit are not counted).
pub fn timed<F: Future>(rt: &tokio::runtime::Runtime, round: impl FnOnce() -> F) -> Duration {
    rt.block_on(async {
        let started = std::time::Instant::now();
        std::hint::black_box(round().await);
        started.elapsed()
    })
}
