//! Acquisition: a fitting idle resource under one short lock (the fast path), else the
//! slot of an idle resource this caller will not use (closed first, "evicted"), else
//! a free slot, else a place in the waiter queue until one of those is handed over.
//! Creation in a slot is throttled by `max_concurrent_opens`.
//!
//! The wait for a hand-off, for a creation permit, and the validation of idle
//! resources (each stale one would otherwise cost the manager's whole timeout) are
//! bounded by `acquire_timeout`; creation is bounded by the manager's own timeouts,
//! because cancelling it half-way would waste a connection being set up.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::{timeout_at, Instant};
use tracing::debug;

use super::error::PoolError;
use super::guard::Pooled;
use super::inner::{deadline, Doomed, Grant, Inner, Phase, State, Waiter};
use super::manager::Manager;
use super::progress::{AcquirePhase, AcquireProgress};
use super::slots::{timeout_error, Reservation, WaitTicket, Waited};
use super::stats::{Counters, Reason};
use super::waiters::Priority;

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
                            Counters::bump(&self.counters.acquisitions);
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
                Grant::Create => {
                    let slot = Reservation::new(self.clone());
                    return self.create(slot, req, start, deadline, progress).await;
                }
                Grant::Evict(entry) => {
                    let slot = Reservation::new(self.clone());
                    self.manager.close(entry.res).await;
                    return self.create(slot, req, start, deadline, progress).await;
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
        let mut doomed = Vec::new();
        let taken = {
            let mut st = self.lock();
            if st.phase != Phase::Open {
                Err(self.closed())
            } else if let Some(mut entry) = self.take_idle(&mut st, req, now, false, &mut doomed) {
                st.borrow_started(&mut entry, now);
                st.waits.record(Duration::ZERO);
                Ok(entry)
            } else {
                Err(timeout_error(&self.name, st.max_size, st.waiters.len(), Duration::ZERO))
            }
        };
        self.run(doomed);
        let entry = taken?;
        Counters::bump(&self.counters.acquisitions);
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
        let mut doomed = Vec::new();
        let begun = {
            let mut st = self.lock();
            self.begin_locked(&mut st, req, priority, fresh, start, now, &mut doomed)
        };
        self.run(doomed);
        begun
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
        if st.phase != Phase::Open {
            return Err(self.closed());
        }
        // Waiters never outnumber what could serve them: they only queue when nothing
        // is idle-and-fitting and there is no room, so a newcomer served here jumps
        // no queue.
        if let Some(grant) = self.grant_for(st, req, fresh, now, doomed) {
            st.waits.record(now.saturating_duration_since(start));
            return Ok(Begin::Ready(grant));
        }
        if let Some(max_waiters) = self.settings.max_waiters {
            if st.waiters.len() >= max_waiters {
                st.counts.rejected_waiters += 1;
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
            tx,
        };
        let id = st.waiters.push(priority, start, waiter);
        Ok(Begin::Wait(WaitTicket::new(self.clone(), id, priority, start, rx)))
    }

    /// Validates a resource idle for longer than `validation_interval` (when
    /// `validate_on_borrow`).
    async fn check_out(&self, pooled: &mut Pooled<M>) -> Result<(), M::Error> {
        let entry = pooled.entry();
        if !self.needs_validation(entry, entry.borrowed_at) {
            return Ok(());
        }
        Counters::bump(&self.counters.validations);
        // Cancelled mid-validation, the resource's state is unknown: abort it.
        pooled.set_abort_on_drop(true);
        let validated = self.manager.validate(&mut **pooled).await;
        match validated {
            Ok(()) => {
                pooled.set_abort_on_drop(false);
                Ok(())
            }
            Err(err) => {
                Counters::bump(&self.counters.validation_failures);
                debug!(pool = %self.name, id = pooled.id(), error = %err, "validation failed: discarding");
                Err(err)
            }
        }
    }

    async fn create(
        self: &Arc<Self>,
        slot: Reservation<M>,
        req: &M::Request,
        start: Instant,
        deadline: Instant,
        progress: Option<&AcquireProgress>,
    ) -> Result<Pooled<M>, PoolError<M::Error>> {
        let permit = match timeout_at(deadline, self.opens.acquire()).await {
            Ok(Ok(permit)) => permit,
            // The semaphore is never closed; treat it as the pool being gone.
            Ok(Err(_)) => return Err(self.closed()),
            Err(_) => return Err(self.timed_out(start)),
        };
        AcquireProgress::set(progress, AcquirePhase::Opening);
        let created = self.manager.create(req).await;
        drop(permit);
        let now = Instant::now();
        let mut doomed = Vec::new();
        let outcome = {
            let mut st = self.lock();
            let outcome = match self.adopt(&mut st, slot, created, now, &mut doomed) {
                Ok(Some(mut entry)) => {
                    st.borrow_started(&mut entry, now);
                    Ok(entry)
                }
                Ok(None) => Err(self.closed()),
                Err(err) => {
                    debug!(pool = %self.name, error = %err, "creation failed");
                    Err(PoolError::Create(err))
                }
            };
            self.settle(&mut st, now, &mut doomed);
            outcome
        };
        self.run(doomed);
        let entry = outcome?;
        Counters::bump(&self.counters.acquisitions);
        AcquireProgress::set(progress, AcquirePhase::Acquired);
        Ok(Pooled::new(self.clone(), entry, false))
    }

    fn timed_out(&self, start: Instant) -> PoolError<M::Error> {
        let waited = Instant::now().saturating_duration_since(start);
        let mut st = self.lock();
        st.counts.acquire_timeouts += 1;
        st.waits.record(waited);
        timeout_error(&self.name, st.max_size, st.waiters.len(), waited)
    }

    pub(super) fn closed(&self) -> PoolError<M::Error> {
        PoolError::Closed {
            pool: self.name.clone(),
        }
    }
}
