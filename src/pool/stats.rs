//! Pool statistics: one snapshot struct per pool.

use std::sync::atomic::{AtomicU64, Ordering};

/// Associations ended, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DestroyedStats {
    pub idle: u64,
    pub lifetime: u64,
    pub uses: u64,
    pub invalid: u64,
    pub stale: u64,
    pub closed: u64,
    /// Idle but not fitting, closed to make room for one that fits.
    pub evicted: u64,
}

/// Acquire wait percentiles over recent acquisitions.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct WaitStats {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub samples: usize,
}

/// A snapshot of a pool.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PoolStats {
    pub pool: String,
    pub total: usize,
    pub active: usize,
    pub idle: usize,
    pub waiting: usize,
    pub opening: usize,
    pub effective_max: usize,
    pub max_size: usize,
    pub acquisitions: u64,
    pub releases: u64,
    pub acquire_timeouts: u64,
    pub rejected_waiters: u64,
    pub created: u64,
    pub create_failures: u64,
    pub destroyed: DestroyedStats,
    pub validations: u64,
    pub validation_failures: u64,
    pub stale_redos: u64,
    pub peak_active: usize,
    pub wait: WaitStats,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub acquisitions: AtomicU64,
    pub releases: AtomicU64,
    pub acquire_timeouts: AtomicU64,
    pub rejected_waiters: AtomicU64,
    pub created: AtomicU64,
    pub create_failures: AtomicU64,
    pub validations: AtomicU64,
    pub validation_failures: AtomicU64,
    pub stale_redos: AtomicU64,
    pub d_idle: AtomicU64,
    pub d_lifetime: AtomicU64,
    pub d_uses: AtomicU64,
    pub d_invalid: AtomicU64,
    pub d_stale: AtomicU64,
    pub d_closed: AtomicU64,
    pub d_evicted: AtomicU64,
}

pub(crate) fn inc(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub fn destroyed(&self) -> DestroyedStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DestroyedStats {
            idle: g(&self.d_idle),
            lifetime: g(&self.d_lifetime),
            uses: g(&self.d_uses),
            invalid: g(&self.d_invalid),
            stale: g(&self.d_stale),
            closed: g(&self.d_closed),
            evicted: g(&self.d_evicted),
        }
    }
}

/// Percentiles of `samples` (milliseconds).
pub(crate) fn wait_stats(samples: &[f64]) -> WaitStats {
    if samples.is_empty() {
        return WaitStats::default();
    }
    let mut v = samples.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    WaitStats {
        p50_ms: q(0.5),
        p95_ms: q(0.95),
        p99_ms: q(0.99),
        max_ms: v[v.len() - 1],
        samples: v.len(),
    }
}
