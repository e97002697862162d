//! The shared core of a pool: its state under one mutex, and the moves of resources
//! and slots between idle, borrowed, opening and closing.
//!
//! Slot accounting: every resource or reservation occupies one slot while it is idle,
//! borrowed (`active`), being created (`opening`) or being closed (`closing`), and
//! nothing new is created while `idle + active + opening + closing` has reached
//! `effective_max`. Whoever frees a slot or a resource calls [`Inner::settle`], which
//! hands what became available to the best waiter. Critical sections never await and
//! never run resource teardown: resources to close are collected into a [`Doomed`]
//! list and handed to spawned tasks after the lock is released.

use parking_lot::{Mutex, MutexGuard};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{oneshot, Notify, Semaphore};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::error::PoolError;
use super::manager::Manager;
use super::settings::PoolSettings;
use super::stats::{AtomicCounters, LeakSuspect, LockedCounters, Reason, WaitWindow};
use super::waiters::{Priority, WaiterQueue, AGING_STEP};

/// A resource with the pool's bookkeeping.
pub(super) struct Entry<R> {
    pub res: R,
    pub id: u64,
    /// When it last went idle (or was created): drives validation and idle timeouts.
    pub idle_since: Instant,
    pub borrowed_at: Instant,
    /// Creation + jittered `max_lifetime`.
    pub expires_at: Option<Instant>,
    /// Borrows so far, the current one included.
    pub uses: u64,
}

/// What a waiter (or the acquiring caller itself) is given. Plain data: whoever
/// receives it wraps it at once, before any await, into a guard that gives it back
/// if dropped.
pub(super) enum Grant<R> {
    /// A fitting, alive resource, already counted as active.
    Resource(Entry<R>),
    /// A reserved slot (counted in `opening`): create a resource.
    Create,
    /// A non-fitting idle resource whose slot is now reserved (counted in `opening`):
    /// close it, then create.
    Evict(Entry<R>),
}

pub(super) struct Waiter<M: Manager> {
    pub req: M::Request,
    /// Wants a newly created resource (see `acquire_fresh`): never given an idle one.
    pub fresh: bool,
    /// A caller whose own creation is under way: only served a resource someone
    /// gives back (`put_back`), never a slot to create in (`dispatch` skips it).
    pub handoff_only: bool,
    pub tx: oneshot::Sender<Grant<M::Resource>>,
}

impl<M: Manager> Waiter<M> {
    fn wants(&self, manager: &M, res: &M::Resource) -> bool {
        !self.fresh && manager.fits(res, &self.req)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// `close` was called: nothing is handed out; returned resources are closed
    /// gracefully.
    Draining,
    /// `close` gave up waiting for busy resources: they are aborted when returned.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Teardown {
    Close,
    Abort,
}

/// Resources to close or abort once the lock is released.
pub(super) type Doomed<R> = Vec<(R, Teardown)>;

pub(super) struct Borrow {
    pub since: Instant,
    /// Already logged as a suspected leak.
    pub reported: bool,
}

/// What the pool's lock guards. Its fields are private to this module: the other
/// parts of the pool change it through the transitions below (grant and give back
/// live in [`Inner`] here; waiting, timing out, maintenance, resizing and closing
/// through the methods of `State`), so its rules are kept in one place.
pub(super) struct State<M: Manager> {
    phase: Phase,
    /// Least recently used first, so the fast path pops from the back.
    idle: Vec<Entry<M::Resource>>,
    active: usize,
    opening: usize,
    closing: usize,
    max_size: usize,
    effective_max: usize,
    /// Last capacity error, or last step back up after one.
    capacity_mark: Instant,
    /// No background creation before this (set after a failed one).
    replenish_after: Instant,
    /// Background creation has failed since it last succeeded (warned once).
    replenish_failing: bool,
    waiters: WaiterQueue<Waiter<M>>,
    next_id: u64,
    /// Borrow start per resource id; only kept when `leak_threshold` is set.
    borrows: Option<HashMap<u64, Borrow>>,
    counts: LockedCounters,
    waits: WaitWindow,
    /// Creations that failed in a way that says the remote would not take one more
    /// while others were open (the cap was lowered).
    remote_limited: u64,
    /// Creations still under way whose caller was served an open resource first.
    unanswered_opens: usize,
}

impl<M: Manager> State<M> {
    pub(super) fn total(&self) -> usize {
        self.idle.len() + self.active
    }

