//! Reading the pool's state into plain [`PoolStats`] and leak suspects, under the
//! lock only as long as copying takes.

use tokio::time::Instant;

use super::inner::Inner;
use super::manager::Manager;
use super::stats::{AtomicCounters, LeakSuspect, PoolStats, WaitStats};

impl<M: Manager> Inner<M> {
    pub(super) fn stats(&self) -> PoolStats {
        let now = Instant::now();
        let (mut stats, samples) = {
            let st = self.lock();
            let v = st.view();
            let c = v.counts;
            let stats = PoolStats {
                pool: self.name.clone(),
                total: v.total,
                active: v.active,
                idle: v.idle,
                // Callers whose own creation is under way are not counted as waiting.
                waiting: v.waiting,
                opening: v.opening,
                closing: v.closing,
                effective_max: v.effective_max,
                max_size: v.max_size,
                acquisitions: AtomicCounters::get(&self.counters.acquisitions),
                releases: c.releases,
                acquire_timeouts: c.acquire_timeouts,
                rejected_waiters: c.rejected_waiters,
                created: c.created,
                create_failures: c.create_failures,
                destroyed: c.destroyed.clone(),
                validations: AtomicCounters::get(&self.counters.validations),
                validation_failures: AtomicCounters::get(&self.counters.validation_failures),
                stale_redos: AtomicCounters::get(&self.counters.stale_redos),
                peak_active: c.peak_active,
                wait: WaitStats::default(),
                leak_suspects: self.suspects(&st, now).count(),
                remote_limited: v.remote_limited,
                unanswered_opens: v.unanswered_opens,
            };
            (stats, v.wait_samples.to_vec())
        };
        // Sorting happens after unlocking: it is the only non-trivial work here.
        stats.wait = WaitStats::from_samples(samples);
        stats
    }

    pub(super) fn leak_suspects(&self) -> Vec<LeakSuspect> {
        let now = Instant::now();
        let mut suspects: Vec<LeakSuspect> = {
            let st = self.lock();
            self.suspects(&st, now).collect()
        };
        suspects.sort_by_key(|s| (std::cmp::Reverse(s.held_for), s.id));
        suspects
    }
}
