//! pacs-net: pooled, resilient DICOM SCU operations (C-ECHO, C-STORE, C-FIND).
//!
//! Layers, bottom up; each uses only those below it:
//! - [`config`]: the hospital JSON config, typed, validated and merged.
//! - [`pool`]: a generic, DICOM-agnostic resource pool.
//! - [`association`]: DICOM associations on dicom-ul (sockets, contexts, release/abort).
//! - [`dimse`]: C-ECHO / C-STORE / C-FIND on one association.
//! - [`resilience`]: retry policy, retry budget, circuit breaker, executor.
//! - [`client`]: nodes (one pool + breaker + policy each) and the public API.
//! - [`monitor`]: the operators' window (feature `monitor`): history, alerts,
//!   recommendations, and `/metrics`, `/health`, `/status` and a status page over HTTP.
//! - [`scp`]: the embedded SCP (for the demo, tests and trying things out).
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

/// Our Implementation Class UID (PS3.7 D.3.3.2), under a private root.
pub const IMPLEMENTATION_CLASS_UID: &str = "1.2.826.0.1.3680043.10.1234.1.1";
/// Our Implementation Version Name.
pub const IMPLEMENTATION_VERSION_NAME: &str = "PACSNET_010";
