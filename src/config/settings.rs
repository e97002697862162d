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
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_millis(5_000),
            acse: Duration::from_millis(10_000),
            dimse: Duration::from_millis(30_000),
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
