//! `pacs-net echo`: N C-ECHOs through the node's pool, C at a time, with a latency
//! summary.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::client::Client;

use super::failure::{self, plural};
use super::{error_line, exit};

pub(super) async fn echo(
    client: Arc<Client>,
    target: String,
    count: u64,
    concurrency: usize,
    interrupt: super::Interrupt,
) -> u8 {
    let node = match client.node(&target) {
        Ok(n) => n,
        Err(e) => return super::target_error(e),
    };
    let started = Instant::now();
    let stop = interrupt.clone();
    // After Ctrl-C no echo is started; the ones in flight finish.
    let mut results = futures::stream::iter(1..=count)
        .take_while(move |_| futures::future::ready(!stop.is_set()))
        .map(|i| {
            let node = node.clone();
            async move {
                let t = Instant::now();
                let out = node.echo().await;
                (i, t.elapsed(), out)
            }
        })
        .buffer_unordered(concurrency);
    let mut latencies: Vec<Duration> = Vec::with_capacity(count as usize);
    let mut failed = 0usize;
    // Echoes the open circuit refused without trying: said once, with the cause.
    let mut refused = 0usize;
    let mut cause: Option<String> = None;
    let mut circuit: Option<String> = None;
    while let Some((i, latency, out)) = results.next().await {
        match out.result {
            Ok(_) => latencies.push(latency),
            Err(e) => {
                failed += 1;
                if let Some(c) = failure::root_cause(&e) {
                    cause = Some(c);
                }
                if failure::is_bare_circuit_open(&e) {
                    refused += 1;
                    circuit = failure::circuit_words(&e);
                } else {
                    error_line!(
                        "C-ECHO {i}/{count} to {target}: {}",
                        failure::describe(&e, out.attempts, latency)
                    );
                }
            }
        }
    }
    let wall = started.elapsed();
    if let Some(circuit) = circuit {
        error_line!(
            "{} to {target} not sent: {circuit}{}",
            plural(refused, "C-ECHO", "C-ECHOs"),
            cause.map(|c| format!(": {c}")).unwrap_or_default()
        );
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    if interrupt.is_set() {
        eprintln!("interrupted after {} of {count} C-ECHOs", latencies.len() + failed);
    }
    if latencies.is_empty() {
        // No result: nothing on stdout.
        eprintln!("C-ECHO {target}: 0 of {count} succeeded in {}", failure::secs(wall));
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
    if interrupt.is_set() {
        exit::INTERRUPTED
    } else if failed > 0 {
        exit::FAILED
    } else {
        exit::OK
    }
}
