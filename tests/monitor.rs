//! The operators' window: `pacs-net monitor` against a node that is up and one that
//! is down (then comes up), its endpoints, alert events, the page in a real browser,
//! the recommendations a faulty SCP provokes, the bounded history, and the
//! dashboard and alerting rules under docs/ against a real scrape.

#![cfg(feature = "monitor")]

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pacs_net::client::Client;
use pacs_net::config::Config;
use pacs_net::monitor::{Monitor, MonitorSettings};
use pacs_net::scp::{Behavior, Scp, ScpConfig};

/// A plain HTTP/1.1 GET on loopback: (status code, body).
fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the monitor");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").expect("send request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("end of headers");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    (code, body.to_string())
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Poll `f` every 100 ms for up to `limit`; the last value if it never holds.
fn wait_until<T>(limit: Duration, mut f: impl FnMut() -> (bool, T)) -> (bool, T) {
    let start = Instant::now();
    loop {
        let (ok, v) = f();
        if ok || start.elapsed() > limit {
            return (ok, v);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn scp_on(port: u16, behavior: Behavior) -> Scp {
    let config = ScpConfig {
        behavior,
        ..ScpConfig::default()
    };
    Scp::start(config, format!("127.0.0.1:{port}").parse().unwrap())
        .await
        .expect("start the embedded SCP")
}

/// `pacs-net monitor`, killed by its PID when dropped.
struct MonitorProcess {
    child: Child,
    stderr: PathBuf,
    port: u16,
}

impl Drop for MonitorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl MonitorProcess {
    fn start(dir: &Path, config: &serde_json::Value, interval: &str) -> MonitorProcess {
        let cfg = dir.join("hospital.json");
        std::fs::write(&cfg, config.to_string()).unwrap();
        let port = common::free_port();
        let stderr = dir.join("monitor.stderr");
        let child = Command::new(env!("CARGO_BIN_EXE_pacs-net"))
            .args(["-c", cfg.to_str().unwrap(), "monitor", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--interval-seconds", interval])
            .env_remove("PACS_NET_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start pacs-net monitor");
        let mut m = MonitorProcess { child, stderr, port };
        let (up, _) = wait_until(Duration::from_secs(20), || {
            (TcpStream::connect(("127.0.0.1", port)).is_ok(), ())
        });
        assert!(up, "monitor did not listen: {}", m.log());
        assert!(m.child.try_wait().unwrap().is_none(), "monitor exited: {}", m.log());
        m
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGINT (Ctrl-C), then the exit code (bounded wait).
    fn interrupt(&mut self) -> Option<i32> {
        let ok = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "could not send SIGINT");
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

/// Two nodes: MAIN_PACS (the embedded SCP, capped at 2 associations while its pool
/// wants 4 warm) and CT (a closed loopback port, failing fast).
fn two_nodes(main_port: u16, ct_port: u16) -> serde_json::Value {
    serde_json::json!({
        "nodes": {
            "MAIN_PACS": {"ae_title": "PACSNET_SCP", "host": "127.0.0.1", "port": main_port, "pool": "main_pacs"},
            "CT": {"ae_title": "CT01", "host": "127.0.0.1", "port": ct_port, "pool": "modality",
                   "retry": {"max_attempts": 1},
                   "timeouts": {"connect_ms": 1000, "acse_ms": 2000, "dimse_ms": 2000},
                   "circuit_breaker": {"failure_threshold": 2, "success_threshold": 1, "open_duration_seconds": 1}}
        },
        "network": {"connection_pools": {
            "main_pacs": {"min_size": 4, "max_size": 4},
            "modality": {"min_size": 0, "max_size": 2}
        }}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_reports_a_down_node_then_its_recovery_and_stops_on_ctrl_c() {
    let main = scp_on(
        0,
        Behavior {
            max_associations: Some(2),
            ..Behavior::default()
        },
    )
    .await;
    let ct_port = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut m = MonitorProcess::start(dir.path(), &two_nodes(main.port(), ct_port), "0.3");
    let port = m.port;

    // CT is down: /health is 503 and names it; MAIN_PACS is not down.
    let (ok, (code, body)) = tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(30), || {
            let (code, body) = get(port, "/health");
            let ok = code == 503 && json(&body)["nodes"]["CT"]["health"] == "down";
            (ok, (code, body))
        })
    });
    assert!(ok, "/health {code}: {body}\n{}", m.log());
    let health = json(&body);
    assert_eq!(health["status"], "down");
    assert_ne!(health["nodes"]["MAIN_PACS"]["health"], "down", "{body}");
    assert!(
        health["nodes"]["CT"]["reasons"]
            .as_array()
            .is_some_and(|r| !r.is_empty()),
        "{body}"
    );

    // /status: history, the health-check alert for CT, and for MAIN_PACS the
    // remote's limit of 2 turned into advice naming the field.
    let (ok, status) = tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(30), || {
            let s = json(&get(port, "/status").1);
            let alert = s["nodes"]["CT"]["alerts"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["alert"] == "health_checks"));
            let advice = s["nodes"]["MAIN_PACS"]["recommendations"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["rule"] == "remote_limit"));
            (alert && advice, s)
        })
    });
    assert!(ok, "{status:#}");
    let rec = status["nodes"]["MAIN_PACS"]["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["rule"] == "remote_limit")
        .unwrap()
        .clone();
    assert_eq!(rec["field"], "nodes.MAIN_PACS.pool max_size");
    assert_eq!(rec["path"], "network.connection_pools.main_pacs.max_size");
    // The cap the pool learned (at most the SCP's 2), below max_size 4.
    let learned = status["nodes"]["MAIN_PACS"]["pool"]["effective_max"].as_u64().unwrap();
    assert!((1..=2).contains(&learned), "{status:#}");
    assert_eq!(rec["change"], format!("set max_size to {learned}"), "{rec}");
    let history = status["nodes"]["MAIN_PACS"]["history"].as_array().unwrap();
    assert!(history.len() >= 2, "{history:?}");
    assert!(
        history
            .iter()
            .any(|s| s["probe"]["ok"] == true && s["probe"]["kind"] == "echo"),
        "{history:?}"
    );
    let ct_history = status["nodes"]["CT"]["history"].as_array().unwrap();
    assert!(ct_history.iter().any(|s| s["probe"]["ok"] == false), "{ct_history:?}");
    assert_eq!(status["nodes"]["CT"]["probe_mode"], "echo");

    // /metrics parses, and carries the alert and the health checks.
    let (code, text) = get(port, "/metrics");
    assert_eq!(code, 200);
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("the exposition parses");
    let firing = |alert: &str, node: &str| {
        scrape.samples.iter().find_map(|s| {
            (s.metric == "pacs_net_alert_firing"
                && s.labels.get("alert") == Some(alert)
                && s.labels.get("node") == Some(node))
            .then_some(match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
        })
    };
    assert_eq!(firing("health_checks", "CT"), Some(1.0), "{text}");
    assert_eq!(firing("health_checks", "MAIN_PACS"), Some(0.0), "{text}");
    assert!(
        text.contains("pacs_net_node_health{node=\"CT\",ae_title=\"CT01\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("pacs_net_health_check_success{node=\"MAIN_PACS\""),
        "{text}"
    );

    // The page: a row per node, without any script.
    let (code, page) = get(port, "/");
    assert_eq!(code, 200);
    assert!(
        page.contains("id=\"node-MAIN_PACS\"") && page.contains("id=\"node-CT\""),
        "{page}"
    );
    assert!(!page.contains("<script"), "the page needs no script");

    // CT comes up: /health is 200 again and the alert resolves.
    let ct = scp_on(ct_port, Behavior::default()).await;
    let (ok, (code, body)) = tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(30), || {
            let (code, body) = get(port, "/health");
            let s = json(&get(port, "/status").1);
            let resolved = s["nodes"]["CT"]["alerts"]
                .as_array()
                .is_some_and(|a| !a.iter().any(|x| x["alert"] == "health_checks"));
            (code == 200 && resolved, (code, body))
        })
    });
    assert!(ok, "/health {code}: {body}\n{}", m.log());
    assert_ne!(json(&body)["nodes"]["CT"]["health"], "down");

    // Ctrl-C: associations released, exit 0.
    assert_eq!(m.interrupt(), Some(0), "{}", m.log());
    let log = m.log();
    // Each alert change is one event, not one per interval.
    assert_eq!(log.matches("alert health_checks firing for CT").count(), 1, "{log}");
    assert_eq!(log.matches("alert health_checks resolved for CT").count(), 1, "{log}");
    assert!(!log.contains("alert health_checks firing for MAIN_PACS"), "{log}");
    // The SCPs saw releases, not aborts, of the monitor's associations.
    for scp in [&main, &ct] {
        let (ok, stats) = tokio::task::block_in_place(|| {
            wait_until(Duration::from_secs(10), || {
                let s = scp.stats();
                (s.active == 0, s)
            })
        });
        assert!(ok, "{stats:?}");
        assert!(stats.released >= 1, "{stats:?}");
        assert_eq!(stats.aborted_by_peer, 0, "{stats:?}");
    }
    main.shutdown().await;
    ct.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_renders_every_node_in_headless_chromium() {
    if !common::peer_available("/usr/bin/chromium") {
        return;
    }
    let main = scp_on(0, Behavior::default()).await;
    let ct_port = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let m = MonitorProcess::start(dir.path(), &two_nodes(main.port(), ct_port), "0.5");
    let port = m.port;
    tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(20), || (get(port, "/health").0 == 503, ()));
    });
    let profile = tempfile::tempdir().unwrap();
    let out = tokio::task::block_in_place(|| {
        Command::new("/usr/bin/chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--timeout=10000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("--dump-dom")
            .arg(format!("http://127.0.0.1:{port}/"))
            .stdin(Stdio::null())
            .output()
            .expect("run chromium")
    });
    let dom = String::from_utf8_lossy(&out.stdout);
    for node in ["MAIN_PACS", "CT"] {
        let row = format!("id=\"node-{node}\"");
        assert!(
            dom.contains(&row),
            "no row for {node} in the rendered DOM:\n{dom}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The down node's row says so.
    let ct_row = &dom[dom.find("id=\"node-CT\"").unwrap()..];
    let ct_row = &ct_row[..ct_row.find("</tr>").unwrap_or(ct_row.len())];
    assert!(ct_row.contains(">down<"), "{ct_row}");
    drop(m);
    main.shutdown().await;
}

fn config_for(main_port: u16, max_size: usize, extra_nodes: serde_json::Value) -> Config {
    let mut nodes = serde_json::json!({
        "MAIN_PACS": {"ae_title": "PACSNET_SCP", "host": "127.0.0.1", "port": main_port, "pool": "main_pacs",
                      "retry": {"max_attempts": 10, "initial_delay_ms": 10, "max_delay_ms": 50, "strategy": "fixed"},
                      "circuit_breaker": {"failure_threshold": 1000}}
    });
    if let (Some(n), Some(extra)) = (nodes.as_object_mut(), extra_nodes.as_object()) {
        n.extend(extra.clone());
    }
    let json = serde_json::json!({
        "nodes": nodes,
        "network": {"connection_pools": {"main_pacs": {"min_size": 0, "max_size": max_size}}}
    });
    Config::from_json_str(&json.to_string()).unwrap()
}

/// A PACS that takes 2 associations, a pool of 8 and the application storing 8 at
/// a time: the monitor advises `set max_size to 2`, naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_scp_makes_the_monitor_advise_setting_max_size() {
    let scp = scp_on(
        0,
        Behavior {
            max_associations: Some(2),
            ..Behavior::default()
        },
    )
    .await;
    let client = Arc::new(Client::new(config_for(scp.port(), 8, serde_json::json!({})), None));
    let monitor = Monitor::new(client.clone(), MonitorSettings::default());
    let node = client.node("MAIN_PACS").unwrap();
    let files = common::dicom_fixture_files();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (node, files) = (node.clone(), files.clone());
        tasks.spawn(async move {
            for path in files.iter().skip(i % files.len()).take(4) {
                let _ = node.store_file(path).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    monitor.tick(false).await;
    let status = monitor.status_report();
    let main = &status.nodes["MAIN_PACS"];
    assert!(main.pool.effective_max < 8, "{:?}", main.pool);
    let rec = main
        .recommendations
        .iter()
        .find(|r| r.rule == "remote_limit")
        .unwrap_or_else(|| panic!("{:#?}", main.recommendations));
    assert_eq!(rec.field, "nodes.MAIN_PACS.pool max_size");
    assert_eq!(rec.change, format!("set max_size to {}", main.pool.effective_max));
    assert!(rec.why.contains("of 8 associations"), "{}", rec.why);
    client.close(Duration::from_secs(5)).await;
    scp.shutdown().await;
}

/// Many ticks at a short interval: the history of every node stays at its cap,
/// newest last, and the page and the status stay the same size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_stays_bounded_over_a_long_run() {
    let scp = scp_on(0, Behavior::default()).await;
    let down = common::free_port();
    let extra = serde_json::json!({
        "CT": {"ae_title": "CT01", "host": "127.0.0.1", "port": down, "retry": {"max_attempts": 1}}
    });
    let client = Arc::new(Client::new(config_for(scp.port(), 2, extra), None));
    let settings = MonitorSettings {
        interval: Duration::from_millis(10),
        history: Duration::from_millis(250),
        ..MonitorSettings::default()
    };
    let cap = settings.capacity();
    assert_eq!(cap, 25);
    let monitor = Monitor::new(client.clone(), settings);
    let mut sizes = Vec::new();
    for i in 0..(cap * 8) {
        monitor.tick(true).await;
        if i >= cap {
            let s = monitor.status_report();
            for (name, n) in &s.nodes {
                assert_eq!(n.history.len(), cap, "{name} at tick {i}");
                let at: Vec<u64> = n.history.iter().map(|x| x.at_ms).collect();
                assert!(at.windows(2).all(|w| w[0] <= w[1]), "{name}: oldest first");
            }
            sizes.push(serde_json::to_string(&s).unwrap().len());
        }
    }
    // The document does not grow with uptime (numbers change width a little).
    let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
    assert!(*max < min + min / 10, "status size grew from {min} to {max}");
    client.close(Duration::from_secs(5)).await;
    scp.shutdown().await;
}

/// Every metric name the Grafana dashboard and the Prometheus rules under docs/
/// use is one a real `/metrics` scrape exports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_alert_rules_use_only_exported_metrics() {
    let scp = scp_on(
        0,
        Behavior {
            max_associations: Some(1),
            ..Behavior::default()
        },
    )
    .await;
    // A PACS that refuses us (A-ASSOCIATE-RJ permanent): a rejection is counted.
    let refusing = scp_on(
        0,
        Behavior {
            reject_permanent: true,
            ..Behavior::default()
        },
    )
    .await;
    let down = common::free_port();
    let extra = serde_json::json!({
        "CT": {"ae_title": "CT01", "host": "127.0.0.1", "port": down, "retry": {"max_attempts": 1},
               "circuit_breaker": {"failure_threshold": 1}},
        "ARCHIVE": {"ae_title": "ARCHIVE", "host": "127.0.0.1", "port": refusing.port(), "retry": {"max_attempts": 1}}
    });
    let client = Arc::new(Client::new(config_for(scp.port(), 2, extra), None));
    let monitor = Monitor::new(client.clone(), MonitorSettings::default());
    // Traffic of every kind: operations, waits, a rejection, a breaker transition.
    let node = client.node("MAIN_PACS").unwrap();
    let files = common::dicom_fixture_files();
    let mut tasks = tokio::task::JoinSet::new();
    for path in files.into_iter().take(3) {
        let node = node.clone();
        tasks.spawn(async move { node.store_file(&path).await.outcome.result.is_ok() });
    }
    while tasks.join_next().await.is_some() {}
    monitor.tick(true).await;
    monitor.tick(true).await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move { axum::serve(listener, pacs_net::monitor::router(monitor)).await });
    let (code, text) = tokio::task::block_in_place(|| get(port, "/metrics"));
    assert_eq!(code, 200);
    let exported: BTreeSet<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(String::from)
        .collect();
    assert!(exported.contains("pacs_net_alert_firing"), "{exported:?}");

    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let dashboard = std::fs::read_to_string(docs.join("grafana-dashboard.json")).unwrap();
    let dashboard_json: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    assert!(dashboard_json["panels"].as_array().is_some_and(|p| p.len() >= 6));
    let rules = std::fs::read_to_string(docs.join("prometheus-alerts.yml")).unwrap();
    for (file, text) in [
        ("grafana-dashboard.json", &dashboard),
        ("prometheus-alerts.yml", &rules),
    ] {
        let used = metric_names(text);
        assert!(!used.is_empty(), "{file} uses no metric");
        let unknown: Vec<_> = used.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{file} uses metrics the code does not export: {unknown:?}\nexported: {exported:?}"
        );
    }
    server.abort();
    client.close(Duration::from_secs(5)).await;
    scp.shutdown().await;
    refusing.shutdown().await;
}

/// `pacs_net_...` identifiers in a text.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("pacs_net_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// Usage errors are found before anything is served: no config, a bad interval.
#[test]
fn monitor_usage_errors_exit_2() {
    let (code, _, err) = common::pacs_net(&["monitor", "--listen", "127.0.0.1:0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("needs a config with nodes"), "{err}");
    let (code, _, err) = common::pacs_net(&["monitor", "--interval-seconds", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("between 0.05 and 86400"), "{err}");
    let (code, _, err) = common::pacs_net(&["monitor", "--listen", "nowhere"]);
    assert_eq!(code, 2, "{err}");
}

/// `network.alerts` is in the config schema and in `config check`.
#[test]
fn alert_thresholds_are_in_the_schema_and_config_check() {
    let (code, schema, _) = common::pacs_net(&["config", "schema"]);
    assert_eq!(code, 0);
    for field in [
        "acquire_wait_p95_ms",
        "utilization_percent",
        "error_rate_percent",
        "failed_health_checks",
    ] {
        assert!(schema.contains(field), "{field} not in the schema");
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("h.json");
    std::fs::write(
        &cfg,
        r#"{"nodes": {"A": {"ae_title": "A", "host": "127.0.0.1", "port": 104}},
            "network": {"alerts": {"utilization_percent": 90, "failed_health_checks": 5}}}"#,
    )
    .unwrap();
    let (code, out, err) = common::pacs_net(&["config", "check", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("network.alerts"), "{out}");
    let line = |key: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line("utilization_percent").ends_with(" 90 %"), "{out}");
    assert!(line("failed_health_checks").ends_with(" 5"), "{out}");
    assert!(line("acquire_wait_p95_ms").ends_with(" 100 ms"), "{out}");
}

/// A pynetdicom SCP that takes CT Image Storage only (no Verification).
const STORAGE_ONLY_SCP: &str = r#"
import sys
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage
ae = AE(ae_title="NOECHO")
ae.require_called_aet = False
ae.add_supported_context(CTImageStorage)
ae.start_server(("127.0.0.1", int(sys.argv[1])), block=True)
"#;

/// A node that does not accept Verification is checked by association only, and
/// says so; the checks succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_verification_is_checked_by_association() {
    let Some(python) = common::python_with(&["pynetdicom"]) else {
        return;
    };
    let port = common::free_port();
    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(script.path(), STORAGE_ONLY_SCP).unwrap();
    let _peer = common::start_peer(
        python.to_str().unwrap(),
        &[script.path().to_str().unwrap(), &port.to_string()],
        &[],
        port,
    );
    let json = serde_json::json!({
        "nodes": {"ARCHIVE": {"ae_title": "NOECHO", "host": "127.0.0.1", "port": port, "retry": {"max_attempts": 1}}}
    });
    let client = Arc::new(Client::new(Config::from_json_str(&json.to_string()).unwrap(), None));
    let monitor = Monitor::new(client.clone(), MonitorSettings::default());
    for _ in 0..3 {
        monitor.tick(true).await;
    }
    let status = monitor.status_report();
    let node = &status.nodes["ARCHIVE"];
    let probes: Vec<_> = node.history.iter().filter_map(|s| s.probe.as_ref()).collect();
    assert_eq!(probes.len(), 3);
    // From the first check on, by association, and every one succeeds.
    assert!(probes.iter().all(|p| p.kind == "association" && p.ok), "{probes:?}");
    assert!(
        node.reasons.iter().any(|r| r.contains("checked by association only")),
        "{:?}",
        node.reasons
    );
    assert_eq!(node.probe_mode, "association");
    assert_eq!(node.consecutive_failed_checks, 0);
    assert!(monitor.health_report().is_up());
    client.close(Duration::from_secs(5)).await;
}

fn single_node(port: u16, node: serde_json::Value) -> Arc<Client> {
    let mut n = serde_json::json!({"ae_title": "PACSNET_SCP", "host": "127.0.0.1", "port": port});
    if let (Some(n), Some(extra)) = (n.as_object_mut(), node.as_object()) {
        n.extend(extra.clone());
    }
    let json = serde_json::json!({"nodes": {"MAIN_PACS": n}});
    Arc::new(Client::new(Config::from_json_str(&json.to_string()).unwrap(), None))
}

/// A PACS slower than the DIMSE timeout: health checks time out, the breaker
/// opens, and the advice is to raise `timeouts dimse_ms` or look at the PACS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_scp_makes_the_monitor_advise_raising_dimse_ms() {
    let scp = scp_on(
        0,
        Behavior {
            response_delay: Some(Duration::from_millis(1500)),
            ..Behavior::default()
        },
    )
    .await;
    let client = single_node(
        scp.port(),
        serde_json::json!({"retry": {"max_attempts": 1}, "timeouts": {"dimse_ms": 300},
                           "circuit_breaker": {"failure_threshold": 2}}),
    );
    let monitor = Monitor::new(client.clone(), MonitorSettings::default());
    for _ in 0..3 {
        monitor.tick(true).await;
    }
    let status = monitor.status_report();
    let node = &status.nodes["MAIN_PACS"];
    let rec = node
        .recommendations
        .iter()
        .find(|r| r.rule == "dimse_timeouts")
        .unwrap_or_else(|| panic!("{:#?}\n{:#?}", node.recommendations, node.history));
    assert_eq!(rec.field, "nodes.MAIN_PACS.timeouts dimse_ms");
    assert!(rec.change.contains("now 300 ms"), "{}", rec.change);
    client.close(Duration::from_secs(5)).await;
    scp.shutdown().await;
}

/// A PACS that closes idle associations sooner than the pool retires them: the
/// next operation finds its association closed, and the advice is to set
/// `pool max_idle_time` below the PACS's idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_scp_closing_idle_associations_makes_the_monitor_advise_max_idle_time() {
    let scp = scp_on(
        0,
        Behavior {
            close_idle_after: Some(Duration::from_millis(200)),
            ..Behavior::default()
        },
    )
    .await;
    let client = single_node(scp.port(), serde_json::json!({}));
    let monitor = Monitor::new(client.clone(), MonitorSettings::default());
    let node = client.node("MAIN_PACS").unwrap();
    for _ in 0..3 {
        node.echo()
            .await
            .result
            .expect("C-ECHO (redone on a fresh association)");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    monitor.tick(false).await;
    let status = monitor.status_report();
    let main = &status.nodes["MAIN_PACS"];
    let rec = main
        .recommendations
        .iter()
        .find(|r| r.rule == "stale_idle")
        .unwrap_or_else(|| panic!("{:#?}\n{:#?}", main.recommendations, main.pool));
    assert_eq!(rec.field, "nodes.MAIN_PACS.pool max_idle_time");
    assert!(rec.change.contains("now 300 s"), "{}", rec.change);
    client.close(Duration::from_secs(5)).await;
    scp.shutdown().await;
}
