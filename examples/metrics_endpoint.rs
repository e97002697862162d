//! A Prometheus `/metrics`, a `/health` endpoint, `/status` and the status page for
//! a long-running pacs-net client: the library's monitor router
//! (`pacs_net::monitor`, on axum) merged into the application's own routes.
//!
//! ```sh
//! cargo run --example metrics_endpoint                       # traffic, one scrape, print, exit
//! cargo run --example metrics_endpoint -- --serve            # keep serving until Ctrl-C
//! cargo run --example metrics_endpoint -- --serve --port 9464
//! ```
//!
//! It starts the embedded SCP in-process and binds 127.0.0.1 (a free port unless
//! `--port`). Two nodes: `MAIN_PACS` (the embedded SCP) gets some traffic through its
//! pool (C-ECHO, C-STORE of the fixtures, C-FIND); `OFFLINE_CT` points at a loopback
//! port nobody listens on, so its circuit opens, and it shows what a node that is down
//! looks like. Then the example fetches `/metrics`, `/health` and its own `/api/ping`
//! over TCP and prints them. With `--serve` it keeps serving, with a C-ECHO to `MAIN_PACS` every
//! 2 s so the numbers move. Exits 0 when both answers hold what they should, 1
//! otherwise. The regions between `// [guide:X]` and `// [/guide:X]` are quoted in
//! docs/CONNECTION_POOLING.md.

use std::ops::ControlFlow;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get as route_get;
use axum::Router;
use pacs_net::client::Client;
use pacs_net::config::Config;
use pacs_net::dimse::{FindQuery, QueryLevel, QueryModel};
use pacs_net::monitor::{Monitor, MonitorSettings};
use pacs_net::scp::{Scp, ScpConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("PACS_NET_LOG"))
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("metrics_endpoint: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Args {
    serve: bool,
    port: u16,
}

fn args() -> Result<Args, Error> {
    let mut out = Args { serve: false, port: 0 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--serve" => out.serve = true,
            "--port" => out.port = it.next().ok_or("--port needs a value")?.parse()?,
            other => return Err(format!("unknown argument {other:?} (expected --serve, --port N)").into()),
        }
    }
    Ok(out)
}

async fn run() -> Result<(), Error> {
    let args = args()?;
    let scp = Scp::start(ScpConfig::default(), "127.0.0.1:0".parse()?).await?;
    println!("embedded SCP {} on {}", scp.ae_title(), scp.local_addr());
    // A loopback port nobody listens on: connections are refused at once.
    let offline_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let config = Config::from_json_str(
        &serde_json::json!({
            "nodes": {
                "MAIN_PACS": {"ae_title": scp.ae_title(), "host": "127.0.0.1", "port": scp.port(), "pool": "main_pacs"},
                "OFFLINE_CT": {"ae_title": "CT01", "host": "127.0.0.1", "port": offline_port, "pool": "modality",
                               "retry": {"max_attempts": 1},
                               "circuit_breaker": {"failure_threshold": 2, "open_duration_seconds": 60}}
            },
            "network": {"connection_pools": {"main_pacs": {"min_size": 1, "max_size": 4},
                                             "modality": {"min_size": 0, "max_size": 1}}}
        })
        .to_string(),
    )?;
    // [guide:serve]
    // One Client for the whole process. The monitor starts every node now (min_size
    // warm-up at once, every node in the first scrape), and samples them every 10 s
    // for the history, alerts and recommendations of /status and the page.
    let client = Arc::new(Client::new(config, None));
    let settings = MonitorSettings {
        interval: Duration::from_secs(10),
        alerts: client.config().alerts,
        ..MonitorSettings::default()
    };
    let monitor = Monitor::new(client.clone(), settings);
    let sampler = monitor.clone().spawn(false); // `true`: C-ECHO each node at every tick too
    let listener = TcpListener::bind(("127.0.0.1", args.port)).await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app(monitor)).await });
    // [/guide:serve]
    println!("serving http://{addr}/ (/metrics, /health, /status) and /api/ping");

    traffic(&client).await?;
    offline(&client).await?;

    let (status, body) = get(&addr.to_string(), "/metrics").await?;
    println!("== GET /metrics -> {status}");
    print!("{body}");
    for expected in [
        "pacs_net_operations_total{node=\"MAIN_PACS\",ae_title=\"PACSNET_SCP\",operation=\"C-STORE\",outcome=\"success\"",
        "pacs_net_operation_duration_seconds_bucket{",
        "pacs_net_pool_acquire_wait_seconds_bucket{",
        "pacs_net_pool_created_total{node=\"MAIN_PACS\"",
        "pacs_net_breaker_state{node=\"OFFLINE_CT\",ae_title=\"CT01\"} 2",
        "pacs_net_breaker_transitions_total{node=\"OFFLINE_CT\",ae_title=\"CT01\",state=\"open\"} 1",
        "pacs_net_node_health{node=\"MAIN_PACS\",ae_title=\"PACSNET_SCP\"} 0",
        "pacs_net_node_health{node=\"OFFLINE_CT\",ae_title=\"CT01\"} 2",
    ] {
        if !body.contains(expected) {
            return Err(format!("the scrape has no {expected}").into());
        }
    }
    if !status.contains("200") || !body.trim_end().ends_with("# EOF") {
        return Err(format!("unexpected /metrics response: {status}").into());
    }
    let (status, body) = get(&addr.to_string(), "/health").await?;
    println!("== GET /health -> {status}");
    println!("{body}");
    if !status.contains("503") || !body.contains("\"down\"") || !body.contains("\"healthy\"") {
        return Err(format!("unexpected /health response: {status}").into());
    }
    let (status, body) = get(&addr.to_string(), "/api/ping").await?;
    println!("== GET /api/ping -> {status}: {body}");
    if !status.contains("200") || body != "pong" {
        return Err(format!("unexpected /api/ping response: {status}").into());
    }
    let (not_found, _) = get(&addr.to_string(), "/nope").await?;
    println!("== GET /nope -> {not_found}");

    if args.serve {
        println!("serving http://{addr}/metrics and /health until Ctrl-C (a C-ECHO every 2 s)");
        // [guide:worker]
        let node = client.node("MAIN_PACS")?;
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            tokio::select! {
                _ = &mut ctrl_c => break,
                _ = tick.tick() => {
                    if let Err(e) = node.echo().await.result {
                        eprintln!("C-ECHO failed: {e}"); // the breaker and retry policy already applied
                    }
                }
            }
        }
        // [/guide:worker]
    }
    // [guide:shutdown]
    sampler.abort();
    server.abort();
    // A-RELEASE idle associations, wait up to 5 s for borrowed ones, abort the rest.
    client.close(Duration::from_secs(5)).await;
    // [/guide:shutdown]
    scp.shutdown().await;
    Ok(())
}

