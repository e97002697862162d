//! A generic, DICOM-agnostic resource pool, in the spirit of deadpool's `Manager`.
//!
//! A [`Manager`] says how to create, match, check and retire resources; a [`Pool`]
//! keeps up to `max_size` of them (across all request kinds), hands them out as
//! [`Pooled`] guards, and takes them back when the guards drop.
//!
//! - **Reuse by capability.** [`Pool::acquire`] takes the most recently used idle
//!   resource that [fits](Manager::fits) the request and is [alive](Manager::is_alive),
//!   [validating](Manager::validate) it first if it has been idle longer than
//!   `validation_interval` (with `validate_on_borrow`). Otherwise it creates one (at
//!   most `max_concurrent_opens` creations in flight), after closing the least
//!   recently used idle resource that does not fit, if any ("evicted"): at the cap
//!   that makes room, and below it a remote serving one association at a time would
//!   otherwise queue the new one behind the idle one. With nothing to evict and no
//!   room, it waits.
//! - **Fair waiting.** Waiters are served by [`Priority`], FIFO within one, with
//!   aging ([`AGING_STEP`]) so Low never starves; beyond `max_waiters` acquisition
//!   fails at once, and a wait lasts at most `acquire_timeout`. A returned resource
//!   goes straight to the best waiter it fits.
//! - **Cancellation-safe.** Dropping an acquiring future at any point gives back its
//!   queue place, its reserved slot, or a resource handed to it in the meantime.
//! - **Warm and lean.** `min_size` resources are opened in the background (with the
//!   default request); a maintenance task retires idle, old and stale ones (see
//!   [`maintenance`](self#maintenance)).
//! - **Adaptive.** A creation failing with a [capacity error](Manager::is_capacity_error)
//!   caps the pool at what is open; the cap recovers by one every
//!   [`CAPACITY_RECOVERY_STEP`].
//!
//! Resources being closed keep their slot until their teardown has finished, so the
//! remote never sees more than `max_size` connections from one pool.
//!
//! # Maintenance
//!
//! Each pool runs one background task, ticking every
//! `min(validation_interval, max_idle_time, 1 s)` (at least 10 ms): idle resources
//! past `max_idle_time` beyond `min_size`, past their lifetime (`max_lifetime`
//! jittered ±10% per resource) or no longer alive are retired; `min_size` is
//! replenished. The task ends when the pool is closed or dropped.
//!
//! # Runtime
//!
//! [`Pool::new`] needs a tokio runtime for maintenance (without one the pool still
//! works, unmaintained). Retirements run in spawned tasks; a guard dropped on a thread
//! without a runtime just drops a resource it cannot keep.

mod acquire;
mod error;
mod guard;
mod inner;
mod lifecycle;
mod maintenance;
mod manager;
mod progress;
mod settings;
mod slots;
mod snapshot;
mod stats;
mod waiters;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use error::PoolError;
pub use guard::Pooled;
pub use maintenance::{CAPACITY_RECOVERY_STEP, REPLENISH_BACKOFF};
pub use manager::Manager;
pub use progress::{AcquirePhase, AcquireProgress};
pub use settings::PoolSettings;
pub use stats::{DestroyedStats, LeakSuspect, PoolStats, WaitStats, WAIT_WINDOW};
pub use waiters::{Priority, AGING_STEP};

use inner::Inner;
use stats::AtomicCounters;

/// A pool of resources made by `M`. Cheap to clone: clones share the pool.
///
/// A toy [`Manager`] whose resources are numbers:
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
/// use pacs_net::pool::{Manager, Pool, PoolSettings};
///
/// #[derive(Debug)]
/// struct Never;
/// impl std::fmt::Display for Never {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("never") }
/// }
/// impl std::error::Error for Never {}
///
/// /// Numbered connections; any one serves any request.
/// #[derive(Default)]
/// struct Counter(AtomicU32);
/// impl Manager for Counter {
///     type Resource = u32;
///     type Request = ();
///     type Error = Never;
///     async fn create(&self, _: &()) -> Result<u32, Never> {
///         Ok(self.0.fetch_add(1, Ordering::SeqCst) + 1)
///     }
///     fn fits(&self, _: &u32, _: &()) -> bool { true }
///     fn is_alive(&self, _: &mut u32) -> bool { true }
///     async fn validate(&self, _: &mut u32) -> Result<(), Never> { Ok(()) }
///     fn is_reusable(&self, _: &u32) -> bool { true }
///     async fn close(&self, _: u32) {}
///     async fn abort(&self, _: u32) {}
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = Pool::new("toy", Counter::default(), PoolSettings::default(), None);
/// let first = pool.acquire(&()).await.unwrap();
/// assert_eq!(*first, 1);
/// drop(first); // back to idle
/// let again = pool.acquire(&()).await.unwrap();
/// assert_eq!(*again, 1); // reused, not created
/// assert!(again.is_reused());
/// assert_eq!(pool.stats().created, 1);
/// drop(again);
/// pool.close(Duration::from_secs(1)).await;
/// # }
/// ```
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

