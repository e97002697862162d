//! Acquisition: a fitting idle resource under one short lock (the fast path), else the
//! slot of an idle resource this caller will not use (closed first, "evicted"), else
//! a free slot, else a place in the waiter queue until one of those is handed over.
//! Creation in a slot is throttled by `max_concurrent_opens`.
//!
//! The wait for a hand-off, for a creation permit, and the validation of idle
//! resources (each stale one would otherwise cost the manager's whole timeout) are
//! bounded by `acquire_timeout`; creation is bounded by the manager's own timeouts,
//! because cancelling it half-way would waste a connection being set up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::{timeout_at, Instant};
use tracing::debug;

use super::error::PoolError;
use super::guard::Pooled;
use super::inner::{deadline, spawn, Doomed, Grant, Inner, Reservation, State, Waiter};
use super::manager::Manager;
use super::progress::{AcquirePhase, AcquireProgress};
use super::slots::{WaitTicket, Waited};
use super::stats::{AtomicCounters, Reason};
use super::waiters::Priority;

/// What [`Inner::create`] came to.
enum Created<M: Manager> {
    Ready(Pooled<M>),
    /// The remote took no more while others were open: wait for one of those.
    Requeue,
}

/// How a creation task ended, for the caller that may still be waiting for it.
enum Finished<M: Manager> {
    /// Already counted as borrowed by the caller.
    Created(super::inner::Entry<M::Resource>),
    Failed {
        error: M::Error,
        limited: bool,
    },
    /// No creation permit (`max_concurrent_opens`) within the acquire timeout.
    TimedOut,
    Closed,
}

/// The caller's end of its creation task: dropped (the caller cancelled) with a
/// new resource in it, the resource goes back to the pool.
struct CreationRx<M: Manager> {
    pool: Arc<Inner<M>>,
    rx: oneshot::Receiver<Finished<M>>,
}

impl<M: Manager> Drop for CreationRx<M> {
    fn drop(&mut self) {
        if let Ok(Finished::Created(entry)) = self.rx.try_recv() {
            self.pool.abandon(Grant::Resource(entry));
        }
    }
}

/// Shared by a caller and its creation task, changed under the pool lock.
#[derive(Default)]
struct Race {
    /// The caller took a resource given back instead.
    overtaken: AtomicBool,
    /// The creation task has accounted for its outcome.
    finished: AtomicBool,
}

/// Runs `manager.create` in a task of its own (abandoned when the pool closes),
/// adopts the outcome under the lock, and hands it to the caller, or, if the
/// caller went away or was served otherwise, to the pool.
fn spawn_creation<M: Manager>(
    pool: Arc<Inner<M>>,
    slot: Reservation<M>,
    req: M::Request,
    race: Arc<Race>,
    deadline: Instant,
    mut tx: oneshot::Sender<Finished<M>>,
) {
    let task = async move {
        let mut closing = pool.closing.subscribe();
        let creation = async {
            // Throttled by `max_concurrent_opens`; a caller served by an open
            // resource while this waited for its turn needs no creation at all.
            let Ok(Ok(permit)) = timeout_at(deadline, pool.opens.acquire()).await else {
                return Some(None);
            };
            if race.overtaken.load(Ordering::SeqCst) {
                return None;
            }
            let created = pool.manager.create(&req).await;
            drop(permit);
            Some(Some(created))
        };
        // A caller that went away (cancelled, timed out) without being served
        // otherwise takes its creation with it; one served by an open resource
        // lets it finish, for the pool.
        let abandoned = async {
            tx.closed().await;
            if race.overtaken.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
        };
        let created = tokio::select! {
            created = creation => created,
            _ = closing.wait_for(|closing| *closing) => None,
            _ = abandoned => None,
        };
        let created = match created {
            Some(Some(created)) => created,
            // Nothing created: no permit within the acquire timeout, the pool is
            // closing, or nobody wants it any more.
            not_created => {
                {
                    let mut st = pool.lock();
                    race.finished.store(true, Ordering::SeqCst);
                    if race.overtaken.load(Ordering::SeqCst) {
                        st.open_answered();
                    }
                }
                // The reservation's guard frees the slot.
                drop(slot);
                let _ = tx.send(match not_created {
                    Some(None) => Finished::TimedOut,
                    _ => Finished::Closed,
                });
                return;
            }
        };
        let now = Instant::now();
        let finished = pool.transition(now, |st, doomed| {
            let limited = match &created {
                // Only while another one is open is there one to queue on.
                Err(e) => st.total() > 0 && (pool.manager.is_capacity_error(e) || pool.manager.is_limit_symptom(e)),
                Ok(_) => false,
            };
            let finished = match pool.adopt(st, slot, created, now, doomed) {
                Ok(Some(mut entry)) => {
                    st.borrow_started(&mut entry, now);
                    Finished::Created(entry)
                }
                Ok(None) => Finished::Closed,
                Err(error) => {
                    debug!(pool = %pool.name, error = %error, "creation failed");
                    Finished::Failed { error, limited }
                }
            };
            race.finished.store(true, Ordering::SeqCst);
            if race.overtaken.load(Ordering::SeqCst) {
                st.open_answered();
            }
            finished
        });
        // Nobody waiting for it any more: a new resource goes to the pool.
        if let Err(Finished::Created(entry)) = tx.send(finished) {
            pool.abandon(Grant::Resource(entry));
        }
    };
    // Without a runtime the task is dropped unrun: its slot guard frees the slot,
    // and the caller, its channel closed, reports the pool as gone.
    spawn(task);
}

