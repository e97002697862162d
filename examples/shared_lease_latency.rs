//! The cost of one fleet-wide lease (acquire + release, one Redis round trip
//! each) against a Redis: `cargo run --release --example shared_lease_latency --
//! redis://127.0.0.1:6379/0 10000`. Prints p50 / p99 / mean in microseconds.

use std::time::{Duration, Instant};

use pacs_net::client::shared::SharedLimits;
use pacs_net::config::{AdHocTarget, NodeConfig, OnUnavailable, SharedLimitsConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let redis_url = args.next().unwrap_or_else(|| "redis://127.0.0.1:6379/0".into());
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(10_000);
    let shared = SharedLimits::start(SharedLimitsConfig {
        redis_url,
        lease: Duration::from_secs(30),
        on_unavailable: OnUnavailable::Fail,
    })?;
    let target: AdHocTarget = "BENCH@127.0.0.1:1".parse()?;
    let mut node = NodeConfig::ad_hoc(&target);
    node.max_shared_associations = Some(64);
    let limiter = shared.limiter(&node).ok_or("no limiter")?;
    // Warm-up: connection, script load.
    for _ in 0..100 {
        limiter.acquire().await?.release_now().await;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let lease = limiter.acquire().await?;
        lease.release_now().await;
        samples.push(t.elapsed());
    }
    samples.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    let mean = samples.iter().sum::<Duration>() / n as u32;
    println!(
        "lease acquire+release x{n}: p50 {:.1} us, p99 {:.1} us, mean {:.1} us, max {:.1} us",
        us(pct(0.50)),
        us(pct(0.99)),
        us(mean),
        us(*samples.last().ok_or("no samples")?)
    );
    Ok(())
}
