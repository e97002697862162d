//! Connection pooling, end to end, against the embedded SCP started in-process.
//!
//! ```sh
//! cargo run --example connection_pool
//! PACS_NET_LOG=pacs_net::pool=debug cargo run --example connection_pool   # and watch the pool work
//! ```
//!
//! 1. 100 concurrent C-ECHO tasks share one node's pool of `max_size` 4: at most 4
//!    associations are ever opened, and the SCP never sees more than 4 at once.
//! 2. Exhaustion: with all 4 borrowed, `try_acquire` fails at once and `acquire`
//!    gives up after `acquire_timeout_ms` with "pool … exhausted".
//! 3. `invalidate()`: a borrowed association known to be broken is aborted
//!    (A-ABORT), counted as `destroyed.invalid`, and never handed out again.
//! 4. A pool built directly from an `AssociationManager`, without a `Node`: warm-up
//!    to `min_size`, one C-ECHO, close.
//!
//! Exits 0 when every check holds, 1 otherwise. The regions between `// [guide:X]`
//! and `// [/guide:X]` are quoted in docs/CONNECTION_POOLING.md: keep them in step.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use pacs_net::association::{AssociationParams, ContextRequest};
use pacs_net::client::{AssociationManager, Client, HealthStatus};
use pacs_net::config::{Config, PoolSettings, Timeouts};
use pacs_net::dimse;
use pacs_net::pool::{Pool, PoolError};
use pacs_net::scp::{Scp, ScpConfig};

type Error = Box<dyn std::error::Error + Send + Sync>;