    pub(super) fn occupied(&self) -> usize {
        self.total() + self.opening + self.closing
    }

    pub(super) fn has_capacity(&self) -> bool {
        self.occupied() < self.effective_max
    }

    pub(super) fn borrow_started(&mut self, entry: &mut Entry<M::Resource>, now: Instant) {
        entry.uses += 1;
        entry.borrowed_at = now;
        self.active += 1;
        self.counts.peak_active = self.counts.peak_active.max(self.active);
        if let Some(borrows) = &mut self.borrows {
            borrows.insert(
                entry.id,
                Borrow {
                    since: now,
                    reported: false,
                },
            );
        }
    }

    pub(super) fn borrow_ended(&mut self, id: u64) {
        self.active = self.active.saturating_sub(1);
        if let Some(borrows) = &mut self.borrows {
            borrows.remove(&id);
        }
    }

    /// Gives back a slot reserved for creation (or eviction).
    pub(super) fn unreserve(&mut self) {
        self.opening = self.opening.saturating_sub(1);
    }

    /// Handing out (not draining or closed).
    pub(super) fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Callers queued for a resource (those only waiting for a hand-off while their
    /// own creation is under way are not counted).
    pub(super) fn waiting(&self) -> usize {
        self.waiters.count(|w| !w.handoff_only)
    }

    /// A caller was served after waiting `waited` (zero: at once).
    pub(super) fn record_wait(&mut self, waited: Duration) {
        self.waits.record(waited);
    }

    /// The error of a caller that finds nothing at once and will not wait.
    pub(super) fn unavailable<E>(&self, pool: &str) -> PoolError<E> {
        timeout_error(pool, self.max_size, self.waiters.len(), Duration::ZERO)
    }

    /// A caller waited `waited` in vain: counted, and the error it gets.
    pub(super) fn record_timeout<E>(&mut self, pool: &str, waited: Duration) -> PoolError<E> {
        let waiters = self.waiters.len();
        self.timed_out(pool, waiters, waited)
    }

    fn timed_out<E>(&mut self, pool: &str, waiters: usize, waited: Duration) -> PoolError<E> {
        self.counts.acquire_timeouts += 1;
        self.waits.record(waited);
        timeout_error(pool, self.max_size, waiters, waited)
    }

    /// A caller turned away because `max_waiters` are already queued.
    pub(super) fn reject_waiter(&mut self) {
        self.counts.rejected_waiters += 1;
    }

    /// Queues a caller; its place in the queue.
    pub(super) fn enqueue(&mut self, priority: Priority, since: Instant, waiter: Waiter<M>) -> u64 {
        self.waiters.push(priority, since, waiter)
    }

    /// Takes a caller out of the queue (it stopped waiting); `None` if a grant was
    /// already sent to it.
    pub(super) fn withdraw(&mut self, priority: Priority, id: u64) -> Option<Waiter<M>> {
        self.waiters.remove(priority, id)
    }

    /// A caller leaves the queue at its deadline: its timeout error, or `None` if
    /// a grant was already sent to it (the waiter is returned to be dropped after
    /// unlocking).
    pub(super) fn withdraw_timed_out<E>(
        &mut self,
        pool: &str,
        priority: Priority,
        id: u64,
        waited: Duration,
    ) -> (Option<Waiter<M>>, Option<PoolError<E>>) {
        let waiters = self.waiters.len();
        let removed = self.waiters.remove(priority, id);
        let err = removed.is_some().then(|| self.timed_out(pool, waiters, waited));
        (removed, err)
    }

    /// A caller was served by an open resource while its own creation goes on.
    pub(super) fn open_overtaken(&mut self) {
        self.unanswered_opens += 1;
    }

    /// A creation whose caller had been served first has ended.
    pub(super) fn open_answered(&mut self) {
        self.unanswered_opens = self.unanswered_opens.saturating_sub(1);
    }

    /// Slots reserved for `n` creations in the background.
    pub(super) fn reserve_opens(&mut self, n: usize) {
        self.opening += n;
    }

    /// Takes out the idle resources `verdict` retires (oldest first; it is told how
    /// many resources the pool holds at that point).
    pub(super) fn take_idle_where(
        &mut self,
        mut verdict: impl FnMut(&mut Entry<M::Resource>, usize) -> Option<(Reason, Teardown)>,
    ) -> Vec<(Entry<M::Resource>, Reason, Teardown)> {
        let mut total = self.total();
        let mut taken = Vec::new();
        let mut i = 0;
        while i < self.idle.len() {
            match verdict(&mut self.idle[i], total) {
                Some((reason, how)) => {
                    taken.push((self.idle.remove(i), reason, how));
                    total -= 1;
                }
                None => i += 1,
            }
        }
        taken
    }

    /// One step back up towards `max_size` after a capacity error, at most every
    /// `step`; the new effective max if it rose.
    pub(super) fn recover_capacity(&mut self, now: Instant, step: Duration) -> Option<usize> {
        if self.effective_max < self.max_size && now.saturating_duration_since(self.capacity_mark) >= step {
            self.effective_max += 1;
            self.capacity_mark = now;
            return Some(self.effective_max);
        }
        None
    }

    /// Borrows held longer than `threshold` not reported yet (now marked reported).
    pub(super) fn newly_leaked(&mut self, now: Instant, threshold: Duration) -> Vec<(u64, Duration)> {
        let mut leaked = Vec::new();
        for (id, borrow) in self.borrows.iter_mut().flatten() {
            let held_for = now.saturating_duration_since(borrow.since);
            if !borrow.reported && held_for > threshold {
                borrow.reported = true;
                leaked.push((*id, held_for));
            }
        }
        leaked
    }

    /// Resources to open in the background to reach `min_size` (none while a failed
    /// background creation is backing off).
    pub(super) fn shortfall(&self, min_size: usize, now: Instant) -> usize {
        if now < self.replenish_after {
            return 0;
        }
        let wanted = min_size.min(self.effective_max);
        let room = self.effective_max.saturating_sub(self.occupied());
        wanted.saturating_sub(self.total() + self.opening).min(room)
    }

    /// A background creation worked; whether it had been failing.
    pub(super) fn background_open_worked(&mut self) -> bool {
        std::mem::take(&mut self.replenish_failing)
    }

    /// A background creation failed: none again before `retry_at`; whether it was
    /// already failing.
    pub(super) fn background_open_failed(&mut self, retry_at: Instant) -> bool {
        self.replenish_after = retry_at;
        std::mem::replace(&mut self.replenish_failing, true)
    }

    /// A new cap: the old one, and the idle resources beyond the new effective max
    /// (oldest first), taken out to be closed.
    pub(super) fn resize(&mut self, new_max: usize) -> (usize, Vec<Entry<M::Resource>>) {
        let old_max = self.max_size;
        self.max_size = new_max;
        self.effective_max = if self.effective_max >= old_max {
            new_max
        } else {
            self.effective_max.min(new_max)
        };
        let mut beyond = Vec::new();
        while self.total() > self.effective_max && !self.idle.is_empty() {
            beyond.push(self.idle.remove(0));
        }
        (old_max, beyond)
    }

    /// Stops handing out: the idle resources (to be closed) and the waiters (to be
    /// told the pool is closed).
    pub(super) fn begin_drain(&mut self) -> Drain<M> {
        let was_open = self.phase == Phase::Open;
        if was_open {
            self.phase = Phase::Draining;
        }
        Drain {
            was_open,
            idle: std::mem::take(&mut self.idle),
            waiters: self.waiters.drain(),
        }
    }

    /// Nothing borrowed, being created or being torn down.
    pub(super) fn is_drained(&self) -> bool {
        self.active + self.opening + self.closing == 0
    }

    /// Closed for good: whatever is still borrowed is aborted when it comes back;
    /// how many are.
    pub(super) fn mark_closed(&mut self) -> usize {
        self.phase = Phase::Closed;
        self.active
    }

    /// The counts of the pool, read for its statistics.
    pub(super) fn view(&self) -> StateView<'_> {
        StateView {
            total: self.total(),
            active: self.active,
            idle: self.idle.len(),
            waiting: self.waiting(),
            opening: self.opening,
            closing: self.closing,
            effective_max: self.effective_max,
            max_size: self.max_size,
            remote_limited: self.remote_limited,
            unanswered_opens: self.unanswered_opens,
            counts: &self.counts,
            wait_samples: self.waits.samples(),
        }
    }
}

/// What a pool that starts draining lets go of.
pub(super) struct Drain<M: Manager> {
    /// It was open until now (not already draining or closed).
    pub was_open: bool,
    /// Its idle resources, to be closed.
    pub idle: Vec<Entry<M::Resource>>,
    /// Its waiters, to be told it is closed.
    pub waiters: Vec<Waiter<M>>,
}

/// The pool's state as its statistics read it.
pub(super) struct StateView<'a> {
    pub total: usize,
    pub active: usize,
    pub idle: usize,
    pub waiting: usize,
    pub opening: usize,
    pub closing: usize,
    pub effective_max: usize,
    pub max_size: usize,
    pub remote_limited: u64,
    pub unanswered_opens: usize,
    pub counts: &'a LockedCounters,
    pub wait_samples: &'a [f64],
}

