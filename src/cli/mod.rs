//! The `pacs-net` command line: argument parsing, logging, and printing over the
//! library's public API. Results go to stdout; failures and logs to stderr.

mod args;
mod demo;
mod echo;
mod find;
mod output;
mod store;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

pub use args::Cli;
use args::{Command, ConfigCommand, LogFormat, RunOpts};

use crate::client::Client;
use crate::config::{self, Config};

/// How long `close` waits for busy associations before aborting them.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Exit codes of the spec.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
}

/// Parse arguments and run; the whole binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILED);
        }
    };
    let code = runtime.block_on(run(cli));
    // Background pool tasks must not hold the process up.
    runtime.shutdown_timeout(Duration::from_millis(100));
    ExitCode::from(code)
}

fn init_logging(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let level = if cli.quiet {
        "error"
    } else {
        match cli.verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = EnvFilter::try_from_env("PACS_NET_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true);
    let _ = match cli.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
}

async fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Config {
            command: ConfigCommand::Check { ref file },
        } => config_check(file),
        Command::Scp {
            port,
            ref ae_title,
            ref storage,
            ref bind,
        } => demo::scp(port, ae_title, storage.clone(), bind).await,
        Command::Demo => demo::demo(cli.calling_ae.clone()).await,
        Command::Echo {
            ref target,
            count,
            concurrency,
            ref run,
        } => {
            with_client(&cli, run, |client| {
                echo::echo(client, target.clone(), count, concurrency as usize)
            })
            .await
        }
        Command::Store {
            ref target,
            ref paths,
            concurrency,
            ref report,
            no_progress,
            ref run,
        } => {
            let opts = store::StoreOpts {
                target: target.clone(),
                paths: paths.clone(),
                concurrency: concurrency as usize,
                report: report.clone(),
                progress: !no_progress,
            };
            with_client(&cli, run, |client| store::store(client, opts)).await
        }
        Command::Find {
            ref target,
            ref model,
            ref level,
            ref keys,
            format,
            limit,
            ref run,
        } => {
            let opts = find::FindOpts {
                target: target.clone(),
                model: model.clone(),
                level: level.clone(),
                keys: keys.clone(),
                format,
                limit,
            };
            with_client(&cli, run, |client| find::find(client, opts)).await
        }
    }
}

/// Load the config, build the client, run `f`, then print stats / write metrics and
/// close the pools (A-RELEASE, so the PACS sees releases, not aborts).
async fn with_client<F, Fut>(cli: &Cli, run: &RunOpts, f: F) -> u8
where
    F: FnOnce(Arc<Client>) -> Fut,
    Fut: std::future::Future<Output = u8>,
{
    let config = match load_config(cli) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(ae) = &cli.calling_ae {
        if let Err(reason) = config::validate_ae_title(ae) {
            eprintln!("error: --calling-ae {ae:?}: {reason}");
            return exit::USAGE;
        }
    }
    let client = Arc::new(Client::new(config, cli.calling_ae.clone()));
    let code = f(client.clone()).await;
    client.close(CLOSE_TIMEOUT).await;
    if run.stats {
        output::print_stats(&client.stats(), run.stats_format);
    }
    if let Some(path) = &run.metrics {
        if let Err(e) = std::fs::write(path, crate::metrics::render(&client)) {
            eprintln!("error: cannot write metrics to {}: {e}", path.display());
            return exit::FAILED.max(code);
        }
    }
    code
}

fn load_config(cli: &Cli) -> Result<Config, u8> {
    match &cli.config {
        Some(path) => Config::load(path).map_err(|e| {
            eprintln!("error: {e}");
            exit::USAGE
        }),
        None => Config::from_json_str("{}").map_err(|e| {
            eprintln!("error: {e}");
            exit::USAGE
        }),
    }
}

fn config_check(file: &std::path::Path) -> u8 {
    match Config::load(file) {
        Ok(config) => {
            print!("{}", config.describe());
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::USAGE
        }
    }
}

/// A usage error about TARGET (unknown node, bad AET@HOST:PORT): exit 2.
fn target_error(e: crate::client::TargetError) -> u8 {
    eprintln!("error: {e}");
    exit::USAGE
}
