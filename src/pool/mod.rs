//! A generic, DICOM-agnostic pool of resources (associations), in the spirit of
//! deadpool's `Manager`: reuse by capability, a hard cap on live resources, FIFO
//! waiting with a timeout, a creation throttle, liveness and validation checks on
//! borrow, idle/lifetime/uses retirement, and adapting the cap to a remote that
//! says it is at capacity.
//!
//! Invariants: a *permit* of `slots` is the right to borrow; live resources (idle +
//! borrowed + being created) never exceed the effective max; every exit path of
//! `acquire` (including its future being dropped) gives back what it took.

mod guard;
mod manager;
mod stats;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

pub use guard::Pooled;
pub use manager::Manager;
pub use stats::{DestroyedStats, PoolStats, WaitStats};

use crate::config::PoolSettings;
use stats::{inc, Counters};

/// How a borrow can fail.
#[derive(Debug, thiserror::Error)]
pub enum PoolError<E> {
    #[error("pool exhausted: node {pool}, max_size {max_size}, {waiters} waiters, waited {waited:.1?}")]
    Timeout {
        pool: String,
        max_size: usize,
        waiters: usize,
        waited: Duration,
    },
    #[error("pool for node {pool}: {max_waiters} callers already waiting (max_waiters)")]
    TooManyWaiters { pool: String, max_waiters: usize },
    #[error("pool for node {pool} is closed")]
    Closed { pool: String },
    #[error(transparent)]
    Create(E),
    #[error("validation failed: {0}")]
    Validation(E),
}

/// Window of acquire wait samples kept for percentiles.
const WAIT_SAMPLES: usize = 1024;
/// How often maintenance runs at most.
const MAINTENANCE_TICK: Duration = Duration::from_millis(500);
/// Quiet time after a capacity rejection before the effective max grows by one.
const ADAPT_INTERVAL: Duration = Duration::from_secs(5);

struct IdleEntry<R> {
    res: R,
    id: u64,
    created: Instant,
    expires: Option<Instant>,
    idle_since: Instant,
    uses: u64,
}

struct State<R> {
    idle: Vec<IdleEntry<R>>,
    /// Idle + borrowed + being created.
    live: usize,
    active: usize,
    waiting: usize,
    opening: usize,
    peak_active: usize,
    effective_max: usize,
    max_size: usize,
    /// Permits to forget as they come back (after the cap was lowered).
    permit_debt: usize,
    last_capacity_error: Option<Instant>,
    waits: VecDeque<f64>,
    next_id: u64,
}

pub(crate) struct Inner<M: Manager> {
    name: String,
    manager: M,
    settings: PoolSettings,
    slots: Arc<Semaphore>,
    opens: Semaphore,
    state: Mutex<State<M::Resource>>,
    counters: Counters,
    closed: AtomicBool,
    in_close: AtomicUsize,
}

impl<M: Manager> Inner<M> {
    fn lock(&self) -> MutexGuard<'_, State<M::Resource>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Retire a resource in the background (graceful close or abort).
    fn retire(self: &Arc<Self>, res: M::Resource, graceful: bool) {
        let inner = self.clone();
        let fut = async move {
            if graceful {
                inner.manager.close(res).await
            } else {
                inner.manager.abort(res).await
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(fut);
            }
            Err(_) => drop(fut),
        }
    }

    fn lifetime_deadline(&self, created: Instant) -> Option<Instant> {
        let life = self.settings.max_lifetime?;
        // ±10% so associations opened together do not all expire together.
        let jitter = rand::random_range(0.9..=1.1);
        created.checked_add(life.mul_f64(jitter))
    }
}

/// A pool of resources for one node. Cheap to clone.
pub struct Pool<M: Manager> {
    inner: Arc<Inner<M>>,
}

impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Pool {
            inner: self.inner.clone(),
        }
    }
}