/// What a caller asked of [`Inner::acquire`], handed on to the creation.
struct Ask<'a, M: Manager> {
    req: &'a M::Request,
    priority: Priority,
    fresh: bool,
    start: Instant,
    deadline: Instant,
    progress: Option<&'a AcquireProgress>,
}

enum Begin<M: Manager> {
    Ready(Grant<M::Resource>),
    Wait(WaitTicket<M>),
}

impl<M: Manager> Inner<M> {
    pub(super) async fn acquire(
        self: &Arc<Self>,
        req: &M::Request,
        priority: Priority,
        fresh: bool,
        progress: Option<&AcquireProgress>,
    ) -> Result<Pooled<M>, PoolError<M::Error>> {
        let start = Instant::now();
        let deadline = deadline(start, self.settings.acquire_timeout);
        let mut now = start;
        let mut validation_error = None;
        loop {
            AcquireProgress::set(progress, AcquirePhase::Waiting);
            // Each grant is wrapped in its drop guard before the next await.
            let grant = match self.begin(req, priority, fresh, start, now)? {
                Begin::Ready(grant) => grant,
                Begin::Wait(mut ticket) => match ticket.wait(deadline).await {
                    Waited::Granted(grant) => grant,
                    Waited::Closed => return Err(self.closed()),
                    Waited::TimedOut(err) => return Err(validation_error.map_or(err, PoolError::Validation)),
                },
            };
            match grant {
                Grant::Resource(entry) => {
                    let mut pooled = Pooled::new(self.clone(), entry, true);
                    AcquireProgress::set(progress, AcquirePhase::Validating);
                    // Validation is bounded by the acquire deadline too: a stale
                    // association must not cost a whole DIMSE timeout per try.
                    match timeout_at(deadline, self.check_out(&mut pooled)).await {
                        Ok(Ok(())) => {
                            AtomicCounters::bump(&self.counters.acquisitions);
                            AcquireProgress::set(progress, AcquirePhase::Acquired);
                            return Ok(pooled);
                        }
                        Ok(Err(err)) => {
                            pooled.discard(Reason::Invalid);
                            validation_error = Some(err);
                        }
                        Err(_) => {
                            // Cut mid-validation: the guard aborts the resource.
                            drop(pooled);
                            let err = self.timed_out(start);
                            return Err(validation_error.map_or(err, PoolError::Validation));
                        }
                    }
                }
                grant @ (Grant::Create | Grant::Evict(_)) => {
                    let slot = Reservation::new(self.clone());
                    // An idle resource evicted for this one is closed in its slot first.
                    if let Grant::Evict(entry) = grant {
                        self.manager.close(entry.res).await;
                    }
                    let ask = Ask {
                        req,
                        priority,
                        fresh,
                        start,
                        deadline,
                        progress,
                    };
                    match self.create(slot, ask).await? {
                        Created::Ready(pooled) => return Ok(pooled),
                        Created::Requeue => {}
                    }
                }
            }
            now = Instant::now();
            if now >= deadline {
                let err = self.timed_out(start);
                return Err(validation_error.map_or(err, PoolError::Validation));
            }
        }
    }

