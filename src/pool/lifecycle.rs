//! Resizing and closing a pool.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{timeout_at, Instant};
use tracing::{debug, info};

use super::inner::{deadline, Inner, Teardown};
use super::manager::Manager;
use super::stats::Reason;

impl<M: Manager> Inner<M> {
    /// New cap (at least 1). Idle resources beyond it are closed at once, busy ones
    /// when they come back. A cap lowered after a capacity error stays lowered (but
    /// under the new max) and keeps recovering.
    pub(super) fn resize(self: &Arc<Self>, new_max: usize) {
        let new_max = new_max.max(1);
        self.transition(Instant::now(), |st, doomed| {
            let (old_max, beyond) = st.resize(new_max);
            let effective_max = st.view().effective_max;
            debug!(pool = %self.name, old_max, new_max, effective_max, "resized");
            for entry in beyond {
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
            let drain = st.begin_drain();
            if drain.was_open {
                let active = st.view().active;
                info!(pool = %self.name, idle = drain.idle.len(), active, waiting = drain.waiters.len(), "closing pool");
            }
            for entry in drain.idle {
                self.retire(st, entry, Reason::Closed, Teardown::Close, doomed);
            }
            drain.waiters
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
                if self.lock().is_drained() {
                    break;
                }
            }
            if timeout_at(deadline, drained).await.is_err() {
                break;
            }
        }
        let active = self.lock().mark_closed();
        if active > 0 {
            info!(pool = %self.name, active, "pool closed with resources still borrowed: they will be aborted when returned");
        }
    }
}
