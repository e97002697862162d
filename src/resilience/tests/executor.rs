use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::resilience::{BreakerSettings, RetrySettings, RetryStrategy};
use crate::resilience::{BreakerState, Classify, ExecError, Executed, Executor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TestError {
    /// Retryable, counts for the breaker (connection refused).
    Transient,
    /// Not retryable, counts (say, DIMSE A9xx: the node answered, but no).
    Permanent,
    /// Retryable, says nothing about the node (a local resource hiccup).
    Uncounted,
}

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for TestError {}

impl Classify for TestError {
    fn is_retryable(&self) -> bool {
        !matches!(self, TestError::Permanent)
    }

    fn counts_for_breaker(&self) -> bool {
        !matches!(self, TestError::Uncounted)
    }
}

use TestError::*;

const D: Duration = Duration::from_millis(100);

fn retry(max_attempts: u32, strategy: RetryStrategy) -> RetrySettings {
    RetrySettings {
        max_attempts,
        initial_delay: D,
        max_delay: Duration::from_secs(30),
        strategy,
        backoff_multiplier: 2.0,
        jitter_factor: 0.0,
        budget_percent: 20.0,
        budget_min_per_second: 10.0,
    }
}

fn breaker(failure_threshold: u32) -> BreakerSettings {
    BreakerSettings {
        failure_threshold,
        success_threshold: 1,
        open_duration: Duration::from_secs(60),
        half_open_max_calls: 1,
    }
}

fn executor(max_attempts: u32, failure_threshold: u32) -> Executor {
    Executor::new(
        "PACS",
        retry(max_attempts, RetryStrategy::Exponential),
        breaker(failure_threshold),
    )
}

/// Runs an operation whose attempt `n` returns `script[n - 1]` (an `Ok(n)` when
/// the script says `None`), counting the calls.
async fn run_script(
    exec: &Executor,
    deadline: Option<Instant>,
    script: &[Option<TestError>],
) -> (Executed<u32, TestError>, u32) {
    let calls = Cell::new(0);
    let outcome = exec
        .run(deadline, |attempt| {
            calls.set(calls.get() + 1);
            assert_eq!(attempt, calls.get(), "attempts are numbered from 1");
            let step = script.get(attempt as usize - 1).copied().flatten();
            async move {
                match step {
                    Some(e) => Err(e),
                    None => Ok(attempt),
                }
            }
        })
        .await;
    (outcome, calls.get())
}

#[test]
fn exec_error_is_an_error_and_executor_is_sync() {
    fn assert_error<T: std::error::Error + Send + Sync + 'static>() {}
    fn assert_sync_send<T: Sync + Send>() {}
    assert_error::<ExecError<TestError>>();
    assert_sync_send::<Executor>();
}

#[tokio::test(start_paused = true)]
async fn transient_failures_then_success() {
    let exec = executor(5, 10);
    let start = Instant::now();
    let (outcome, calls) = run_script(&exec, None, &[Some(Transient), Some(Transient), None]).await;
    assert_eq!(outcome.result.expect("third attempt succeeds"), 3);
    assert_eq!((outcome.attempts, calls), (3, 3));
    // Exponential: 100 ms, then 200 ms.
    assert_eq!(start.elapsed(), Duration::from_millis(300));
    let stats = exec.stats();
    assert_eq!(stats.retries, 2);
    assert_eq!((stats.breaker.successes, stats.breaker.failures), (1, 2));
    assert_eq!(stats.breaker.consecutive_failures, 0);
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_is_tried_once() {
    let exec = executor(5, 10);
    let start = Instant::now();
    let (outcome, calls) = run_script(&exec, None, &[Some(Permanent)]).await;
    assert!(matches!(outcome.result, Err(ExecError::Operation(Permanent))));
    assert_eq!((outcome.attempts, calls), (1, 1));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(exec.stats().breaker.failures, 1);
}

#[tokio::test(start_paused = true)]
async fn attempts_run_out() {
    let exec = executor(3, 10);
    let start = Instant::now();
    let (outcome, calls) = run_script(&exec, None, &[Some(Transient); 5]).await;
    let err = outcome.result.expect_err("all attempts fail");
    assert_eq!(err.to_string(), "Transient");
    assert!(matches!(err, ExecError::Operation(Transient)));
    assert_eq!((outcome.attempts, calls), (3, 3));
    // No sleep after the last attempt.
    assert_eq!(start.elapsed(), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn a_single_attempt_policy_never_retries() {
    let exec = executor(1, 10);
    let (outcome, calls) = run_script(&exec, None, &[Some(Transient), None]).await;
    assert!(matches!(outcome.result, Err(ExecError::Operation(Transient))));
    assert_eq!((outcome.attempts, calls), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn uncounted_errors_do_not_trip_the_breaker() {
    let exec = executor(5, 2);
    let (outcome, calls) = run_script(&exec, None, &[Some(Uncounted); 5]).await;
    assert!(matches!(outcome.result, Err(ExecError::Operation(Uncounted))));
    assert_eq!((outcome.attempts, calls), (5, 5));
    let stats = exec.stats().breaker;
    assert_eq!(stats.state, BreakerState::Closed);
    assert_eq!((stats.consecutive_failures, stats.failures, stats.calls), (0, 0, 5));
}

#[tokio::test(start_paused = true)]
async fn uncounted_errors_do_not_reset_the_consecutive_count() {
    let exec = executor(5, 2);
    let (outcome, calls) = run_script(&exec, None, &[Some(Transient), Some(Uncounted), Some(Transient), None]).await;
    // Two counted failures in a row (the uncounted one between them does not
    // break the run) open the breaker, and no fourth attempt is made.
    match outcome.result {
        Err(ExecError::CircuitOpen { open, last }) => {
            assert_eq!(last, Some(Transient));
            assert_eq!(open.consecutive_failures, 2);
        }
        other => panic!("expected CircuitOpen, got {other:?}"),
    }
    assert_eq!((outcome.attempts, calls), (3, 3));
}

#[tokio::test(start_paused = true)]
async fn no_retry_while_the_circuit_is_open() {
    let exec = executor(5, 2);
    let start = Instant::now();
    let (outcome, calls) = run_script(&exec, None, &[Some(Transient); 5]).await;
    let err = outcome.result.expect_err("breaker opens");
    assert_eq!(
        err.to_string(),
        "circuit open for node PACS: 2 consecutive failures; next probe in 60.0s"
    );
    assert!(matches!(err.last_error(), Some(Transient)));
    assert_eq!((outcome.attempts, calls), (2, 2));
    // Slept before attempt 2 only: not towards a retry the breaker refuses.
    assert_eq!(start.elapsed(), D);

    // The next operation is refused before its first attempt.
    let (outcome, calls) = run_script(&exec, None, &[None]).await;
    match outcome.result {
        Err(ExecError::CircuitOpen { open, last: None }) => {
            assert_eq!(open.retry_in, Duration::from_secs(60));
        }
        other => panic!("expected CircuitOpen without a last error, got {other:?}"),
    }
    assert_eq!((outcome.attempts, calls), (0, 0));
    assert_eq!(exec.stats().breaker.rejected, 2);
}

#[tokio::test(start_paused = true)]
async fn a_circuit_opened_during_the_back_off_stops_the_retry() {
    let exec = executor(5, 10);
    let start = Instant::now();
    let other_node_user = async {
        tokio::time::sleep(D / 2).await;
        exec.breaker().force_open();
    };
    let ((outcome, calls), ()) = tokio::join!(run_script(&exec, None, &[Some(Transient), None]), other_node_user);
    assert!(matches!(
        outcome.result,
        Err(ExecError::CircuitOpen {
            last: Some(Transient),
            ..
        })
    ));
    assert_eq!((outcome.attempts, calls), (1, 1));
    assert_eq!(start.elapsed(), D);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_is_never_slept_past() {
    let exec = Executor::new("PACS", retry(10, RetryStrategy::Fixed), breaker(100));
    let start = Instant::now();
    // Attempts at 0, 100 and 200 ms; the next would start at 300 ms > 250 ms.
    let deadline = start + Duration::from_millis(250);
    let (outcome, calls) = run_script(&exec, Some(deadline), &[Some(Transient); 10]).await;
    let err = outcome.result.expect_err("deadline");
    assert_eq!(err.to_string(), "deadline exceeded after 3 attempts: Transient");
    assert!(matches!(
        err,
        ExecError::DeadlineExceeded {
            attempts: 3,
            last: Transient
        }
    ));
    assert_eq!((outcome.attempts, calls), (3, 3));
    assert_eq!(start.elapsed(), Duration::from_millis(200));
    assert_eq!(exec.stats().deadline_exceeded, 1);
}

#[tokio::test(start_paused = true)]
async fn a_retry_due_exactly_at_the_deadline_is_not_made() {
    let exec = Executor::new("PACS", retry(10, RetryStrategy::Fixed), breaker(100));
    let start = Instant::now();
    let deadline = start + 2 * D;
    let (outcome, _) = run_script(&exec, Some(deadline), &[Some(Transient); 10]).await;
    assert!(matches!(
        outcome.result,
        Err(ExecError::DeadlineExceeded { attempts: 2, .. })
    ));
    assert_eq!(start.elapsed(), D);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_accounts_for_time_spent_in_attempts() {
    let exec = Executor::new("PACS", retry(10, RetryStrategy::Fixed), breaker(100));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(1);
    // Each attempt takes 300 ms, each back-off 100 ms: attempts start at 0,
    // 400 and 800 ms; after the third (ends 1100 ms) the deadline has passed.
    let outcome = exec
        .run(Some(deadline), |_| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Err::<(), _>(Transient)
        })
        .await;
    assert!(matches!(
        outcome.result,
        Err(ExecError::DeadlineExceeded { attempts: 3, .. })
    ));
    assert_eq!(start.elapsed(), Duration::from_millis(1_100));
}

#[tokio::test(start_paused = true)]
async fn an_empty_budget_stops_retries() {
    let mut settings = retry(5, RetryStrategy::Fixed);
    settings.budget_percent = 0.0;
    settings.budget_min_per_second = 0.0;
    let exec = Executor::new("PACS", settings, breaker(100));
    let start = Instant::now();
    let (outcome, calls) = run_script(&exec, None, &[Some(Transient), None]).await;
    let err = outcome.result.expect_err("no budget");
    assert_eq!(
        err.to_string(),
        "retry budget exhausted for node PACS after 1 attempts: Transient"
    );
    assert!(matches!(err.into_last_error(), Some(Transient)));
    assert_eq!((outcome.attempts, calls), (1, 1));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(exec.stats().budget_exhausted, 1);
}

#[tokio::test(start_paused = true)]
async fn the_budget_caps_retries_of_a_failing_node_under_load() {
    // Floor 0.1/s × 10 s = 1 retry; share 20 % of 50 first attempts = 10.
    let mut settings = retry(3, RetryStrategy::Fixed);
    settings.initial_delay = Duration::ZERO;
    settings.budget_min_per_second = 0.1;
    let exec = Executor::new("PACS", settings, breaker(1_000));
    let mut attempts = 0;
    for _ in 0..50 {
        let (outcome, _) = run_script(&exec, None, &[Some(Transient); 3]).await;
        attempts += outcome.attempts;
    }
    let stats = exec.stats();
    assert_eq!(stats.retries, 11);
    assert_eq!(attempts, 61);
    // Without the budget: 150 attempts. The allowance grows by one retry every
    // five runs, so no run got both its retries: every one ended on the budget.
    assert_eq!(stats.budget_exhausted, 50);
}

#[tokio::test(start_paused = true)]
async fn concurrent_runs_share_one_executor() {
    let exec = Arc::new(executor(3, 1_000));
    let mut tasks = Vec::new();
    for i in 0..20u32 {
        let exec = Arc::clone(&exec);
        // Spawning checks that the run future is Send.
        tasks.push(tokio::spawn(async move {
            exec.run(None, move |attempt| async move {
                if attempt < 2 || i % 2 == 0 {
                    Err(Transient)
                } else {
                    Ok(attempt)
                }
            })
            .await
            .attempts
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("task panicked");
    }
    // Odd i: 2 attempts; even i: 3.
    assert_eq!(total, 10 * 2 + 10 * 3);
    let stats = exec.stats();
    assert_eq!(stats.retries, 30);
    assert_eq!(stats.breaker.successes, 10);
}

#[tokio::test(start_paused = true)]
async fn executor_stats_serialize_flat() {
    let exec = executor(2, 10);
    let _ = run_script(&exec, None, &[Some(Transient), None]).await;
    let json = serde_json::to_value(exec.stats()).expect("stats serialize");
    assert_eq!(json["name"], "PACS");
    assert_eq!(json["state"], "closed");
    assert_eq!(json["calls"], 2);
    assert_eq!(json["retries"], 1);
    assert_eq!(json["budget_exhausted"], 0);
    assert_eq!(json["deadline_exceeded"], 0);
}
