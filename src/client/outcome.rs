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
    pub result: Result<T, OperationError>,
    pub attempts: u32,
    /// The last DIMSE status received, over all attempts.
    pub last_status: Option<Status>,
}

/// The outcome of storing one file.
#[derive(Debug)]
pub struct StoreOutcome {
    pub path: std::path::PathBuf,
    pub file: Option<InstanceFile>,
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
    pub node: String,
    pub ae_title: String,
    pub address: String,
    pub pool: PoolStats,
    pub resilience: ExecutorStats,
    pub health: NodeHealth,
}
