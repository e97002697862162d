//! The executor: one operation, retried under a policy, a budget and a breaker.
//!
//! For each attempt:
//! 1. ask the breaker for a permit; if it is open, fail at once
//!    ([`ExecError::CircuitOpen`]) without calling the operation;
//! 2. on the first attempt, deposit into the retry budget;
//! 3. call the operation with the attempt number (1-based);
//! 4. on success, settle the permit as a success and return;
//! 5. on error, settle the permit as a failure if the error counts for the
//!    breaker, or drop it (ignored) if not: a non-counting error must not
//!    reset the consecutive-failure count the way a success does;
//! 6. stop with [`ExecError::Operation`] if the error is permanent or the
//!    attempts are used up; with [`ExecError::CircuitOpen`] if the breaker is
//!    now open (no retry, and no sleep, while it is open); with
//!    [`ExecError::DeadlineExceeded`] if the back-off would reach the
//!    deadline; with [`ExecError::BudgetExhausted`] if the budget refuses;
//! 7. sleep the back-off and go to 1.
//!
//! The executor's deadline bounds when a retry may *start*, and the first
//! attempt is always made. Cutting short an attempt in progress at the deadline
//! is the operation's job, since only it can make an `E` saying so: the client's
//! operations do (`client::node`), and report it as an error that counts for the
//! breaker when it was the node that was slow (connecting, negotiating, or on the
//! association) and not when the attempt was still queued for the pool. A
//! black-holed node behind callers' short deadlines therefore still opens its
//! circuit, and a half-open probe cut by a deadline opens it again.
//!
//! Dropping the future of [`Executor::run`] mid-attempt (a caller's timeout or
//! cancellation) drops the breaker permit unsettled: the attempt is ignored,
//! and a half-open probe slot it held is freed.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::breaker::{BreakerOpen, BreakerStats, CircuitBreaker};
use super::budget::RetryBudget;
use super::classify::Classify;
use super::retry::RetryPolicy;
use super::settings::{BreakerSettings, RetrySettings};

/// The result of [`Executor::run`], with the number of attempts made (calls
/// of the operation; 0 when the breaker refused the first one).
#[derive(Debug)]
pub struct Executed<T, E> {
    /// The operation's result, or why the executor gave up.
    pub result: Result<T, ExecError<E>>,
    /// Calls of the operation made (0 when the breaker refused the first).
    pub attempts: u32,
}

impl<T, E> Executed<T, E> {
    /// Whether the operation succeeded.
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }
}

/// Why [`Executor::run`] gave up. Every variant but a `CircuitOpen` on the
/// first attempt carries the operation's last error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError<E> {
    /// The last error of the operation: permanent, or the attempts were used up.
    #[error("{0}")]
    Operation(E),
    /// The breaker refused the next attempt. `last` is the error of the
    /// attempt before, if there was one (None when the first attempt was
    /// refused), so that callers can still report, say, the DIMSE status.
    #[error("{open}")]
    CircuitOpen {
        /// The breaker's refusal.
        open: BreakerOpen,
        /// The error of the attempt before, if any.
        last: Option<E>,
    },
    #[error("retry budget exhausted for node {node} after {attempts} attempts: {last}")]
    /// The retry budget refused a retry.
    BudgetExhausted {
        /// The node's name.
        node: String,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last: E,
    },
    #[error("deadline exceeded after {attempts} attempts: {last}")]
    /// The next retry would have started past the deadline.
    DeadlineExceeded {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last: E,
    },
}

impl<E> ExecError<E> {
    /// The operation's last error, if an attempt was made.
    pub fn last_error(&self) -> Option<&E> {
        match self {
            ExecError::Operation(e) => Some(e),
            ExecError::CircuitOpen { last, .. } => last.as_ref(),
            ExecError::BudgetExhausted { last, .. } | ExecError::DeadlineExceeded { last, .. } => Some(last),
        }
    }

