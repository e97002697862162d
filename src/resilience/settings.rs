//! The settings of the retry policy, retry budget and circuit breaker.

use std::time::Duration;

/// How the delay between attempts grows (`retry.strategy`, spelled as in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum RetryStrategy {
    /// d, d, d, ...
    Fixed,
    /// d, 2d, 3d, ...
    Linear,
    /// d, d·m, d·m², ...
    Exponential,
    /// exponential, each delay scaled by a random factor in [1 − j, 1 + j]
    ExponentialJitter,
    /// d, d, 2d, 3d, 5d, ...
    Fibonacci,
}

impl RetryStrategy {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryStrategy::Fixed => "fixed",
            RetryStrategy::Linear => "linear",
            RetryStrategy::Exponential => "exponential",
            RetryStrategy::ExponentialJitter => "exponential_jitter",
            RetryStrategy::Fibonacci => "fibonacci",
        }
    }
}

/// A retry policy (built by the config from a node's `retry`).
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySettings {
    /// Attempts in all, the first try included (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub initial_delay: Duration,
    /// Longest delay between attempts.
    pub max_delay: Duration,
    /// How the delay grows.
    pub strategy: RetryStrategy,
    /// Growth factor of the exponential strategies (with and without jitter).
    pub backoff_multiplier: f64,
    /// In [0, 1].
    pub jitter_factor: f64,
    /// Retries may add at most this share (percent) of recent first attempts.
    pub budget_percent: f64,
    /// Retries per second always allowed, whatever the share.
    pub budget_min_per_second: f64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_attempts: 3,
            initial_delay: Duration::from_millis(1_000),
            max_delay: Duration::from_millis(30_000),
            strategy: RetryStrategy::ExponentialJitter,
            backoff_multiplier: 2.0,
            jitter_factor: 0.1,
            budget_percent: 20.0,
            budget_min_per_second: 10.0,
        }
    }
}

/// A circuit breaker (built by the config from a node's `circuit_breaker`).
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSettings {
    /// Consecutive counted failures that open the circuit.
    pub failure_threshold: u32,
    /// Successful probes (half-open) that close it again.
    pub success_threshold: u32,
    /// How long it stays open before letting probes through.
    pub open_duration: Duration,
    /// Probes admitted at once while half-open.
    pub half_open_max_calls: u32,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            failure_threshold: 5,
            success_threshold: 2,
            open_duration: Duration::from_secs(60),
            half_open_max_calls: 1,
        }
    }
}
