//! The job's throttle: a token bucket in bytes per second, fed the caller's clock, since core
//! reads none.

/// A token bucket in bytes per second, driven by the caller's clock in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimiter {
    rate: u64,
    burst: u64,
    tokens: u64,
    last_ms: Option<u64>,
}

impl RateLimiter {
    /// `rate` bytes per second (0: unlimited), with a burst of one second's worth (at least
    /// `min_burst`, so one frame can always pass): callers that poll up to once a second
    /// still get the full rate.
    #[must_use]
    pub fn new(rate: u64, min_burst: u64) -> Self {
        let burst = rate.max(min_burst);
        // Start nearly empty: a full bucket at start would exceed the rate by a second's worth.
        Self { rate, burst, tokens: min_burst.min(burst), last_ms: None }
    }

    /// How many of `want` bytes may pass at `now_ms`; those are taken from the bucket.
    pub fn take(&mut self, now_ms: u64, want: u64) -> u64 {
        if self.rate == 0 {
            return want;
        }
        if let Some(last) = self.last_ms {
            let elapsed = now_ms.saturating_sub(last);
            let refill = u128::from(elapsed) * u128::from(self.rate) / 1000;
            let refill = u64::try_from(refill).unwrap_or(u64::MAX);
            if refill > 0 {
                self.tokens = self.tokens.saturating_add(refill).min(self.burst);
                // Keep the remainder of a partial millisecond's worth from being lost.
                let used_ms = u64::try_from(u128::from(refill) * 1000 / u128::from(self.rate)).unwrap_or(elapsed);
                self.last_ms = Some(last + used_ms.min(elapsed));
            }
        } else {
            self.last_ms = Some(now_ms);
        }
        let n = want.min(self.tokens);
        self.tokens -= n;
        n
    }

    /// Milliseconds until `bytes` tokens are available (0 if they are now).
    #[must_use]
    pub fn wait_ms(&self, bytes: u64) -> u64 {
        if self.rate == 0 || self.tokens >= bytes {
            return 0;
        }
        (bytes.min(self.burst) - self.tokens).saturating_mul(1000).div_ceil(self.rate)
    }
}
