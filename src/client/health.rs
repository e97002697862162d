//! Node health from pool and breaker state (healthy / degraded / down, with
//! reasons), and the watchdog that turns the same signals into rate-limited
//! warnings: utilization past 80 % and 95 %, callers queueing, the breaker open,
//! and borrows held past the leak threshold.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::pool::{Pool, PoolStats};
use crate::resilience::{BreakerState, BreakerStats, Executor};

use super::manager::AssociationManager;
use super::telemetry::NodeMetrics;

/// Overall state of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Working normally.
    Healthy,
    /// Working, with warnings (see the reasons).
    Degraded,
    /// Its circuit breaker is open: operations are refused (see the reasons).
    Down,
}

impl HealthStatus {
    /// `healthy`, `degraded` or `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Down => "down",
        }
    }
}

/// A borrow held past the leak threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct LeakReport {
    /// The pooled association's id.
    pub association: u64,
    /// What it was borrowed for (C-ECHO, C-STORE, C-FIND), when known.
    pub operation: Option<String>,
    /// How long it has been borrowed (seconds).
    pub held_secs: f64,
}

/// Health of one node, with the reasons for anything but healthy.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct NodeHealth {
    /// Healthy, degraded or down.
    pub status: HealthStatus,
    /// Why it is not healthy, in words (empty when healthy).
    pub reasons: Vec<String>,
    /// Borrows held longer than the pool's leak threshold.
    pub leak_suspects: Vec<LeakReport>,
}

fn utilization(pool: &PoolStats) -> f64 {
    if pool.effective_max == 0 {
        return 1.0;
    }
    pool.active as f64 / pool.effective_max as f64
}

/// Judge a node from its statistics.
pub fn assess(pool: &PoolStats, breaker: &BreakerStats, leaks: Vec<LeakReport>) -> NodeHealth {
    let mut reasons = Vec::new();
    let mut status = HealthStatus::Healthy;
    match breaker.state {
        BreakerState::Open => {
            status = HealthStatus::Down;
            if breaker.forced {
                reasons.push("circuit forced open".to_string());
            } else {
                reasons.push(format!(
                    "circuit open after {} consecutive failures; next probe in {:.1} s",
                    breaker.consecutive_failures,
                    breaker.open_remaining_secs.unwrap_or(0.0)
                ));
            }
        }
        BreakerState::HalfOpen => {
            status = HealthStatus::Degraded;
            reasons.push("circuit half-open: probing".to_string());
        }
        BreakerState::Closed => {}
    }
    let mut degrade = |reason: String| {
        if status == HealthStatus::Healthy {
            status = HealthStatus::Degraded;
        }
        reasons.push(reason);
    };
    if breaker.state == BreakerState::Closed && breaker.consecutive_failures > 0 {
        degrade(format!("{} consecutive failures", breaker.consecutive_failures));
    }
    let u = utilization(pool);
    if u >= 0.95 {
        degrade(format!(
            "pool {:.0} % utilized ({} of {})",
            u * 100.0,
            pool.active,
            pool.effective_max
        ));
    }
    if pool.waiting > 0 {
        degrade(format!("{} callers waiting for an association", pool.waiting));
    }
    if pool.effective_max < pool.max_size {
        degrade(format!(
            "remote limited the pool to {} of {} associations",
            pool.effective_max, pool.max_size
        ));
    } else if pool.unanswered_opens > 0 && pool.total > 0 {
        degrade(format!(
            "remote limited the pool: {} association request(s) unanswered while {} open association(s) served every operation (a peer that takes one association at a time?)",
            pool.unanswered_opens, pool.total
        ));
    }
    if !leaks.is_empty() {
        degrade(format!("{} associations held past the leak threshold", leaks.len()));
    }
    NodeHealth {
        status,
        reasons,
        leak_suspects: leaks,
    }
}

/// Kinds of operator warning, each rate-limited on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WarningKind {
    /// Pool utilization above 80 %.
    Utilization80,
    /// Pool utilization above 95 %.
    Utilization95,
    /// Callers waiting for an association.
    Waiters,
    /// The circuit breaker is open.
    BreakerOpen,
    /// A borrow held longer than the leak threshold.
    Leak,
}

impl WarningKind {
    /// The kind in snake_case (`utilization_80`, `breaker_open`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            WarningKind::Utilization80 => "utilization_80",
            WarningKind::Utilization95 => "utilization_95",
            WarningKind::Waiters => "waiters",
            WarningKind::BreakerOpen => "breaker_open",
            WarningKind::Leak => "leak",
        }
    }
}

/// One warning to log.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    /// Which warning it is.
    pub kind: WarningKind,
    /// The warning in words.
    pub message: String,
}

