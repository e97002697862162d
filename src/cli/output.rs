//! Printing node statistics (on stderr, so that stdout stays one parseable
//! result): a readable table, JSON, or CSV with one row per node.

use crate::client::NodeStats;

use super::args::StatsFormat;

pub(super) fn print_stats(stats: &[NodeStats], format: StatsFormat) {
    eprint!("{}", render_stats(stats, format));
}

pub(super) fn render_stats(stats: &[NodeStats], format: StatsFormat) -> String {
    match format {
        StatsFormat::Json => match serde_json::to_string_pretty(stats) {
            Ok(s) => format!("{s}\n"),
            Err(e) => format!("error: cannot encode stats: {e}\n"),
        },
        StatsFormat::Table => stats.iter().map(stats_table).collect(),
        StatsFormat::Csv => stats_csv(stats),
    }
}

/// CSV: a header, then one row per node.
fn stats_csv(stats: &[NodeStats]) -> String {
    const HEADER: &[&str] = &[
        "node",
        "ae_title",
        "address",
        "health",
        "health_reasons",
        "pool_total",
        "pool_active",
        "pool_idle",
        "pool_waiting",
        "pool_opening",
        "pool_max_size",
        "pool_effective_max",
        "pool_acquisitions",
        "pool_releases",
        "pool_acquire_timeouts",
        "pool_created",
        "pool_create_failures",
        "pool_validations",
        "pool_validation_failures",
        "pool_stale_redos",
        "pool_peak_active",
        "acquire_wait_p50_ms",
        "acquire_wait_p95_ms",
        "acquire_wait_p99_ms",
        "acquire_wait_max_ms",
        "breaker_state",
        "breaker_consecutive_failures",
        "breaker_calls",
        "breaker_successes",
        "breaker_failures",
        "breaker_rejected",
        "breaker_trips",
        "retries",
        "retry_budget_exhausted",
        "leak_suspects",
        "shared_leases_held",
        "shared_fleet_leases_seen",
        "shared_renew_failures",
        "shared_fallbacks",
    ];
    let mut out = HEADER.join(",");
    out.push('\n');
    for s in stats {
        let p = &s.pool;
        let b = &s.resilience;
        let row: Vec<String> = vec![
            s.node.clone(),
            s.ae_title.clone(),
            s.address.clone(),
            s.health.status.as_str().to_string(),
            s.health.reasons.join("; "),
            p.total.to_string(),
            p.active.to_string(),
            p.idle.to_string(),
            p.waiting.to_string(),
            p.opening.to_string(),
            p.max_size.to_string(),
            p.effective_max.to_string(),
            p.acquisitions.to_string(),
            p.releases.to_string(),
            p.acquire_timeouts.to_string(),
            p.created.to_string(),
            p.create_failures.to_string(),
            p.validations.to_string(),
            p.validation_failures.to_string(),
            p.stale_redos.to_string(),
            p.peak_active.to_string(),
            format!("{:.3}", p.wait.p50_ms),
            format!("{:.3}", p.wait.p95_ms),
            format!("{:.3}", p.wait.p99_ms),
            format!("{:.3}", p.wait.max_ms),
            b.breaker.state.as_str().to_string(),
            b.breaker.consecutive_failures.to_string(),
            b.breaker.calls.to_string(),
            b.breaker.successes.to_string(),
            b.breaker.failures.to_string(),
            b.breaker.rejected.to_string(),
            b.breaker.trips.to_string(),
            b.retries.to_string(),
            b.budget_exhausted.to_string(),
            p.leak_suspects.to_string(),
        ];
        let mut row = row;
        row.extend(shared_columns(s));
        out.push_str(
            &row.iter()
                .map(|f| super::find::csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    out
}

fn stats_table(s: &NodeStats) -> String {
    let p = &s.pool;
    let b = &s.resilience;
    let mut out = String::new();
    out.push_str(&format!("node {} ({}@{})\n", s.node, s.ae_title, s.address));
    let h = &s.health;
    let reasons: Vec<_> = p.destroyed.by_reason().iter().map(|(r, _)| *r).collect();
    let destroyed_label = format!("pool: destroyed {}", reasons.join("/"));
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
            &destroyed_label,
            p.destroyed
                .by_reason()
                .iter()
                .map(|(_, n)| n.to_string())
                .collect::<Vec<_>>()
                .join("/"),
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
    rows.extend(shared_rows(s));
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

/// The fleet-wide columns of `--stats-format csv` (empty without `shared_limits`).
fn shared_columns(_s: &NodeStats) -> Vec<String> {
    #[cfg(feature = "redis")]
    if let Some(sh) = &_s.shared {
        return vec![
            sh.leases_held.to_string(),
            sh.fleet_leases_seen.to_string(),
            sh.renew_failures.to_string(),
            sh.fallbacks.to_string(),
        ];
    }
    vec![String::new(); 4]
}

/// The fleet-wide rows of the `--stats` table (none without `shared_limits`).
fn shared_rows(_s: &NodeStats) -> Vec<(&'static str, String)> {
    #[cfg(feature = "redis")]
    if let Some(sh) = &_s.shared {
        return vec![
            (
                "shared: redis",
                format!(
                    "{} ({})",
                    sh.redis,
                    if sh.redis_available { "available" } else { "unavailable" }
                ),
            ),
            (
                "shared: leases held / fleet seen / cap",
                format!(
                    "{} / {} / {}",
                    sh.leases_held, sh.fleet_leases_seen, sh.max_shared_associations
                ),
            ),
            (
                "shared: acquired / renew failures / fallbacks",
                format!("{} / {} / {}", sh.leases_acquired, sh.renew_failures, sh.fallbacks),
            ),
            ("shared: breaker open", sh.shared_breaker_open.to_string()),
        ];
    }
    Vec::new()
}
