//! The background maintenance task of a pool.
//!
//! Every tick — `min(validation_interval, max_idle_time, 1 s)`, but at least 10 ms —
//! it retires idle resources that are stale, past their (jittered) lifetime, or idle
//! longer than `max_idle_time` beyond `min_size`; raises a lowered effective max by
//! one per [`CAPACITY_RECOVERY_STEP`] without a capacity error; logs new leak
//! suspects once; and opens resources (with the default request) up to `min_size`.
//! The first tick runs at once, which is the warm-up. Deadlines are therefore
//! enforced with up to one tick of delay.
//!
//! The task holds only a `Weak` reference between ticks: it stops when the pool is
//! closed or nothing references it any more.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::{interval, Instant, MissedTickBehavior};
use tracing::{debug, info, warn};

use super::inner::{deadline, spawn, Doomed, Inner, Reservation, State, Teardown};
use super::manager::Manager;
use super::stats::Reason;

/// Without a capacity error for this long, a lowered effective max goes up by one.
pub const CAPACITY_RECOVERY_STEP: Duration = Duration::from_secs(5);
/// After a failed background creation, the next one waits at least this long, so a
/// remote that is down is not hammered (nor the log flooded) every tick.
pub const REPLENISH_BACKOFF: Duration = Duration::from_secs(5);

const MAX_TICK: Duration = Duration::from_secs(1);
const MIN_TICK: Duration = Duration::from_millis(10);

/// Spawns the maintenance task; without a runtime the pool works but is neither
/// warmed up nor maintained.
pub(super) fn start<M: Manager>(inner: &Arc<Inner<M>>) {
    let settings = &inner.settings;
    let tick = settings
        .validation_interval
        .min(settings.max_idle_time)
        .min(MAX_TICK)
        .max(MIN_TICK);
    if !spawn(run(Arc::downgrade(inner), tick)) {
        warn!(pool = %inner.name, "no tokio runtime: pool maintenance and warm-up disabled");
    }
}

async fn run<M: Manager>(pool: Weak<Inner<M>>, tick: Duration) {
    let mut ticks = interval(tick);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(inner) = pool.upgrade() else {
            return;
        };
        if !inner.maintain() {
            debug!(pool = %inner.name, "maintenance stopped");
            return;
        }
    }
}

impl<M: Manager> Inner<M> {
    /// One maintenance round; false once the pool is closing.
    fn maintain(self: &Arc<Self>) -> bool {
        let now = Instant::now();
        let to_open = self.transition(now, |st, doomed| {
            if !st.is_open() {
                return None;
            }
            self.retire_idle(st, now, doomed);
            if let Some(effective_max) = st.recover_capacity(now, CAPACITY_RECOVERY_STEP) {
                debug!(pool = %self.name, effective_max, "raising the effective max");
            }
            self.report_leaks(st, now);
            let to_open = self.shortfall(st, now);
            st.reserve_opens(to_open);
            Some(to_open)
        });
        let Some(to_open) = to_open else {
            return false;
        };
        for _ in 0..to_open {
            let slot = Reservation::new(self.clone());
            spawn(self.clone().open_idle(slot));
        }
        true
    }

    fn retire_idle(&self, st: &mut State<M>, now: Instant, doomed: &mut Doomed<M::Resource>) {
        let min_size = self.settings.min_size;
        // Oldest first, so the ones kept for `min_size` are the most recently used.
        let retired = st.take_idle_where(|entry, total| {
            if entry.expires_at.is_some_and(|at| now >= at) {
                Some((Reason::Lifetime, Teardown::Close))
            } else if !self.manager.is_alive(&mut entry.res) {
                Some((Reason::Stale, Teardown::Abort))
            } else if total > min_size && now.saturating_duration_since(entry.idle_since) > self.settings.max_idle_time
            {
                Some((Reason::Idle, Teardown::Close))
            } else {
                None
            }
        });
        for (entry, reason, how) in retired {
            self.retire(st, entry, reason, how, doomed);
        }
    }

    fn report_leaks(&self, st: &mut State<M>, now: Instant) {
        let Some(threshold) = self.settings.leak_threshold else {
            return;
        };
        for (id, held_for) in st.newly_leaked(now, threshold) {
            warn!(pool = %self.name, id, ?held_for, "resource borrowed longer than leak_threshold");
        }
    }

    /// Resources to open in the background to reach `min_size`.
    fn shortfall(&self, st: &State<M>, now: Instant) -> usize {
        if self.default_request.is_none() || !self.may_replenish() {
            return 0;
        }
        st.shortfall(self.settings.min_size, now)
    }

    fn may_replenish(&self) -> bool {
        let gate = self.replenish_gate.read();
        gate.as_ref().is_none_or(|allow| allow())
    }

    /// Opens one resource into idle (or straight to a waiter it fits). Failures are
    /// logged and delay the next attempt; they never reach callers.
    async fn open_idle(self: Arc<Self>, slot: Reservation<M>) {
        let Some(req) = self.default_request.as_ref() else {
            return;
        };
        let Ok(permit) = self.opens.acquire().await else {
            return;
        };
        let created = self.manager.create(req).await;
        drop(permit);
        let now = Instant::now();
        self.transition(now, |st, doomed| {
            match self.adopt(st, slot, created, now, doomed) {
                Ok(Some(entry)) => {
                    if st.background_open_worked() {
                        info!(pool = %self.name, "background opening works again");
                    }
                    self.put_back(st, entry, now)
                }
                Ok(None) => {}
                Err(err) => {
                    // Warned once per outage; the breaker and the stats say the rest.
                    if st.background_open_failed(deadline(now, REPLENISH_BACKOFF)) {
                        debug!(pool = %self.name, error = %err, "could not open a resource in the background");
                    } else {
                        warn!(pool = %self.name, error = %err, "could not open a resource in the background (retried every {REPLENISH_BACKOFF:?}, not logged again until it works)");
                    }
                }
            }
        });
    }
}
