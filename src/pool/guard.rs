//! [`Pooled`]: the borrowed resource, given back to the pool when dropped.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::inner::{Entry, Inner};
use super::manager::Manager;
use super::stats::Reason;

/// A borrowed resource. Derefs to `M::Resource`.
///
/// On drop it goes back to the pool — to the best waiter it fits, else to idle — if
/// the manager says it [is reusable](Manager::is_reusable), it is alive, and the pool
/// is open; otherwise it is retired (aborted if in doubt) in a spawned task, or
/// simply dropped when there is no tokio runtime on the dropping thread.
pub struct Pooled<M: Manager> {
    /// `None` only once `drop` or `invalidate` has taken it; both consume the guard,
    /// so every other method sees `Some`.
    entry: Option<Entry<M::Resource>>,
    pool: Arc<Inner<M>>,
    reused: bool,
    /// Set while the resource is in a state a cancelled future would leave unknown
    /// (validation in flight): dropping the guard then aborts it.
    abort_on_drop: bool,
}

impl<M: Manager> Pooled<M> {
    pub(super) fn new(pool: Arc<Inner<M>>, entry: Entry<M::Resource>, reused: bool) -> Self {
        Pooled {
            entry: Some(entry),
            pool,
            reused,
            abort_on_drop: false,
        }
    }

    pub(super) fn entry(&self) -> &Entry<M::Resource> {
        self.entry.as_ref().expect("a live guard holds its resource")
    }

    fn entry_mut(&mut self) -> &mut Entry<M::Resource> {
        self.entry.as_mut().expect("a live guard holds its resource")
    }

    pub(super) fn set_abort_on_drop(&mut self, abort_on_drop: bool) {
        self.abort_on_drop = abort_on_drop;
    }

    pub(super) fn discard(mut self, reason: Reason) {
        if let Some(entry) = self.entry.take() {
            self.pool.discard(entry, reason);
        }
    }

    /// Retires the resource (aborted, counted as "invalid") instead of returning it:
    /// for a resource the caller knows to be broken.
    pub fn invalidate(self) {
        self.discard(Reason::Invalid);
    }

    /// Did it come from idle (true) or was it created for this borrow (false)? A
    /// failure on a reused resource may just mean it went stale while idle: worth a
    /// transparent redo on [`Pool::acquire_fresh`](super::Pool::acquire_fresh).
    pub fn is_reused(&self) -> bool {
        self.reused
    }

    /// Borrows of this resource so far, this one included.
    pub fn uses(&self) -> u64 {
        self.entry().uses
    }

    /// How long this borrow has lasted.
    pub fn borrowed_for(&self) -> Duration {
        Instant::now().saturating_duration_since(self.entry().borrowed_at)
    }

    /// The resource's id within its pool (as in [`LeakSuspect`](super::LeakSuspect)).
    pub fn id(&self) -> u64 {
        self.entry().id
    }
}

impl<M: Manager> Deref for Pooled<M> {
    type Target = M::Resource;

    fn deref(&self) -> &M::Resource {
        &self.entry().res
    }
}

impl<M: Manager> DerefMut for Pooled<M> {
    fn deref_mut(&mut self) -> &mut M::Resource {
        &mut self.entry_mut().res
    }
}

impl<M: Manager> Drop for Pooled<M> {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            self.pool.release(entry, self.abort_on_drop);
        }
    }
}

impl<M: Manager> fmt::Debug for Pooled<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Pooled");
        out.field("pool", &self.pool.name);
        if let Some(entry) = &self.entry {
            out.field("id", &entry.id).field("uses", &entry.uses);
        }
        out.field("reused", &self.reused).finish_non_exhaustive()
    }
}
