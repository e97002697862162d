//! Resolved, typed settings of one node: what the layers above the config consume.
//!
//! These are the values after the hospital JSON has been parsed, validated and
//! merged (node overrides over `network` defaults over built-in defaults), so the
//! pool, the association layer and the resilience layer never see JSON. The
//! generic layers own their settings types ([`PoolSettings`] in `pool`,
//! [`RetrySettings`] and [`BreakerSettings`] in `resilience`); the config builds
//! them and re-exports them.

use std::time::Duration;

pub use crate::pool::PoolSettings;
pub use crate::resilience::{BreakerSettings, RetrySettings, RetryStrategy};

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

/// Thresholds of the monitor's alerts (`network.alerts`); the defaults are the
/// usual pool-monitoring thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertSettings {
    /// Acquire wait p95 above this fires `acquire_wait`.
    pub acquire_wait_p95: Duration,
    /// Pool utilization (busy / effective maximum) above this percentage fires `utilization`.
    pub utilization_percent: f64,
    /// Failed operations above this percentage of all operations in the window fire `error_rate`.
    pub error_rate_percent: f64,
    /// The window the error rate is computed over.
    pub error_rate_window: Duration,
    /// A circuit not closed for longer than this fires `circuit_open`.
    pub circuit_open: Duration,
    /// More consecutive failed health checks (monitor probes) than this fire `health_checks`.
    pub failed_health_checks: u32,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            acquire_wait_p95: Duration::from_millis(100),
            utilization_percent: 80.0,
            error_rate_percent: 1.0,
            error_rate_window: Duration::from_secs(300),
            circuit_open: Duration::from_secs(300),
            failed_health_checks: 3,
        }
    }
}
