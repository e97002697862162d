//! Pool statistics: counters, retirement reasons, wait-time percentiles, leak suspects.
//!
//! Counters that change under the pool lock live in [`LockedCounters`] (inside the state);
//! the few bumped outside it are atomics in [`AtomicCounters`]. Wait times keep only the
//! last [`WAIT_WINDOW`] samples, so percentiles describe recent behaviour and memory
//! stays fixed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// Wait-time samples kept for the percentiles.
pub const WAIT_WINDOW: usize = 1024;

/// A snapshot of one pool, for `--stats` and metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct PoolStats {
    /// The pool's name.
    pub pool: String,
    /// Open resources: idle + active.
    pub total: usize,
    /// Borrowed (or being validated, or handed to a waiter).
    pub active: usize,
    /// Open and not borrowed.
    pub idle: usize,
    /// Callers waiting in the queue.
    pub waiting: usize,
    /// Slots reserved for resources being created.
    pub opening: usize,
    /// Resources being closed or aborted; they keep their slot until done, so the
    /// remote never sees more than `max_size` at once.
    pub closing: usize,
    /// The cap in force: `max_size`, or lower after the remote said it was full.
    pub effective_max: usize,
    /// The configured maximum of open resources.
    pub max_size: usize,
    /// Successful acquisitions.
    pub acquisitions: u64,
    /// Guards given back (returned, invalidated or dropped).
    pub releases: u64,
    /// Acquisitions that gave up after the acquire timeout.
    pub acquire_timeouts: u64,
    /// Acquisitions refused at once because `max_waiters` were already waiting.
    pub rejected_waiters: u64,
    /// Resources created.
    pub created: u64,
    /// Resource creations that failed.
    pub create_failures: u64,
    /// Resources closed or aborted, by cause.
    pub destroyed: DestroyedStats,
    /// Validations of an idle resource before reuse.
    pub validations: u64,
    /// Validations that failed (the resource was discarded).
    pub validation_failures: u64,
    /// Operations redone on a fresh resource after a reused one proved stale.
    pub stale_redos: u64,
    /// The most resources borrowed at once.
    pub peak_active: usize,
    /// Acquire wait percentiles.
    pub wait: WaitStats,
    /// Borrows held longer than `leak_threshold` right now.
    pub leak_suspects: usize,
    /// Creations that failed (refused, reset, closed, rejected, unanswered) while
    /// other resources to the remote were open: the remote limited the pool.
    pub remote_limited: u64,
    /// Creations still unanswered whose callers were served by an open resource
    /// meanwhile (a remote that takes one association at a time leaves them so).
    pub unanswered_opens: usize,
}

/// The reasons a resource is retired, written once: they make the [`Reason`]
/// enum, its name (a metric label), and a counter field of [`DestroyedStats`].
macro_rules! retirement_reasons {
    ($($(#[doc = $doc:expr])* $variant:ident => $field:ident),* $(,)?) => {
        /// Resources retired, by reason.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
        #[non_exhaustive]
        pub struct DestroyedStats {
            $($(#[doc = $doc])* pub $field: u64,)*
        }

        /// Why a resource was retired.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(super) enum Reason {
            $($variant,)*
        }

        impl Reason {
            pub(super) fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$variant => stringify!($field),)*
                }
            }
        }

        impl DestroyedStats {
            /// Every resource retired, whatever the reason.
            pub fn total(&self) -> u64 {
                0 $(+ self.$field)*
            }

            /// Each reason's name (as in the field names) and count, in one order.
            pub fn by_reason(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($field), self.$field)),*]
            }

            fn slot(&mut self, reason: Reason) -> &mut u64 {
                match reason {
                    $(Reason::$variant => &mut self.$field,)*
                }
            }
        }
    };
}

retirement_reasons! {
    /// Idle longer than `max_idle_time`.
    Idle => idle,
    /// Older than `max_lifetime` (jittered).
    Lifetime => lifetime,
    /// Used `max_uses` times.
    Uses => uses,
    /// Failed validation, not reusable after use, or invalidated by the caller.
    Invalid => invalid,
    /// `is_alive` said the peer was gone.
    Stale => stale,
    /// The pool was closed or shrunk.
    Closed => closed,
    /// Idle but not fitting a caller about to create: closed first, to make room.
    Evicted => evicted,
}

