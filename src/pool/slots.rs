//! The waiter's drop guard that makes waiting cancellation-safe: a place in the
//! waiter queue is given back (with any grant sent meanwhile) when the acquiring
//! future is dropped (timeout, `JoinHandle::abort`). The slot guards of creation and
//! teardown ([`Reservation`](super::inner::Reservation),
//! [`ClosingSlot`](super::inner::ClosingSlot)) live with the state they free.

use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::time::{timeout_at, Instant};

use super::error::PoolError;
use super::inner::{Grant, Inner};
use super::manager::Manager;
use super::waiters::Priority;

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
    pub(super) fn new(
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

    pub(super) async fn wait(&mut self, deadline: Instant) -> Waited<M::Resource, M::Error> {
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
        let waited = now.saturating_duration_since(self.since);
        let (removed, err) = self
            .pool
            .lock()
            .withdraw_timed_out(&self.pool.name, self.priority, self.id, waited);
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
        let removed = self.pool.lock().withdraw(self.priority, self.id);
        if removed.is_none() {
            // Not queued any more, so whoever took it out sent a grant under the same
            // lock; it is in the channel now.
            if let Ok(grant) = self.rx.try_recv() {
                self.pool.abandon(grant);
            }
        }
    }
}
