//! Printing node statistics: a readable table, JSON, and the Prometheus text
//! exposition.

use crate::client::NodeStats;

use super::args::StatsFormat;

pub(super) fn print_stats(stats: &[NodeStats], format: StatsFormat) {
    match format {
        StatsFormat::Json => match serde_json::to_string_pretty(stats) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("error: cannot encode stats: {e}"),
        },
        StatsFormat::Table => {
            for s in stats {
                print!("{}", stats_table(s));
            }
        }
    }
}

fn stats_table(s: &NodeStats) -> String {
    let p = &s.pool;
    let b = &s.resilience;
    let mut out = String::new();
    out.push_str(&format!("node {} ({}@{})\n", s.node, s.ae_title, s.address));
    let h = &s.health;
    let mut rows: Vec<(&str, String)> = vec![
        ("health", h.status.as_str().to_string()),
        (
            "pool: total / active / idle",
            format!("{} / {} / {}", p.total, p.active, p.idle),
        ),
        (
            "pool: waiting / max / effective max",
            format!("{} / {} / {}", p.waiting, p.max_size, p.effective_max),
        ),
        (
            "pool: acquisitions / releases",
            format!("{} / {}", p.acquisitions, p.releases),
        ),
        ("pool: acquire timeouts", p.acquire_timeouts.to_string()),
        (
            "pool: created / create failures",
            format!("{} / {}", p.created, p.create_failures),
        ),
        (
            "pool: destroyed idle/lifetime/uses/invalid/stale/closed/evicted",
            format!(
                "{}/{}/{}/{}/{}/{}/{}",
                p.destroyed.idle,
                p.destroyed.lifetime,
                p.destroyed.uses,
                p.destroyed.invalid,
                p.destroyed.stale,
                p.destroyed.closed,
                p.destroyed.evicted
            ),
        ),
        (
            "pool: validations / failures",
            format!("{} / {}", p.validations, p.validation_failures),
        ),
        ("pool: stale redos", p.stale_redos.to_string()),
        ("pool: peak active", p.peak_active.to_string()),
        (
            "pool: acquire wait ms p50/p95/p99/max",
            format!(
                "{:.3} / {:.3} / {:.3} / {:.3}",
                p.wait.p50_ms, p.wait.p95_ms, p.wait.p99_ms, p.wait.max_ms
            ),
        ),
        (
            "breaker: state",
            format!(
                "{} ({} consecutive failures)",
                b.breaker.state.as_str(),
                b.breaker.consecutive_failures
            ),
        ),
        (
            "breaker: calls / successes / failures",
            format!("{} / {} / {}", b.breaker.calls, b.breaker.successes, b.breaker.failures),
        ),
        (
            "breaker: rejected / trips",
            format!("{} / {}", b.breaker.rejected, b.breaker.trips),
        ),
        (
            "retry: retries / budget exhausted",
            format!("{} / {}", b.retries, b.budget_exhausted),
        ),
        ("pool: leak suspects", p.leak_suspects.to_string()),
    ];
    for reason in &h.reasons {
        rows.push(("health: reason", reason.clone()));
    }
    for l in &h.leak_suspects {
        rows.push((
            "health: leak suspect",
            format!(
                "association {} ({}) held {:.1} s",
                l.association,
                l.operation.as_deref().unwrap_or("?"),
                l.held_secs
            ),
        ));
    }
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        out.push_str(&format!("  {k:<w$}  {v}\n"));
    }
    out
}
