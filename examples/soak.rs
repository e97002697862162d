//! Soak: many tasks run a mix of C-ECHO, C-STORE and C-FIND (with a limit, so
//! C-CANCEL) through one client against two embedded SCPs that misbehave at random
//! (aborts, TCP closes, delays, transient rejections, idle closes, an association
//! limit), while a share of the callers' futures are dropped at a random point.
//! At the end it checks the bookkeeping a leak would break:
//!
//! - every operation has exactly one outcome (succeeded, failed or dropped);
//! - every task finished, and no runtime task outlives the client and the SCPs;
//! - per pool, `created - destroyed == idle + active + opening + closing`, with
//!   nothing active, opening or closing, and no borrow left in the leak map.
//!
//! ```sh
//! cargo run --release --example soak                      # 64 tasks, 10,000 operations
//! cargo run --example soak -- --ops 600 --tasks 16        # the short CI run
//! ```
//!
//! Prints its figures (recorded in BENCHMARKS.md); exits 1 if a check fails.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pacs_net::client::{open_instance, Client, OpOptions};
use pacs_net::config::Config;
use pacs_net::dimse::{FindQuery, InstanceFile, QueryLevel, QueryModel};
use pacs_net::scp::{Behavior, RandomFaults, Scp, ScpConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Default)]
struct Tally {
    started: AtomicUsize,
    ok: AtomicUsize,
    failed: AtomicUsize,
    dropped: AtomicUsize,
    echoes: AtomicUsize,
    stores: AtomicUsize,
    finds: AtomicUsize,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("PACS_NET_LOG"))
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("soak: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

fn arg(name: &str, default: u64) -> Result<u64, Error> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(args.get(i + 1).ok_or(format!("{name} needs a value"))?.parse()?),
        None => Ok(default),
    }
}

fn dicom_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "dcm"))
        .map(|e| e.into_path())
        .collect();
    files.sort();
    files
}

