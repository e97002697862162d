//! Deterministic tests of the resilience module: tokio's paused clock drives
//! every delay and duration, and jitter draws from seeded RNGs.

mod breaker;
mod budget;
mod executor;
mod retry;
