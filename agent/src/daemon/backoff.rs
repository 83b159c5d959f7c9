//! Retry pacing for talking to vCenter: exponential backoff with jitter, capped.
//!
//! Hundreds of agents lose the same vCenter at the same moment (upgrade, restart); without
//! jitter they would all come back in lock-step. "Equal jitter" keeps at least half of each
//! delay (so a retry storm cannot form) and randomises the other half. The policy is a small
//! pure type so it can be tested without clocks; the loop that sleeps on it is tested with
//! `tokio::time::pause()` (see `run.rs`).
use std::time::Duration;

/// The shape of the backoff: first delay, growth factor 2, and a cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Nominal delay before the first retry.
    pub initial: Duration,
    /// Largest nominal delay; jitter only ever shortens it.
    pub max: Duration,
}

impl Default for BackoffPolicy {
    /// 1 s, 2 s, 4 s … capped at 60 s: vCenter restarts take minutes, and an agent should
    /// publish within a minute of it being back.
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

/// The retry state for one kind of failing operation.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: BackoffPolicy,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    /// A fresh backoff; `seed` feeds the jitter (any value, 0 included).
    pub fn new(policy: BackoffPolicy, seed: u64) -> Self {
        // splitmix-style scramble so that seeds 0, 1, 2 still give unrelated sequences.
        let rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
        Backoff {
            policy,
            attempt: 0,
            rng: rng | 1,
        }
    }

    /// A backoff seeded from the clock and the process id, so agents on different hosts
    /// spread out.
    pub fn seeded(policy: BackoffPolicy) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Backoff::new(
            policy,
            nanos ^ u64::from(std::process::id()).rotate_left(32),
        )
    }

    /// The nominal (unjittered) delay of the next retry.
    pub fn nominal(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.policy
            .initial
            .saturating_mul(factor)
            .min(self.policy.max)
    }

    /// How long to wait before the next retry; each call counts one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let nominal = self.nominal();
        self.attempt = self.attempt.saturating_add(1);
        let half = nominal / 2;
        let span = (nominal - half).as_millis() as u64;
        let jitter = if span == 0 {
            0
        } else {
            self.next_random() % (span + 1)
        };
        half + Duration::from_millis(jitter)
    }

    /// Failures counted since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Forget past failures after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64: jitter needs spread, not cryptographic quality.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn grows_then_caps() {
        let mut b = Backoff::new(BackoffPolicy::default(), 7);
        let nominal: Vec<u64> = (0..9)
            .map(|_| {
                let n = b.nominal().as_secs();
                b.next_delay();
                n
            })
            .collect();
        assert_eq!(nominal, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        b.reset();
        assert_eq!(b.nominal(), Duration::from_secs(1));
        assert_eq!(b.attempts(), 0);
    }

    #[test]
    fn seeds_spread_out() {
        let delays: std::collections::BTreeSet<Duration> = (0..20)
            .map(|seed| {
                let mut b = Backoff::new(BackoffPolicy::default(), seed);
                (0..6).for_each(|_| {
                    b.next_delay();
                });
                b.next_delay()
            })
            .collect();
        assert!(
            delays.len() > 10,
            "jitter should spread 20 agents: {delays:?}"
        );
    }

    proptest! {
        #[test]
        fn delay_stays_between_half_and_nominal(seed: u64, failures in 0u32..100) {
            let mut b = Backoff::new(BackoffPolicy::default(), seed);
            for _ in 0..failures {
                let nominal = b.nominal();
                let d = b.next_delay();
                prop_assert!(d >= nominal / 2 && d <= nominal, "{d:?} outside [{:?}, {nominal:?}]", nominal / 2);
                prop_assert!(d <= BackoffPolicy::default().max);
            }
        }
    }
}
