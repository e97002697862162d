//! The JSON documents of `/health` and `/status`, built from the monitor's state
//! and fresh statistics of every node.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Firing, Monitor, ProbeMode, Recommendation, Sample, Watch};
use crate::client::{HealthStatus, NodeHealth, NodeStats};
use crate::pool::PoolStats;
use crate::resilience::ExecutorStats;

/// `GET /health`.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// The worst of the nodes' (`healthy` with no node).
    pub status: HealthStatus,
    /// Each node's health, by name.
    pub nodes: BTreeMap<String, NodeHealthEntry>,
}

/// One node in `/health`.
#[derive(Debug, Clone, Serialize)]
pub struct NodeHealthEntry {
    /// Healthy, degraded or down.
    pub health: HealthStatus,
    /// Why it is not healthy (empty when healthy).
    pub reasons: Vec<String>,
}

impl HealthReport {
    /// No node is down (HTTP 200; 503 otherwise).
    pub fn is_up(&self) -> bool {
        self.status != HealthStatus::Down
    }
}

/// `GET /status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// When the report was made (ms since the Unix epoch).
    pub generated_at_ms: u64,
    /// When the monitor started (ms since the Unix epoch).
    pub started_at_ms: u64,
    /// Time between ticks (seconds).
    pub interval_seconds: f64,
    /// How far back the history goes (seconds).
    pub history_seconds: u64,
    /// Samples kept per node.
    pub history_capacity: usize,
    /// Whether the monitor runs health checks (C-ECHO) itself.
    pub probing: bool,
    /// The worst of the nodes'.
    pub status: HealthStatus,
    /// Each node's status, by name.
    pub nodes: BTreeMap<String, NodeStatus>,
}

/// One node in `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    /// The node's AE title (Called AE Title).
    pub ae_title: String,
    /// `HOST:PORT` of the node.
    pub address: String,
    /// Healthy, degraded or down.
    pub health: HealthStatus,
    /// Why it is not healthy (empty when healthy).
    pub reasons: Vec<String>,
    /// `echo`, `association` (no Verification) or `none` (not probed).
    pub probe_mode: &'static str,
    /// Health checks failed in a row.
    pub consecutive_failed_checks: u32,
    /// Busy associations as a percentage of the effective maximum.
    pub utilization_percent: f64,
    /// The node's association pool.
    pub pool: PoolStats,
    /// Circuit breaker and retry statistics.
    pub breaker: ExecutorStats,
    /// The alerts firing now.
    pub alerts: Vec<Firing>,
    /// What to change in the config, and why.
    pub recommendations: Vec<Recommendation>,
    /// Oldest first.
    pub history: Vec<Sample>,
}

fn worst(a: HealthStatus, b: HealthStatus) -> HealthStatus {
    let rank = |s| match s {
        HealthStatus::Healthy => 0,
        HealthStatus::Degraded => 1,
        HealthStatus::Down => 2,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

impl Monitor {
    /// A node's health: its pool and breaker's, with the health checks'.
    pub(super) fn judge(&self, stats: &NodeStats, watch: Option<&Watch>) -> NodeHealth {
        let mut health = stats.health.clone();
        let Some(watch) = watch else { return health };
        if let Some(probe) = watch.history.iter().rev().find_map(|s| s.probe.as_ref()) {
            if !probe.ok {
                let n = watch.consecutive_failed_checks;
                health.reasons.push(format!(
                    "{n} consecutive failed health check(s): {}",
                    probe.error.as_deref().unwrap_or("failed")
                ));
                if n > self.settings.alerts.failed_health_checks {
                    health.status = HealthStatus::Down;
                } else {
                    health.status = worst(health.status, HealthStatus::Degraded);
                }
            }
        }
        if watch.mode == ProbeMode::Association {
            health
                .reasons
                .push("checked by association only: the node does not accept Verification (C-ECHO)".into());
        }
        health
    }

    /// What `/health` answers, from fresh statistics.
    pub fn health_report(&self) -> HealthReport {
        let stats = self.client.stats();
        let watches = self.lock();
        let mut status = HealthStatus::Healthy;
        let nodes = stats
            .iter()
            .map(|s| {
                let h = self.judge(s, watches.get(&s.node));
                status = worst(status, h.status);
                (
                    s.node.clone(),
                    NodeHealthEntry {
                        health: h.status,
                        reasons: h.reasons,
                    },
                )
            })
            .collect();
        HealthReport { status, nodes }
    }

    /// What `/status` answers (and the page shows), from fresh statistics and the history.
    pub fn status_report(&self) -> StatusReport {
        let stats = self.client.stats();
        let watches = self.lock();
        let probing = self.probing.load(std::sync::atomic::Ordering::Relaxed);
        let mut status = HealthStatus::Healthy;
        let nodes = stats
            .into_iter()
            .map(|s| {
                let watch = watches.get(&s.node);
                let h = self.judge(&s, watch);
                status = worst(status, h.status);
                let utilization_percent = if s.pool.effective_max == 0 {
                    0.0
                } else {
                    s.pool.active as f64 * 100.0 / s.pool.effective_max as f64
                };
                let entry = NodeStatus {
                    ae_title: s.ae_title,
                    address: s.address,
                    health: h.status,
                    reasons: h.reasons,
                    probe_mode: match (probing, watch.map(|w| w.mode)) {
                        (false, _) => "none",
                        (true, Some(ProbeMode::Association)) => "association",
                        (true, _) => "echo",
                    },
                    consecutive_failed_checks: watch.map_or(0, |w| w.consecutive_failed_checks),
                    utilization_percent,
                    pool: s.pool,
                    breaker: s.resilience,
                    alerts: watch.map(|w| w.alerts.firing().cloned().collect()).unwrap_or_default(),
                    recommendations: watch.map(|w| w.recommendations.clone()).unwrap_or_default(),
                    history: watch.map(|w| w.history.iter().cloned().collect()).unwrap_or_default(),
                };
                (s.node, entry)
            })
            .collect();
        StatusReport {
            generated_at_ms: super::now_ms(),
            started_at_ms: self.started_ms,
            interval_seconds: self.settings.interval.as_secs_f64(),
            history_seconds: self.settings.history.as_secs(),
            history_capacity: self.settings.capacity(),
            probing,
            status,
            nodes,
        }
    }
}
