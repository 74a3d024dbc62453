//! Reconnect delays: exponential backoff with "equal jitter" (half fixed, half random),
//! so a fleet of agents that lost the same switch does not reconnect in lockstep, and
//! no agent ever retries faster than half the exponential step. The jitter value is
//! an argument (a number in [0, 1)), so the schedule is tested deterministically.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig { initial: Duration::from_millis(500), max: Duration::from_secs(30) }
    }
}

#[derive(Debug, Clone)]
pub struct Backoff {
    cfg: BackoffConfig,
    attempt: u32,
}

impl Backoff {
    pub fn new(cfg: BackoffConfig) -> Backoff {
        Backoff { cfg, attempt: 0 }
    }

    /// Failures since the last success.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Delay before the next attempt; `jitter` in [0, 1) (clamped).
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let step = self.cfg.initial.saturating_mul(1u32 << self.attempt.min(20)).min(self.cfg.max);
        self.attempt = self.attempt.saturating_add(1);
        let j = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.0 };
        let half = step / 2;
        half + half.mul_f64(j)
    }

    /// A connection reached Ready: start over from `initial`.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_capped_and_jittered() {
        let mut b = Backoff::new(BackoffConfig { initial: Duration::from_millis(100), max: Duration::from_millis(1000) });
        let lows: Vec<u128> = (0..6).map(|_| b.next_delay(0.0).as_millis()).collect();
        assert_eq!(lows, vec![50, 100, 200, 400, 500, 500]);
        b.reset();
        let highs: Vec<u128> = (0..6).map(|_| b.next_delay(1.0).as_millis()).collect();
        assert_eq!(highs, vec![100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_delay(0.5), Duration::from_millis(75));
        assert_eq!(b.attempt(), 1);
        assert_eq!(b.next_delay(f64::NAN), Duration::from_millis(100));
        assert_eq!(b.next_delay(7.0), Duration::from_millis(400));
    }

    #[test]
    fn many_failures_do_not_overflow() {
        let mut b = Backoff::new(BackoffConfig::default());
        for _ in 0..1000 {
            assert!(b.next_delay(0.99) <= Duration::from_secs(30));
        }
    }
}
