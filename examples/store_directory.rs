//! Batch C-STORE of a directory, 4 files at a time through one node's pool, against
//! the embedded SCP started in-process.
//!
//! ```sh
//! cargo run --example store_directory            # the bundled fixtures/dicom
//! cargo run --example store_directory -- DIR     # any directory of DICOM files
//! ```
//!
//! Prints one line per file as it completes (outcome, status, attempts, SOP Instance
//! UID, path) and a summary; exits 0 when every file was stored, 1 otherwise. Only
//! UIDs and paths are printed, never patient data. The region between
//! `// [guide:batch]` and `// [/guide:batch]` is quoted in docs/CONNECTION_POOLING.md.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures::StreamExt;
use pacs_net::client::{Client, StoreOutcome};
use pacs_net::config::Config;
use pacs_net::scp::{Scp, ScpConfig};

type Error = Box<dyn std::error::Error + Send + Sync>;

const CONCURRENCY: usize = 4;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("PACS_NET_LOG"))
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("store_directory: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Error> {
    let dir = match std::env::args_os().nth(1) {
        Some(arg) => PathBuf::from(arg),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dicom"),
    };
    let files: Vec<PathBuf> = walkdir::WalkDir::new(&dir)
        .sort_by_file_name()
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    if files.is_empty() {
        return Err(format!("no files under {}", dir.display()).into());
    }

    let scp = Scp::start(ScpConfig::default(), "127.0.0.1:0".parse()?).await?;
    println!("embedded SCP {} on {}", scp.ae_title(), scp.local_addr());
    let config = Config::from_json_str(
        &serde_json::json!({
            "nodes": {
                "MAIN_PACS": {"ae_title": scp.ae_title(), "host": "127.0.0.1", "port": scp.port(), "pool": "main_pacs"}
            },
            "network": {
                "connection_pools": {"main_pacs": {"max_size": CONCURRENCY}},
                "retry": {"max_attempts": 3, "initial_delay_ms": 200, "strategy": "exponential_jitter"}
            }
        })
        .to_string(),
    )?;
    let client = Client::new(config, None);
    println!(
        "== C-STORE of {} files under {}, {CONCURRENCY} at a time",
        files.len(),
        dir.display()
    );

    let started = Instant::now();
    let (mut stored, mut warnings, mut failed, mut bytes) = (0, 0, 0, 0u64);
    // [guide:batch]
    let node = client.node("MAIN_PACS")?;
    let mut outcomes = futures::stream::iter(files.iter().cloned())
        .map(|path| {
            let node = node.clone();
            async move { node.store_file(&path).await } // reads, checks, sends with the retry policy
        })
        .buffer_unordered(CONCURRENCY); // at most CONCURRENCY files in flight (<= the pool's max_size)
    while let Some(out) = outcomes.next().await {
        let StoreOutcome { path, file, outcome } = out;
        let shown = path.strip_prefix(&dir).unwrap_or(&path).display().to_string();
        let uid = file.as_ref().map_or("-", |f| f.sop_instance_uid.as_str());
        match &outcome.result {
            Ok(rsp) if rsp.status.is_warning() => {
                warnings += 1;
                bytes += file.as_ref().map_or(0, |f| f.file_size);
                println!("warning {} {uid} {shown}: {}", rsp.status.hex(), rsp.status.meaning());
            }
            Ok(rsp) => {
                stored += 1;
                bytes += file.as_ref().map_or(0, |f| f.file_size);
                println!(
                    "stored  {} attempts {} {uid} {shown}",
                    rsp.status.hex(),
                    outcome.attempts
                );
            }
            Err(e) => {
                failed += 1;
                let status = outcome.last_status.map_or("----".to_string(), |s| s.hex());
                println!("failed  {status} attempts {} {uid} {shown}: {e}", outcome.attempts);
            }
        }
    }
    // [/guide:batch]
    let secs = started.elapsed().as_secs_f64();
    let mb = bytes as f64 / 1_000_000.0;
    println!(
        "{} files: {stored} stored, {warnings} warnings, {failed} failed; {bytes} bytes ({mb:.2} MB) in {secs:.3} s, {:.2} MB/s",
        files.len(),
        if secs > 0.0 { mb / secs } else { 0.0 }
    );

    client.close(Duration::from_secs(5)).await;
    let stats = node.stats();
    let p = &stats.pool;
    println!(
        "pool: created {}, peak active {} (max_size {}), evicted {} (idle but negotiated for other SOP classes)",
        p.created, p.peak_active, p.max_size, p.destroyed.evicted
    );
    println!(
        "retry: {} retries; breaker {} ({} calls, {} counted failures)",
        stats.resilience.retries,
        stats.resilience.breaker.state,
        stats.resilience.breaker.calls,
        stats.resilience.breaker.failures
    );
    let s = scp.stats();
    println!(
        "SCP: holds {} instances; {} associations, at most {} at once",
        scp.stored().len(),
        s.accepted,
        s.peak_active
    );
    scp.shutdown().await;
    if failed > 0 {
        return Err(format!("{failed} of {} files failed", files.len()).into());
    }
    if s.peak_active > CONCURRENCY {
        return Err(format!("the SCP saw {} associations at once (max {CONCURRENCY})", s.peak_active).into());
    }
    Ok(())
}
