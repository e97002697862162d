//! Resizing and closing a pool.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{timeout_at, Instant};
use tracing::{debug, info};

use super::inner::{deadline, Inner, Phase, Teardown};
use super::manager::Manager;
use super::stats::Reason;

impl<M: Manager> Inner<M> {
    /// New cap (at least 1). Idle resources beyond it are closed at once, busy ones
    /// when they come back. A cap lowered after a capacity error stays lowered (but
    /// under the new max) and keeps recovering.
    pub(super) fn resize(self: &Arc<Self>, new_max: usize) {
        let new_max = new_max.max(1);
        self.transition(Instant::now(), |st, doomed| {
            let old_max = st.max_size;
            st.max_size = new_max;
            st.effective_max = if st.effective_max >= old_max {
                new_max
            } else {
                st.effective_max.min(new_max)
            };
            debug!(pool = %self.name, old_max, new_max, effective_max = st.effective_max, "resized");
            while st.total() > st.effective_max && !st.idle.is_empty() {
                let entry = st.idle.remove(0);
                self.retire(st, entry, Reason::Closed, Teardown::Close, doomed);
            }
            // Settling after growing lets waiters create.
        });
    }

    /// Stops handing out, closes idle resources, fails waiters with `Closed`, then
    /// waits up to `busy_timeout` for borrowed resources to come back (they are closed
    /// gracefully) and for creations and teardowns in flight. Whatever is still
    /// borrowed after that is aborted when it comes back.
    pub(super) async fn close(self: &Arc<Self>, busy_timeout: Duration) {
        let deadline = deadline(Instant::now(), busy_timeout);
        // Creations racing a hand-off are abandoned, not waited for.
        self.closing.send_replace(true);
        let waiters = self.take(|st, doomed| {
            if st.phase == Phase::Open {
                st.phase = Phase::Draining;
                info!(pool = %self.name, idle = st.idle.len(), active = st.active, waiting = st.waiters.len(), "closing pool");
            }
            for entry in std::mem::take(&mut st.idle) {
                self.retire(st, entry, Reason::Closed, Teardown::Close, doomed);
            }
            st.waiters.drain()
        });
        // Dropping their senders wakes the waiters with `Closed`.
        drop(waiters);
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            // Registered before checking, so a wake-up between the check and the
            // await is not lost.
            drained.as_mut().enable();
            {
                let st = self.lock();
                if st.active + st.opening + st.closing == 0 {
                    break;
                }
            }
            if timeout_at(deadline, drained).await.is_err() {
                break;
            }
        }
        let mut st = self.lock();
        if st.active > 0 {
            info!(pool = %self.name, active = st.active, "pool closed with resources still borrowed: they will be aborted when returned");
        }
        st.phase = Phase::Closed;
    }
}
