//! Why an acquisition failed.
//!
//! `Create` and `Validation` carry the manager's error as their source, not in their
//! message, so an error-chain printer shows it once; callers that need to classify it
//! (retry or not, breaker or not) match on the variant and inspect `E` directly.

use std::time::Duration;

/// Why [`Pool::acquire`](super::Pool::acquire) and friends failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError<E> {
    /// Every resource stayed busy for the whole `acquire_timeout`. Also returned, with
    /// `waited` zero and without counting as a timeout, by
    /// [`Pool::try_acquire`](super::Pool::try_acquire) when no fitting idle resource
    /// is available right now.
    #[error(
        "pool {pool} exhausted: max_size {max_size}, {waiters} waiters, waited {:.1}s",
        .waited.as_secs_f64()
    )]
    Timeout {
        /// The pool's name.
        pool: String,
        /// The pool's maximum size.
        max_size: usize,
        /// Callers waiting when this one gave up, itself included.
        waiters: usize,
        /// How long this caller waited.
        waited: Duration,
    },
    /// `max_waiters` callers were already waiting; rejected without waiting.
    #[error("pool {pool} exhausted: {max_waiters} callers already waiting (max_waiters)")]
    TooManyWaiters {
        /// The pool's name.
        pool: String,
        /// The pool's `max_waiters`.
        max_waiters: usize,
    },
    /// The pool is closed (or closing).
    #[error("pool {pool} closed")]
    Closed {
        /// The pool's name.
        pool: String,
    },
    /// Creating a resource failed; its slot has been given to the next waiter.
    #[error("could not open a new resource")]
    Create(#[source] E),
    /// Idle resources failed validation and no other could be had before the
    /// deadline. A failed validation alone never surfaces: the resource is discarded
    /// and the acquisition goes on with another one or a new one.
    #[error("idle resources failed validation")]
    Validation(#[source] E),
}
