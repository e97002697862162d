//! The pool's view of a resource: how to create, check, validate, recycle and end
//! one. The DICOM association manager implements it; tests use a fake.

use std::future::Future;

/// Creates and tends the pooled resources (like deadpool's `Manager`).
pub trait Manager: Send + Sync + 'static {
    type Resource: Send + 'static;
    /// What an operation needs from a resource (reuse is by capability).
    type Request: Clone + Send + Sync + 'static;
    type Error: std::error::Error + Send + Sync + 'static;

    fn create(&self, req: &Self::Request) -> impl Future<Output = Result<Self::Resource, Self::Error>> + Send;
    /// Does this idle resource serve `req`?
    fn fits(&self, res: &Self::Resource, req: &Self::Request) -> bool;
    /// Cheap liveness check, no round trip; false = stale.
    fn is_alive(&self, res: &mut Self::Resource) -> bool;
    /// Round-trip validation, for resources idle longer than the validation interval.
    fn validate(&self, res: &mut Self::Resource) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// May it go back to idle after use?
    fn is_reusable(&self, res: &Self::Resource) -> bool;
    /// Graceful retirement; must always close the underlying connection.
    fn close(&self, res: Self::Resource) -> impl Future<Output = ()> + Send;
    /// Hard teardown, for resources in an unknown state.
    fn abort(&self, res: Self::Resource) -> impl Future<Output = ()> + Send;
    /// The creation error says the remote is at its capacity.
    fn is_capacity_error(&self, _err: &Self::Error) -> bool {
        false
    }
}