pub(super) struct Inner<M: Manager> {
    pub name: String,
    pub manager: M,
    pub settings: PoolSettings,
    pub default_request: Option<M::Request>,
    state: Mutex<State<M>>,
    /// Throttles creation to `max_concurrent_opens` at once.
    pub opens: Semaphore,
    /// Signalled whenever a slot is freed while the pool is closing.
    pub drained: Notify,
    /// Set by `close`: creations racing a hand-off are abandoned.
    pub closing: tokio::sync::watch::Sender<bool>,
    pub counters: AtomicCounters,
    /// Whether background creation may run now (see `Pool::set_replenish_gate`).
    pub replenish_gate: parking_lot::RwLock<Option<ReplenishGate>>,
}

/// See `Pool::set_replenish_gate`.
pub(super) type ReplenishGate = Box<dyn Fn() -> bool + Send + Sync>;

impl<M: Manager> Inner<M> {
    pub(super) fn new(name: String, manager: M, settings: PoolSettings, default_request: Option<M::Request>) -> Self {
        let now = Instant::now();
        let max_size = settings.max_size.max(1);
        let opens = settings.max_concurrent_opens.clamp(1, Semaphore::MAX_PERMITS);
        let state = State {
            phase: Phase::Open,
            idle: Vec::with_capacity(max_size),
            active: 0,
            opening: 0,
            closing: 0,
            max_size,
            effective_max: max_size,
            capacity_mark: now,
            replenish_after: now,
            replenish_failing: false,
            waiters: WaiterQueue::new(),
            next_id: 0,
            borrows: settings.leak_threshold.map(|_| HashMap::new()),
            counts: LockedCounters::default(),
            waits: WaitWindow::new(),
            remote_limited: 0,
            unanswered_opens: 0,
        };
        Inner {
            name,
            manager,
            settings,
            default_request,
            state: Mutex::new(state),
            opens: Semaphore::new(opens),
            drained: Notify::new(),
            closing: tokio::sync::watch::Sender::new(false),
            counters: AtomicCounters::default(),
            replenish_gate: parking_lot::RwLock::new(None),
        }
    }

