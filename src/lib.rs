//! pacs-net: pooled, resilient DICOM SCU operations (C-ECHO, C-STORE, C-FIND).
//!
//! Layers, bottom up; each uses only those below it:
//! - [`config`]: the hospital JSON config, typed, validated and merged.
//! - [`resilience`]: retry policy, retry budget, circuit breaker, executor.
#![forbid(unsafe_code)]

pub mod config;
pub mod resilience;
