//! The bounded history of one node: one [`Sample`] per monitor tick (probe result,
//! the application's operations since the previous tick, pool and breaker state),
//! in a ring whose capacity is fixed when it is made, so memory stays the same
//! whatever the uptime.

use std::collections::VecDeque;

use serde::Serialize;

/// Most samples a ring ever holds, whatever the interval (one hour at 1 s).
pub const MAX_SAMPLES: usize = 3600;

/// How one health check (probe) went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Probe {
    /// `echo` (C-ECHO through the pool) or `association` (A-ASSOCIATE + A-RELEASE:
    /// the node did not accept Verification).
    pub kind: &'static str,
    /// Whether it succeeded.
    pub ok: bool,
    /// How long it took (ms).
    pub latency_ms: f64,
    /// Why it failed.
    pub error: Option<String>,
}

/// One tick of a node's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The probe of this tick, if the monitor probes.
    pub probe: Option<Probe>,
    /// Operations finished since the previous sample (the application's and the probes').
    pub operations: u64,
    /// Of which failed.
    pub failures: u64,
    /// Associations borrowed at the sample.
    pub active: usize,
    /// The pool's cap in force.
    pub effective_max: usize,
    /// Callers waiting for an association.
    pub waiting: usize,
    /// The pool's acquire wait p95 (ms).
    pub acquire_p95_ms: f64,
    /// `closed`, `half_open` or `open`.
    pub breaker: &'static str,
    /// Counters since start, for the windows of the recommendations.
    #[serde(skip)]
    pub counters: Counters,
}

/// Cumulative counters of a node, kept with each sample so that what happened in
/// the window is the difference between its newest and oldest sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Associations found closed by the remote (retired as stale, or redone on a fresh one).
    pub stale: u64,
    /// Pool validations that failed.
    pub validation_failures: u64,
    /// Runs that ended because the retry budget refused a retry.
    pub budget_exhausted: u64,
    /// Times failures opened the circuit breaker.
    pub trips: u64,
    /// Acquisitions that timed out in the pool.
    pub acquire_timeouts: u64,
    /// Creations that failed while other associations to the remote were open (the remote limited the pool).
    pub remote_limited: u64,
    /// Probes that failed on a DIMSE timeout.
    pub probe_dimse_timeouts: u64,
}

impl Counters {
    /// What grew from `earlier` to `self` (counters never shrink; saturating anyway).
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            stale: self.stale.saturating_sub(earlier.stale),
            validation_failures: self.validation_failures.saturating_sub(earlier.validation_failures),
            budget_exhausted: self.budget_exhausted.saturating_sub(earlier.budget_exhausted),
            trips: self.trips.saturating_sub(earlier.trips),
            acquire_timeouts: self.acquire_timeouts.saturating_sub(earlier.acquire_timeouts),
            remote_limited: self.remote_limited.saturating_sub(earlier.remote_limited),
            probe_dimse_timeouts: self.probe_dimse_timeouts.saturating_sub(earlier.probe_dimse_timeouts),
        }
    }
}

/// A ring of the last `capacity` items: pushing onto a full ring drops the oldest.
#[derive(Debug, Clone)]
pub struct Ring<T> {
    items: VecDeque<T>,
    capacity: usize,
}

impl<T> Ring<T> {
    /// A ring of `capacity` items (at least 1, at most [`MAX_SAMPLES`]).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, MAX_SAMPLES);
        Ring {
            items: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Add an item, dropping the oldest when full.
    pub fn push(&mut self, item: T) {
        if self.items.len() == self.capacity {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    /// Items held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether it holds no item.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The most items it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.items.iter()
    }

    /// The latest item.
    pub fn newest(&self) -> Option<&T> {
        self.items.back()
    }

    /// The earliest item still held.
    pub fn oldest(&self) -> Option<&T> {
        self.items.front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_ring_drops_the_oldest_and_never_grows() {
        let mut r = Ring::new(3);
        for i in 0..10 {
            r.push(i);
            assert!(r.len() <= 3);
        }
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), vec![7, 8, 9]);
        assert_eq!(r.oldest(), Some(&7));
        assert_eq!(r.newest(), Some(&9));
        assert_eq!(Ring::<u8>::new(0).capacity(), 1);
        assert_eq!(Ring::<u8>::new(usize::MAX).capacity(), MAX_SAMPLES);
    }
}