    /// A panic in manager code called under the lock must not make the pool unusable:
    /// the state is kept consistent between statements, so a poisoned lock is taken
    /// over as is.
    pub(super) fn lock(&self) -> MutexGuard<'_, State<M>> {
        self.state.lock()
    }

    pub(super) fn new_entry(&self, st: &mut State<M>, res: M::Resource, now: Instant) -> Entry<M::Resource> {
        st.next_id += 1;
        Entry {
            res,
            id: st.next_id,
            idle_since: now,
            borrowed_at: now,
            expires_at: self
                .settings
                .max_lifetime
                .and_then(jittered)
                .and_then(|lifetime| now.checked_add(lifetime)),
            uses: 0,
        }
    }

    pub(super) fn needs_validation(&self, entry: &Entry<M::Resource>, now: Instant) -> bool {
        self.settings.validate_on_borrow
            && now.saturating_duration_since(entry.idle_since) > self.settings.validation_interval
    }

    /// Takes the most recently used idle resource that fits `req` and is alive,
    /// retiring the stale or expired ones met on the way.
    pub(super) fn take_idle(
        &self,
        st: &mut State<M>,
        req: &M::Request,
        now: Instant,
        allow_validation: bool,
        doomed: &mut Doomed<M::Resource>,
    ) -> Option<Entry<M::Resource>> {
        let mut i = st.idle.len();
        while i > 0 {
            i -= 1;
            let entry = &st.idle[i];
            if !self.manager.fits(&entry.res, req) || (!allow_validation && self.needs_validation(entry, now)) {
                continue;
            }
            let mut entry = st.idle.remove(i);
            if entry.expires_at.is_some_and(|at| now >= at) {
                self.retire(st, entry, Reason::Lifetime, Teardown::Close, doomed);
            } else if !self.manager.is_alive(&mut entry.res) {
                self.retire(st, entry, Reason::Stale, Teardown::Abort, doomed);
            } else {
                return Some(entry);
            }
        }
        None
    }

    /// Counts a retirement; the resource keeps its slot (`closing`) until the
    /// teardown spawned by [`Inner::transition`] has finished.
    pub(super) fn retire(
        &self,
        st: &mut State<M>,
        entry: Entry<M::Resource>,
        reason: Reason,
        teardown: Teardown,
        doomed: &mut Doomed<M::Resource>,
    ) {
        st.closing += 1;
        st.counts.destroyed.count(reason);
        debug!(pool = %self.name, id = entry.id, uses = entry.uses, reason = reason.as_str(), ?teardown, "retiring resource");
        doomed.push((entry.res, teardown));
    }

    /// What the pool can give a caller wanting `req` right now, if anything.
    pub(super) fn grant_for(
        &self,
        st: &mut State<M>,
        req: &M::Request,
        fresh: bool,
        now: Instant,
        doomed: &mut Doomed<M::Resource>,
    ) -> Option<Grant<M::Resource>> {
        if !fresh {
            if let Some(mut entry) = self.take_idle(st, req, now, true, doomed) {
                st.borrow_started(&mut entry, now);
                return Some(Grant::Resource(entry));
            }
        }
        if !st.idle.is_empty() {
            // Idle resources this caller will not take (all of them by now, or any for
            // a fresh one): the least recently used one is closed before creating,
            // even below the cap. At the cap that is what makes room; below it, a
            // remote serving one association at a time (a stock DCMTK storescp) would
            // otherwise queue the new one behind the idle one. Its slot passes
            // straight to the new reservation.
            let entry = st.idle.remove(0);
            st.opening += 1;
            st.counts.destroyed.count(Reason::Evicted);
            debug!(pool = %self.name, id = entry.id, "evicting an idle resource to make room");
            return Some(Grant::Evict(entry));
        }
        if st.has_capacity() {
            st.opening += 1;
            return Some(Grant::Create);
        }
        None
    }

    /// A returned (or new) resource goes to the best waiter it fits, else to idle
    /// (from where `dispatch` may evict it for a waiter it does not fit).
    ///
    /// Bypassing the best waiter for a fitting one further back saves a close and a
    /// create, but could starve a caller with an uncommon request behind a stream of
    /// common ones; so once the best waiter has waited [`AGING_STEP`], it is served
    /// first, by eviction if need be.
    pub(super) fn put_back(&self, st: &mut State<M>, mut entry: Entry<M::Resource>, now: Instant) {
        loop {
            if let Some(head) = st.waiters.best(now, |_| true).and_then(|p| st.waiters.get(p)) {
                if !head.item.wants(&self.manager, &entry.res)
                    && now.saturating_duration_since(head.since) >= AGING_STEP
                {
                    st.idle.push(entry);
                    return;
                }
            }
            let position = st.waiters.best(now, |w| w.wants(&self.manager, &entry.res));
            let Some(queued) = position.and_then(|p| st.waiters.take(p)) else {
                st.idle.push(entry);
                return;
            };
            st.borrow_started(&mut entry, now);
            st.waits.record(now.saturating_duration_since(queued.since));
            match queued.item.tx.send(Grant::Resource(entry)) {
                Ok(()) => return,
                // The waiter went away; unreachable while waiters leave the queue
                // before dropping their receiver, but cheap to handle.
                Err(Grant::Resource(back)) => {
                    entry = back;
                    entry.uses = entry.uses.saturating_sub(1);
                    st.borrow_ended(entry.id);
                }
                Err(other) => {
                    self.undo(st, other);
                    return;
                }
            }
        }
    }

    /// Serves waiters, best first, while there is something to give them.
    fn dispatch(&self, st: &mut State<M>, now: Instant, doomed: &mut Doomed<M::Resource>) {
        while let Some(position) = st.waiters.best(now, |w| !w.handoff_only) {
            let Some(queued) = st.waiters.take(position) else {
                return;
            };
            let (req, fresh) = (&queued.item.req, queued.item.fresh);
            let Some(grant) = self.grant_for(st, req, fresh, now, doomed) else {
                // Nothing idle and no room: nobody further down can be served either.
                st.waiters.restore(position, queued);
                return;
            };
            st.waits.record(now.saturating_duration_since(queued.since));
            if let Err(grant) = queued.item.tx.send(grant) {
                self.undo(st, grant);
            }
        }
    }

    /// Reverses a grant nobody received.
    fn undo(&self, st: &mut State<M>, grant: Grant<M::Resource>) {
        match grant {
            Grant::Resource(mut entry) => {
                entry.uses = entry.uses.saturating_sub(1);
                st.borrow_ended(entry.id);
                st.idle.push(entry);
            }
            Grant::Create => st.unreserve(),
            Grant::Evict(entry) => {
                st.unreserve();
                st.counts.destroyed.uncount(Reason::Evicted);
                st.idle.insert(0, entry);
            }
        }
    }

    /// To be called after anything freed a slot or a resource.
    pub(super) fn settle(&self, st: &mut State<M>, now: Instant, doomed: &mut Doomed<M::Resource>) {
        self.dispatch(st, now, doomed);
        if st.phase != Phase::Open {
            self.drained.notify_waiters();
        }
    }

    /// Closes or aborts resources in spawned tasks; each keeps its slot until done.
    /// Without a runtime (a guard dropped on a plain thread) the resource is just
    /// dropped, which closes its socket.
    fn spawn_teardowns(self: &Arc<Self>, doomed: Doomed<M::Resource>) {
        for (res, teardown) in doomed {
            let slot = ClosingSlot::new(self.clone());
            let inner = self.clone();
            spawn(async move {
                match teardown {
                    Teardown::Close => inner.manager.close(res).await,
                    Teardown::Abort => inner.manager.abort(res).await,
                }
                drop(slot);
            });
        }
    }

    /// Every change of the pool's state goes through here: lock, apply `change`
    /// (which may doom resources), settle (hand what was freed to waiters), unlock,
    /// then start the teardowns outside the lock.
    pub(super) fn transition<R>(
        self: &Arc<Self>,
        now: Instant,
        change: impl FnOnce(&mut State<M>, &mut Doomed<M::Resource>) -> R,
    ) -> R {
        let mut doomed = Vec::new();
        let out = {
            let mut st = self.lock();
            let out = change(&mut st, &mut doomed);
            self.settle(&mut st, now, &mut doomed);
            out
        };
        self.spawn_teardowns(doomed);
        out
    }

    /// Like [`Inner::transition`], for a change that frees nothing (so there is
    /// nothing to settle): taking from the pool.
    pub(super) fn take<R>(self: &Arc<Self>, change: impl FnOnce(&mut State<M>, &mut Doomed<M::Resource>) -> R) -> R {
        let mut doomed = Vec::new();
        let out = change(&mut self.lock(), &mut doomed);
        self.spawn_teardowns(doomed);
        out
    }

    /// A teardown finished: its slot is free.
    pub(super) fn closing_done(self: &Arc<Self>) {
        self.transition(Instant::now(), |st, _| st.closing = st.closing.saturating_sub(1));
    }

    /// A creation slot was given up (creation failed, or its caller went away).
    pub(super) fn reservation_dropped(self: &Arc<Self>) {
        self.transition(Instant::now(), |st, _| st.unreserve());
    }

    /// Why a resource coming back from a borrow cannot be kept, if it cannot.
    fn verdict(&self, entry: &mut Entry<M::Resource>, abort_on_drop: bool, now: Instant) -> Option<(Reason, Teardown)> {
        if abort_on_drop || !self.manager.is_reusable(&entry.res) {
            return Some((Reason::Invalid, Teardown::Abort));
        }
        if !self.manager.is_alive(&mut entry.res) {
            return Some((Reason::Stale, Teardown::Abort));
        }
        if self.settings.max_uses.is_some_and(|max| entry.uses >= max) {
            return Some((Reason::Uses, Teardown::Close));
        }
        if entry.expires_at.is_some_and(|at| now >= at) {
            return Some((Reason::Lifetime, Teardown::Close));
        }
        None
    }

    /// A guard was dropped: back to a waiter or idle, or retired.
    pub(super) fn release(self: &Arc<Self>, mut entry: Entry<M::Resource>, abort_on_drop: bool) {
        let now = Instant::now();
        // Manager checks run before locking: they are the caller's code.
        let verdict = self.verdict(&mut entry, abort_on_drop, now);
        self.transition(now, |st, doomed| {
            st.borrow_ended(entry.id);
            st.counts.releases += 1;
            match (st.phase, verdict) {
                (Phase::Closed, _) => self.retire(st, entry, Reason::Closed, Teardown::Abort, doomed),
                (_, Some((reason, teardown))) => self.retire(st, entry, reason, teardown, doomed),
                (Phase::Draining, None) => self.retire(st, entry, Reason::Closed, Teardown::Close, doomed),
                // More open than the cap after a resize or a capacity error: shrink.
                (Phase::Open, None) if st.total() >= st.effective_max => {
                    self.retire(st, entry, Reason::Closed, Teardown::Close, doomed)
                }
                (Phase::Open, None) => {
                    entry.idle_since = now;
                    self.put_back(st, entry, now);
                }
            }
        });
    }

    /// A borrowed resource is retired on purpose (failed validation, `invalidate`).
    pub(super) fn discard(self: &Arc<Self>, entry: Entry<M::Resource>, reason: Reason) {
        self.transition(Instant::now(), |st, doomed| {
            st.borrow_ended(entry.id);
            st.counts.releases += 1;
            self.retire(st, entry, reason, Teardown::Abort, doomed);
        });
    }

    /// A grant reached a caller that went away before using it.
    pub(super) fn abandon(self: &Arc<Self>, grant: Grant<M::Resource>) {
        let now = Instant::now();
        self.transition(now, |st, doomed| {
            let returned = match grant {
                Grant::Resource(mut entry) => {
                    st.borrow_ended(entry.id);
                    entry.uses = entry.uses.saturating_sub(1);
                    Some(entry)
                }
                Grant::Create => {
                    st.unreserve();
                    None
                }
                Grant::Evict(entry) => {
                    st.unreserve();
                    st.counts.destroyed.uncount(Reason::Evicted);
                    Some(entry)
                }
            };
            if let Some(entry) = returned {
                if st.phase == Phase::Open {
                    self.put_back(st, entry, now);
                } else {
                    self.retire(st, entry, Reason::Closed, Teardown::Close, doomed);
                }
            }
        });
    }

    /// Accounts for a finished creation: the reserved slot becomes the new resource
    /// (`Ok(None)` if the pool closed meanwhile: the resource is then closed), or is
    /// freed. A remote saying it is full caps the pool at what is open now
    /// (maintenance raises the cap again, see `CAPACITY_RECOVERY_STEP`).
    pub(super) fn adopt(
        &self,
        st: &mut State<M>,
        slot: Reservation<M>,
        created: Result<M::Resource, M::Error>,
        now: Instant,
        doomed: &mut Doomed<M::Resource>,
    ) -> Result<Option<Entry<M::Resource>>, M::Error> {
        slot.consume(st);
        let res = match created {
            Ok(res) => res,
            Err(err) => {
                st.counts.create_failures += 1;
                if self.manager.is_capacity_error(&err) {
                    let cap = st.total().clamp(1, st.max_size);
                    warn!(pool = %self.name, effective_max = cap, error = %err, "remote at capacity: lowering the pool's effective max");
                    st.effective_max = cap;
                    st.capacity_mark = now;
                } else if st.total() > 0 && self.manager.is_limit_symptom(&err) {
                    // Another one is open and works: the remote would not take one more.
                    let cap = st.total().clamp(1, st.max_size);
                    if cap < st.effective_max {
                        warn!(pool = %self.name, effective_max = cap, error = %err, "no more could be opened while {cap} were open (the remote's limit, or a limit shared with other processes; see the error): lowering the pool's effective max");
                    }
                    st.effective_max = cap.min(st.effective_max);
                    st.capacity_mark = now;
                    st.remote_limited += 1;
                }
                return Err(err);
            }
        };
        st.counts.created += 1;
        let entry = self.new_entry(st, res, now);
        debug!(pool = %self.name, id = entry.id, "created resource");
        if st.phase == Phase::Open {
            return Ok(Some(entry));
        }
        self.retire(st, entry, Reason::Closed, Teardown::Close, doomed);
        Ok(None)
    }

    /// Borrows held longer than `leak_threshold`.
    pub(super) fn suspects<'a>(&self, st: &'a State<M>, now: Instant) -> impl Iterator<Item = LeakSuspect> + 'a {
        let threshold = self.settings.leak_threshold.unwrap_or(Duration::MAX);
        st.borrows.iter().flatten().filter_map(move |(&id, borrow)| {
            let held_for = now.saturating_duration_since(borrow.since);
            (held_for > threshold).then_some(LeakSuspect { id, held_for })
        })
    }
}

