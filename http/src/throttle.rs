//! Byte-rate throttling with `governor` token buckets: one per connection
//! and one shared by all, each chunk paying for its bytes before it is read.

use std::future::Future;
use std::num::{NonZeroU32, NonZeroU64};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Sleep;

/// Bytes per token: rates are kept in KiB so that nanosecond replenish
/// periods stay exact up to terabytes per second.
const CELL: u64 = 1024;
/// Smallest rate accepted, bytes per second.
pub(crate) const MIN_RATE: u64 = CELL;
/// Smallest chunk a throttled transfer is cut into.
const MIN_THROTTLED_CHUNK: u64 = 4 * CELL;

/// One token bucket of `rate` bytes per second, on clock `C` (real time
/// unless a test substitutes governor's fake clock).
#[derive(Debug)]
pub(crate) struct RateLimit<C: Clock = DefaultClock> {
    limiter: RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<C::Instant>>,
    burst_cells: u32,
    max_chunk: usize,
}

impl RateLimit {
    /// A bucket for `rate` bytes per second on the real clock.
    pub(crate) fn new(rate: NonZeroU64) -> Self {
        Self::with_clock(rate, DefaultClock::default())
    }
}

impl<C: Clock> RateLimit<C> {
    /// A bucket for `rate` bytes per second (at least [`MIN_RATE`]): chunks
    /// are at most a tenth of a second's worth (and at least 4 KiB), and the
    /// bucket holds one such chunk, so output is smooth rather than bursty.
    pub(crate) fn with_clock(rate: NonZeroU64, clock: C) -> Self {
        let cells_per_second = (rate.get() / CELL).max(1);
        // A whole number of cells, so that what a chunk pays is what it sends.
        let max_chunk = (rate.get() / 10 / CELL * CELL).max(MIN_THROTTLED_CHUNK);
        let burst_cells = u32::try_from(max_chunk.div_ceil(CELL)).unwrap_or(u32::MAX);
        let period = Duration::from_nanos((1_000_000_000 / cells_per_second).max(1));
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(NonZeroU32::new(burst_cells).unwrap_or(NonZeroU32::MIN));
        Self {
            limiter: RateLimiter::direct_with_clock(quota, clock),
            burst_cells,
            max_chunk: usize::try_from(max_chunk).unwrap_or(usize::MAX),
        }
    }

    /// The largest chunk a transfer under this limit should read at once.
    pub(crate) fn max_chunk(&self) -> usize {
        self.max_chunk
    }

    /// Takes the tokens for `bytes` now, or says how long to wait first.
    fn try_take(&self, bytes: u64) -> Result<(), Duration> {
        let cells = u32::try_from(bytes.div_ceil(CELL))
            .unwrap_or(u32::MAX)
            .clamp(1, self.burst_cells);
        let cells = NonZeroU32::new(cells).unwrap_or(NonZeroU32::MIN);
        match self.limiter.check_n(cells) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.wait_time_from(self.limiter.clock().now())),
            // Unreachable: cells are clamped to the burst size.
            Err(_) => Ok(()),
        }
    }
}

/// The limits one transfer pays into: its connection's, then the global one.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    limits: Vec<Arc<RateLimit>>,
    /// Index of the next limit to pay; limits before it are paid.
    stage: usize,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Throttle {
    /// Pays into each of `limits` in order.
    pub(crate) fn new(limits: Vec<Arc<RateLimit>>) -> Self {
        Self {
            limits,
            stage: 0,
            sleep: None,
        }
    }

    /// `true` when no limit applies.
    pub(crate) fn is_unlimited(&self) -> bool {
        self.limits.is_empty()
    }

    /// The chunk size to read under these limits.
    pub(crate) fn chunk_size(&self, configured: usize) -> usize {
        self.limits.iter().map(|l| l.max_chunk()).fold(configured, usize::min)
    }

    /// Ready once every limit has granted `bytes`; a limit already paid is
    /// not paid again while a later one makes the transfer wait.
    pub(crate) fn poll_acquire(&mut self, cx: &mut Context<'_>, bytes: u64) -> Poll<()> {
        while let Some(limit) = self.limits.get(self.stage) {
            if let Some(sleep) = self.sleep.as_mut() {
                ready!(sleep.as_mut().poll(cx));
                self.sleep = None;
            }
            match limit.try_take(bytes) {
                Ok(()) => self.stage += 1,
                Err(wait) => self.sleep = Some(Box::pin(tokio::time::sleep(wait.max(Duration::from_millis(1))))),
            }
        }
        self.stage = 0;
        Poll::Ready(())
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use governor::clock::FakeRelativeClock;

    use super::*;

    /// Sends `total` bytes in `chunk`s, advancing the fake clock by each wait;
    /// returns the time that took.
    fn send(limit: &RateLimit<FakeRelativeClock>, clock: &FakeRelativeClock, total: u64, chunk: u64) -> Duration {
        let mut waited = Duration::ZERO;
        let mut sent = 0;
        while sent < total {
            match limit.try_take(chunk) {
                Ok(()) => sent += chunk,
                Err(wait) => {
                    clock.advance(wait);
                    waited += wait;
                }
            }
        }
        waited
    }

    #[test]
    fn a_rate_is_held_over_many_chunks() {
        let clock = FakeRelativeClock::default();
        let limit = RateLimit::with_clock(NonZeroU64::new(1 << 20).unwrap(), clock.clone());
        let chunk = limit.max_chunk() as u64;
        // The bucket starts full: one chunk goes out at once.
        assert_eq!(send(&limit, &clock, chunk, chunk), Duration::ZERO);
        let total = 16 << 20;
        let waited = send(&limit, &clock, total, chunk).as_secs_f64();
        let expected = (total.div_ceil(chunk) * chunk) as f64 / f64::from(1 << 20);
        assert!(
            (waited - expected).abs() < 0.001,
            "{total} bytes at 1 MiB/s took {waited} s, not {expected} s"
        );
    }

    #[test]
    fn small_rates_get_small_smooth_chunks() {
        let clock = FakeRelativeClock::default();
        let limit = RateLimit::with_clock(NonZeroU64::new(MIN_RATE).unwrap(), clock.clone());
        assert_eq!(limit.max_chunk(), MIN_THROTTLED_CHUNK as usize);
        send(&limit, &clock, MIN_THROTTLED_CHUNK, MIN_THROTTLED_CHUNK);
        let waited = send(&limit, &clock, MIN_THROTTLED_CHUNK, MIN_THROTTLED_CHUNK);
        assert_eq!(waited, Duration::from_secs(4));
    }

    #[test]
    fn a_throttle_waits_once_its_burst_is_spent_and_takes_the_tighter_chunk() {
        let fast = Arc::new(RateLimit::new(NonZeroU64::new(64 << 20).unwrap()));
        let slow = Arc::new(RateLimit::new(NonZeroU64::new(64 << 10).unwrap()));
        let mut throttle = Throttle::new(vec![fast, Arc::clone(&slow)]);
        assert!(!throttle.is_unlimited());
        assert_eq!(throttle.chunk_size(1 << 20), slow.max_chunk());
        let chunk = throttle.chunk_size(1 << 20) as u64;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _entered = runtime.enter();
        let mut cx = Context::from_waker(Waker::noop());
        assert!(throttle.poll_acquire(&mut cx, chunk).is_ready());
        // 64 KiB/s refills a 6.4 KiB chunk in 100 ms: not within this test.
        assert!(throttle.poll_acquire(&mut cx, chunk).is_pending());
        assert!(Throttle::default().is_unlimited());
    }
}
