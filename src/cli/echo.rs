//! `pacs-net echo`: N C-ECHOs through the node's pool, C at a time, with a latency
//! summary.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::client::Client;

use super::exit;

pub(super) async fn echo(client: Arc<Client>, target: String, count: u64, concurrency: usize) -> u8 {
    let node = match client.node(&target) {
        Ok(n) => n,
        Err(e) => return super::target_error(e),
    };
    let started = Instant::now();
    let results: Vec<(u64, Duration, Result<(), String>)> = futures::stream::iter(1..=count)
        .map(|i| {
            let node = node.clone();
            async move {
                let t = Instant::now();
                let out = node.echo().await;
                (i, t.elapsed(), out.result.map(|_| ()).map_err(|e| e.to_string()))
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let wall = started.elapsed();
    let mut latencies: Vec<Duration> = Vec::with_capacity(results.len());
    let mut failed = 0;
    for (i, latency, result) in results {
        match result {
            Ok(()) => latencies.push(latency),
            Err(e) => {
                failed += 1;
                eprintln!("error: C-ECHO {i}/{count} to {target}: {e}");
            }
        }
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    if latencies.is_empty() {
        println!("C-ECHO {target}: 0 of {count} succeeded in {:.3} s", wall.as_secs_f64());
    } else {
        println!(
            "C-ECHO {target}: {} of {count} succeeded in {:.3} s; latency ms min {:.3} / median {:.3} / p99 {:.3} / max {:.3}",
            latencies.len(),
            wall.as_secs_f64(),
            ms(latencies[0]),
            ms(pick(0.5)),
            ms(pick(0.99)),
            ms(latencies[latencies.len() - 1]),
        );
    }
    if failed > 0 {
        exit::FAILED
    } else {
        exit::OK
    }
}
