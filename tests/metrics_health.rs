//! Telemetry against the embedded SCP: the Prometheus text parses and carries the
//! operations that ran; health and the JSON snapshot; deadlines; the find stream.

mod common;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pacs_net::client::{Client, HealthStatus, OpError, OpOptions};
use pacs_net::config::Config;
use pacs_net::dimse::{FindQuery, QueryLevel, QueryModel};
use pacs_net::resilience::ExecError;
use pacs_net::scp::{Behavior, Scp, ScpConfig};

async fn scp_with(behavior: Behavior) -> Scp {
    Scp::start(
        ScpConfig {
            behavior,
            ..ScpConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

fn client_for(scp: &Scp, extra_network: &str) -> Client {
    let json = format!(
        r#"{{"nodes": {{"SCP": {{"ae_title": "{}", "host": "127.0.0.1", "port": {}}}}},
            "network": {{"retry": {{"initial_delay_ms": 10, "max_delay_ms": 50, "strategy": "fixed"{extra_network}}}}}}}"#,
        scp.ae_title(),
        scp.port()
    );
    Client::new(Config::from_json_str(&json).unwrap(), Some("METRICS".into()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_text_parses_and_counts_operations() {
    let hook: pacs_net::scp::StoreStatusHook = Arc::new(|n, _| (n == 2).then_some(0xB000));
    let scp = scp_with(Behavior {
        reject_transient_first: 1,
        store_status: Some(hook),
        ..Behavior::default()
    })
    .await;
    let client = client_for(&scp, "");
    let node = client.node("SCP").unwrap();
    assert!(node.echo().await.result.is_ok());
    for f in common::dicom_fixture_files().iter().take(3) {
        assert!(node.store_file(f).await.outcome.result.is_ok());
    }
    let q = FindQuery::new(QueryModel::StudyRoot, QueryLevel::Study, vec![]).unwrap();
    assert!(node
        .find(&q, |_| std::ops::ControlFlow::Continue(()))
        .await
        .result
        .is_ok());

    let text = pacs_net::metrics::render(&client);
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    let node_l = ("node", "SCP");
    assert_eq!(
        value(
            "pacs_net_operations_total",
            &[node_l, ("operation", "C-ECHO"), ("outcome", "success")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(
            "pacs_net_operations_total",
            &[node_l, ("operation", "C-STORE"), ("outcome", "success")]
        ),
        2.0
    );
    assert_eq!(
        value(
            "pacs_net_operations_total",
            &[
                node_l,
                ("operation", "C-STORE"),
                ("outcome", "warning"),
                ("status_class", "warning")
            ]
        ),
        1.0
    );
    assert_eq!(
        value(
            "pacs_net_operations_total",
            &[node_l, ("operation", "C-FIND"), ("outcome", "success")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "pacs_net_association_rejections_total",
            &[node_l, ("result", "transient")]
        ),
        1.0
    );
    assert_eq!(value("pacs_net_retries_total", &[node_l]), 1.0);
    assert_eq!(
        value("pacs_net_breaker_state", &[node_l, ("ae_title", "PACSNET_SCP")]),
        0.0
    );
    assert!(value("pacs_net_pool_created_total", &[node_l]) >= 1.0);
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "pacs_net_pool_acquire_wait_seconds"
                || s.metric.starts_with("pacs_net_pool_acquire_wait_seconds")),
        "acquire wait histogram present"
    );
    assert!(scrape
        .samples
        .iter()
        .any(|s| s.metric.starts_with("pacs_net_operation_duration_seconds")));

    // The congestion rejection lowered the pool's effective max: degraded, said why.
    let stats = client.stats();
    assert_eq!(stats[0].health.status, HealthStatus::Degraded, "{:?}", stats[0].health);
    assert!(
        stats[0]
            .health
            .reasons
            .iter()
            .any(|r| r.contains("remote limited the pool")),
        "{:?}",
        stats[0].health
    );
    let json = serde_json::to_value(&stats).unwrap();
    assert_eq!(json[0]["health"]["status"], "degraded");
    assert_eq!(json[0]["resilience"]["state"], "closed");
    client.close(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_open_shows_as_down_and_in_metrics() {
    let port = common::free_port();
    let json = format!(
        r#"{{"nodes": {{"GONE": {{"ae_title": "GONE", "host": "127.0.0.1", "port": {port},
              "retry": {{"max_attempts": 1}}, "circuit_breaker": {{"failure_threshold": 2}}}}}}}}"#
    );
    let client = Client::new(Config::from_json_str(&json).unwrap(), None);
    let node = client.node("GONE").unwrap();
    // Two refused connections, then the open circuit refuses the third.
    for _ in 0..2 {
        let err = node.echo().await.result.unwrap_err().to_string();
        assert!(err.contains("cannot connect") || err.contains("refused"), "{err}");
    }
    let err = node.echo().await.result.unwrap_err().to_string();
    assert!(err.contains("circuit"), "{err}");
    let h = node.health();
    assert_eq!(h.status, HealthStatus::Down);
    assert!(h.reasons[0].contains("circuit open"), "{:?}", h.reasons);
    let text = pacs_net::metrics::render(&client);
    assert!(
        text.contains("pacs_net_breaker_transitions_total{node=\"GONE\",ae_title=\"GONE\",state=\"open\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("pacs_net_node_health{node=\"GONE\",ae_title=\"GONE\"} 2"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_stops_retries() {
    // Every association is rejected (transient): only the deadline ends it.
    let scp = scp_with(Behavior {
        reject_transient_first: usize::MAX,
        ..Behavior::default()
    })
    .await;
    let json = format!(
        r#"{{"nodes": {{"SCP": {{"ae_title": "X", "host": "127.0.0.1", "port": {},
              "retry": {{"max_attempts": 50, "initial_delay_ms": 100, "max_delay_ms": 100, "strategy": "fixed"}},
              "circuit_breaker": {{"failure_threshold": 100}}}}}}}}"#,
        scp.port()
    );
    let client = Client::new(Config::from_json_str(&json).unwrap(), None);
    let node = client.node("SCP").unwrap();
    let out = node
        .echo_with(&OpOptions {
            deadline: Some(Duration::from_millis(350)),
            ..OpOptions::default()
        })
        .await;
    // The deadline ends it either between attempts (no retry starts past it) or,
    // on a loaded machine, by cutting the attempt under way; never by exhausting
    // the 50 attempts.
    match &out.result {
        Err(ExecError::DeadlineExceeded { .. }) => {
            assert!(out.attempts >= 2 && out.attempts <= 5, "{}", out.attempts);
            assert_eq!(node.stats().resilience.deadline_exceeded, 1);
        }
        Err(ExecError::Operation(OpError::Deadline { .. })) => {
            assert!(out.attempts >= 1 && out.attempts <= 5, "{}", out.attempts);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_find_stream_cancels_the_query() {
    let scp = scp_with(Behavior::default()).await;
    let client = client_for(&scp, "");
    let node = client.node("SCP").unwrap();
    for f in common::dicom_fixture_files() {
        assert!(node.store_file(&f).await.outcome.result.is_ok());
    }
    let q = FindQuery::new(QueryModel::StudyRoot, QueryLevel::Image, vec![]).unwrap();
    let all: Vec<_> = node.find_stream(q.clone(), OpOptions::default()).collect().await;
    assert_eq!(all.len(), common::dicom_fixture_files().len());
    assert!(all.iter().all(|r| r.is_ok()));
    let mut stream = Box::pin(node.find_stream(q, OpOptions::default()));
    assert!(stream.next().await.unwrap().is_ok());
    drop(stream);
    common::eventually(|| scp.stats().cancels > 0).await;
    assert_eq!(scp.stats().cancels, 1, "C-CANCEL sent when the stream was dropped");
    // The association survived the cancel and is reused.
    assert!(node.echo().await.result.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_also_bounds_an_attempt_in_progress() {
    let scp = scp_with(Behavior {
        response_delay: Some(Duration::from_secs(3)),
        ..Behavior::default()
    })
    .await;
    let client = client_for(&scp, "");
    let node = client.node("SCP").unwrap();
    let out = node
        .echo_with(&OpOptions {
            deadline: Some(Duration::from_millis(300)),
            ..OpOptions::default()
        })
        .await;
    let err = out.result.unwrap_err().to_string();
    assert!(err.contains("deadline"), "{err}");
    // Cut, not waited out: the echo would have succeeded after 3 s.
    assert_eq!(out.attempts, 1);
    // The association cut off mid-operation is never reused: the pool destroys it
    // (as invalid) and keeps nothing idle.
    let settled = common::eventually(|| {
        let s = node.stats().pool;
        s.destroyed.invalid == 1 && s.closing == 0
    })
    .await;
    let pool = node.stats().pool;
    assert!(settled, "the cut association was destroyed: {pool:?}");
    assert_eq!((pool.idle, pool.total), (0, 0), "{pool:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_all_creates_every_configured_node() {
    let scp = scp_with(Behavior::default()).await;
    let json = format!(
        r#"{{"nodes": {{"A": {{"ae_title": "A", "host": "127.0.0.1", "port": {p}, "pool": "warm"}},
                       "B": {{"ae_title": "B", "host": "127.0.0.1", "port": {p}}}}},
            "network": {{"connection_pools": {{"warm": {{"min_size": 2, "max_size": 4}}}}}}}}"#,
        p = scp.port()
    );
    let client = Client::new(Config::from_json_str(&json).unwrap(), None);
    assert_eq!(client.start_all().len(), 2);
    common::eventually(|| client.node("A").unwrap().stats().pool.idle == 2).await;
    assert_eq!(client.node("A").unwrap().stats().pool.idle, 2, "warmed up to min_size");
    let text = pacs_net::metrics::render(&client);
    assert!(text.contains("node=\"B\""), "every node in the metrics");
    client.close(Duration::from_secs(2)).await;
    assert_eq!(scp.stats().released, 2);
}
