//! Resolved, typed settings of one node: what the layers above the config consume.
//!
//! These are the values after the hospital JSON has been parsed, validated and
//! merged (node overrides over `network` defaults over built-in defaults), so the
//! pool, the association layer and the resilience layer never see JSON.

use std::time::Duration;

/// Pool settings of one node (`network.connection_pools.<name>`).
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSettings {
    /// Associations kept open even when idle (opened in the background at start).
    pub min_size: usize,
    /// Hard cap of concurrent associations to the node, across all context profiles.
    pub max_size: usize,
    /// An idle association older than this is released.
    pub max_idle_time: Duration,
    /// An association idle for longer than this is checked (C-ECHO) before reuse
    /// when `validate_on_borrow` is on.
    pub validation_interval: Duration,
    /// An association older than this (jittered ±10%) is retired.
    pub max_lifetime: Option<Duration>,
    /// Operations per association before it is recycled.
    pub max_uses: Option<u64>,
    /// How long `acquire` may wait for a free association.
    pub acquire_timeout: Duration,
    /// C-ECHO an association idle longer than `validation_interval` before handing it out.
    pub validate_on_borrow: bool,
    /// Callers allowed to wait at once; beyond it acquire fails at once.
    pub max_waiters: Option<usize>,
    /// Associations being negotiated at once for the node.
    pub max_concurrent_opens: usize,
    /// A borrow held longer than this is reported as a suspected leak.
    pub leak_threshold: Option<Duration>,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            min_size: 0,
            max_size: 8,
            max_idle_time: Duration::from_secs(300),
            validation_interval: Duration::from_secs(30),
            max_lifetime: None,
            max_uses: None,
            acquire_timeout: Duration::from_secs(30),
            validate_on_borrow: true,
            max_waiters: None,
            max_concurrent_opens: 4,
            leak_threshold: None,
        }
    }
}

/// Network timeouts of one node (`timeouts`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    /// TCP connect.
    pub connect: Duration,
    /// A-ASSOCIATE / A-RELEASE round trips.
    pub acse: Duration,
    /// Waiting for a DIMSE response (and writing a request).
    pub dimse: Duration,
    /// C-GET / C-MOVE: waiting for the next response or sub-operation of a
    /// retrieve, which a PACS may take minutes to start (`retrieve_ms`).
    pub retrieve: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_millis(5_000),
            acse: Duration::from_millis(10_000),
            dimse: Duration::from_millis(30_000),
            retrieve: Duration::from_millis(300_000),
        }
    }
}

/// How the delay between attempts grows (`retry.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Retry policy of one node (`retry`).
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySettings {
    /// Attempts in all, the first try included (1 = no retry).
    pub max_attempts: u32,
    pub initial_delay: Duration,
    pub max_delay: Duration,
    pub strategy: RetryStrategy,
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

/// Circuit breaker of one node (`circuit_breaker`).
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

/// How much a peer may make us hold (`limits`): every length a remote declares is
/// checked against these before anything is allocated for it, so a buggy or
/// hostile peer costs a clear protocol error, not memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest DIMSE command set accepted (all its fragments together).
    pub max_command_bytes: usize,
    /// The largest data set accepted in a message we decode (a C-FIND identifier,
    /// a C-FIND response, a C-STORE data set received by the embedded SCP).
    pub max_data_set_bytes: usize,
}

impl Limits {
    /// Built-in `max_command_bytes`: real command sets are a few hundred bytes.
    pub const DEFAULT_MAX_COMMAND_BYTES: usize = 64 * 1024;
    /// Built-in `max_data_set_bytes`: far above any real identifier or response.
    pub const DEFAULT_MAX_DATA_SET_BYTES: usize = 16 * 1024 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_command_bytes: Self::DEFAULT_MAX_COMMAND_BYTES,
            max_data_set_bytes: Self::DEFAULT_MAX_DATA_SET_BYTES,
        }
    }
}
