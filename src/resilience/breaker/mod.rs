//! Circuit breaker: stops calling a node that keeps failing, then probes it.
//!
//! - **Closed**: calls go through. `failure_threshold` *consecutive* counted
//!   failures open it; a success resets the count; a failure that does not
//!   count (an ignored permit) neither adds to it nor resets it.
//! - **Open**: calls are refused at once with [`BreakerOpen`]. The first
//!   [`try_acquire`](CircuitBreaker::try_acquire) after `open_duration` moves
//!   it to half-open (the state is not changed by a timer, only by calls).
//! - **HalfOpen**: at most `half_open_max_calls` probes at once, the others are
//!   refused. `success_threshold` successful probes close it; any failed probe
//!   opens it again for a new `open_duration`.
//! - [`force_open`](CircuitBreaker::force_open) holds it open until
//!   [`reset`](CircuitBreaker::reset), whatever the probes would say.
//!
//! Each permit remembers the *generation* (state epoch) it was granted in. An
//! outcome reported after the state has changed since (a slow call that was
//! started while closed finishing after the breaker opened) is counted in the
//! statistics but does not move the state: it says nothing about the node's
//! health since then, and would otherwise let a stale success close a circuit
//! no probe has tested.
//!
//! Settings of 0 for a threshold or for `half_open_max_calls` are taken as 1,
//! so the breaker can always open and always close again.

mod permit;
mod types;

pub use permit::BreakerPermit;
pub use types::{BreakerOpen, BreakerState, BreakerStats};

use parking_lot::{Mutex, RwLock};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::resilience::BreakerSettings;
use permit::Verdict;

type Hook = Arc<dyn Fn(&str, BreakerState, BreakerState) + Send + Sync>;

/// A circuit breaker for one node. `Sync`: share it by reference or `Arc`.
pub struct CircuitBreaker {
    name: String,
    settings: BreakerSettings,
    inner: Mutex<Inner>,
    hooks: RwLock<Vec<Hook>>,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    /// Bumped on every state change (and reset); see the module docs.
    generation: u64,
    consecutive_failures: u32,
    half_open_successes: u32,
    half_open_in_flight: u32,
    /// When an open (not forced) circuit starts letting probes through.
    open_until: Instant,
    forced: bool,
    last_transition: Instant,
    calls: u64,
    successes: u64,
    failures: u64,
    rejected: u64,
    trips: u64,
}

/// A state change, reported to the hooks once the lock is released.
type Change = Option<(BreakerState, BreakerState)>;

