//! How far an acquisition got, readable from outside its future.
//!
//! A caller that cuts an acquisition short (its own deadline) needs to know what it
//! was waiting for: a place in the queue says the pool is busy with the caller's own
//! load, while opening or validating a resource says the remote is slow or gone.

use std::sync::atomic::{AtomicU8, Ordering};

/// What an acquisition is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcquirePhase {
    /// Queued for a resource or a slot, or for a creation permit.
    Waiting,
    /// Creating a resource (for associations: connecting, negotiating).
    Opening,
    /// Validating an idle resource before handing it out.
    Validating,
    /// Handed out.
    Acquired,
}

/// Shared by an acquiring future and its caller; starts at [`AcquirePhase::Waiting`].
#[derive(Debug, Default)]
pub struct AcquireProgress(AtomicU8);

impl AcquireProgress {
    /// Where the acquisition is now.
    pub fn phase(&self) -> AcquirePhase {
        match self.0.load(Ordering::Acquire) {
            0 => AcquirePhase::Waiting,
            1 => AcquirePhase::Opening,
            2 => AcquirePhase::Validating,
            _ => AcquirePhase::Acquired,
        }
    }

    pub(super) fn set(progress: Option<&AcquireProgress>, phase: AcquirePhase) {
        if let Some(p) = progress {
            let v = match phase {
                AcquirePhase::Waiting => 0,
                AcquirePhase::Opening => 1,
                AcquirePhase::Validating => 2,
                AcquirePhase::Acquired => 3,
            };
            p.0.store(v, Ordering::Release);
        }
    }
}