    /// Never waits: only a fitting, alive idle resource that needs no validation.
    pub(super) fn try_acquire(self: &Arc<Self>, req: &M::Request) -> Result<Pooled<M>, PoolError<M::Error>> {
        let now = Instant::now();
        let taken = self.take(|st, doomed| {
            if !st.is_open() {
                Err(self.closed())
            } else if let Some(mut entry) = self.take_idle(st, req, now, false, doomed) {
                st.borrow_started(&mut entry, now);
                st.record_wait(Duration::ZERO);
                Ok(entry)
            } else {
                Err(st.unavailable(&self.name))
            }
        });
        let entry = taken?;
        AtomicCounters::bump(&self.counters.acquisitions);
        Ok(Pooled::new(self.clone(), entry, true))
    }

    fn begin(
        self: &Arc<Self>,
        req: &M::Request,
        priority: Priority,
        fresh: bool,
        start: Instant,
        now: Instant,
    ) -> Result<Begin<M>, PoolError<M::Error>> {
        self.take(|st, doomed| self.begin_locked(st, req, priority, fresh, start, now, doomed))
    }

    #[allow(clippy::too_many_arguments)]
    fn begin_locked(
        self: &Arc<Self>,
        st: &mut State<M>,
        req: &M::Request,
        priority: Priority,
        fresh: bool,
        start: Instant,
        now: Instant,
        doomed: &mut Doomed<M::Resource>,
    ) -> Result<Begin<M>, PoolError<M::Error>> {
        if !st.is_open() {
            return Err(self.closed());
        }
        // Waiters never outnumber what could serve them: they only queue when nothing
        // is idle-and-fitting and there is no room, so a newcomer served here jumps
        // no queue.
        if let Some(grant) = self.grant_for(st, req, fresh, now, doomed) {
            st.record_wait(now.saturating_duration_since(start));
            return Ok(Begin::Ready(grant));
        }
        if let Some(max_waiters) = self.settings.max_waiters {
            if st.waiting() >= max_waiters {
                st.reject_waiter();
                debug!(pool = %self.name, max_waiters, "too many waiters: rejecting");
                return Err(PoolError::TooManyWaiters {
                    pool: self.name.clone(),
                    max_waiters,
                });
            }
        }
        let (tx, rx) = oneshot::channel();
        let waiter = Waiter {
            req: req.clone(),
            fresh,
            handoff_only: false,
            tx,
        };
        let id = st.enqueue(priority, start, waiter);
        Ok(Begin::Wait(WaitTicket::new(self.clone(), id, priority, start, rx)))
    }

    /// Validates a resource idle for longer than `validation_interval` (when
    /// `validate_on_borrow`).
    async fn check_out(&self, pooled: &mut Pooled<M>) -> Result<(), M::Error> {
        let entry = pooled.entry();
        if !self.needs_validation(entry, entry.borrowed_at) {
            return Ok(());
        }
        AtomicCounters::bump(&self.counters.validations);
        // Cancelled mid-validation, the resource's state is unknown: abort it.
        pooled.set_abort_on_drop(true);
        let validated = self.manager.validate(&mut **pooled).await;
        match validated {
            Ok(()) => {
                pooled.set_abort_on_drop(false);
                Ok(())
            }
            Err(err) => {
                AtomicCounters::bump(&self.counters.validation_failures);
                debug!(pool = %self.name, id = pooled.id(), error = %err, "validation failed: discarding");
                Err(err)
            }
        }
    }

