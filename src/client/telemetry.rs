//! Operation-level telemetry shared by a client's nodes: counters and histograms of
//! operations, association rejections, acquire waits and breaker transitions, kept
//! as prometheus-client metric families (labelled by node and remote AE title) so
//! that they render as Prometheus text without copying.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::dimse::StatusClass;

/// Label set: `(name, value)` pairs.
pub type Labels = Vec<(String, String)>;

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

/// How an operation ended, for the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpOutcome {
    Success,
    Warning,
    Failure,
}

impl OpOutcome {
    fn as_str(self) -> &'static str {
        match self {
            OpOutcome::Success => "success",
            OpOutcome::Warning => "warning",
            OpOutcome::Failure => "failure",
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

    pub(crate) fn record_operation(
        &self,
        base: &Labels,
        operation: &str,
        outcome: OpOutcome,
        status: Option<StatusClass>,
        secs: f64,
    ) {
        let mut l = base.clone();
        l.push(("operation".into(), operation.into()));
        self.operation_duration.get_or_create(&l).observe(secs);
        l.push(("outcome".into(), outcome.as_str().into()));
        l.push((
            "status_class".into(),
            status.map(|s| s.as_str()).unwrap_or("none").into(),
        ));
        self.operations.get_or_create(&l).inc();
    }

    pub(crate) fn with(base: &Labels, key: &str, value: &str) -> Labels {
        let mut l = base.clone();
        l.push((key.into(), value.into()));
        l
    }
}
