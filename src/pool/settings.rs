//! The settings a [`Pool`](super::Pool) runs by.

use std::time::Duration;

/// How a pool behaves (built by the config from `network.connection_pools.<name>`).
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSettings {
    /// Resources kept open even when idle (opened in the background at start).
    pub min_size: usize,
    /// Hard cap of resources open at once, whatever the request they were made for.
    pub max_size: usize,
    /// A resource idle for longer than this is closed.
    pub max_idle_time: Duration,
    /// A resource idle for longer than this is validated (the manager's check) before
    /// reuse when `validate_on_borrow` is on.
    pub validation_interval: Duration,
    /// A resource older than this (jittered ±10%) is retired.
    pub max_lifetime: Option<Duration>,
    /// Borrows of one resource before it is recycled.
    pub max_uses: Option<u64>,
    /// How long `acquire` may wait for a free resource.
    pub acquire_timeout: Duration,
    /// Validate a resource idle longer than `validation_interval` before handing it out.
    pub validate_on_borrow: bool,
    /// Callers allowed to wait at once; beyond it acquire fails at once.
    pub max_waiters: Option<usize>,
    /// Resources being created at once.
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