/// How often one kind of warning may be repeated for a node.
pub const WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Turns health signals into warnings, each kind at most once per interval.
#[derive(Debug)]
pub struct Watchdog {
    interval: Duration,
    last: HashMap<WarningKind, Instant>,
}

impl Default for Watchdog {
    fn default() -> Self {
        Watchdog::new(WARNING_INTERVAL)
    }
}

impl Watchdog {
    /// A watchdog that repeats each kind of warning at most once per `interval`.
    pub fn new(interval: Duration) -> Self {
        Watchdog {
            interval,
            last: HashMap::new(),
        }
    }

    fn due(&mut self, kind: WarningKind, now: Instant) -> bool {
        match self.last.get(&kind) {
            Some(t) if now.duration_since(*t) < self.interval => false,
            _ => {
                self.last.insert(kind, now);
                true
            }
        }
    }

    /// The warnings due now for `node`.
    pub fn check(
        &mut self,
        node: &str,
        pool: &PoolStats,
        breaker: &BreakerStats,
        leaks: &[LeakReport],
        now: Instant,
    ) -> Vec<Warning> {
        let mut out = Vec::new();
        let u = utilization(pool);
        if u >= 0.95 {
            if self.due(WarningKind::Utilization95, now) {
                out.push(Warning {
                    kind: WarningKind::Utilization95,
                    message: format!(
                        "node {node}: pool {:.0} % utilized ({} of {} associations busy)",
                        u * 100.0,
                        pool.active,
                        pool.effective_max
                    ),
                });
            }
        } else if u >= 0.8 && self.due(WarningKind::Utilization80, now) {
            out.push(Warning {
                kind: WarningKind::Utilization80,
                message: format!(
                    "node {node}: pool {:.0} % utilized ({} of {} associations busy)",
                    u * 100.0,
                    pool.active,
                    pool.effective_max
                ),
            });
        }
        if pool.waiting > 0 && self.due(WarningKind::Waiters, now) {
            out.push(Warning {
                kind: WarningKind::Waiters,
                message: format!("node {node}: {} callers waiting for an association", pool.waiting),
            });
        }
        if breaker.state == BreakerState::Open && self.due(WarningKind::BreakerOpen, now) {
            out.push(Warning {
                kind: WarningKind::BreakerOpen,
                message: format!(
                    "node {node}: circuit open ({} consecutive failures); operations fail fast",
                    breaker.consecutive_failures
                ),
            });
        }
        if !leaks.is_empty() && self.due(WarningKind::Leak, now) {
            let list: Vec<String> = leaks
                .iter()
                .map(|l| {
                    format!(
                        "association {} ({}) held {:.1} s",
                        l.association,
                        l.operation.as_deref().unwrap_or("unknown operation"),
                        l.held_secs
                    )
                })
                .collect();
            out.push(Warning {
                kind: WarningKind::Leak,
                message: format!("node {node}: possible association leak: {}", list.join("; ")),
            });
        }
        out
    }
}

/// Operations currently holding a pooled association, by pool id (for leak reports).
pub(crate) type Borrows = Arc<Mutex<HashMap<u64, &'static str>>>;

/// The pool's leak suspects, named by the operation that holds each.
pub(crate) fn leak_reports(pool: &Pool<AssociationManager>, borrows: &Borrows) -> Vec<LeakReport> {
    let suspects = pool.leak_suspects();
    if suspects.is_empty() {
        return Vec::new();
    }
    let ops = borrows.lock();
    suspects
        .into_iter()
        .map(|s| LeakReport {
            association: s.id,
            operation: ops.get(&s.id).map(|o| o.to_string()),
            held_secs: s.held_for.as_secs_f64(),
        })
        .collect()
}

/// How often the watchdog looks at a node.
const WATCHDOG_TICK: Duration = Duration::from_secs(1);