/// Some of everything: C-ECHOs, C-STOREs of the fixtures (4 at a time), a C-FIND.
async fn traffic(client: &Client) -> Result<(), Error> {
    let node = client.node("MAIN_PACS")?;
    for _ in 0..20 {
        node.echo().await.result?;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dicom");
    let files: Vec<_> = walkdir::WalkDir::new(&dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in files.chunks(files.len().div_ceil(4)) {
        let (node, chunk) = (node.clone(), chunk.to_vec());
        tasks.spawn(async move {
            for path in chunk {
                node.store_file(&path).await.outcome.result?;
            }
            Ok::<_, pacs_net::client::OperationError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let query = FindQuery::new(
        QueryModel::StudyRoot,
        QueryLevel::Study,
        vec!["StudyInstanceUID".parse()?],
    )?;
    node.find(&query, |_| ControlFlow::Continue(())).await.result?;
    println!("traffic: 20 C-ECHOs, {} C-STOREs, 1 C-FIND", files.len());
    Ok(())
}

/// A node that is down: refused connections count against its breaker, which opens
/// after 2; the third C-ECHO fails at once without touching the network.
async fn offline(client: &Client) -> Result<(), Error> {
    let node = client.node("OFFLINE_CT")?;
    for _ in 0..3 {
        let out = node.echo().await;
        match out.result {
            Ok(_) => return Err("C-ECHO to a closed port succeeded".into()),
            Err(e) => println!("C-ECHO OFFLINE_CT ({} attempt(s)): {e}", out.attempts),
        }
    }
    let health = node.health();
    println!(
        "OFFLINE_CT health: {} ({})",
        health.status.as_str(),
        health.reasons.join("; ")
    );
    Ok(())
}

// [guide:handler]
/// The application's own routes, with the monitor's merged in: `/metrics`,
/// `/health` (503 when a node is down), `/status` and the status page at `/`.
fn app(monitor: Arc<Monitor>) -> Router {
    Router::new()
        .route("/api/ping", route_get(|| async { "pong" }))
        .merge(pacs_net::monitor::router(monitor))
}
// [/guide:handler]

/// A minimal HTTP/1.1 GET: the status line and the body.
async fn get(addr: &str, path: &str) -> Result<(String, String), Error> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response)).await??;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or("no end of headers in the response")?;
    let status = head.lines().next().unwrap_or_default().to_string();
    Ok((status, body.to_string()))
}