impl<M: Manager> Pool<M> {
    /// A pool named after its node. Starts the maintenance task (needs a tokio
    /// runtime) and, with `warm_request`, opens `min_size` resources in the
    /// background (failures are logged, not fatal).
    pub fn new(name: impl Into<String>, manager: M, settings: PoolSettings, warm_request: Option<M::Request>) -> Self {
        let max = settings.max_size.max(1);
        let inner = Arc::new(Inner {
            name: name.into(),
            manager,
            slots: Arc::new(Semaphore::new(max)),
            opens: Semaphore::new(settings.max_concurrent_opens.max(1)),
            state: Mutex::new(State {
                idle: Vec::new(),
                live: 0,
                active: 0,
                waiting: 0,
                opening: 0,
                peak_active: 0,
                effective_max: max,
                max_size: max,
                permit_debt: 0,
                last_capacity_error: None,
                waits: VecDeque::with_capacity(WAIT_SAMPLES),
                next_id: 1,
            }),
            settings,
            counters: Counters::default(),
            closed: AtomicBool::new(false),
            in_close: AtomicUsize::new(0),
        });
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(maintenance(Arc::downgrade(&inner), warm_request));
        }
        Pool { inner }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn settings(&self) -> &PoolSettings {
        &self.inner.settings
    }

    pub fn manager(&self) -> &M {
        &self.inner.manager
    }

    /// Borrow a resource fitting `req`, waiting at most `acquire_timeout`.
    pub async fn acquire(&self, req: &M::Request) -> Result<Pooled<M>, PoolError<M::Error>> {
        self.acquire_inner(req, false).await
    }

    /// Borrow a newly created resource (after a reused one proved stale).
    pub async fn acquire_fresh(&self, req: &M::Request) -> Result<Pooled<M>, PoolError<M::Error>> {
        self.acquire_inner(req, true).await
    }

