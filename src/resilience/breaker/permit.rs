//! The permit for one call through a breaker, settled by consuming or dropping it.

use std::fmt;

use super::CircuitBreaker;

/// How a permit was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Ignored,
    Success,
    Failure,
}

/// Leave to make one call through a [`CircuitBreaker`]. Settle it with
/// [`success`](Self::success) or [`failure`](Self::failure); dropping it
/// unsettled ignores the call: it frees its half-open probe slot and counts
/// neither way (for errors that say nothing about the node's health).
#[must_use = "settle the permit with success() or failure(); dropping it ignores the call"]
pub struct BreakerPermit<'a> {
    breaker: &'a CircuitBreaker,
    generation: u64,
    verdict: Verdict,
}

impl<'a> BreakerPermit<'a> {
    /// A permit granted in state generation `generation`, not yet settled.
    pub(super) fn new(breaker: &'a CircuitBreaker, generation: u64) -> Self {
        BreakerPermit {
            breaker,
            generation,
            verdict: Verdict::Ignored,
        }
    }
}

impl BreakerPermit<'_> {
    /// The call succeeded.
    pub fn success(mut self) {
        self.verdict = Verdict::Success;
        // Drop settles.
    }

    /// The call failed in a way that counts against the node.
    pub fn failure(mut self) {
        self.verdict = Verdict::Failure;
    }
}

impl Drop for BreakerPermit<'_> {
    fn drop(&mut self) {
        self.breaker.settle(self.generation, self.verdict);
    }
}

impl fmt::Debug for BreakerPermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerPermit")
            .field("node", &self.breaker.name)
            .field("generation", &self.generation)
            .finish()
    }
}
