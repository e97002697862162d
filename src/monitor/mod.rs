//! The operators' window: a [`Monitor`] over a [`Client`] that samples every node at
//! an interval (optionally C-ECHOing it first), keeps a bounded history per node,
//! raises and resolves alerts, derives recommendations, and serves it all over HTTP
//! ([`router`]: `/metrics`, `/health`, `/status` and an HTML page at `/`) for an
//! application to merge into its own server, or for `pacs-net monitor`.
//!
//! ```no_run
//! # async fn run(client: std::sync::Arc<pacs_net::client::Client>) -> std::io::Result<()> {
//! use pacs_net::monitor::{Monitor, MonitorSettings};
//! let monitor = Monitor::new(client, MonitorSettings::default());
//! let _sampler = monitor.clone().spawn(true);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9464").await?;
//! axum::serve(listener, pacs_net::monitor::router(monitor)).await
//! # }
//! ```

mod advice;
mod alerts;
mod history;
mod http;
mod ops;
mod page;
mod report;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

pub use advice::{recommend, AdviceInput, Recommendation};
pub use alerts::{conditions, AlertBook, AlertEvent, AlertInput, AlertKind, Firing};
pub use history::{Counters, Probe, Ring, Sample, MAX_SAMPLES};
pub use http::{router, CONTENT_TYPE_METRICS};
pub use report::{HealthReport, NodeHealthEntry, NodeStatus, StatusReport};

use crate::association::{Association, AssociationError, Profile};
use crate::client::{Client, Node, OpError, OpOptions};
use crate::config::AlertSettings;
use crate::dimse::DimseError;
use crate::resilience::{BreakerState, ExecError};

/// How the monitor samples.
#[derive(Debug, Clone)]
pub struct MonitorSettings {
    /// Time between ticks (probe + sample).
    pub interval: Duration,
    /// How far back the history goes (the ring holds `history / interval` samples,
    /// at most [`MAX_SAMPLES`]).
    pub history: Duration,
    /// Alert thresholds.
    pub alerts: AlertSettings,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        MonitorSettings {
            interval: Duration::from_secs(30),
            history: Duration::from_secs(3600),
            alerts: AlertSettings::default(),
        }
    }
}

impl MonitorSettings {
    /// Samples kept per node.
    pub fn capacity(&self) -> usize {
        let interval = self.interval.as_secs_f64().max(0.001);
        ((self.history.as_secs_f64() / interval).ceil() as usize).clamp(2, MAX_SAMPLES)
    }
}

/// How a node is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeMode {
    /// C-ECHO through the node's pool.
    Echo,
    /// The node did not accept Verification: open and release an association.
    Association,
}

/// What the monitor keeps about one node.
#[derive(Debug)]
struct Watch {
    history: Ring<Sample>,
    alerts: AlertBook,
    mode: ProbeMode,
    consecutive_failed_checks: u32,
    probe_dimse_timeouts: u64,
    /// Operations and failures counted so far (all of the node's telemetry).
    seen_ops: (u64, u64),
    /// Since when the circuit has not been closed.
    not_closed_since: Option<Instant>,
    recommendations: Vec<Recommendation>,
}

impl Watch {
    fn new(capacity: usize) -> Self {
        Watch {
            history: Ring::new(capacity),
            alerts: AlertBook::default(),
            mode: ProbeMode::Echo,
            consecutive_failed_checks: 0,
            probe_dimse_timeouts: 0,
            seen_ops: (0, 0),
            not_closed_since: None,
            recommendations: Vec::new(),
        }
    }
}