    /// Creates a resource in the reserved slot. The creation runs in a task of its
    /// own while the caller also queues for a resource someone gives back (unless
    /// it wants a fresh one): whichever comes first serves it. A remote that takes
    /// one association at a time (a stock `storescp`) leaves the extra request
    /// unanswered until the first association ends; its callers are served by the
    /// open one meanwhile instead of waiting for a timeout, and the creation, left
    /// to finish in the background, is abandoned when the pool closes. A creation
    /// that fails in a way that says the remote took no more while others were open
    /// (see [`Manager::is_limit_symptom`]) lowers the cap, and its caller queues
    /// again ([`Created::Requeue`]) instead of failing.
    async fn create(
        self: &Arc<Self>,
        slot: Reservation<M>,
        ask: Ask<'_, M>,
    ) -> Result<Created<M>, PoolError<M::Error>> {
        let Ask {
            req,
            priority,
            fresh,
            start,
            deadline,
            progress,
        } = ask;
        AcquireProgress::set(progress, AcquirePhase::Opening);
        let race = Arc::new(Race::default());
        let (tx, rx) = oneshot::channel();
        let mut rx = CreationRx { pool: self.clone(), rx };
        spawn_creation(self.clone(), slot, req.clone(), race.clone(), deadline, tx);
        let mut ticket = (!fresh).then(|| self.handoff_ticket(req, priority, start));
        loop {
            let handoff = async {
                match ticket.as_mut() {
                    Some(t) => t.wait(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                created = &mut rx.rx => {
                    drop(ticket);
                    return match created {
                        Ok(Finished::Created(entry)) => {
                            AtomicCounters::bump(&self.counters.acquisitions);
                            AcquireProgress::set(progress, AcquirePhase::Acquired);
                            Ok(Created::Ready(Pooled::new(self.clone(), entry, false)))
                        }
                        Ok(Finished::Failed { error, limited: true }) => {
                            debug!(pool = %self.name, error = %error, "the remote took no more: queueing on the open ones");
                            Ok(Created::Requeue)
                        }
                        Ok(Finished::Failed { error, limited: false }) => Err(PoolError::Create(error)),
                        Ok(Finished::TimedOut) => Err(self.timed_out(start)),
                        Ok(Finished::Closed) | Err(_) => Err(self.closed()),
                    };
                }
                waited = handoff => match waited {
                    Waited::Granted(Grant::Resource(entry)) => {
                        self.overtaken(&race, &mut rx);
                        AtomicCounters::bump(&self.counters.acquisitions);
                        AcquireProgress::set(progress, AcquirePhase::Acquired);
                        return Ok(Created::Ready(Pooled::new(self.clone(), entry, true)));
                    }
                    // Never sent to a hand-off waiter; give it back and wait for ours.
                    Waited::Granted(other) => {
                        self.abandon(other);
                        ticket = None;
                    }
                    Waited::Closed | Waited::TimedOut(_) => ticket = None,
                },
            }
        }
    }

    /// A place in the queue served only by resources given back.
    fn handoff_ticket(self: &Arc<Self>, req: &M::Request, priority: Priority, start: Instant) -> WaitTicket<M> {
        let (tx, rx) = oneshot::channel();
        let waiter = Waiter {
            req: req.clone(),
            fresh: false,
            handoff_only: true,
            tx,
        };
        let id = self.lock().enqueue(priority, start, waiter);
        WaitTicket::new(self.clone(), id, priority, start, rx)
    }

    /// The caller was served by an open resource before its creation finished: the
    /// creation goes on in the background (counted as unanswered until it ends); if
    /// it had just finished, its resource goes back to the pool.
    fn overtaken(self: &Arc<Self>, race: &Race, rx: &mut CreationRx<M>) {
        {
            let mut st = self.lock();
            if !race.finished.load(Ordering::SeqCst) {
                race.overtaken.store(true, Ordering::SeqCst);
                st.open_overtaken();
            }
        }
        if let Ok(Finished::Created(entry)) = rx.rx.try_recv() {
            self.abandon(Grant::Resource(entry));
        }
    }

    fn timed_out(&self, start: Instant) -> PoolError<M::Error> {
        let waited = Instant::now().saturating_duration_since(start);
        self.lock().record_timeout(&self.name, waited)
    }

    pub(super) fn closed(&self) -> PoolError<M::Error> {
        PoolError::Closed {
            pool: self.name.clone(),
        }
    }
}
