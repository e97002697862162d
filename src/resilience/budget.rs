//! Retry budget: caps retries at a share of recent first attempts, plus a floor.
//!
//! Modelled on tower's retry budget. Over a sliding window of about ten
//! seconds, the retries allowed are
//!
//! ```text
//! min_per_second × window_secs  +  percent / 100 × first attempts in the window
//! ```
//!
//! and each retry withdraws one. The floor means a lone operation always gets
//! every attempt its policy allows; the share means that when a node fails
//! under load, retries add at most ~`percent` % to its traffic instead of
//! multiplying it by `max_attempts` (a retry storm).
//!
//! The window is a ring of one-second buckets, so old traffic leaves it a
//! second at a time. State is under a `Mutex`: the critical sections are a few
//! additions, far shorter than any operation the budget guards.

use parking_lot::Mutex;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

/// Buckets in the window, one second each.
const BUCKETS: usize = 10;
const BUCKET_SPAN: Duration = Duration::from_secs(1);

/// Counters since the budget was created (not just the current window).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BudgetStats {
    /// First attempts recorded.
    pub deposits: u64,
    /// Retries granted.
    pub withdrawals: u64,
    /// Retries refused because the budget was empty.
    pub exhausted: u64,
}

/// A retry budget shared by every operation on one node. `Sync`.
#[derive(Debug)]
pub struct RetryBudget {
    /// Retries per second always allowed, whatever the share.
    min_per_second: f64,
    /// Share of first attempts allowed as retries, as a fraction (0.2 for 20 %).
    ratio: f64,
    /// Origin of the bucket clock.
    start: Instant,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    buckets: [Bucket; BUCKETS],
    stats: BudgetStats,
}

#[derive(Debug, Default, Clone, Copy)]
struct Bucket {
    /// The second (since `start`) this bucket holds; stale buckets are reused.
    second: u64,
    deposits: u64,
    withdrawals: u64,
}

impl RetryBudget {
    /// `percent`: retries as a share of recent first attempts (20 = 20 %);
    /// `min_per_second`: the floor. Negative or NaN values count as 0.
    pub fn new(percent: f64, min_per_second: f64) -> Self {
        RetryBudget {
            min_per_second: non_negative(min_per_second),
            ratio: non_negative(percent) / 100.0,
            start: Instant::now(),
            state: Mutex::new(State::default()),
        }
    }

    /// The length of the sliding window.
    pub fn window(&self) -> Duration {
        BUCKET_SPAN * BUCKETS as u32
    }

    /// Records a first attempt: a deposit that earns `percent` % of a retry.
    pub fn record_first_attempt(&self) {
        let now = self.second_now();
        let mut state = self.state.lock();
        state.bucket_mut(now).deposits += 1;
        state.stats.deposits += 1;
    }

    /// Takes one retry from the budget; false (and nothing taken) when it is empty.
    pub fn try_withdraw(&self) -> bool {
        let now = self.second_now();
        let mut state = self.state.lock();
        let (deposits, withdrawals) = state.window_totals(now);
        let allowed = self.min_per_second * self.window().as_secs_f64() + self.ratio * deposits as f64;
        // The retry about to be made must fit in what is allowed.
        if (withdrawals + 1) as f64 <= allowed {
            state.bucket_mut(now).withdrawals += 1;
            state.stats.withdrawals += 1;
            true
        } else {
            state.stats.exhausted += 1;
            false
        }
    }

    /// A snapshot of the budget's counters.
    pub fn stats(&self) -> BudgetStats {
        self.state.lock().stats
    }

    /// Whole seconds since the budget was created: the bucket clock.
    fn second_now(&self) -> u64 {
        Instant::now().saturating_duration_since(self.start).as_secs() / BUCKET_SPAN.as_secs()
    }
}

impl State {
    /// The bucket for `second`, emptied first if it still holds an older second.
    /// (A newer second can be there only if another thread read the clock
    /// later but locked first; counting into it is then the right thing.)
    fn bucket_mut(&mut self, second: u64) -> &mut Bucket {
        let bucket = &mut self.buckets[(second % BUCKETS as u64) as usize];
        if bucket.second < second {
            *bucket = Bucket {
                second,
                ..Bucket::default()
            };
        }
        bucket
    }

    /// Deposits and withdrawals of the buckets still inside the window at `now`.
    fn window_totals(&self, now: u64) -> (u64, u64) {
        self.buckets
            .iter()
            // saturating: a bucket a racing thread stamped a second ahead is current.
            .filter(|b| now.saturating_sub(b.second) < BUCKETS as u64)
            .fold((0, 0), |(d, w), b| (d + b.deposits, w + b.withdrawals))
    }
}

fn non_negative(x: f64) -> f64 {
    // f64::max returns the other operand when one is NaN.
    x.max(0.0)
}
