//! `pacs-net monitor`: health checks of every node of the config at an interval,
//! and the monitor's endpoints (`/metrics`, `/health`, `/status`, `/`) until Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::{error_line, exit, load_config, Cli, CLOSE_TIMEOUT};
use crate::client::Client;
use crate::config;
use crate::monitor::{self, Monitor, MonitorSettings};

/// Load the config and monitor its nodes (no run overrides: the nodes' own retry
/// policies and timeouts apply, as for the application being watched).
pub(super) async fn run(cli: &Cli, listen: SocketAddr, interval: Duration) -> u8 {
    let config = match load_config(cli) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(ae) = &cli.calling_ae {
        if let Err(reason) = config::validate_ae_title(ae) {
            error_line!("--calling-ae {ae:?}: {reason}");
            return exit::USAGE;
        }
    }
    let client = Arc::new(Client::new(config, cli.calling_ae.clone()));
    monitor(client, listen, interval).await
}

/// Run until Ctrl-C (then release the associations, exit 0).
pub(super) async fn monitor(client: Arc<Client>, listen: SocketAddr, interval: Duration) -> u8 {
    if client.config().nodes.is_empty() {
        error_line!("monitor needs a config with nodes (-c FILE or PACS_NET_CONFIG)");
        return exit::USAGE;
    }
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            error_line!("cannot listen on {listen}: {e}");
            return exit::FAILED;
        }
    };
    let addr = listener.local_addr().unwrap_or(listen);
    let settings = MonitorSettings {
        interval,
        alerts: client.config().alerts,
        ..MonitorSettings::default()
    };
    let monitor = Monitor::new(client.clone(), settings);
    let sampler = monitor.clone().spawn(true);
    let names: Vec<&str> = client.config().node_names();
    eprintln!(
        "monitoring {} node(s) ({}) every {} s; serving http://{addr}/ (/metrics, /health, /status) until Ctrl-C",
        names.len(),
        names.join(", "),
        interval.as_secs_f64()
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, monitor::router(monitor))
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await
    });
    let interrupted = tokio::select! {
        r = tokio::signal::ctrl_c() => r.is_ok(),
        r = server_failed(server) => {
            if let Err(e) = r {
                error_line!("http server on {addr}: {e}");
            }
            sampler.abort();
            client.close(CLOSE_TIMEOUT).await;
            return exit::FAILED;
        }
    };
    if interrupted {
        eprintln!("interrupted: releasing associations");
    }
    sampler.abort();
    let _ = stop_tx.send(());
    client.close(CLOSE_TIMEOUT).await;
    exit::OK
}

/// Waits for the server task, which ends only on an error (or a panic).
async fn server_failed(server: tokio::task::JoinHandle<std::io::Result<()>>) -> Result<(), String> {
    match server.await {
        Ok(Ok(())) => Err("stopped".to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}
