//! Retry policy: how many attempts, and how long to wait before each retry.
//!
//! The delay sequences, with d = `initial_delay`, m = `backoff_multiplier`,
//! j = `jitter_factor` and k the retry number (1 = first retry):
//!
//! | strategy             | delay before retry k                     |
//! |----------------------|------------------------------------------|
//! | `fixed`              | d                                        |
//! | `linear`             | k·d                                      |
//! | `exponential`        | d·m^(k−1)                                |
//! | `exponential_jitter` | d·m^(k−1) × uniform[1−j, 1+j]            |
//! | `fibonacci`          | d, d, 2d, 3d, 5d, 8d, …                  |
//!
//! Every delay is capped at `max_delay` (the jitter is applied before the cap,
//! so far out in the sequence every delay is exactly `max_delay`), and the
//! arithmetic saturates instead of overflowing for any k.

use std::time::Duration;

use rand::Rng;

use crate::resilience::{RetrySettings, RetryStrategy};

/// The retry policy of one node, built from its resolved [`RetrySettings`].
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    settings: RetrySettings,
}

impl RetryPolicy {
    /// A policy with `settings`.
    pub fn new(settings: RetrySettings) -> Self {
        RetryPolicy { settings }
    }

    /// The settings this policy was built from.
    pub fn settings(&self) -> &RetrySettings {
        &self.settings
    }

    /// Attempts in all, the first one included; never below 1, because an
    /// operation is always tried at least once (0 in the settings means "no retry").
    pub fn max_attempts(&self) -> u32 {
        self.settings.max_attempts.max(1)
    }

    /// Delay before retry number `retry` (1 = first retry), capped at
    /// `max_delay`; `exponential_jitter` draws from the thread-local RNG.
    /// `retry` 0 (the first attempt) has no delay.
    pub fn delay(&self, retry: u32) -> Duration {
        self.delay_with(retry, &mut rand::rng())
    }

    /// [`delay`](Self::delay) with a caller-supplied RNG, for reproducible delays.
    pub fn delay_with(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let s = &self.settings;
        if retry == 0 {
            return Duration::ZERO;
        }
        let d = s.initial_delay;
        let cap = s.max_delay;
        let delay = match s.strategy {
            RetryStrategy::Fixed => d,
            // checked_mul fails only beyond Duration::MAX, which the cap is below anyway.
            RetryStrategy::Linear => d.checked_mul(retry).unwrap_or(Duration::MAX),
            RetryStrategy::Exponential => scale(d, exp_factor(s.backoff_multiplier, retry), cap),
            RetryStrategy::ExponentialJitter => {
                let j = clamp_unit(s.jitter_factor);
                let factor = if j > 0.0 {
                    rng.random_range((1.0 - j)..=(1.0 + j))
                } else {
                    1.0
                };
                scale(d, exp_factor(s.backoff_multiplier, retry) * factor, cap)
            }
            RetryStrategy::Fibonacci => fibonacci(d, retry, cap),
        };
        delay.min(cap)
    }
}

/// m^(k−1) in floating point; becomes +inf for huge k, which `scale` caps.
fn exp_factor(multiplier: f64, retry: u32) -> f64 {
    // powi takes an i32; beyond that the result is 0, 1 or inf anyway.
    let exp = i32::try_from(retry - 1).unwrap_or(i32::MAX);
    multiplier.powi(exp)
}

/// `d × factor`, computed in nanoseconds so that exact sequences stay exact
/// (100 ms × 2 is 200 ms, not 199.999…), and capped at `cap`. A NaN factor
/// (from a nonsensical multiplier) is treated as "as long as allowed".
fn scale(d: Duration, factor: f64, cap: Duration) -> Duration {
    // 0 × an infinite factor (huge k) would be NaN; zero stays zero.
    if d.is_zero() {
        return Duration::ZERO;
    }
    let nanos = d.as_nanos() as f64 * factor;
    let cap_nanos = cap.as_nanos() as f64;
    // NaN lands on the cap too.
    if nanos.is_nan() || nanos >= cap_nanos {
        return cap;
    }
    if nanos <= 0.0 {
        return Duration::ZERO;
    }
    // Below the cap, so the value fits a Duration (the cap is one).
    let nanos = nanos.round() as u128;
    let secs = (nanos / 1_000_000_000) as u64;
    let sub = (nanos % 1_000_000_000) as u32;
    Duration::new(secs, sub)
}

/// d × F(k) with F(1) = F(2) = 1; stops as soon as the cap is reached, so the
/// loop is short (Fibonacci numbers outgrow any cap within ~90 steps) and
/// nothing overflows.
fn fibonacci(d: Duration, retry: u32, cap: Duration) -> Duration {
    if d.is_zero() {
        return Duration::ZERO;
    }
    let (mut prev, mut cur) = (0u64, 1u64);
    for _ in 1..retry {
        let next = prev.saturating_add(cur);
        prev = cur;
        cur = next;
        let reached_cap = u32::try_from(cur)
            .ok()
            .and_then(|n| d.checked_mul(n))
            .is_none_or(|v| v >= cap);
        if reached_cap {
            return cap;
        }
    }
    // cur < 2^32 here: it was checked in the loop (or is 1).
    d.checked_mul(u32::try_from(cur).unwrap_or(u32::MAX)).unwrap_or(cap)
}

/// The jitter factor, forced into [0, 1] so the factor range is never inverted
/// or negative; NaN counts as no jitter.
fn clamp_unit(j: f64) -> f64 {
    if j.is_nan() {
        0.0
    } else {
        j.clamp(0.0, 1.0)
    }
}