    /// Borrow a fitting idle resource without waiting and without creating one
    /// (creation is a network round trip); `Timeout` with zero wait otherwise.
    pub fn try_acquire(&self, req: &M::Request) -> Result<Pooled<M>, PoolError<M::Error>> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::SeqCst) {
            return Err(PoolError::Closed {
                pool: inner.name.clone(),
            });
        }
        let exhausted = || {
            let st = inner.lock();
            PoolError::Timeout {
                pool: inner.name.clone(),
                max_size: st.max_size,
                waiters: st.waiting,
                waited: Duration::ZERO,
            }
        };
        let permit = inner.slots.clone().try_acquire_owned().map_err(|_| exhausted())?;
        let mut st = inner.lock();
        while let Some(pos) = st.idle.iter().rposition(|e| inner.manager.fits(&e.res, req)) {
            let mut entry = st.idle.swap_remove(pos);
            if inner.manager.is_alive(&mut entry.res) {
                drop(st);
                return Ok(self.hand_out(
                    entry.res,
                    entry.id,
                    entry.created,
                    entry.expires,
                    entry.uses,
                    true,
                    permit,
                    Duration::ZERO,
                ));
            }
            st.live -= 1;
            inc(&inner.counters.d_stale);
            inner.retire(entry.res, false);
        }
        Err(exhausted())
    }

    async fn acquire_inner(&self, req: &M::Request, fresh: bool) -> Result<Pooled<M>, PoolError<M::Error>> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::SeqCst) {
            return Err(PoolError::Closed {
                pool: inner.name.clone(),
            });
        }
        let started = Instant::now();
        let permit = match inner.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                {
                    let mut st = inner.lock();
                    if let Some(max) = inner.settings.max_waiters {
                        if st.waiting >= max {
                            inc(&inner.counters.rejected_waiters);
                            return Err(PoolError::TooManyWaiters {
                                pool: inner.name.clone(),
                                max_waiters: max,
                            });
                        }
                    }
                    st.waiting += 1;
                }
                let _waiting = WaitingGuard(inner);
                match tokio::time::timeout(inner.settings.acquire_timeout, inner.slots.clone().acquire_owned()).await {
                    Ok(Ok(p)) => p,
                    Ok(Err(_)) => {
                        return Err(PoolError::Closed {
                            pool: inner.name.clone(),
                        })
                    }
                    Err(_) => {
                        inc(&inner.counters.acquire_timeouts);
                        let st = inner.lock();
                        return Err(PoolError::Timeout {
                            pool: inner.name.clone(),
                            max_size: st.max_size,
                            waiters: st.waiting,
                            waited: started.elapsed(),
                        });
                    }
                }
            }
        };
        if inner.closed.load(Ordering::SeqCst) {
            return Err(PoolError::Closed {
                pool: inner.name.clone(),
            });
        }
        let waited = started.elapsed();

        // Reuse a fitting idle one (most recently used first), checked.
        if !fresh {
            loop {
                let entry = {
                    let mut st = inner.lock();
                    match st.idle.iter().rposition(|e| inner.manager.fits(&e.res, req)) {
                        Some(pos) => st.idle.swap_remove(pos),
                        None => break,
                    }
                };
                let mut entry = entry;
                if !inner.manager.is_alive(&mut entry.res) {
                    inner.lock().live -= 1;
                    inc(&inner.counters.d_stale);
                    inner.retire(entry.res, false);
                    continue;
                }
                if inner.settings.validate_on_borrow && entry.idle_since.elapsed() > inner.settings.validation_interval
                {
                    inc(&inner.counters.validations);
                    if let Err(e) = inner.manager.validate(&mut entry.res).await {
                        tracing::debug!(pool = %inner.name, error = %e, "validation failed; discarding");
                        inc(&inner.counters.validation_failures);
                        inc(&inner.counters.d_invalid);
                        inner.lock().live -= 1;
                        inner.retire(entry.res, false);
                        continue;
                    }
                }
                return Ok(self.hand_out(
                    entry.res,
                    entry.id,
                    entry.created,
                    entry.expires,
                    entry.uses,
                    true,
                    permit,
                    waited,
                ));
            }
        }

        // Make room: close an idle one that does not fit. At the cap this is needed;
        // below it, it still is against remotes that serve one association at a time
        // (a stock DCMTK storescp would queue the new one behind the idle one).
        let slot = {
            let mut st = inner.lock();
            if st.live >= st.effective_max || !st.idle.is_empty() {
                if st.idle.is_empty() {
                    None
                } else {
                    let victim = st.idle.remove(0);
                    st.live -= 1;
                    inc(&inner.counters.d_evicted);
                    inner.retire(victim.res, true);
                    st.live += 1;
                    st.opening += 1;
                    Some(())
                }
            } else {
                st.live += 1;
                st.opening += 1;
                Some(())
            }
        };
        if slot.is_none() {
            // Every live resource is borrowed (the cap was lowered under us).
            inc(&inner.counters.acquire_timeouts);
            let st = inner.lock();
            return Err(PoolError::Timeout {
                pool: inner.name.clone(),
                max_size: st.effective_max,
                waiters: st.waiting,
                waited,
            });
        }
        let reservation = Reservation { inner, armed: true };
        let created = {
            let _open = inner.opens.acquire().await;
            inner.manager.create(req).await
        };
        match created {
            Ok(res) => {
                reservation.disarm();
                inc(&inner.counters.created);
                let id = {
                    let mut st = inner.lock();
                    st.opening -= 1;
                    st.next_id += 1;
                    st.next_id
                };
                let now = Instant::now();
                Ok(self.hand_out(res, id, now, inner.lifetime_deadline(now), 0, false, permit, waited))
            }
            Err(e) => {
                inc(&inner.counters.create_failures);
                if inner.manager.is_capacity_error(&e) {
                    let mut st = inner.lock();
                    let lowered = (st.live - 1).max(1);
                    if lowered < st.effective_max {
                        st.permit_debt += st.effective_max - lowered;
                        tracing::info!(pool = %inner.name, from = st.effective_max, to = lowered, "remote at capacity: lowering the effective max");
                        st.effective_max = lowered;
                    }
                    st.last_capacity_error = Some(Instant::now());
                }
                drop(reservation);
                Err(PoolError::Create(e))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn hand_out(
        &self,
        res: M::Resource,
        id: u64,
        created: Instant,
        expires: Option<Instant>,
        uses: u64,
        reused: bool,
        permit: OwnedSemaphorePermit,
        waited: Duration,
    ) -> Pooled<M> {
        let inner = &self.inner;
        inc(&inner.counters.acquisitions);
        {
            let mut st = inner.lock();
            st.active += 1;
            st.peak_active = st.peak_active.max(st.active);
            if st.waits.len() == WAIT_SAMPLES {
                st.waits.pop_front();
            }
            st.waits.push_back(waited.as_secs_f64() * 1000.0);
        }
        Pooled::new(inner.clone(), res, id, created, expires, uses, reused, permit)
    }

    /// Change the cap.
    pub fn resize(&self, new_max: usize) {
        let new_max = new_max.max(1);
        let inner = &self.inner;
        let mut st = inner.lock();
        let old = st.effective_max;
        st.max_size = new_max;
        if new_max > old {
            inner.slots.add_permits(new_max - old);
        } else {
            st.permit_debt += old - new_max;
        }
        st.effective_max = new_max;
        while st.live > new_max && !st.idle.is_empty() {
            let e = st.idle.remove(0);
            st.live -= 1;
            inc(&inner.counters.d_closed);
            inner.retire(e.res, true);
        }
        settle_debt(inner, &mut st);
    }

    /// Stop handing out; A-RELEASE idle resources; wait for borrowed ones up to
    /// `busy_timeout` (they are aborted when they come back after that).
    pub async fn close(&self, busy_timeout: Duration) {
        let inner = &self.inner;
        inner.closed.store(true, Ordering::SeqCst);
        inner.slots.close();
        let idle: Vec<_> = {
            let mut st = inner.lock();
            let v: Vec<_> = st.idle.drain(..).collect();
            st.live -= v.len();
            v
        };
        inner.in_close.fetch_add(idle.len(), Ordering::SeqCst);
        let closes = idle.into_iter().map(|e| {
            inc(&inner.counters.d_closed);
            inner.manager.close(e.res)
        });
        futures::future::join_all(closes).await;
        let deadline = Instant::now() + busy_timeout;
        for _ in 0..10_000 {
            if inner.lock().active == 0 || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Count an operation redone on a fresh resource after a stale reused one.
    pub fn record_stale_redo(&self) {
        inc(&self.inner.counters.stale_redos);
    }

    pub fn stats(&self) -> PoolStats {
        let inner = &self.inner;
        let c = &inner.counters;
        let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let st = inner.lock();
        let waits: Vec<f64> = st.waits.iter().copied().collect();
        PoolStats {
            pool: inner.name.clone(),
            total: st.live,
            active: st.active,
            idle: st.idle.len(),
            waiting: st.waiting,
            opening: st.opening,
            effective_max: st.effective_max,
            max_size: st.max_size,
            acquisitions: g(&c.acquisitions),
            releases: g(&c.releases),
            acquire_timeouts: g(&c.acquire_timeouts),
            rejected_waiters: g(&c.rejected_waiters),
            created: g(&c.created),
            create_failures: g(&c.create_failures),
            destroyed: c.destroyed(),
            validations: g(&c.validations),
            validation_failures: g(&c.validation_failures),
            stale_redos: g(&c.stale_redos),
            peak_active: st.peak_active,
            wait: stats::wait_stats(&waits),
        }
    }
}

/// Forget available permits the cap no longer allows.
fn settle_debt<M: Manager>(inner: &Inner<M>, st: &mut State<M::Resource>) {
    if st.permit_debt > 0 {
        let forgotten = inner.slots.forget_permits(st.permit_debt);
        st.permit_debt -= forgotten;
    }
}

/// Counts a caller as waiting while it waits (a dropped future stops counting).
struct WaitingGuard<'a, M: Manager>(&'a Inner<M>);

impl<M: Manager> Drop for WaitingGuard<'_, M> {
    fn drop(&mut self) {
        self.0.lock().waiting -= 1;
    }
}

/// A live slot taken for a resource being created; given back unless disarmed
/// (creation failed, or the acquire future was dropped mid-creation).
struct Reservation<'a, M: Manager> {
    inner: &'a Inner<M>,
    armed: bool,
}

