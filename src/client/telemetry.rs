//! Operation-level telemetry shared by a client's nodes: counters and histograms of
//! operations, association rejections, acquire waits and breaker transitions, kept
//! as prometheus-client metric families (labelled by node and remote AE title) so
//! that they render as Prometheus text without copying.

#[cfg(not(feature = "metrics"))]
use crate::dimse::StatusClass;

/// Label set: `(name, value)` pairs.
pub(super) type Labels = Vec<(String, String)>;

/// How an operation ended, for the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum OpOutcome {
    Success,
    Warning,
    Failure,
}

impl OpOutcome {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            OpOutcome::Success => "success",
            OpOutcome::Warning => "warning",
            OpOutcome::Failure => "failure",
        }
    }
}

#[cfg(feature = "metrics")]
pub(crate) use recording::NodeMetrics;
#[cfg(feature = "metrics")]
pub use recording::Telemetry;

#[cfg(feature = "metrics")]
mod recording {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
    use prometheus_client::registry::Registry;

    use parking_lot::Mutex;
    use std::collections::HashMap;

    use super::OpOutcome;
    use crate::dimse::StatusClass;

    use super::Labels;

    fn seconds_histogram() -> Histogram {
        // 100 µs .. ~3.3 min
        Histogram::new(exponential_buckets(0.0001, 2.0, 21))
    }

    type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

    /// The metric families of one client.
    #[derive(Debug, Clone)]
    pub struct Telemetry {
        pub(crate) operations: Family<Labels, Counter>,
        pub(crate) operation_duration: HistogramFamily,
        pub(crate) acquire_wait: HistogramFamily,
        pub(crate) rejections: Family<Labels, Counter>,
        pub(crate) breaker_transitions: Family<Labels, Counter>,
        pub(crate) warnings: Family<Labels, Counter>,
    }

    impl Default for Telemetry {
        fn default() -> Self {
            Telemetry {
                operations: Family::default(),
                operation_duration: Family::new_with_constructor(seconds_histogram),
                acquire_wait: Family::new_with_constructor(seconds_histogram),
                rejections: Family::default(),
                breaker_transitions: Family::default(),
                warnings: Family::default(),
            }
        }
    }

    impl Telemetry {
        /// Register every family in `registry` (prefix `pacs_net` is the registry's).
        pub fn register(&self, registry: &mut Registry) {
            registry.register(
                "operations",
                "DIMSE operations, by type, outcome and last DIMSE status class",
                self.operations.clone(),
            );
            registry.register(
                "operation_duration_seconds",
                "Duration of DIMSE operations, retries included",
                self.operation_duration.clone(),
            );
            registry.register(
                "pool_acquire_wait_seconds",
                "Time spent waiting to borrow an association",
                self.acquire_wait.clone(),
            );
            registry.register(
                "association_rejections",
                "A-ASSOCIATE-RJ received, by reason",
                self.rejections.clone(),
            );
            registry.register(
                "breaker_transitions",
                "Circuit breaker state changes, by new state",
                self.breaker_transitions.clone(),
            );
            registry.register("warnings", "Operator warnings logged, by kind", self.warnings.clone());
        }

        pub(crate) fn with(base: &Labels, key: &str, value: &str) -> Labels {
            let mut l = base.clone();
            l.push((key.into(), value.into()));
            l
        }
    }

    /// One node's handles into a client's [`Telemetry`]: the label sets are built and
    /// hashed once per node and (operation, outcome, status class), not on every
    /// operation.
    #[derive(Debug)]
    pub(crate) struct NodeMetrics {
        telemetry: Telemetry,
        labels: Labels,
        acquire_wait: Histogram,
        operations: Mutex<HashMap<OperationKey, (Histogram, Counter)>>,
    }

    type OperationKey = (&'static str, OpOutcome, Option<StatusClass>);

    impl NodeMetrics {
        pub(crate) fn new(telemetry: Telemetry, labels: Labels) -> Self {
            let acquire_wait = telemetry.acquire_wait.get_or_create(&labels).clone();
            NodeMetrics {
                telemetry,
                labels,
                acquire_wait,
                operations: Mutex::default(),
            }
        }

        /// Time a caller waited to borrow an association.
        pub(crate) fn observe_acquire_wait(&self, secs: f64) {
            self.acquire_wait.observe(secs);
        }

        /// One operation's duration and outcome.
        pub(crate) fn record_operation(
            &self,
            operation: &'static str,
            outcome: OpOutcome,
            status: Option<StatusClass>,
            secs: f64,
        ) {
            let (duration, count) = {
                let mut map = self.operations.lock();
                map.entry((operation, outcome, status))
                    .or_insert_with(|| {
                        let mut l = Telemetry::with(&self.labels, "operation", operation);
                        let duration = self.telemetry.operation_duration.get_or_create(&l).clone();
                        l.push(("outcome".into(), outcome.as_str().into()));
                        l.push((
                            "status_class".into(),
                            status.map(|s| s.as_str()).unwrap_or("none").into(),
                        ));
                        let count = self.telemetry.operations.get_or_create(&l).clone();
                        (duration, count)
                    })
                    .clone()
            };
            duration.observe(secs);
            count.inc();
        }

        /// An A-ASSOCIATE-RJ, by result and reason.
        pub(crate) fn rejection(&self, transient: bool, reason: &str) {
            let kind = if transient { "transient" } else { "permanent" };
            let l = Telemetry::with(&Telemetry::with(&self.labels, "result", kind), "reason", reason);
            self.telemetry.rejections.get_or_create(&l).inc();
        }

        /// A circuit breaker transition, by new state.
        pub(crate) fn breaker_transition(&self, to: &str) {
            self.telemetry
                .breaker_transitions
                .get_or_create(&Telemetry::with(&self.labels, "state", to))
                .inc();
        }

        /// An operator warning, by kind.
        pub(crate) fn warning(&self, kind: &str) {
            self.telemetry
                .warnings
                .get_or_create(&Telemetry::with(&self.labels, "kind", kind))
                .inc();
        }
    }
}

#[cfg(not(feature = "metrics"))]
pub(crate) use silent::NodeMetrics;
#[cfg(not(feature = "metrics"))]
pub use silent::Telemetry;

/// Without the `metrics` feature nothing is recorded.
#[cfg(not(feature = "metrics"))]
mod silent {
    use super::{Labels, OpOutcome, StatusClass};

    /// The metric families of one client (none without the `metrics` feature).
    #[derive(Debug, Clone, Default)]
    pub struct Telemetry {
        _nothing: (),
    }

    /// One node's metric handles (none without the `metrics` feature).
    #[derive(Debug)]
    pub(crate) struct NodeMetrics;

    impl NodeMetrics {
        pub(crate) fn new(_: Telemetry, _: Labels) -> Self {
            NodeMetrics
        }
        pub(crate) fn observe_acquire_wait(&self, _: f64) {}
        pub(crate) fn record_operation(&self, _: &'static str, _: OpOutcome, _: Option<StatusClass>, _: f64) {}
        pub(crate) fn rejection(&self, _: bool, _: &str) {}
        pub(crate) fn breaker_transition(&self, _: &str) {}
        pub(crate) fn warning(&self, _: &str) {}
    }
}
