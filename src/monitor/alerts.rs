//! Alerts: conditions over a node's latest sample and its history window, with the
//! thresholds of `network.alerts`, and the state machine that turns them into one
//! "firing" and one "resolved" event each, however many ticks a condition lasts.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::config::AlertSettings;

/// The alerts the monitor knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Acquire wait p95 above `acquire_wait_p95_ms`.
    AcquireWait,
    /// Pool utilization above `utilization_percent`.
    Utilization,
    /// Failed operations above `error_rate_percent` over `error_rate_window_seconds`.
    ErrorRate,
    /// Circuit not closed for longer than `circuit_open_seconds`.
    CircuitOpen,
    /// More consecutive failed health checks than `failed_health_checks`.
    HealthChecks,
}

impl AlertKind {
    /// Every alert kind.
    pub const ALL: [AlertKind; 5] = [
        AlertKind::AcquireWait,
        AlertKind::Utilization,
        AlertKind::ErrorRate,
        AlertKind::CircuitOpen,
        AlertKind::HealthChecks,
    ];

    /// The `alert` label and the name in `/status`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::AcquireWait => "acquire_wait",
            AlertKind::Utilization => "utilization",
            AlertKind::ErrorRate => "error_rate",
            AlertKind::CircuitOpen => "circuit_open",
            AlertKind::HealthChecks => "health_checks",
        }
    }
}

/// What the alert conditions look at, for one node at one tick.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertInput {
    /// The pool's acquire wait p95 and how many samples it is over.
    pub acquire_p95_ms: f64,
    /// How many waits the p95 is over.
    pub wait_samples: usize,
    /// Associations borrowed now.
    pub active: usize,
    /// The pool's cap in force.
    pub effective_max: usize,
    /// Operations and failures in the error-rate window.
    pub window_operations: u64,
    /// Of which failed.
    pub window_failures: u64,
    /// How long the circuit has not been closed (None: closed).
    pub circuit_not_closed_for: Option<Duration>,
    /// Health checks failed in a row.
    pub consecutive_failed_checks: u32,
}

/// The conditions that hold now, each with a message that says why.
pub fn conditions(settings: &AlertSettings, input: &AlertInput) -> BTreeMap<AlertKind, String> {
    let mut out = BTreeMap::new();
    let wait_limit_ms = settings.acquire_wait_p95.as_secs_f64() * 1000.0;
    if input.wait_samples > 0 && input.acquire_p95_ms > wait_limit_ms {
        out.insert(
            AlertKind::AcquireWait,
            format!(
                "acquire wait p95 {:.0} ms > {:.0} ms (over the last {} acquisitions)",
                input.acquire_p95_ms, wait_limit_ms, input.wait_samples
            ),
        );
    }
    let utilization = if input.effective_max == 0 {
        0.0
    } else {
        input.active as f64 * 100.0 / input.effective_max as f64
    };
    if utilization > settings.utilization_percent {
        out.insert(
            AlertKind::Utilization,
            format!(
                "pool {utilization:.0} % utilized ({} of {}) > {} %",
                input.active, input.effective_max, settings.utilization_percent
            ),
        );
    }
    if input.window_operations > 0 {
        let rate = input.window_failures as f64 * 100.0 / input.window_operations as f64;
        if rate > settings.error_rate_percent {
            out.insert(
                AlertKind::ErrorRate,
                format!(
                    "{} of {} operations failed in the last {} s ({rate:.1} % > {} %)",
                    input.window_failures,
                    input.window_operations,
                    settings.error_rate_window.as_secs(),
                    settings.error_rate_percent
                ),
            );
        }
    }
    if let Some(d) = input.circuit_not_closed_for {
        if d > settings.circuit_open {
            out.insert(
                AlertKind::CircuitOpen,
                format!(
                    "circuit open for {} s > {} s",
                    d.as_secs(),
                    settings.circuit_open.as_secs()
                ),
            );
        }
    }
    if input.consecutive_failed_checks > settings.failed_health_checks {
        out.insert(
            AlertKind::HealthChecks,
            format!(
                "{} consecutive failed health checks > {}",
                input.consecutive_failed_checks, settings.failed_health_checks
            ),
        );
    }
    out
}

/// An alert firing now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Firing {
    /// Which alert.
    pub alert: AlertKind,
    /// When it fired, in milliseconds since the Unix epoch.
    pub since_ms: u64,
    /// Why, as of the latest tick.
    pub message: String,
}

/// A change of an alert's state: what is logged, once.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertEvent {
    /// The alert started firing.
    Fired {
        /// Which alert.
        alert: AlertKind,
        /// Why.
        message: String,
    },
    /// The alert stopped firing.
    Resolved {
        /// Which alert.
        alert: AlertKind,
        /// How long it fired.
        fired_for: Duration,
    },
}

/// The alerts firing for one node.
#[derive(Debug, Clone, Default)]
pub struct AlertBook {
    firing: BTreeMap<AlertKind, Firing>,
}