impl<M: Manager> Reservation<'_, M> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl<M: Manager> Drop for Reservation<'_, M> {
    fn drop(&mut self) {
        if self.armed {
            let mut st = self.inner.lock();
            st.live -= 1;
            st.opening -= 1;
        }
    }
}

/// Retire idle resources past `max_idle_time` (keeping `min_size`) or their
/// lifetime, keep `min_size` warm, and grow a lowered effective max back.
async fn maintenance<M: Manager>(weak: Weak<Inner<M>>, warm: Option<M::Request>) {
    let tick = {
        let Some(inner) = weak.upgrade() else { return };
        let s = &inner.settings;
        MAINTENANCE_TICK.min(s.max_idle_time / 2).max(Duration::from_millis(50))
    };
    loop {
        {
            let Some(inner) = weak.upgrade() else { return };
            if inner.closed.load(Ordering::SeqCst) {
                return;
            }
            let now = Instant::now();
            let mut warm_needed = 0;
            {
                let mut st = inner.lock();
                let min = inner.settings.min_size;
                let mut i = 0;
                while i < st.idle.len() {
                    let e = &st.idle[i];
                    let expired = e.expires.is_some_and(|t| now >= t);
                    let idle_too_long =
                        now.duration_since(e.idle_since) > inner.settings.max_idle_time && st.live > min;
                    if expired || idle_too_long {
                        let e = st.idle.swap_remove(i);
                        st.live -= 1;
                        inc(if expired {
                            &inner.counters.d_lifetime
                        } else {
                            &inner.counters.d_idle
                        });
                        inner.retire(e.res, true);
                    } else {
                        i += 1;
                    }
                }
                if st.effective_max < st.max_size
                    && st
                        .last_capacity_error
                        .is_none_or(|t| now.duration_since(t) >= ADAPT_INTERVAL)
                {
                    st.effective_max += 1;
                    st.last_capacity_error = Some(now);
                    if st.permit_debt > 0 {
                        st.permit_debt -= 1;
                    } else {
                        inner.slots.add_permits(1);
                    }
                }
                if warm.is_some() && st.live < min.min(st.effective_max) {
                    warm_needed = min.min(st.effective_max) - st.live;
                    st.live += warm_needed;
                    st.opening += warm_needed;
                }
            }
            if let Some(req) = &warm {
                for _ in 0..warm_needed {
                    let inner = inner.clone();
                    let req = req.clone();
                    tokio::spawn(async move {
                        let res = {
                            let _open = inner.opens.acquire().await;
                            inner.manager.create(&req).await
                        };
                        let mut st = inner.lock();
                        st.opening -= 1;
                        match res {
                            Ok(res) if !inner.closed.load(Ordering::SeqCst) => {
                                inc(&inner.counters.created);
                                st.next_id += 1;
                                let now = Instant::now();
                                let entry = IdleEntry {
                                    res,
                                    id: st.next_id,
                                    created: now,
                                    expires: inner.lifetime_deadline(now),
                                    idle_since: now,
                                    uses: 0,
                                };
                                st.idle.push(entry);
                            }
                            Ok(res) => {
                                st.live -= 1;
                                inner.retire(res, true);
                            }
                            Err(e) => {
                                st.live -= 1;
                                inc(&inner.counters.create_failures);
                                tracing::debug!(pool = %inner.name, error = %e, "warm-up failed");
                            }
                        }
                    });
                }
            }
        }
        tokio::time::sleep(tick).await;
    }
}

#[cfg(test)]
mod tests;
