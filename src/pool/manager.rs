//! The [`Manager`] trait: how a pool creates, matches, checks and retires its resources.
//!
//! The pool knows nothing about what a resource is; the manager supplies every
//! resource-specific decision. The synchronous methods (`fits`, `is_alive`,
//! `is_reusable`, `is_capacity_error`) are called while the pool's lock is held, so
//! they must be cheap and must never call back into the pool.

use std::future::Future;

/// Creates, matches, checks and retires the resources of one [`Pool`](super::Pool).
///
/// The example of [`Pool`](super::Pool) implements a toy one.
pub trait Manager: Send + Sync + 'static {
    /// The pooled thing (e.g. an open association).
    type Resource: Send + 'static;
    /// What an operation needs from a resource (e.g. SOP class + transfer syntax).
    type Request: Clone + Send + Sync + 'static;
    /// Why creating or validating failed; the pool hands it to the caller untouched.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Opens a new resource able to serve `req`.
    fn create(&self, req: &Self::Request) -> impl Future<Output = Result<Self::Resource, Self::Error>> + Send;

    /// Does this idle resource serve `req`? (reuse by capability)
    fn fits(&self, res: &Self::Resource, req: &Self::Request) -> bool;

    /// Cheap liveness check, no round trip (e.g. peer closed socket). false = stale.
    fn is_alive(&self, res: &mut Self::Resource) -> bool;

    /// Round-trip validation (e.g. C-ECHO), used when the resource has been idle
    /// longer than `validation_interval` and `validate_on_borrow` is on.
    fn validate(&self, res: &mut Self::Resource) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Can it go back to idle after use? (false if poisoned, or an operation was in
    /// flight when the guard dropped)
    fn is_reusable(&self, res: &Self::Resource) -> bool;

    /// Graceful retirement (e.g. A-RELEASE, bounded); must always close the
    /// underlying socket.
    fn close(&self, res: Self::Resource) -> impl Future<Output = ()> + Send;

    /// Hard teardown (e.g. A-ABORT) for resources in an unknown state.
    fn abort(&self, res: Self::Resource) -> impl Future<Output = ()> + Send;

    /// Does this creation error say the remote is at its capacity? The pool then
    /// lowers its effective maximum to what is open now, and raises it again slowly.
    fn is_capacity_error(&self, _err: &Self::Error) -> bool {
        false
    }

    /// Could this creation error be the remote refusing one more resource without
    /// saying so (a refused or reset connection, a connection closed or aborted, a
    /// request never answered)? Seen while another resource to the same remote is
    /// open, the pool takes it as the remote's limit: it lowers its effective
    /// maximum to what is open, like a capacity error, and queues the caller on the
    /// open ones instead of failing it.
    fn is_limit_symptom(&self, err: &Self::Error) -> bool {
        self.is_capacity_error(err)
    }
}
