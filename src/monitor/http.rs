//! The HTTP face of a [`Monitor`]: an axum [`Router`] with `/metrics`, `/health`,
//! `/status` and the page at `/`, to serve alone or to merge into an application's
//! own router.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{AlertKind, Monitor};

/// What `/metrics` answers with (prometheus-client's text encoder: OpenMetrics,
/// ending with `# EOF`, which Prometheus reads as it reads its own format).
pub const CONTENT_TYPE_METRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The monitor's routes. Merge them into an application's router with
/// `Router::merge`, or serve them as they are.
pub fn router(monitor: Arc<Monitor>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/status", get(status))
        .with_state(monitor)
}

async fn metrics(State(monitor): State<Arc<Monitor>>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE_METRICS)], monitor.render_metrics()).into_response()
}

async fn health(State(monitor): State<Arc<Monitor>>) -> Response {
    let report = monitor.health_report();
    let code = if report.is_up() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(report)).into_response()
}

async fn status(State(monitor): State<Arc<Monitor>>) -> Response {
    Json(monitor.status_report()).into_response()
}

async fn page(State(monitor): State<Arc<Monitor>>) -> Html<String> {
    Html(super::page::render(&monitor.status_report()))
}

type Labels = Vec<(String, String)>;
type GaugeFamily = Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>;

impl Monitor {
    /// The client's metrics (as `--metrics` writes them), then the monitor's own:
    /// alerts firing, health checks, acquire wait p95 and utilization.
    pub fn render_metrics(&self) -> String {
        let mut out = crate::metrics::render(&self.client);
        // One exposition: the client's ends with `# EOF`, which must come last.
        if let Some(stripped) = out.trim_end().strip_suffix("# EOF") {
            out.truncate(stripped.len());
        }
        let mut registry = Registry::with_prefix("pacs_net");
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let f = GaugeFamily::default();
            registry.register(name, help, f.clone());
            f
        };
        let alert = gauge(
            &mut registry,
            "alert_firing",
            "1 while the monitor's alert is firing for the node, else 0",
        );
        let check_ok = gauge(
            &mut registry,
            "health_check_success",
            "1 if the monitor's latest health check of the node succeeded, else 0",
        );
        let check_latency = gauge(
            &mut registry,
            "health_check_latency_seconds",
            "Duration of the monitor's latest health check of the node",
        );
        let check_failures = gauge(
            &mut registry,
            "health_check_consecutive_failures",
            "Consecutive failed health checks of the node",
        );
        let wait_p95 = gauge(
            &mut registry,
            "pool_acquire_wait_p95_seconds",
            "95th percentile of the acquire wait (recent acquisitions)",
        );
        let utilization = gauge(
            &mut registry,
            "pool_utilization_ratio",
            "Borrowed associations over the effective maximum",
        );
        let report = self.status_report();
        for (name, node) in &report.nodes {
            let l: Labels = vec![
                ("node".into(), name.clone()),
                ("ae_title".into(), node.ae_title.clone()),
            ];
            for kind in AlertKind::ALL {
                let firing = node.alerts.iter().any(|a| a.alert == kind);
                let al: Labels = vec![("alert".into(), kind.as_str().into()), ("node".into(), name.clone())];
                alert.get_or_create(&al).set(if firing { 1.0 } else { 0.0 });
            }
            if let Some(probe) = node.history.iter().rev().find_map(|s| s.probe.as_ref()) {
                check_ok.get_or_create(&l).set(if probe.ok { 1.0 } else { 0.0 });
                check_latency.get_or_create(&l).set(probe.latency_ms / 1000.0);
                check_failures
                    .get_or_create(&l)
                    .set(f64::from(node.consecutive_failed_checks));
            }
            wait_p95.get_or_create(&l).set(node.pool.wait.p95_ms / 1000.0);
            utilization.get_or_create(&l).set(node.utilization_percent / 100.0);
        }
        if encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}