/// Time callers waited for a resource or a slot (creation and validation excluded),
/// over the last [`WAIT_WINDOW`] acquisitions and timeouts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct WaitStats {
    /// Median acquire wait (ms).
    pub p50_ms: f64,
    /// 95th percentile acquire wait (ms).
    pub p95_ms: f64,
    /// 99th percentile acquire wait (ms).
    pub p99_ms: f64,
    /// Longest acquire wait (ms).
    pub max_ms: f64,
    /// How many waits the percentiles are over.
    pub samples: usize,
}

/// A borrow held longer than `leak_threshold`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeakSuspect {
    /// The resource's id (see [`Pooled::id`](super::Pooled::id)).
    pub id: u64,
    /// How long it has been borrowed.
    pub held_for: Duration,
}

impl DestroyedStats {
    pub(super) fn count(&mut self, reason: Reason) {
        *self.slot(reason) += 1;
    }

    /// Takes back a count for a retirement that did not happen after all.
    pub(super) fn uncount(&mut self, reason: Reason) {
        let slot = self.slot(reason);
        *slot = slot.saturating_sub(1);
    }
}

/// Counters kept under the pool lock.
#[derive(Debug, Default)]
pub(super) struct LockedCounters {
    pub releases: u64,
    pub acquire_timeouts: u64,
    pub rejected_waiters: u64,
    pub created: u64,
    pub create_failures: u64,
    pub destroyed: DestroyedStats,
    pub peak_active: usize,
}

/// Counters bumped where the lock is not held.
#[derive(Debug, Default)]
pub(super) struct AtomicCounters {
    pub acquisitions: AtomicU64,
    pub validations: AtomicU64,
    pub validation_failures: AtomicU64,
    pub stale_redos: AtomicU64,
}

impl AtomicCounters {
    pub(super) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The last [`WAIT_WINDOW`] wait times, in milliseconds.
pub(super) struct WaitWindow {
    samples: Vec<f64>,
    next: usize,
}

impl WaitWindow {
    pub(super) fn new() -> Self {
        WaitWindow {
            samples: Vec::with_capacity(WAIT_WINDOW),
            next: 0,
        }
    }

    pub(super) fn record(&mut self, waited: Duration) {
        let ms = waited.as_secs_f64() * 1_000.0;
        if self.samples.len() < WAIT_WINDOW {
            self.samples.push(ms);
        } else if let Some(slot) = self.samples.get_mut(self.next) {
            *slot = ms;
        }
        self.next = (self.next + 1) % WAIT_WINDOW;
    }

    pub(super) fn samples(&self) -> &[f64] {
        &self.samples
    }
}

impl WaitStats {
    pub(super) fn from_samples(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        WaitStats {
            p50_ms: nearest_rank(&samples, 0.50),
            p95_ms: nearest_rank(&samples, 0.95),
            p99_ms: nearest_rank(&samples, 0.99),
            max_ms: samples.last().copied().unwrap_or(0.0),
            samples: samples.len(),
        }
    }
}

fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let stats = WaitStats::from_samples((1..=100).rev().map(f64::from).collect());
        assert_eq!(stats.p50_ms, 50.0);
        assert_eq!(stats.p95_ms, 95.0);
        assert_eq!(stats.p99_ms, 99.0);
        assert_eq!(stats.max_ms, 100.0);
        assert_eq!(stats.samples, 100);
        assert_eq!(WaitStats::from_samples(Vec::new()), WaitStats::default());
    }

    #[test]
    fn window_keeps_the_most_recent() {
        let mut window = WaitWindow::new();
        for ms in 0..(WAIT_WINDOW as u64 + 10) {
            window.record(Duration::from_millis(ms));
        }
        assert_eq!(window.samples.len(), WAIT_WINDOW);
        let stats = WaitStats::from_samples(window.samples.clone());
        assert_eq!(stats.max_ms, (WAIT_WINDOW + 9) as f64);
        // The ten oldest samples (0..10 ms) were overwritten.
        assert_eq!(window.samples.iter().copied().fold(f64::MAX, f64::min), 10.0);
    }
}