impl AlertBook {
    /// Take the conditions of a tick: an alert whose condition starts holding fires,
    /// one whose condition stops holding resolves; one that keeps holding only has
    /// its message brought up to date.
    pub fn update(&mut self, now_ms: u64, holding: BTreeMap<AlertKind, String>) -> Vec<AlertEvent> {
        let mut events = Vec::new();
        let resolved: Vec<AlertKind> = self
            .firing
            .keys()
            .filter(|k| !holding.contains_key(k))
            .copied()
            .collect();
        for alert in resolved {
            if let Some(f) = self.firing.remove(&alert) {
                events.push(AlertEvent::Resolved {
                    alert,
                    fired_for: Duration::from_millis(now_ms.saturating_sub(f.since_ms)),
                });
            }
        }
        for (alert, message) in holding {
            match self.firing.get_mut(&alert) {
                Some(f) => f.message = message,
                None => {
                    events.push(AlertEvent::Fired {
                        alert,
                        message: message.clone(),
                    });
                    self.firing.insert(
                        alert,
                        Firing {
                            alert,
                            since_ms: now_ms,
                            message,
                        },
                    );
                }
            }
        }
        events
    }

    /// The alerts firing now.
    pub fn firing(&self) -> impl Iterator<Item = &Firing> {
        self.firing.values()
    }

    /// Whether `alert` is firing now.
    pub fn is_firing(&self, alert: AlertKind) -> bool {
        self.firing.contains_key(&alert)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calm() -> AlertInput {
        AlertInput {
            acquire_p95_ms: 2.0,
            wait_samples: 100,
            active: 1,
            effective_max: 10,
            window_operations: 1000,
            window_failures: 0,
            circuit_not_closed_for: None,
            consecutive_failed_checks: 0,
        }
    }

    #[test]
    fn default_thresholds() {
        let s = AlertSettings::default();
        assert!(conditions(&s, &calm()).is_empty());
        let cases: Vec<(AlertInput, AlertKind)> = vec![
            (
                AlertInput {
                    acquire_p95_ms: 101.0,
                    ..calm()
                },
                AlertKind::AcquireWait,
            ),
            (AlertInput { active: 9, ..calm() }, AlertKind::Utilization),
            (
                AlertInput {
                    window_failures: 11,
                    ..calm()
                },
                AlertKind::ErrorRate,
            ),
            (
                AlertInput {
                    circuit_not_closed_for: Some(Duration::from_secs(301)),
                    ..calm()
                },
                AlertKind::CircuitOpen,
            ),
            (
                AlertInput {
                    consecutive_failed_checks: 4,
                    ..calm()
                },
                AlertKind::HealthChecks,
            ),
        ];
        for (input, kind) in cases {
            let c = conditions(&s, &input);
            assert_eq!(c.keys().copied().collect::<Vec<_>>(), vec![kind], "{input:?}");
        }
        // At the thresholds, nothing fires ("more than").
        let edge = AlertInput {
            acquire_p95_ms: 100.0,
            active: 8,
            window_failures: 10,
            circuit_not_closed_for: Some(Duration::from_secs(300)),
            consecutive_failed_checks: 3,
            ..calm()
        };
        assert!(conditions(&s, &edge).is_empty(), "{:?}", conditions(&s, &edge));
        // No acquisition yet, no operation yet: no wait alert, no error rate.
        let idle = AlertInput {
            acquire_p95_ms: 500.0,
            wait_samples: 0,
            window_operations: 0,
            ..calm()
        };
        assert!(conditions(&s, &idle).is_empty());
    }

    #[test]
    fn each_alert_fires_once_and_resolves_once() {
        let s = AlertSettings::default();
        let mut book = AlertBook::default();
        let mut fired = 0;
        let mut resolved = 0;
        let mut tick = |book: &mut AlertBook, now: u64, input: &AlertInput| {
            for e in book.update(now, conditions(&s, input)) {
                match e {
                    AlertEvent::Fired { alert, message } => {
                        assert_eq!(alert, AlertKind::HealthChecks);
                        assert!(message.contains("4 consecutive"), "{message}");
                        fired += 1;
                    }
                    AlertEvent::Resolved { alert, fired_for } => {
                        assert_eq!(alert, AlertKind::HealthChecks);
                        assert_eq!(fired_for, Duration::from_secs(30));
                        resolved += 1;
                    }
                }
            }
        };
        let failing = |n| AlertInput {
            consecutive_failed_checks: n,
            ..calm()
        };
        tick(&mut book, 0, &calm());
        for (i, n) in [1, 2, 3].into_iter().enumerate() {
            tick(&mut book, i as u64 * 1000, &failing(n));
        }
        assert!(!book.is_firing(AlertKind::HealthChecks));
        tick(&mut book, 10_000, &failing(4));
        assert!(book.is_firing(AlertKind::HealthChecks));
        // Still failing at every tick: no new event, the message follows.
        for n in 5..20 {
            tick(&mut book, 10_000 + u64::from(n), &failing(n));
        }
        assert!(book.firing().next().unwrap().message.contains("19 consecutive"));
        assert_eq!(book.firing().next().unwrap().since_ms, 10_000);
        tick(&mut book, 40_000, &calm());
        tick(&mut book, 41_000, &calm());
        assert_eq!((fired, resolved), (1, 1));
        assert!(book.firing().next().is_none());
    }

    #[test]
    fn configured_thresholds_apply() {
        let s = AlertSettings {
            utilization_percent: 95.0,
            failed_health_checks: 0,
            ..AlertSettings::default()
        };
        let input = AlertInput {
            active: 9,
            consecutive_failed_checks: 1,
            ..calm()
        };
        let c = conditions(&s, &input);
        assert_eq!(c.keys().copied().collect::<Vec<_>>(), vec![AlertKind::HealthChecks]);
    }
}
