//! The `pacs-net` command line: argument parsing, logging, and printing over the
//! library's public API. Results go to stdout; failures and logs to stderr.

mod args;
mod commit;
mod demo;
mod echo;
mod failure;
mod find;
mod logging;
#[cfg(feature = "monitor")]
mod monitor;
mod output;
mod retrieve;
mod security;
mod store;
mod style;
mod worklist;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory, Parser};

pub use args::Cli;
use args::{Command, ConfigCommand, RunOpts};

use crate::client::{Client, RunOverrides};
use crate::config::{self, Config};

/// How long `close` waits for busy associations before aborting them.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Exit codes of the spec.
pub mod exit {
    /// Everything succeeded.
    pub const OK: u8 = 0;
    /// An operation failed.
    pub const FAILED: u8 = 1;
    /// Bad usage (arguments or config).
    pub const USAGE: u8 = 2;
    /// Interrupted by Ctrl-C (128 + SIGINT).
    pub const INTERRUPTED: u8 = 130;
}

/// `error: ...` on stderr, the label coloured like clap's on a terminal.
macro_rules! error_line {
    ($($arg:tt)*) => {
        eprintln!("{}{}", $crate::cli::style::error_label(), format_args!($($arg)*))
    };
}
pub(crate) use error_line;

/// Parse arguments and run; the whole binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose, cli.quiet, cli.log_format);
    // One thread drives the command and its sockets. The work of a DIMSE client is
    // waiting on the network; what is heavy (reading and converting files) runs on
    // the blocking pool. A multi-thread scheduler only adds wake-ups handed between
    // threads: ~20 % more wall and CPU per C-ECHO (BENCHMARKS.md, issue 10).
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            error_line!("cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILED);
        }
    };
    let code = runtime.block_on(run(cli));
    // Background pool tasks must not hold the process up.
    runtime.shutdown_timeout(Duration::from_millis(100));
    ExitCode::from(code)
}

/// Ctrl-C (SIGINT): the first asks the running command to stop starting new
/// operations and finish cleanly; a second aborts at once (exit 130).
#[derive(Debug, Clone, Default)]
pub(crate) struct Interrupt {
    flag: Arc<AtomicBool>,
}

impl Interrupt {
    /// Installs the handler on the current runtime. Not `graceful` (a command with
    /// nothing to finish cleanly), the first Ctrl-C ends the process at once.
    fn install(graceful: bool) -> Interrupt {
        let interrupt = Interrupt::default();
        let i = interrupt.clone();
        // Registered now, not when the task first runs: a Ctrl-C right after start
        // is not lost.
        #[cfg(unix)]
        let mut sigint = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) {
            Ok(s) => s,
            Err(_) => return interrupt,
        };
        tokio::spawn(async move {
            #[cfg(unix)]
            let first = sigint.recv().await.is_some();
            #[cfg(not(unix))]
            let first = tokio::signal::ctrl_c().await.is_ok();
            if !first {
                return;
            }
            if !graceful {
                eprintln!("interrupted");
                std::process::exit(i32::from(exit::INTERRUPTED));
            }
            i.flag.store(true, Ordering::SeqCst);
            eprintln!("interrupted: finishing the operations in flight (Ctrl-C again to abort at once)");
            #[cfg(unix)]
            let second = sigint.recv().await.is_some();
            #[cfg(not(unix))]
            let second = tokio::signal::ctrl_c().await.is_ok();
            if second {
                eprintln!("aborted");
                std::process::exit(i32::from(exit::INTERRUPTED));
            }
        });
        interrupt
    }

    pub(crate) fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

async fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Config {
            command: ConfigCommand::Check { ref file },
        } => config_check(file.as_deref().or(cli.config.as_deref())),
        Command::Config {
            command: ConfigCommand::Schema,
        } => {
            println!("{}", config::json_schema());
            exit::OK
        }
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "pacs-net", &mut std::io::stdout());
            exit::OK
        }
        Command::Scp {
            port,
            ref ae_title,
            ref storage,
            ref bind,
            response_delay_ms,
            ref tls,
            ref move_dest,
            commit_report,
            commit_report_port,
            ref worklist,
        } => {
            let delay = response_delay_ms.map(Duration::from_millis);
            let tls = match tls.server_config() {
                Ok(t) => t,
                Err(e) => {
                    error_line!("{e}");
                    return exit::USAGE;
                }
            };
            let commit_report = match commit_report {
                args::CommitReportArg::Same => crate::scp::CommitReportMode::SameAssociation,
                args::CommitReportArg::New => crate::scp::CommitReportMode::NewAssociation {
                    port: commit_report_port,
                },
            };
            let worklist = match worklist.as_deref().map(crate::scp::WorklistFolder::open).transpose() {
                Ok(w) => w,
                Err(e) => {
                    error_line!("--worklist: {e}");
                    return exit::USAGE;
                }
            };
            demo::scp(
                port,
                ae_title,
                storage.clone(),
                bind,
                delay,
                tls,
                move_dest,
                worklist,
                commit_report,
            )
            .await
        }
        Command::Demo => demo::demo(cli.calling_ae.clone()).await,
        #[cfg(feature = "monitor")]
        Command::Monitor {
            listen,
            interval_seconds,
        } => monitor::run(&cli, listen, Duration::from_secs_f64(interval_seconds)).await,
        Command::Echo {
            ref target,
            count,
            concurrency,
            ref run,
        } => {
            with_client(&cli, run, true, |client, interrupt| {
                echo::echo(client, target.clone(), count, concurrency as usize, interrupt)
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
            commit,
            commit_timeout_seconds,
            port,
        } => {
            // A report that cannot be written is found before anything is sent.
            if let Some(path) = report {
                if let Err(e) = store::check_report_path(path) {
                    error_line!("--report {}: {e}", path.display());
                    return exit::USAGE;
                }
            }
            let opts = store::StoreOpts {
                target: target.clone(),
                paths: paths.clone(),
                concurrency: concurrency as usize,
                report: report.clone(),
                progress: !no_progress,
                commit: commit.then(|| commit::CommitArgs {
                    timeout: commit_timeout_seconds
                        .map_or(crate::client::DEFAULT_COMMIT_TIMEOUT, Duration::from_secs_f64),
                    port,
                }),
            };
            with_client(&cli, run, true, |client, interrupt| {
                store::store(client, opts, interrupt)
            })
            .await
        }
        Command::Commit {
            ref target,
            ref paths,
            timeout_seconds,
            port,
            ref report,
            ref run,
        } => {
            if let Some(path) = report {
                if let Err(e) = store::check_report_path(path) {
                    error_line!("--report {}: {e}", path.display());
                    return exit::USAGE;
                }
            }
            let opts = commit::CommitOpts {
                target: target.clone(),
                paths: paths.clone(),
                commit: commit::CommitArgs {
                    timeout: Duration::from_secs_f64(timeout_seconds),
                    port,
                },
                report: report.clone(),
            };
            with_client(&cli, run, false, |client, _| commit::commit(client, opts)).await
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
            // Keys and values are checked before anything is sent.
            let query = match find::build_query(&opts) {
                Ok(q) => q,
                Err(e) => {
                    error_line!("{e}");
                    return exit::USAGE;
                }
            };
            with_client(&cli, run, false, |client, _| find::find(client, opts, query)).await
        }
        Command::Worklist {
            ref target,
            ref keys,
            format,
            limit,
            ref run,
        } => {
            let query = match find::build_worklist_query(keys) {
                Ok(q) => q,
                Err(e) => {
                    error_line!("{e}");
                    return exit::USAGE;
                }
            };
            let opts = find::FindOpts {
                target: target.clone(),
                model: String::new(),
                level: String::new(),
                keys: keys.clone(),
                format,
                limit,
            };
            with_client(&cli, run, false, |client, _| {
                find::run_query(client, opts, find::AnyQuery::Worklist(query))
            })
            .await
        }
        Command::Get {
            ref target,
            ref model,
            ref level,
            ref keys,
            ref out,
            concurrency,
            ref report,
            no_progress,
            ref run,
        } => {
            let query = match retrieve_query(target, model, level, keys, report.as_deref()) {
                Ok(q) => q,
                Err(code) => return code,
            };
            if let Err(e) = retrieve::check_out_dir(out) {
                error_line!("--out {}: {e}", out.display());
                return exit::USAGE;
            }
            let opts = retrieve::RetrieveOpts {
                target: target.clone(),
                kind: crate::dimse::RetrieveKind::Get,
                out: Some(out.clone()),
                listen: None,
                concurrency: concurrency as usize,
                report: report.clone(),
                progress: !no_progress,
            };
            with_client(&cli, run, true, |client, interrupt| {
                retrieve::retrieve(client, opts, query, interrupt)
            })
            .await
        }
        Command::Move {
            ref target,
            ref dest,
            ref model,
            ref level,
            ref keys,
            ref out,
            port,
            concurrency,
            ref report,
            no_progress,
            ref run,
        } => {
            let query = match retrieve_query(target, model, level, keys, report.as_deref()) {
                Ok(q) => q,
                Err(code) => return code,
            };
            let args = retrieve::MoveArgs {
                target: target.clone(),
                dest: dest.clone(),
                out: out.clone(),
                port,
                concurrency: concurrency as usize,
                report: report.clone(),
                progress: !no_progress,
            };
            with_client(&cli, run, true, |client, interrupt| {
                retrieve::run_move(client, args, query, interrupt)
            })
            .await
        }
    }
}

