//! Internal drop guards that make acquisition cancellation-safe.
//!
//! Whatever an acquiring future holds at an await point — a place in the waiter
//! queue, a slot reserved for creation, a slot held by a resource being torn down —
//! sits in one of these guards, so dropping the future (timeout, `JoinHandle::abort`)
//! gives it back to the pool instead of leaking it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::{timeout_at, Instant};

use super::error::PoolError;
use super::inner::{Grant, Inner, State};
use super::manager::Manager;
use super::waiters::Priority;

/// A slot counted in `opening`, freed on drop unless it became a resource.
pub(super) struct Reservation<M: Manager> {
    pool: Arc<Inner<M>>,
    armed: bool,
}

impl<M: Manager> Reservation<M> {
    /// Takes charge of a slot already counted in `opening`.
    pub fn new(pool: Arc<Inner<M>>) -> Self {
        Reservation { pool, armed: true }
    }

    /// The slot is being accounted for under the lock by the caller (the resource
    /// was created, or creation failed and the caller frees it itself).
    pub fn consume(mut self, st: &mut State<M>) {
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
    pub fn new(pool: Arc<Inner<M>>) -> Self {
        ClosingSlot { pool }
    }
}

impl<M: Manager> Drop for ClosingSlot<M> {
    fn drop(&mut self) {
        self.pool.closing_done();
    }
}

/// How a wait ended.
pub(super) enum Waited<R, E> {
    Granted(Grant<R>),
    Closed,
    TimedOut(PoolError<E>),
}

/// A place in the waiter queue. Dropped while still waiting, it leaves the queue;
/// if a grant was sent in the meantime, it gives the grant back.
pub(super) struct WaitTicket<M: Manager> {
    pool: Arc<Inner<M>>,
    id: u64,
    priority: Priority,
    since: Instant,
    rx: oneshot::Receiver<Grant<M::Resource>>,
    settled: bool,
}

impl<M: Manager> WaitTicket<M> {
    pub fn new(
        pool: Arc<Inner<M>>,
        id: u64,
        priority: Priority,
        since: Instant,
        rx: oneshot::Receiver<Grant<M::Resource>>,
    ) -> Self {
        WaitTicket {
            pool,
            id,
            priority,
            since,
            rx,
            settled: false,
        }
    }

    pub async fn wait(&mut self, deadline: Instant) -> Waited<M::Resource, M::Error> {
        let outcome = timeout_at(deadline, &mut self.rx).await;
        self.settled = true;
        match outcome {
            Ok(Ok(grant)) => Waited::Granted(grant),
            // `close` drops the queued senders.
            Ok(Err(_)) => Waited::Closed,
            Err(_) => match self.give_up() {
                Some(err) => Waited::TimedOut(err),
                // Served in the same instant the deadline passed: take it.
                None => match self.rx.try_recv() {
                    Ok(grant) => Waited::Granted(grant),
                    Err(_) => Waited::Closed,
                },
            },
        }
    }

    /// Leaves the queue after the deadline; None if a grant had already been sent.
    fn give_up(&self) -> Option<PoolError<M::Error>> {
        let now = Instant::now();
        let (removed, err) = {
            let mut st = self.pool.lock();
            let waiters = st.waiters.len();
            let removed = st.waiters.remove(self.priority, self.id);
            let err = removed.is_some().then(|| {
                let waited = now.saturating_duration_since(self.since);
                st.counts.acquire_timeouts += 1;
                st.waits.record(waited);
                timeout_error(&self.pool.name, st.max_size, waiters, waited)
            });
            (removed, err)
        };
        // The waiter (its request clone and sender) is dropped after unlocking.
        drop(removed);
        err
    }
}

impl<M: Manager> Drop for WaitTicket<M> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let removed = self.pool.lock().waiters.remove(self.priority, self.id);
        if removed.is_none() {
            // Not queued any more, so whoever took it out sent a grant under the same
            // lock; it is in the channel now.
            if let Ok(grant) = self.rx.try_recv() {
                self.pool.abandon(grant);
            }
        }
    }
}

pub(super) fn timeout_error<E>(pool: &str, max_size: usize, waiters: usize, waited: Duration) -> PoolError<E> {
    PoolError::Timeout {
        pool: pool.to_owned(),
        max_size,
        waiters,
        waited,
    }
}
