//! What an operation gives back, and how it is asked to run.

use std::time::Duration;

use serde::Serialize;

use crate::dimse::{InstanceFile, Status, StoreResponse};
use crate::pool::{PoolStats, Priority};
use crate::resilience::{ExecError, ExecutorStats};

use super::error::OpError;
use super::health::NodeHealth;

/// The error of a whole operation (after retries).
pub type OperationError = ExecError<OpError>;

/// The result of an operation, with how many attempts it took.
#[derive(Debug)]
pub struct Outcome<T> {
    /// The result, or why the operation gave up.
    pub result: Result<T, OperationError>,
    /// Attempts made (0 when the circuit breaker refused the first).
    pub attempts: u32,
    /// The last DIMSE status received, over all attempts.
    pub last_status: Option<Status>,
}

/// The outcome of storing one file.
#[derive(Debug)]
pub struct StoreOutcome {
    /// The file.
    pub path: std::path::PathBuf,
    /// What was read of it, when it could be read.
    pub file: Option<InstanceFile>,
    /// The C-STORE's outcome.
    pub outcome: Outcome<StoreResponse>,
}

/// How to run one operation.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpOptions {
    /// Overall deadline for the operation, retries included: no retry starts past it.
    pub deadline: Option<Duration>,
    /// Priority in the pool's wait queue.
    pub priority: Priority,
}

/// Pool, breaker and retry statistics of a node, and its health.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct NodeStats {
    /// The node's name.
    pub node: String,
    /// The node's AE title (Called AE Title).
    pub ae_title: String,
    /// `HOST:PORT` of the node.
    pub address: String,
    /// The node's association pool.
    pub pool: PoolStats,
    /// Retries, retry budget and circuit breaker.
    pub resilience: ExecutorStats,
    /// The node's health.
    pub health: NodeHealth,
    /// Fleet-wide limits (`shared_limits`): leases, what Redis shows, fallbacks.
    #[cfg(feature = "redis")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared: Option<super::shared::SharedStats>,
}