/// `lifetime` scaled by a random factor in [0.9, 1.1], so resources opened together
/// are not all retired (and reopened) in the same instant.
fn jittered(lifetime: Duration) -> Option<Duration> {
    let factor: f64 = rand::rng().random_range(0.9..=1.1);
    Duration::try_from_secs_f64(lifetime.as_secs_f64() * factor).ok()
}

/// Spawns on the current runtime; without one the future is dropped, which releases
/// whatever slot guards it owns.
pub(super) fn spawn<F>(future: F) -> bool
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            drop(handle.spawn(future));
            true
        }
        Err(_) => false,
    }
}

/// `start + timeout`, saturating far in the future for absurd timeouts.
pub(super) fn deadline(start: Instant, timeout: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(365 * 24 * 3600);
    start
        .checked_add(timeout)
        .or_else(|| start.checked_add(FAR))
        .unwrap_or(start)
}

/// A slot counted in `opening`, freed on drop unless it became a resource.
pub(super) struct Reservation<M: Manager> {
    pool: Arc<Inner<M>>,
    armed: bool,
}

impl<M: Manager> Reservation<M> {
    /// Takes charge of a slot already counted in `opening`.
    pub(super) fn new(pool: Arc<Inner<M>>) -> Self {
        Reservation { pool, armed: true }
    }

    /// The slot is being accounted for under the lock by the caller (the resource
    /// was created, or creation failed and the caller frees it itself).
    pub(super) fn consume(mut self, st: &mut State<M>) {
        self.armed = false;
        st.unreserve();
    }
}

impl<M: Manager> Drop for Reservation<M> {
    fn drop(&mut self) {
        if self.armed {
            self.pool.reservation_dropped();
        }
    }
}

/// The slot of a resource being closed or aborted, freed when the teardown is over
/// (or its task is dropped).
pub(super) struct ClosingSlot<M: Manager> {
    pool: Arc<Inner<M>>,
}

impl<M: Manager> ClosingSlot<M> {
    pub(super) fn new(pool: Arc<Inner<M>>) -> Self {
        ClosingSlot { pool }
    }
}

impl<M: Manager> Drop for ClosingSlot<M> {
    fn drop(&mut self) {
        self.pool.closing_done();
    }
}

fn timeout_error<E>(pool: &str, max_size: usize, waiters: usize, waited: Duration) -> PoolError<E> {
    PoolError::Timeout {
        pool: pool.to_owned(),
        max_size,
        waiters,
        waited,
    }
}
