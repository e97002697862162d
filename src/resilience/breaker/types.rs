//! The breaker's public values: its state, its refusal error, its statistics.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

#[cfg(doc)]
use super::CircuitBreaker;

/// The state of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused until the open period ends.
    Open,
    /// A few probe calls go through; their outcome closes or reopens the circuit.
    HalfOpen,
}

impl BreakerState {
    /// The name used in statistics and logs: `closed`, `open`, `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A call refused because the circuit is open (or half-open with every probe
/// slot taken).
///
/// `retry_in` is the time until the breaker lets a probe through. While
/// half-open with all probe slots busy it is zero (a slot frees as soon as a
/// probe finishes); while forced open it is `open_duration`, a back-off hint,
/// since only [`CircuitBreaker::reset`] will close it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("circuit open for node {node}: {consecutive_failures} consecutive failures; next probe in {retry_in:.1?}")]
#[non_exhaustive]
pub struct BreakerOpen {
    /// The node's name.
    pub node: String,
    /// Time until a probe is let through.
    pub retry_in: Duration,
    /// Counted failures since the last success.
    pub consecutive_failures: u32,
}

/// A snapshot of a breaker, for `--stats` and metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BreakerStats {
    /// The node's name.
    pub name: String,
    /// Closed, open or half-open.
    pub state: BreakerState,
    /// Counted failures since the last success (or reset).
    pub consecutive_failures: u32,
    /// Permits granted.
    pub calls: u64,
    /// Calls that succeeded.
    pub successes: u64,
    /// Counted failures (ignored permits are in `calls` only).
    pub failures: u64,
    /// Calls refused while open or half-open.
    pub rejected: u64,
    /// Times failures opened the circuit (closed → open, half-open → open);
    /// [`CircuitBreaker::force_open`] is not a trip.
    pub trips: u64,
    /// Time since the last state change (seconds).
    pub last_transition_secs_ago: f64,
    /// Time until a probe is let through, while open (None otherwise, and while forced open).
    pub open_remaining_secs: Option<f64>,
    /// Held open by [`CircuitBreaker::force_open`].
    pub forced: bool,
}
