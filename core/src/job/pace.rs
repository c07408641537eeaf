//! A pace for the job's limits (objects per second, bytes per second): the generic cell rate
//! algorithm on the caller's clock. Unlike a token bucket, a cost larger than a second's
//! worth (one big object) is admitted and paid for by the wait before the next, so the
//! average holds for objects of any size.

/// Admits costs at `per_second` on average, with a burst of one second's worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pace {
    per_second: u64,
    /// When the pace would be back to idle, in microseconds of the caller's clock.
    tat_us: u64,
}

const BURST_US: u64 = 1_000_000;

impl Pace {
    /// `per_second` units a second; 0 is unlimited.
    pub(crate) const fn new(per_second: u64) -> Self {
        Self { per_second, tat_us: 0 }
    }

    /// Another rate from now on; what was already admitted stays paid for.
    pub(crate) fn set_rate(&mut self, per_second: u64) {
        self.per_second = per_second;
    }

    /// Milliseconds until a cost may start at `now_ms` (0: now).
    pub(crate) fn wait_ms(&self, now_ms: u64) -> u64 {
        if self.per_second == 0 {
            return 0;
        }
        let now = now_ms.saturating_mul(1000);
        self.tat_us.saturating_sub(BURST_US).saturating_sub(now).div_ceil(1000)
    }

    /// Charges `cost` at `now_ms`.
    pub(crate) fn take(&mut self, now_ms: u64, cost: u64) {
        if self.per_second == 0 {
            return;
        }
        let now = now_ms.saturating_mul(1000);
        let step = u128::from(cost) * 1_000_000 / u128::from(self.per_second);
        let step = u64::try_from(step).unwrap_or(u64::MAX);
        self.tat_us = self.tat_us.max(now).saturating_add(step);
    }
}

#[cfg(test)]
mod tests {
    use super::Pace;

    #[test]
    fn the_average_holds_for_small_and_large_costs() {
        // 10 a second: a burst of 10, then one every 100 ms.
        let mut p = Pace::new(10);
        let mut now = 5_000;
        let mut started = 0;
        while now < 15_000 {
            if p.wait_ms(now) == 0 {
                p.take(now, 1);
                started += 1;
            } else {
                now += p.wait_ms(now);
            }
        }
        assert!((100..=111).contains(&started), "{started} in 10 s at 10/s");

        // 1000 bytes a second and one 5000-byte cost: the next waits about 4 s (5 s less
        // the one-second burst).
        let mut p = Pace::new(1000);
        assert_eq!(p.wait_ms(0), 0);
        p.take(0, 5000);
        assert_eq!(p.wait_ms(0), 4000);
        assert_eq!(p.wait_ms(4000), 0);
        // Unlimited never waits.
        let mut p = Pace::new(0);
        p.take(0, u64::MAX);
        assert_eq!(p.wait_ms(0), 0);
        // A rate change applies from now on.
        let mut p = Pace::new(1);
        p.take(0, 3);
        assert_eq!(p.wait_ms(0), 2000);
        p.set_rate(0);
        assert_eq!(p.wait_ms(0), 0);
    }
}