/// Samples the nodes of a client and keeps their history, alerts and advice.
pub struct Monitor {
    client: Arc<Client>,
    settings: MonitorSettings,
    watches: Mutex<BTreeMap<String, Watch>>,
    /// Whether this monitor probes (then the page says so).
    probing: std::sync::atomic::AtomicBool,
    started_ms: u64,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor").field("settings", &self.settings).finish()
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Monitor {
    /// A monitor over `client`. Every node of the config is started now (pools warm
    /// up, and each node shows in every report from the first one).
    pub fn new(client: Arc<Client>, settings: MonitorSettings) -> Arc<Monitor> {
        client.start_all();
        Arc::new(Monitor {
            client,
            settings,
            watches: Mutex::new(BTreeMap::new()),
            probing: std::sync::atomic::AtomicBool::new(false),
            started_ms: now_ms(),
        })
    }

    /// The client whose nodes are watched.
    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// The monitor's settings.
    pub fn settings(&self) -> &MonitorSettings {
        &self.settings
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Watch>> {
        self.watches.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tick every `interval` until the task is aborted (or the returned handle
    /// dropped and aborted): with `probe`, C-ECHO every node first.
    pub fn spawn(self: Arc<Self>, probe: bool) -> tokio::task::JoinHandle<()> {
        self.probing.store(probe, std::sync::atomic::Ordering::Relaxed);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.settings.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                self.tick(probe).await;
            }
        })
    }

    /// One tick: probe every node at once (with `probe`), then sample them all.
    pub async fn tick(&self, probe: bool) {
        if probe {
            self.probing.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let nodes = self.client.nodes();
        {
            // Every node has its watch before its first probe (which may change the
            // way it is probed).
            let capacity = self.settings.capacity();
            let mut watches = self.lock();
            for node in &nodes {
                watches
                    .entry(node.name().to_string())
                    .or_insert_with(|| Watch::new(capacity));
            }
        }
        let probes: Vec<Option<(Probe, bool)>> = if probe {
            futures::future::join_all(nodes.iter().map(|n| self.probe(n)))
                .await
                .into_iter()
                .map(Some)
                .collect()
        } else {
            vec![None; nodes.len()]
        };
        let now = Instant::now();
        let at_ms = now_ms();
        let mut watches = self.lock();
        let capacity = self.settings.capacity();
        for (node, probe) in nodes.iter().zip(probes) {
            let watch = watches
                .entry(node.name().to_string())
                .or_insert_with(|| Watch::new(capacity));
            let ops = ops::count(self.client.telemetry(), node.name(), &node.config().ae_title);
            self.sample(node, watch, probe, ops, now, at_ms);
        }
    }

    /// A health check of one node: (result, whether it failed on a DIMSE timeout).
    async fn probe(&self, node: &Arc<Node>) -> (Probe, bool) {
        let mode = self.lock().get(node.name()).map(|w| w.mode).unwrap_or(ProbeMode::Echo);
        let started = Instant::now();
        let deadline = self.settings.interval.max(Duration::from_secs(10));
        if mode == ProbeMode::Echo {
            let out = node
                .echo_with(&OpOptions {
                    deadline: Some(deadline),
                    ..OpOptions::default()
                })
                .await;
            let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            match out.result {
                Ok(_) => {
                    return (
                        Probe {
                            kind: "echo",
                            ok: true,
                            latency_ms,
                            error: None,
                        },
                        false,
                    )
                }
                Err(ExecError::Operation(OpError::Dimse(DimseError::NoContext(_)))) => {
                    tracing::info!(node = %node.name(), "node does not accept Verification: health checks open and release an association instead of C-ECHO");
                    if let Some(w) = self.lock().get_mut(node.name()) {
                        w.mode = ProbeMode::Association;
                    }
                }
                Err(e) => {
                    let dimse_timeout = matches!(
                        e.last_error(),
                        Some(OpError::Association(AssociationError::DimseTimeout(_)))
                    );
                    return (
                        Probe {
                            kind: "echo",
                            ok: false,
                            latency_ms,
                            error: Some(e.to_string()),
                        },
                        dimse_timeout,
                    );
                }
            }
        }
        // By association: the pool's own association parameters, outside the pool
        // (its associations are negotiated for Verification).
        let started = Instant::now();
        let params = node.pool().manager().params().clone();
        let result = tokio::time::timeout(deadline, Association::establish(&params, &Profile::Default)).await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let error = match result {
            Ok(Ok(assoc)) => {
                assoc.release().await;
                None
            }
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("no association within {} s", deadline.as_secs())),
        };
        (
            Probe {
                kind: "association",
                ok: error.is_none(),
                latency_ms,
                error,
            },
            false,
        )
    }

    fn sample(
        &self,
        node: &Node,
        watch: &mut Watch,
        probe: Option<(Probe, bool)>,
        ops: (u64, u64),
        now: Instant,
        at_ms: u64,
    ) {
        let stats = node.stats();
        let p = &stats.pool;
        let b = &stats.resilience;
        let probe = probe.map(|(probe, dimse_timeout)| {
            if probe.ok {
                watch.consecutive_failed_checks = 0;
            } else {
                watch.consecutive_failed_checks += 1;
            }
            watch.probe_dimse_timeouts += u64::from(dimse_timeout);
            probe
        });
        if b.breaker.state == BreakerState::Closed {
            watch.not_closed_since = None;
        } else if watch.not_closed_since.is_none() {
            let since = Duration::from_secs_f64(b.breaker.last_transition_secs_ago.max(0.0));
            watch.not_closed_since = Some(now.checked_sub(since).unwrap_or(now));
        }
        let (operations, failures) = (
            ops.0.saturating_sub(watch.seen_ops.0),
            ops.1.saturating_sub(watch.seen_ops.1),
        );
        watch.seen_ops = ops;
        let counters = Counters {
            stale: p.destroyed.stale + p.stale_redos,
            validation_failures: p.validation_failures,
            budget_exhausted: b.budget_exhausted,
            trips: b.breaker.trips,
            acquire_timeouts: p.acquire_timeouts,
            remote_limited: p.remote_limited,
            probe_dimse_timeouts: watch.probe_dimse_timeouts,
        };
        watch.history.push(Sample {
            at_ms,
            probe: probe.clone(),
            operations,
            failures,
            active: p.active,
            effective_max: p.effective_max,
            waiting: p.waiting,
            acquire_p95_ms: p.wait.p95_ms,
            breaker: b.breaker.state.as_str(),
            counters,
        });

        // Alerts.
        let window_start = at_ms.saturating_sub(self.settings.alerts.error_rate_window.as_millis() as u64);
        let (window_operations, window_failures) = watch
            .history
            .iter()
            .filter(|s| s.at_ms > window_start)
            .fold((0, 0), |(o, f), s| (o + s.operations, f + s.failures));
        let input = AlertInput {
            acquire_p95_ms: p.wait.p95_ms,
            wait_samples: p.wait.samples,
            active: p.active,
            effective_max: p.effective_max,
            window_operations,
            window_failures,
            circuit_not_closed_for: watch.not_closed_since.map(|t| now.duration_since(t)),
            consecutive_failed_checks: watch.consecutive_failed_checks,
        };
        for event in watch.alerts.update(at_ms, conditions(&self.settings.alerts, &input)) {
            match event {
                AlertEvent::Fired { alert, message } => tracing::warn!(
                    node = %node.name(),
                    ae = %node.config().ae_title,
                    alert = alert.as_str(),
                    event = "alert_firing",
                    "alert {} firing for {}: {message}",
                    alert.as_str(),
                    node.name()
                ),
                // A warning too, so that the default log shows the pair.
                AlertEvent::Resolved { alert, fired_for } => tracing::warn!(
                    node = %node.name(),
                    ae = %node.config().ae_title,
                    alert = alert.as_str(),
                    event = "alert_resolved",
                    fired_for_secs = fired_for.as_secs(),
                    "alert {} resolved for {} after {} s",
                    alert.as_str(),
                    node.name(),
                    fired_for.as_secs()
                ),
            }
        }

        // Recommendations, over the history window.
        let oldest = watch.history.oldest().map(|s| s.counters).unwrap_or_default();
        let window_peak_active = watch.history.iter().map(|s| s.active).max().unwrap_or(0);
        watch.recommendations = recommend(&AdviceInput {
            config: node.config(),
            pool: p,
            // Until the ring is full, everything since start is inside the window.
            window: if watch.history.len() < watch.history.capacity() {
                counters
            } else {
                counters.since(&oldest)
            },
            window_peak_active,
            wait_limit_ms: self.settings.alerts.acquire_wait_p95.as_secs_f64() * 1000.0,
        });
    }
}