const TASKS: usize = 100;
const MAX_SIZE: usize = 4;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("PACS_NET_LOG"))
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => {
            println!("connection_pool: all checks passed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("connection_pool: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Error> {
    let scp = Scp::start(ScpConfig::default(), "127.0.0.1:0".parse()?).await?;
    println!("embedded SCP {} on {}", scp.ae_title(), scp.local_addr());

    // [guide:quickstart]
    // The hospital config, as it would be written in a file (or Config::load(path)).
    let config = Config::from_json_str(
        &serde_json::json!({
            "local_ae_title": "EXAMPLE_SCU",
            "nodes": {
                "MAIN_PACS": {"ae_title": scp.ae_title(), "host": "127.0.0.1", "port": scp.port(), "pool": "main_pacs"}
            },
            "network": {
                "connection_pools": {
                    "main_pacs": {"min_size": 0, "max_size": MAX_SIZE, "acquire_timeout_ms": 500,
                                  "max_idle_time": 60, "validation_interval": 30}
                }
            }
        })
        .to_string(),
    )?;
    let client = Client::new(config, None); // None: the calling AE title is the config's local_ae_title
    let node = client.node("MAIN_PACS")?; // Arc<Node>: one pool + breaker + retry policy, made on first use
    let echo = node.echo().await; // Outcome { result, attempts, last_status }
    match echo.result {
        Ok(status) => println!(
            "C-ECHO {}: {} after {} attempt(s)",
            node.name(),
            status.hex(),
            echo.attempts
        ),
        Err(e) => return Err(format!("C-ECHO {}: {e}", node.name()).into()),
    }
    // [/guide:quickstart]

    concurrent_echoes(&client, &scp).await?;
    exhaustion(&client).await?;
    invalidate(&client, &scp).await?;
    direct_pool(&scp).await?;

    // Orderly shutdown: A-RELEASE idle associations, wait up to 5 s for borrowed ones.
    client.close(Duration::from_secs(5)).await;
    let p = node.stats().pool;
    let d = &p.destroyed;
    println!("== after client.close()");
    println!(
        "   created {}, destroyed: closed {} / invalid {} / idle {} / lifetime {} / uses {} / stale {} / evicted {}",
        p.created, d.closed, d.invalid, d.idle, d.lifetime, d.uses, d.stale, d.evicted
    );
    let s = scp.stats();
    println!(
        "   SCP: {} associations accepted, {} released by us, {} aborted by us",
        s.accepted, s.released, s.aborted_by_peer
    );
    ensure(p.total == 0, "every association is closed after client.close()")?;
    scp.shutdown().await;
    Ok(())
}

/// 1. Many tasks, one small pool.
async fn concurrent_echoes(client: &Client, scp: &Scp) -> Result<(), Error> {
    println!("== 1. {TASKS} concurrent C-ECHO tasks through a pool of max_size {MAX_SIZE}");
    // [guide:concurrent]
    let node = client.node("MAIN_PACS")?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let node = node.clone();
        tasks.spawn(async move { node.echo().await });
    }
    let (mut ok, mut failed) = (0, 0);
    while let Some(joined) = tasks.join_next().await {
        match joined?.result {
            Ok(_status) => ok += 1,
            Err(e) => {
                failed += 1;
                eprintln!("   C-ECHO failed: {e}");
            }
        }
    }
    // A snapshot (PoolStats): created, peak_active, acquisitions, wait percentiles...
    let pool = node.stats().pool;
    // [/guide:concurrent]
    println!(
        "   {ok} ok, {failed} failed in {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    println!(
        "   pool: created {} (max_size {}), peak active {}, acquisitions {}, idle now {}",
        pool.created, pool.max_size, pool.peak_active, pool.acquisitions, pool.idle
    );
    println!(
        "   acquire wait: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} samples)",
        pool.wait.p50_ms, pool.wait.p99_ms, pool.wait.max_ms, pool.wait.samples
    );
    let s = scp.stats();
    println!(
        "   SCP: {} associations accepted, at most {} open at once, {} C-ECHOs answered",
        s.accepted, s.peak_active, s.echoes
    );
    ensure(ok == TASKS, "every C-ECHO succeeds")?;
    ensure(pool.created as usize <= MAX_SIZE, "created stays <= max_size")?;
    ensure(pool.peak_active <= MAX_SIZE, "peak active stays <= max_size")?;
    ensure(
        s.peak_active <= MAX_SIZE,
        "the SCP never sees more than max_size associations",
    )?;
    Ok(())
}

/// 2. Hold every association; `try_acquire` fails at once, `acquire` times out.
async fn exhaustion(client: &Client) -> Result<(), Error> {
    println!("== 2. exhaustion: hold all {MAX_SIZE} associations (acquire_timeout_ms 500)");
    let node = client.node("MAIN_PACS")?;
    let timeouts_before = node.stats().pool.acquire_timeouts;
    // [guide:exhaustion]
    let pool = node.pool(); // &Pool<AssociationManager>
    let req = ContextRequest::verification();
    let mut held = Vec::new();
    for _ in 0..MAX_SIZE {
        held.push(pool.acquire(&req).await?); // Pooled<AssociationManager>: derefs to Association
    }
    // Never waits, never creates: an idle association or an error, now.
    let t = Instant::now();
    let err = pool.try_acquire(&req).expect_err("every association is borrowed");
    println!("   try_acquire failed in {:.1?}: {err}", t.elapsed());
    // Waits up to acquire_timeout, then fails with PoolError::Timeout ("pool … exhausted").
    let t = Instant::now();
    match pool.acquire(&req).await {
        Err(e @ PoolError::Timeout { .. }) => println!("   acquire failed after {:.1?}: {e}", t.elapsed()),
        Err(e) => return Err(format!("expected a timeout, got: {e}").into()),
        Ok(_) => return Err("acquire succeeded although every association was borrowed".into()),
    }
    // The node's health says why: "degraded", pool 100 % utilized.
    let health = node.health();
    println!("   health: {} ({})", health.status.as_str(), health.reasons.join("; "));
    // Borrowed associations are usable directly (no retry, no breaker at this level).
    let status = dimse::echo(&mut held[0]).await?;
    println!(
        "   C-ECHO on borrowed association #{}: status {}",
        held[0].id(),
        status.hex()
    );
    drop(held); // back to idle; nothing is closed
    let again = pool.try_acquire(&req)?;
    println!("   after returning them, try_acquire got #{} at once", again.id());
    // [/guide:exhaustion]
    drop(again);
    let stats = pool.stats();
    println!(
        "   pool: acquire_timeouts +{}, idle {}, created {}",
        stats.acquire_timeouts - timeouts_before,
        stats.idle,
        stats.created
    );
    ensure(
        health.status == HealthStatus::Degraded,
        "an exhausted pool shows as degraded",
    )?;
    ensure(
        stats.acquire_timeouts - timeouts_before == 1,
        "exactly one acquire timed out (try_acquire does not count)",
    )?;
    ensure(
        stats.created as usize <= MAX_SIZE,
        "exhaustion opened no extra association",
    )?;
    Ok(())
}

/// 3. A broken association is invalidated: aborted, and never reused.
async fn invalidate(client: &Client, scp: &Scp) -> Result<(), Error> {
    println!("== 3. invalidate(): retire an association the caller knows is broken");
    let node = client.node("MAIN_PACS")?;
    let pool = node.pool();
    let req = ContextRequest::verification();
    let aborts_before = scp.stats().aborted_by_peer;
    let invalid_before = pool.stats().destroyed.invalid;
    // [guide:invalidate]
    let guard = pool.acquire(&req).await?;
    let broken = guard.id();
    println!(
        "   borrowed #{broken} (reused: {}, uses so far: {})",
        guard.is_reused(),
        guard.uses()
    );
    // Retire it instead of returning it: A-ABORT in the background, counted as destroyed.invalid.
    guard.invalidate();
    // [/guide:invalidate]
    let aborted = wait_until(Duration::from_secs(5), || scp.stats().aborted_by_peer > aborts_before).await;
    println!("   the SCP saw an A-ABORT: {aborted}");
    let mut held = Vec::new();
    for _ in 0..MAX_SIZE {
        held.push(pool.acquire(&req).await?);
    }
    let ids: Vec<String> = held
        .iter()
        .map(|g| format!("#{}{}", g.id(), if g.is_reused() { "" } else { " (new)" }))
        .collect();
    println!("   next {MAX_SIZE} borrows got {}", ids.join(", "));
    let reused_broken = held.iter().any(|g| g.id() == broken);
    drop(held);
    let invalid = pool.stats().destroyed.invalid - invalid_before;
    println!("   destroyed.invalid +{invalid}; #{broken} handed out again: {reused_broken}");
    ensure(aborted, "the invalidated association is aborted")?;
    ensure(!reused_broken, "the invalidated association is never reused")?;
    ensure(invalid == 1, "the invalidation is counted as destroyed.invalid")?;
    Ok(())
}

/// 4. The pool on its own: no Node, so no retry policy and no circuit breaker.
async fn direct_pool(scp: &Scp) -> Result<(), Error> {
    println!("== 4. a Pool built directly from an AssociationManager (min_size 1, max_size 2)");
    // [guide:direct]
    let params = AssociationParams {
        calling_ae: "EXAMPLE_SCU".into(),
        called_ae: scp.ae_title().into(),
        host: "127.0.0.1".into(),
        port: scp.port(),
        max_pdu_length: 16_384,
        max_send_pdu_length: 0,
        timeouts: Timeouts::default(),
        security: Default::default(),
    };
    let settings = PoolSettings {
        min_size: 1,
        max_size: 2,
        ..PoolSettings::default()
    };
    // The default request is what min_size associations are opened (warmed up) with.
    let pool = Pool::new(
        "direct",
        AssociationManager::new(params),
        settings,
        Some(ContextRequest::verification()),
    );
    // [/guide:direct]
    let warmed = wait_until(Duration::from_secs(5), || pool.stats().idle >= 1).await;
    println!("   warmed up to min_size in the background: {warmed}");
    let mut guard = pool.acquire(&ContextRequest::verification()).await?;
    let status = dimse::echo(&mut guard).await?;
    println!(
        "   C-ECHO on #{} (reused from warm-up: {}): {}",
        guard.id(),
        guard.is_reused(),
        status.hex()
    );
    drop(guard);
    pool.close(Duration::from_secs(2)).await;
    let s = pool.stats();
    println!("   closed: total {}, destroyed.closed {}", s.total, s.destroyed.closed);
    ensure(warmed, "min_size associations are opened in the background")?;
    ensure(status.is_success(), "C-ECHO succeeds")?;
    ensure(s.total == 0, "close() ends every association")?;
    Ok(())
}

async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

fn ensure(cond: bool, what: &str) -> Result<(), Error> {
    if cond {
        println!("   ok: {what}");
        Ok(())
    } else {
        Err(format!("check failed: {what}").into())
    }
}