impl CircuitBreaker {
    /// A closed breaker for node `name`.
    pub fn new(name: impl Into<String>, settings: BreakerSettings) -> Self {
        let now = Instant::now();
        CircuitBreaker {
            name: name.into(),
            settings,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                generation: 0,
                consecutive_failures: 0,
                half_open_successes: 0,
                half_open_in_flight: 0,
                open_until: now,
                forced: false,
                last_transition: now,
                calls: 0,
                successes: 0,
                failures: 0,
                rejected: 0,
                trips: 0,
            }),
            hooks: RwLock::new(Vec::new()),
        }
    }

    /// The node name given at construction.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The breaker's settings.
    pub fn settings(&self) -> &BreakerSettings {
        &self.settings
    }

    /// Asks to make one call. The permit must be settled with
    /// [`success`](BreakerPermit::success) or [`failure`](BreakerPermit::failure);
    /// dropping it unsettled means "this outcome says nothing about the node".
    pub fn try_acquire(&self) -> Result<BreakerPermit<'_>, BreakerOpen> {
        let now = Instant::now();
        let mut change = None;
        let result = {
            let mut inner = self.inner.lock();
            if inner.state == BreakerState::Open && !inner.forced && now >= inner.open_until {
                change = inner.transition(BreakerState::HalfOpen, now);
            }
            match inner.state {
                BreakerState::Closed => {
                    inner.calls += 1;
                    Ok(inner.generation)
                }
                BreakerState::HalfOpen if inner.half_open_in_flight < self.half_open_max_calls() => {
                    inner.half_open_in_flight += 1;
                    inner.calls += 1;
                    Ok(inner.generation)
                }
                BreakerState::HalfOpen | BreakerState::Open => {
                    inner.rejected += 1;
                    Err(self.refusal(&inner, now))
                }
            }
        };
        self.notify(change);
        result.map(|generation| BreakerPermit::new(self, generation))
    }

    /// The current state. Open stays Open until a call arrives after
    /// `open_duration` (see [`stats`](Self::stats)' `open_remaining_secs`).
    pub fn state(&self) -> BreakerState {
        self.inner.lock().state
    }

    /// Closes the circuit and forgets failures, probes and a forced open.
    /// Outcomes of calls in flight are ignored.
    pub fn reset(&self) {
        let now = Instant::now();
        let change = {
            let mut inner = self.inner.lock();
            inner.forced = false;
            inner.consecutive_failures = 0;
            let change = inner.transition(BreakerState::Closed, now);
            if change.is_none() {
                // Already closed: still disown permits granted before the reset.
                inner.generation += 1;
            }
            change
        };
        self.notify(change);
    }

    /// Opens the circuit and holds it open, with no probes, until [`reset`](Self::reset).
    pub fn force_open(&self) {
        let now = Instant::now();
        let change = {
            let mut inner = self.inner.lock();
            inner.forced = true;
            inner.transition(BreakerState::Open, now)
        };
        self.notify(change);
    }

    /// Registers a hook called on every state change with (name, from, to).
    /// Hooks run on the thread that caused the change, after the breaker's lock
    /// is released (so a hook may call back into the breaker); they should be
    /// quick. Changes racing on two threads may reach hooks in either order.
    pub fn on_state_change(&self, hook: impl Fn(&str, BreakerState, BreakerState) + Send + Sync + 'static) {
        self.hooks.write().push(Arc::new(hook));
    }

    /// A snapshot of the breaker's state and counters.
    pub fn stats(&self) -> BreakerStats {
        let now = Instant::now();
        let inner = self.inner.lock();
        let open_remaining_secs = (inner.state == BreakerState::Open && !inner.forced)
            .then(|| inner.open_until.saturating_duration_since(now).as_secs_f64());
        BreakerStats {
            name: self.name.clone(),
            state: inner.state,
            consecutive_failures: inner.consecutive_failures,
            calls: inner.calls,
            successes: inner.successes,
            failures: inner.failures,
            rejected: inner.rejected,
            trips: inner.trips,
            last_transition_secs_ago: now.saturating_duration_since(inner.last_transition).as_secs_f64(),
            open_remaining_secs,
            forced: inner.forced,
        }
    }

    /// Refuses (and counts a rejection) if the circuit is open and not yet due
    /// for a probe; used by the executor to avoid sleeping towards a retry the
    /// breaker would refuse. Takes no permit and changes no state.
    pub(crate) fn reject_if_open(&self) -> Result<(), BreakerOpen> {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        let open = inner.state == BreakerState::Open && (inner.forced || now < inner.open_until);
        if open {
            inner.rejected += 1;
            Err(self.refusal(&inner, now))
        } else {
            Ok(())
        }
    }

    /// Applies a permit's outcome. See the module docs for stale generations.
    fn settle(&self, generation: u64, verdict: Verdict) {
        let now = Instant::now();
        let change = {
            let mut inner = self.inner.lock();
            match verdict {
                Verdict::Success => inner.successes += 1,
                Verdict::Failure => inner.failures += 1,
                Verdict::Ignored => {}
            }
            if inner.generation != generation {
                return;
            }
            match (inner.state, verdict) {
                (BreakerState::Closed, Verdict::Success) => {
                    inner.consecutive_failures = 0;
                    None
                }
                (BreakerState::Closed, Verdict::Failure) => {
                    inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
                    if inner.consecutive_failures >= self.settings.failure_threshold.max(1) {
                        self.trip(&mut inner, now)
                    } else {
                        None
                    }
                }
                (BreakerState::HalfOpen, verdict) => {
                    // Same generation while half-open: this permit was a probe.
                    inner.half_open_in_flight = inner.half_open_in_flight.saturating_sub(1);
                    match verdict {
                        Verdict::Success => {
                            inner.consecutive_failures = 0;
                            inner.half_open_successes += 1;
                            if inner.half_open_successes >= self.settings.success_threshold.max(1) {
                                inner.transition(BreakerState::Closed, now)
                            } else {
                                None
                            }
                        }
                        Verdict::Failure => {
                            inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
                            self.trip(&mut inner, now)
                        }
                        Verdict::Ignored => None,
                    }
                }
                // Permits are never granted while open, so none can settle in
                // the open generation; (Closed, Ignored) changes nothing.
                _ => None,
            }
        };
        self.notify(change);
    }

    /// Opens the circuit because of failures.
    fn trip(&self, inner: &mut Inner, now: Instant) -> Change {
        inner.trips += 1;
        let change = inner.transition(BreakerState::Open, now);
        inner.open_until = deadline_after(now, self.settings.open_duration);
        change
    }

    fn refusal(&self, inner: &Inner, now: Instant) -> BreakerOpen {
        let retry_in = match inner.state {
            BreakerState::Open if inner.forced => self.settings.open_duration,
            BreakerState::Open => inner.open_until.saturating_duration_since(now),
            BreakerState::Closed | BreakerState::HalfOpen => Duration::ZERO,
        };
        BreakerOpen {
            node: self.name.clone(),
            retry_in,
            consecutive_failures: inner.consecutive_failures,
        }
    }

    fn half_open_max_calls(&self) -> u32 {
        self.settings.half_open_max_calls.max(1)
    }

    /// Logs a state change and calls the hooks; the caller has released the lock.
    fn notify(&self, change: Change) {
        let Some((from, to)) = change else { return };
        tracing::info!(node = %self.name, %from, %to, "circuit breaker state change");
        // Clone the hooks out so none runs under the hooks lock either (a hook
        // may register another hook).
        let hooks: Vec<Hook> = self.hooks.read().clone();
        for hook in hooks {
            hook(&self.name, from, to);
        }
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name)
            .field("settings", &self.settings)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// Moves to `to`, starting a new generation; None if already there.
    fn transition(&mut self, to: BreakerState, now: Instant) -> Change {
        let from = self.state;
        if from == to {
            return None;
        }
        self.state = to;
        self.generation += 1;
        self.last_transition = now;
        self.half_open_successes = 0;
        self.half_open_in_flight = 0;
        Some((from, to))
    }
}

/// `now + d`, or as far as an Instant goes for an absurd `d` (no panic).
fn deadline_after(now: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(d).or_else(|| now.checked_add(FAR)).unwrap_or(now)
}