async fn run() -> Result<(), Error> {
    let ops = arg("--ops", 10_000)? as usize;
    let tasks = arg("--tasks", 64)? as usize;
    let seed = arg("--seed", 9)?;
    let baseline_tasks = tokio::runtime::Handle::current().metrics().num_alive_tasks();

    let chaos = Behavior {
        random_faults: Some(RandomFaults {
            reject_per_mille: 20,
            abort_per_mille: 10,
            close_per_mille: 10,
            delay_per_mille: 50,
            max_delay: Duration::from_millis(40),
        }),
        close_idle_after: Some(Duration::from_millis(300)),
        ..Behavior::default()
    };
    let crowded = Behavior {
        max_associations: Some(3),
        random_faults: Some(RandomFaults {
            abort_per_mille: 5,
            delay_per_mille: 20,
            max_delay: Duration::from_millis(20),
            ..RandomFaults::default()
        }),
        ..Behavior::default()
    };
    let scp_a = Scp::start(
        ScpConfig {
            ae_title: "CHAOS".into(),
            behavior: chaos,
            ..ScpConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let scp_b = Scp::start(
        ScpConfig {
            ae_title: "CROWDED".into(),
            behavior: crowded,
            ..ScpConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let config = Config::from_json_str(
        &serde_json::json!({
            "nodes": {
                "CHAOS": {"ae_title": "CHAOS", "host": "127.0.0.1", "port": scp_a.port(), "pool": "chaos"},
                "CROWDED": {"ae_title": "CROWDED", "host": "127.0.0.1", "port": scp_b.port(), "pool": "crowded"}
            },
            "network": {
                "connection_pools": {
                    "chaos": {"min_size": 2, "max_size": 8, "max_idle_time": 2, "validation_interval": 1,
                              "acquire_timeout_ms": 2000, "max_uses": 50, "leak_threshold_seconds": 30},
                    "crowded": {"max_size": 6, "max_idle_time": 2, "validation_interval": 1,
                                "acquire_timeout_ms": 2000, "leak_threshold_seconds": 30}
                },
                "timeouts": {"connect_ms": 2000, "acse_ms": 2000, "dimse_ms": 2000},
                "retry": {"max_attempts": 3, "initial_delay_ms": 5, "max_delay_ms": 50, "strategy": "exponential_jitter",
                          "budget_percent": 50, "budget_min_per_second": 100},
                "circuit_breaker": {"failure_threshold": 25, "success_threshold": 1, "open_duration_seconds": 1}
            }
        })
        .to_string(),
    )?;
    let client = Arc::new(Client::new(config, Some("SOAK".into())));
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dicom");
    let mut files: Vec<Arc<InstanceFile>> = Vec::new();
    for path in dicom_files(&fixtures) {
        files.push(Arc::new(open_instance(&path).await?));
    }
    if files.is_empty() {
        return Err("no fixtures under fixtures/dicom".into());
    }
    let query = FindQuery::new(QueryModel::StudyRoot, QueryLevel::Study, vec!["StudyDate".parse()?])?;

    let tally = Arc::new(Tally::default());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (client, tally, next, files, query) = (
            client.clone(),
            tally.clone(),
            next.clone(),
            files.clone(),
            query.clone(),
        );
        handles.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1_000).wrapping_add(t as u64));
            while next.fetch_add(1, Ordering::SeqCst) < ops {
                tally.started.fetch_add(1, Ordering::SeqCst);
                let node_name = if rng.random_bool(0.7) { "CHAOS" } else { "CROWDED" };
                let Ok(node) = client.node(node_name) else {
                    tally.failed.fetch_add(1, Ordering::SeqCst);
                    continue;
                };
                let kind = rng.random_range(0..3u8);
                let opts = OpOptions {
                    deadline: rng
                        .random_bool(0.2)
                        .then(|| Duration::from_millis(rng.random_range(5..400))),
                    ..OpOptions::default()
                };
                let file = files[rng.random_range(0..files.len())].clone();
                let limit = rng.random_range(1..4usize);
                let op = async {
                    match kind {
                        0 => {
                            tally.echoes.fetch_add(1, Ordering::SeqCst);
                            node.echo_with(&opts).await.result.is_ok()
                        }
                        1 => {
                            tally.stores.fetch_add(1, Ordering::SeqCst);
                            node.store_with(&file, &opts).await.result.is_ok()
                        }
                        _ => {
                            tally.finds.fetch_add(1, Ordering::SeqCst);
                            let mut n = 0;
                            let out = node
                                .find_with(&query, &opts, |_| {
                                    n += 1;
                                    if n >= limit {
                                        ControlFlow::Break(())
                                    } else {
                                        ControlFlow::Continue(())
                                    }
                                })
                                .await;
                            out.result.is_ok()
                        }
                    }
                };
                // One caller in seven gives up at a random point: its future is dropped.
                let outcome = if rng.random_bool(1.0 / 7.0) {
                    let patience = Duration::from_millis(rng.random_range(0..60));
                    tokio::time::timeout(patience, op).await.ok()
                } else {
                    Some(op.await)
                };
                let counter = match outcome {
                    Some(true) => &tally.ok,
                    Some(false) => &tally.failed,
                    None => &tally.dropped,
                };
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let mut panicked = 0;
    for h in handles {
        if h.await.is_err() {
            panicked += 1;
        }
    }
    let elapsed = started.elapsed();

    // Let the pools settle (teardowns run in spawned tasks), then check them.
    let mut problems = Vec::new();
    let mut settled = false;
    for _ in 0..200 {
        let quiet = client
            .stats()
            .iter()
            .all(|s| s.pool.active == 0 && s.pool.opening == 0 && s.pool.closing == 0);
        if quiet {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    if !settled {
        problems.push("pools did not settle (something still active, opening or closing)".to_string());
    }
    println!(
        "soak: {tasks} tasks, {ops} operations in {:.1} s",
        elapsed.as_secs_f64()
    );
    let (ok, failed, dropped) = (
        tally.ok.load(Ordering::SeqCst),
        tally.failed.load(Ordering::SeqCst),
        tally.dropped.load(Ordering::SeqCst),
    );
    println!(
        "  operations: {} started; {ok} succeeded, {failed} failed, {dropped} dropped by their caller; \
         {} echo, {} store, {} find",
        tally.started.load(Ordering::SeqCst),
        tally.echoes.load(Ordering::SeqCst),
        tally.stores.load(Ordering::SeqCst),
        tally.finds.load(Ordering::SeqCst)
    );
    if ok + failed + dropped != ops || tally.started.load(Ordering::SeqCst) != ops {
        problems.push(format!("{ops} operations but {} outcomes", ok + failed + dropped));
    }
    if panicked > 0 {
        problems.push(format!("{panicked} tasks panicked"));
    }
    for node in client.nodes() {
        let s = node.stats();
        let p = &s.pool;
        let destroyed = p.destroyed.total();
        let accounted = p.idle + p.active + p.opening + p.closing;
        println!(
            "  {}: created {}, destroyed {destroyed} ({:?}), idle {}, active {}, opening {}, closing {}; \
             create failures {}, acquire timeouts {}, stale redos {}, peak active {}; breaker {} (trips {}), retries {}; \
             borrows left {}",
            s.node,
            p.created,
            p.destroyed,
            p.idle,
            p.active,
            p.opening,
            p.closing,
            p.create_failures,
            p.acquire_timeouts,
            p.stale_redos,
            p.peak_active,
            s.resilience.breaker.state.as_str(),
            s.resilience.breaker.trips,
            s.resilience.retries,
            node.borrowed_operations().len(),
        );
        if p.created.checked_sub(destroyed) != Some(accounted as u64) {
            problems.push(format!(
                "{}: created {} - destroyed {destroyed} != idle + active + opening + closing = {accounted}",
                s.node, p.created
            ));
        }
        if !node.borrowed_operations().is_empty() {
            problems.push(format!("{}: borrows left: {:?}", s.node, node.borrowed_operations()));
        }
    }
    let (a, b) = (scp_a.stats(), scp_b.stats());
    println!(
        "  SCPs: {} + {} associations accepted, {} + {} rejected, {} + {} aborted by the SCP, {} + {} closed idle",
        a.accepted, b.accepted, a.rejected, b.rejected, a.aborted_by_us, b.aborted_by_us, a.closed_idle, b.closed_idle
    );

    client.close(Duration::from_secs(5)).await;
    drop(client);
    scp_a.shutdown().await;
    scp_b.shutdown().await;
    // Teardowns and watchdogs end on their own once their owners are gone.
    let mut alive = usize::MAX;
    for _ in 0..200 {
        alive = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        if alive <= baseline_tasks {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    println!("  runtime tasks alive at the end: {alive} (before: {baseline_tasks})");
    if alive > baseline_tasks {
        problems.push(format!("{alive} runtime tasks still alive (before: {baseline_tasks})"));
    }
    if problems.is_empty() {
        println!("soak: OK");
        Ok(())
    } else {
        Err(problems.join("; ").into())
    }
}