    /// Takes the operation's last error out, if an attempt was made.
    pub fn into_last_error(self) -> Option<E> {
        match self {
            ExecError::Operation(e) => Some(e),
            ExecError::CircuitOpen { last, .. } => last,
            ExecError::BudgetExhausted { last, .. } | ExecError::DeadlineExceeded { last, .. } => Some(last),
        }
    }
}

/// Executor statistics: the breaker's, flattened, plus the retry counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ExecutorStats {
    #[serde(flatten)]
    /// The circuit breaker's statistics.
    pub breaker: BreakerStats,
    /// Attempts after the first (calls of the operation that were retries).
    pub retries: u64,
    /// Runs that ended because the retry budget refused a retry.
    pub budget_exhausted: u64,
    /// Runs that ended because the next retry would have started past the deadline.
    pub deadline_exceeded: u64,
}

/// Retry policy + retry budget + circuit breaker of one node. `Sync`: one per
/// node, shared by every operation on it.
///
/// ```
/// use std::time::Duration;
/// use pacs_net::resilience::{BreakerSettings, Classify, Executor, RetrySettings, RetryStrategy};
///
/// /// A failure worth another try that says nothing about the node's health.
/// #[derive(Debug)]
/// struct Busy;
/// impl Classify for Busy {
///     fn is_retryable(&self) -> bool { true }
///     fn counts_for_breaker(&self) -> bool { false }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let retry = RetrySettings {
///     initial_delay: Duration::from_millis(1),
///     strategy: RetryStrategy::Fixed,
///     ..RetrySettings::default()
/// };
/// let executor = Executor::new("PACS", retry, BreakerSettings::default());
/// // The operation gets the attempt number (1, 2, ...); it succeeds on the second.
/// let done = executor
///     .run(None, |attempt| async move { if attempt < 2 { Err(Busy) } else { Ok(attempt) } })
///     .await;
/// assert_eq!(done.result.ok(), Some(2));
/// assert_eq!(done.attempts, 2);
/// assert_eq!(executor.stats().retries, 1);
/// # }
/// ```
#[derive(Debug)]
pub struct Executor {
    name: String,
    policy: RetryPolicy,
    budget: RetryBudget,
    breaker: CircuitBreaker,
    retries: AtomicU64,
    budget_exhausted: AtomicU64,
    deadline_exceeded: AtomicU64,
    /// See [`Executor::set_quick_unreachable`].
    quick_unreachable: AtomicBool,
}

/// The delay before the one retry of an unreachable node, in quick mode.
pub(super) const QUICK_RETRY_DELAY: Duration = Duration::from_millis(200);

impl Executor {
    /// An executor for node `name`; the budget comes from the retry settings'
    /// `budget_percent` and `budget_min_per_second`.
    pub fn new(name: &str, retry: RetrySettings, breaker: BreakerSettings) -> Self {
        Executor {
            name: name.to_owned(),
            budget: RetryBudget::new(retry.budget_percent, retry.budget_min_per_second),
            policy: RetryPolicy::new(retry),
            breaker: CircuitBreaker::new(name, breaker),
            retries: AtomicU64::new(0),
            budget_exhausted: AtomicU64::new(0),
            deadline_exceeded: AtomicU64::new(0),
            quick_unreachable: AtomicBool::new(false),
        }
    }

