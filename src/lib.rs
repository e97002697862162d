//! pacs-net: pooled, resilient DICOM SCU operations (C-ECHO, C-STORE, C-FIND,
//! C-GET, C-MOVE), over plain TCP or DICOM TLS.
//!
//! Layers, bottom up; each uses only those below it:
//! - [`pool`]: a generic, DICOM-agnostic resource pool.
//! - [`resilience`]: retry policy, retry budget, circuit breaker, executor.
//! - [`config`]: the hospital JSON config, typed, validated and merged.
//! - [`association`]: DICOM associations on dicom-ul (transports, contexts, release/abort).
//! - [`dimse`]: C-ECHO / C-STORE / C-FIND / C-GET / C-MOVE on one association.
//! - [`client`]: nodes (one pool + breaker + policy each), the one operation driver
//!   and the public API.
//! - `metrics` (feature `metrics`): the Prometheus text exposition.
//! - `monitor` (feature `monitor`): the operators' window: history, alerts,
//!   recommendations, and `/metrics`, `/health`, `/status` and a status page over HTTP.
//! - `scp` (feature `scp`): the embedded SCP (for the demo, tests and trying things out).
//! - `cli` (feature `cli`): the `pacs-net` binary's commands.
//! - `testing` (feature `testing`): raw protocol access and fault injection for
//!   this project's own tests; not part of the API.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

pub mod association;
#[cfg(feature = "cli")]
pub mod cli;
pub mod client;
pub mod config;
pub mod dimse;
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "monitor")]
pub mod monitor;
pub mod pool;
pub mod resilience;
#[cfg(feature = "scp")]
pub mod scp;
#[cfg(feature = "testing")]
pub mod testing;

/// Our Implementation Class UID (PS3.7 D.3.3.2), under a private root.
pub const IMPLEMENTATION_CLASS_UID: &str = "1.2.826.0.1.3680043.10.1234.1.1";
/// Our Implementation Version Name.
pub const IMPLEMENTATION_VERSION_NAME: &str = "PACSNET_010";
