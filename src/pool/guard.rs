//! The borrow guard: derefs to the resource; on drop it goes back to the pool, or
//! is retired (aborted when in an unknown state), and its permit is released.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::stats::inc;
use super::{settle_debt, IdleEntry, Inner, Manager};

/// A borrowed resource.
pub struct Pooled<M: Manager> {
    inner: Arc<Inner<M>>,
    res: Option<M::Resource>,
    id: u64,
    created: Instant,
    expires: Option<Instant>,
    uses: u64,
    reused: bool,
    invalid: bool,
    borrowed_at: Instant,
    permit: Option<OwnedSemaphorePermit>,
}

impl<M: Manager> Pooled<M> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        inner: Arc<Inner<M>>,
        res: M::Resource,
        id: u64,
        created: Instant,
        expires: Option<Instant>,
        uses: u64,
        reused: bool,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        Pooled {
            inner,
            res: Some(res),
            id,
            created,
            expires,
            uses,
            reused,
            invalid: false,
            borrowed_at: Instant::now(),
            permit: Some(permit),
        }
    }

    /// Abort it instead of returning it to the pool.
    pub fn invalidate(mut self) {
        self.invalid = true;
    }

    /// Whether it came from the idle list (rather than being created for this borrow).
    pub fn is_reused(&self) -> bool {
        self.reused
    }

    /// Operations done on it before this borrow.
    pub fn uses(&self) -> u64 {
        self.uses
    }

    pub fn borrowed_for(&self) -> Duration {
        self.borrowed_at.elapsed()
    }

    /// The pool's id of this resource.
    pub fn pool_id(&self) -> u64 {
        self.id
    }
}

impl<M: Manager> Deref for Pooled<M> {
    type Target = M::Resource;
    fn deref(&self) -> &M::Resource {
        // Only `Drop` takes it out.
        self.res
            .as_ref()
            .unwrap_or_else(|| unreachable!("resource taken before drop"))
    }
}

impl<M: Manager> DerefMut for Pooled<M> {
    fn deref_mut(&mut self) -> &mut M::Resource {
        self.res
            .as_mut()
            .unwrap_or_else(|| unreachable!("resource taken before drop"))
    }
}

impl<M: Manager> Drop for Pooled<M> {
    fn drop(&mut self) {
        let Some(res) = self.res.take() else { return };
        let inner = &self.inner;
        inc(&inner.counters.releases);
        let uses = self.uses + 1;
        let closed = inner.closed.load(Ordering::SeqCst);
        let reusable = !self.invalid && inner.manager.is_reusable(&res);
        let used_up = inner.settings.max_uses.is_some_and(|m| uses >= m);
        let expired = self.expires.is_some_and(|t| Instant::now() >= t);
        let mut st = inner.lock();
        st.active -= 1;
        let over_cap = st.live > st.effective_max;
        if reusable && !closed && !used_up && !expired && !over_cap {
            st.idle.push(IdleEntry {
                res,
                id: self.id,
                created: self.created,
                expires: self.expires,
                idle_since: Instant::now(),
                uses,
            });
        } else {
            st.live -= 1;
            let graceful = reusable;
            inc(if !reusable {
                &inner.counters.d_invalid
            } else if used_up {
                &inner.counters.d_uses
            } else if expired {
                &inner.counters.d_lifetime
            } else {
                &inner.counters.d_closed
            });
            inner.retire(res, graceful);
        }
        // Give the borrow right back, unless the cap was lowered and it is owed.
        if let Some(permit) = self.permit.take() {
            if st.permit_debt > 0 {
                st.permit_debt -= 1;
                permit.forget();
            } else {
                drop(permit);
            }
        }
        settle_debt(inner, &mut st);
    }
}