impl<M: Manager> fmt::Debug for Pool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl<M: Manager> Pool<M> {
    /// Creates the pool and spawns its maintenance task (call within a tokio runtime).
    /// With a `default_request`, `min_size` resources are opened in the background;
    /// failures there are logged, never fatal. A `max_size` of 0 is taken as 1.
    pub fn new(
        name: impl Into<String>,
        manager: M,
        settings: PoolSettings,
        default_request: Option<M::Request>,
    ) -> Self {
        let inner = Arc::new(Inner::new(name.into(), manager, settings, default_request));
        maintenance::start(&inner);
        Pool { inner }
    }

    /// A resource fitting `req`, at [`Priority::Normal`].
    pub async fn acquire(&self, req: &M::Request) -> Result<Pooled<M>, PoolError<M::Error>> {
        self.inner.acquire(req, Priority::Normal, false, None).await
    }

    /// A resource fitting `req`; `priority` orders the wait if there is one.
    pub async fn acquire_with(&self, req: &M::Request, priority: Priority) -> Result<Pooled<M>, PoolError<M::Error>> {
        self.inner.acquire(req, priority, false, None).await
    }

    /// A newly created resource, never an idle one: for a transparent redo after a
    /// reused one proved stale. Still bounded by the cap; like any creation, it first
    /// evicts an idle resource (here even a fitting one) if there is one.
    pub async fn acquire_fresh(&self, req: &M::Request) -> Result<Pooled<M>, PoolError<M::Error>> {
        self.inner.acquire(req, Priority::Normal, true, None).await
    }

    /// [`Pool::acquire_with`] (or [`Pool::acquire_fresh`] with `fresh`), recording
    /// in `progress` what it is doing, for a caller that may cut it short.
    pub async fn acquire_tracked(
        &self,
        req: &M::Request,
        priority: Priority,
        fresh: bool,
        progress: &AcquireProgress,
    ) -> Result<Pooled<M>, PoolError<M::Error>> {
        self.inner.acquire(req, priority, fresh, Some(progress)).await
    }

    /// Background creation (`min_size`) only runs while `gate` says so: a remote
    /// that a circuit breaker declared down is not reconnected to behind its back.
    pub fn set_replenish_gate(&self, gate: impl Fn() -> bool + Send + Sync + 'static) {
        *self.inner.replenish_gate.write() = Some(Box::new(gate));
    }

    /// Never waits and never creates (creation is async): hands out a fitting, alive
    /// idle resource that needs no validation, or fails with
    /// [`PoolError::Timeout`] (`waited` zero, not counted as a timeout) — even when
    /// there would be room to create one — or [`PoolError::Closed`].
    pub fn try_acquire(&self, req: &M::Request) -> Result<Pooled<M>, PoolError<M::Error>> {
        self.inner.try_acquire(req)
    }

    /// Sets `max_size` (at least 1). Idle resources beyond it are closed now, busy
    /// ones when returned; growing lets waiters create at once.
    pub fn resize(&self, new_max: usize) {
        self.inner.resize(new_max);
    }

    /// Stops handing out (acquire fails with [`PoolError::Closed`], waiters too),
    /// closes idle resources, waits up to `busy_timeout` for borrowed ones to come
    /// back (closing them gracefully), and aborts those returned later.
    pub async fn close(&self, busy_timeout: Duration) {
        self.inner.close(busy_timeout).await;
    }

    /// A snapshot of the pool's counters and gauges.
    pub fn stats(&self) -> PoolStats {
        self.inner.stats()
    }

    /// Borrows held longer than `leak_threshold`, longest first, then by id (empty
    /// without a threshold).
    pub fn leak_suspects(&self) -> Vec<LeakSuspect> {
        self.inner.leak_suspects()
    }

    /// Counts an operation redone on a fresh resource after a reused one was stale.
    pub fn record_stale_redo(&self) {
        AtomicCounters::bump(&self.inner.counters.stale_redos);
    }

    /// The manager, for what the caller keeps in it (e.g. negotiation memory).
    pub fn manager(&self) -> &M {
        &self.inner.manager
    }

    /// The pool's name (for logs, errors and metrics).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The settings the pool was created with (see [`PoolStats::max_size`] for the
    /// size after [`Pool::resize`]).
    pub fn settings(&self) -> &PoolSettings {
        &self.inner.settings
    }
}
