use std::time::Duration;

use crate::resilience::{BudgetStats, RetryBudget};

/// Withdraws until refused or `max` granted; returns the number granted.
fn drain(budget: &RetryBudget, max: u32) -> u32 {
    (0..max).take_while(|_| budget.try_withdraw()).count() as u32
}

#[test]
fn budget_is_sync_and_send() {
    fn assert_sync_send<T: Sync + Send>() {}
    assert_sync_send::<RetryBudget>();
}

#[tokio::test(start_paused = true)]
async fn a_lone_operation_gets_every_retry() {
    // The config's defaults: 20 %, 10 per second.
    let budget = RetryBudget::new(20.0, 10.0);
    budget.record_first_attempt();
    for _ in 0..4 {
        assert!(budget.try_withdraw());
        tokio::time::advance(Duration::from_secs(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn retries_under_load_are_capped_at_the_share_plus_the_floor() {
    // Floor: 1/s over a 10 s window = 10; share: 20 % of 1000 first attempts = 200.
    let budget = RetryBudget::new(20.0, 1.0);
    for _ in 0..1_000 {
        budget.record_first_attempt();
    }
    assert_eq!(drain(&budget, 1_000), 210);
    assert_eq!(
        budget.stats(),
        BudgetStats {
            deposits: 1_000,
            withdrawals: 210,
            exhausted: 1,
        }
    );
}

#[tokio::test(start_paused = true)]
async fn interleaved_failures_under_load_stay_near_the_share() {
    // Every operation fails and wants 2 retries: without a budget that is
    // 200 % extra traffic; with it, about 20 % plus the floor.
    let budget = RetryBudget::new(20.0, 0.5);
    let mut retries = 0;
    for _ in 0..500 {
        budget.record_first_attempt();
        retries += drain(&budget, 2);
        // 500 operations over 5 s: all inside one window.
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    // Floor 0.5 × 10 = 5, share 0.2 × 500 = 100.
    assert_eq!(retries, 105);
}

#[tokio::test(start_paused = true)]
async fn the_window_slides() {
    let budget = RetryBudget::new(50.0, 0.0);
    for _ in 0..10 {
        budget.record_first_attempt();
    }
    assert_eq!(drain(&budget, 100), 5);
    // Still inside the window: nothing new.
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(drain(&budget, 100), 0);
    for _ in 0..4 {
        budget.record_first_attempt();
    }
    // 14 deposits × 50 % = 7, 5 already taken.
    assert_eq!(drain(&budget, 100), 2);
    // The first ten deposits (and five withdrawals) have left the window; the
    // four at t = 5 s and the two withdrawals at t = 5 s remain.
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(drain(&budget, 100), 0);
    // Everything has left: the budget is back to its (zero) floor.
    tokio::time::advance(Duration::from_secs(10)).await;
    budget.record_first_attempt();
    budget.record_first_attempt();
    assert_eq!(drain(&budget, 100), 1);
}

#[tokio::test(start_paused = true)]
async fn the_floor_refills_after_the_window() {
    let budget = RetryBudget::new(0.0, 1.0);
    assert_eq!(drain(&budget, 100), 10);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(drain(&budget, 100), 10);
}

#[tokio::test(start_paused = true)]
async fn an_empty_budget_refuses_and_counts() {
    let budget = RetryBudget::new(0.0, 0.0);
    budget.record_first_attempt();
    assert!(!budget.try_withdraw());
    assert!(!budget.try_withdraw());
    assert_eq!(
        budget.stats(),
        BudgetStats {
            deposits: 1,
            withdrawals: 0,
            exhausted: 2,
        }
    );
    // Nonsense settings count as zero rather than granting without limit.
    let budget = RetryBudget::new(f64::NAN, -5.0);
    budget.record_first_attempt();
    assert!(!budget.try_withdraw());
}
