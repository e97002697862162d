//! Generic resilience: retry policy, retry budget, circuit breaker, and an
//! executor that combines them around any async operation.
//!
//! Nothing here knows about DICOM. Errors are classified through [`Classify`]:
//! the layer above decides which failures are worth retrying and which say
//! something about the health of the node (and so count for its breaker).
//!
//! Time is read through `tokio::time::Instant` everywhere, so tests drive the
//! breaker's open duration, the budget's window and the back-off sleeps with
//! tokio's paused clock.

mod breaker;
mod budget;
mod classify;
mod executor;
mod retry;
mod settings;

pub use breaker::{BreakerOpen, BreakerPermit, BreakerState, BreakerStats, CircuitBreaker};
pub use budget::{BudgetStats, RetryBudget};
pub use classify::Classify;
pub use executor::{ExecError, Executed, Executor, ExecutorStats};
pub use retry::RetryPolicy;
pub use settings::{BreakerSettings, RetrySettings, RetryStrategy};

#[cfg(test)]
mod tests;