    /// For one-shot commands (the CLI): a node that cannot be reached at all
    /// ([`Classify::is_unreachable`]: connection refused, unknown host) is worth
    /// one quick retry (after 200 ms) at most, not the policy's
    /// back-off: a person is waiting, and a PACS that refuses now will most
    /// likely refuse a second later too. Other failures follow the policy.
    pub fn set_quick_unreachable(&self, on: bool) {
        self.quick_unreachable.store(on, Ordering::Relaxed);
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The retry policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The retry budget (shared by the node's operations).
    pub fn budget(&self) -> &RetryBudget {
        &self.budget
    }

    /// The circuit breaker.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// Runs `op` (given the 1-based attempt number) until it succeeds or the
    /// policy, budget, breaker or `deadline` says stop; see the module docs.
    pub async fn run<T, E, F, Fut>(&self, deadline: Option<Instant>, mut op: F) -> Executed<T, E>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify,
    {
        let max_attempts = self.policy.max_attempts();
        let mut attempt: u32 = 0;
        let mut last: Option<E> = None;
        loop {
            let permit = match self.breaker.try_acquire() {
                Ok(permit) => permit,
                Err(open) => {
                    // Debug, not warn: while a node is down every call lands
                    // here, and the breaker already warned when it opened.
                    tracing::debug!(node = %self.name, attempt = attempt + 1, reason = "circuit open", "not attempting");
                    return fail(attempt, ExecError::CircuitOpen { open, last });
                }
            };
            attempt += 1;
            if attempt == 1 {
                self.budget.record_first_attempt();
            } else {
                self.retries.fetch_add(1, Ordering::Relaxed);
            }

            let error = match op(attempt).await {
                Ok(value) => {
                    permit.success();
                    if attempt > 1 {
                        tracing::debug!(node = %self.name, attempt, "succeeded after retry");
                    }
                    return Executed {
                        result: Ok(value),
                        attempts: attempt,
                    };
                }
                Err(error) => error,
            };
            let counted = error.counts_for_breaker();
            if counted {
                permit.failure();
            } else {
                drop(permit);
            }

            if !error.is_retryable() {
                tracing::debug!(node = %self.name, attempt, counted, reason = "permanent error", "giving up");
                return fail(attempt, ExecError::Operation(error));
            }
            let quick = self.quick_unreachable.load(Ordering::Relaxed) && error.is_unreachable();
            if attempt >= max_attempts || (quick && attempt >= 2) {
                tracing::info!(node = %self.name, attempt, counted, reason = "attempts exhausted", "giving up");
                return fail(attempt, ExecError::Operation(error));
            }
            // Checked before sleeping: a retry the breaker would refuse is not
            // worth waiting for, and is never made while the circuit is open.
            if let Err(open) = self.breaker.reject_if_open() {
                tracing::info!(node = %self.name, attempt, counted, reason = "circuit open", "not retrying");
                return fail(
                    attempt,
                    ExecError::CircuitOpen {
                        open,
                        last: Some(error),
                    },
                );
            }
            let delay = if quick {
                self.policy.delay(attempt).min(QUICK_RETRY_DELAY)
            } else {
                self.policy.delay(attempt)
            };
            if let Some(deadline) = deadline {
                // The retry must start before the deadline, so never sleep up to or past it.
                if Instant::now().checked_add(delay).is_none_or(|at| at >= deadline) {
                    self.deadline_exceeded.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(node = %self.name, attempt, delay_ms = delay.as_millis() as u64, reason = "deadline", "not retrying");
                    return fail(
                        attempt,
                        ExecError::DeadlineExceeded {
                            attempts: attempt,
                            last: error,
                        },
                    );
                }
            }
            if !self.budget.try_withdraw() {
                self.budget_exhausted.fetch_add(1, Ordering::Relaxed);
                tracing::info!(node = %self.name, attempt, reason = "retry budget exhausted", "not retrying");
                return fail(
                    attempt,
                    ExecError::BudgetExhausted {
                        node: self.name.clone(),
                        attempts: attempt,
                        last: error,
                    },
                );
            }
            tracing::debug!(node = %self.name, attempt, counted, delay_ms = delay.as_millis() as u64, reason = "retryable error", "retrying");
            last = Some(error);
            tokio::time::sleep(delay).await;
        }
    }

    /// Breaker statistics and retry counters.
    pub fn stats(&self) -> ExecutorStats {
        ExecutorStats {
            breaker: self.breaker.stats(),
            retries: self.retries.load(Ordering::Relaxed),
            budget_exhausted: self.budget_exhausted.load(Ordering::Relaxed),
            deadline_exceeded: self.deadline_exceeded.load(Ordering::Relaxed),
        }
    }
}

fn fail<T, E>(attempts: u32, error: ExecError<E>) -> Executed<T, E> {
    Executed {
        result: Err(error),
        attempts,
    }
}