/// Spawn the task that looks at a node every tick and logs the warnings that are
/// due; it ends when the returned sender is dropped. None outside a tokio runtime.
pub(crate) fn spawn_watchdog(
    name: String,
    pool: Pool<AssociationManager>,
    executor: Arc<Executor>,
    borrows: Borrows,
    metrics: Arc<NodeMetrics>,
) -> Option<tokio::sync::watch::Sender<()>> {
    tokio::runtime::Handle::try_current().ok()?;
    let (tx, mut stop) = tokio::sync::watch::channel(());
    tokio::spawn(async move {
        let mut dog = Watchdog::default();
        loop {
            tokio::select! {
                changed = stop.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(WATCHDOG_TICK) => {}
            }
            let stats = pool.stats();
            let breaker = executor.breaker().stats();
            let leaks = leak_reports(&pool, &borrows);
            for w in dog.check(&name, &stats, &breaker, &leaks, Instant::now()) {
                metrics.warning(w.kind.as_str());
                tracing::warn!(node = %name, kind = w.kind.as_str(), "{}", w.message);
            }
        }
    });
    Some(tx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::{DestroyedStats, WaitStats};

    fn pool(active: usize, max: usize, waiting: usize) -> PoolStats {
        PoolStats {
            pool: "N".into(),
            total: active,
            active,
            idle: 0,
            waiting,
            opening: 0,
            closing: 0,
            effective_max: max,
            max_size: max,
            acquisitions: 0,
            releases: 0,
            acquire_timeouts: 0,
            rejected_waiters: 0,
            created: 0,
            create_failures: 0,
            destroyed: DestroyedStats::default(),
            validations: 0,
            validation_failures: 0,
            stale_redos: 0,
            peak_active: active,
            wait: WaitStats::default(),
            leak_suspects: 0,
            remote_limited: 0,
            unanswered_opens: 0,
        }
    }

    fn breaker(state: BreakerState, failures: u32) -> BreakerStats {
        BreakerStats {
            name: "N".into(),
            state,
            consecutive_failures: failures,
            calls: 0,
            successes: 0,
            failures: 0,
            rejected: 0,
            trips: 0,
            last_transition_secs_ago: 0.0,
            open_remaining_secs: (state == BreakerState::Open).then_some(30.0),
            forced: false,
        }
    }

    #[test]
    fn healthy_degraded_down() {
        let h = assess(&pool(1, 10, 0), &breaker(BreakerState::Closed, 0), vec![]);
        assert_eq!(h.status, HealthStatus::Healthy);
        assert!(h.reasons.is_empty());
        let h = assess(&pool(10, 10, 3), &breaker(BreakerState::Closed, 0), vec![]);
        assert_eq!(h.status, HealthStatus::Degraded);
        assert_eq!(h.reasons.len(), 2, "{:?}", h.reasons);
        let h = assess(&pool(0, 10, 0), &breaker(BreakerState::Open, 5), vec![]);
        assert_eq!(h.status, HealthStatus::Down);
        assert!(h.reasons[0].contains("circuit open after 5"), "{:?}", h.reasons);
        let mut limited = pool(2, 10, 0);
        limited.effective_max = 2;
        limited.max_size = 10;
        let h = assess(&limited, &breaker(BreakerState::Closed, 0), vec![]);
        assert!(
            h.reasons.iter().any(|r| r.contains("limited the pool to 2 of 10")),
            "{:?}",
            h.reasons
        );
    }

    #[test]
    fn leaks_are_listed_in_the_report() {
        let leak = LeakReport {
            association: 7,
            operation: Some("C-STORE".into()),
            held_secs: 400.0,
        };
        let h = assess(&pool(1, 10, 0), &breaker(BreakerState::Closed, 0), vec![leak.clone()]);
        assert_eq!(h.status, HealthStatus::Degraded);
        assert_eq!(h.leak_suspects, vec![leak]);
    }

    #[tokio::test(start_paused = true)]
    async fn warnings_fire_at_80_and_95_percent_and_are_rate_limited() {
        let mut w = Watchdog::new(Duration::from_secs(60));
        let closed = breaker(BreakerState::Closed, 0);
        assert!(w.check("N", &pool(7, 10, 0), &closed, &[], Instant::now()).is_empty());
        let out = w.check("N", &pool(8, 10, 0), &closed, &[], Instant::now());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, WarningKind::Utilization80);
        assert!(out[0].message.contains("80 % utilized"), "{}", out[0].message);
        let out = w.check("N", &pool(10, 10, 2), &closed, &[], Instant::now());
        let kinds: Vec<_> = out.iter().map(|w| w.kind).collect();
        assert_eq!(kinds, vec![WarningKind::Utilization95, WarningKind::Waiters]);
        // Within the interval: nothing repeats.
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(w.check("N", &pool(10, 10, 2), &closed, &[], Instant::now()).is_empty());
        // After it: they come back.
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(w.check("N", &pool(10, 10, 2), &closed, &[], Instant::now()).len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_open_and_leak_warnings() {
        let mut w = Watchdog::default();
        let leak = LeakReport {
            association: 3,
            operation: Some("C-FIND".into()),
            held_secs: 12.5,
        };
        let out = w.check(
            "PACS",
            &pool(1, 10, 0),
            &breaker(BreakerState::Open, 5),
            &[leak],
            Instant::now(),
        );
        assert_eq!(out.len(), 2);
        assert!(out[0].message.contains("circuit open (5 consecutive failures)"));
        assert!(
            out[1].message.contains("association 3 (C-FIND) held 12.5 s"),
            "{}",
            out[1].message
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(w
            .check(
                "PACS",
                &pool(1, 10, 0),
                &breaker(BreakerState::Open, 6),
                &[],
                Instant::now()
            )
            .is_empty());
    }
}