/// Load the config, build the client, run `f`, then print stats (taken before the
/// pools close, on stderr), close the pools (A-RELEASE, so the PACS sees releases,
/// not aborts) and write the metrics.
async fn with_client<F, Fut>(cli: &Cli, run: &RunOpts, graceful: bool, f: F) -> u8
where
    F: FnOnce(Arc<Client>, Interrupt) -> Fut,
    Fut: std::future::Future<Output = u8>,
{
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
    let overrides = RunOverrides {
        max_attempts: run.attempts,
        connect_timeout: run.connect_timeout_ms.map(Duration::from_millis),
        acse_timeout: run.acse_timeout_ms.map(Duration::from_millis),
        dimse_timeout: run.dimse_timeout_ms.map(Duration::from_millis),
        quick_unreachable: true,
        ad_hoc_tls: run.security.tls(),
        ad_hoc_user_identity: run.security.user_identity(),
    };
    let client = Arc::new(Client::new(config, cli.calling_ae.clone()).with_overrides(overrides));
    let interrupt = Interrupt::install(graceful);
    let code = f(client.clone(), interrupt).await;
    if run.stats {
        output::print_stats(&client.stats(), run.stats_format);
    }
    client.close(CLOSE_TIMEOUT).await;
    if let Some(path) = &run.metrics {
        if let Err(e) = std::fs::write(path, crate::metrics::render(&client)) {
            error_line!("cannot write metrics to {}: {e}", path.display());
            return exit::FAILED.max(code);
        }
    }
    code
}

fn load_config(cli: &Cli) -> Result<Config, u8> {
    match &cli.config {
        Some(path) => Config::load(path).map_err(|e| {
            error_line!("{e}");
            exit::USAGE
        }),
        None => Ok(Config::default()),
    }
}

fn config_check(file: Option<&std::path::Path>) -> u8 {
    let Some(file) = file else {
        error_line!("config check needs a FILE (or -c FILE, or PACS_NET_CONFIG)");
        return exit::USAGE;
    };
    match Config::load(file) {
        Ok(config) => {
            print!("{}", config.describe());
            exit::OK
        }
        Err(e) => {
            error_line!("{e}");
            exit::USAGE
        }
    }
}

/// The identifier of a `get` or `move`, and its `--report` path checked before
/// anything is sent; a usage error (exit 2) otherwise, already printed.
fn retrieve_query(
    target: &str,
    model: &str,
    level: &str,
    keys: &[String],
    report: Option<&std::path::Path>,
) -> Result<crate::dimse::FindQuery, u8> {
    let opts = find::FindOpts {
        target: target.to_string(),
        model: model.to_string(),
        level: level.to_string(),
        keys: keys.to_vec(),
        format: args::FindFormat::Table,
        limit: None,
    };
    let query = find::build_query(&opts)
        .and_then(|q| retrieve::check_keys(&q).map(|_| q))
        .map_err(|e| {
            error_line!("{e}");
            exit::USAGE
        })?;
    if let Some(path) = report {
        if let Err(e) = store::check_report_path(path) {
            error_line!("--report {}: {e}", path.display());
            return Err(exit::USAGE);
        }
    }
    Ok(query)
}

/// A usage error about TARGET (unknown node, bad AET@HOST:PORT): exit 2.
fn target_error(e: crate::config::ConfigError) -> u8 {
    error_line!("{e}");
    exit::USAGE
}
