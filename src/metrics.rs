//! Prometheus text exposition of a client's nodes: the operation metrics recorded
//! as they happen (operations by type/outcome/status class, durations, acquire
//! waits, rejections, breaker transitions, warnings) and gauges/counters from the
//! pool, breaker, retry and health snapshots, labelled by node and remote AE title.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::client::{Client, HealthStatus, NodeStats};
use crate::resilience::BreakerState;

type Labels = Vec<(String, String)>;

/// Render everything `client` knows in the Prometheus text format.
pub fn render(client: &Client) -> String {
    render_parts(client.telemetry(), &client.stats())
}

/// Render `stats` snapshots (and the operation metrics in `telemetry`).
pub fn render_parts(telemetry: &crate::client::Telemetry, stats: &[NodeStats]) -> String {
    let mut registry = Registry::with_prefix("pacs_net");
    telemetry.register(&mut registry);
    let gauge = |registry: &mut Registry, name: &str, help: &str| {
        let f = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(name, help, f.clone());
        f
    };
    let counter = |registry: &mut Registry, name: &str, help: &str| {
        let f = Family::<Labels, Counter<u64>>::default();
        registry.register(name, help, f.clone());
        f
    };
    let total = gauge(&mut registry, "pool_associations", "Associations open in the pool");
    let active = gauge(&mut registry, "pool_active_associations", "Associations borrowed");
    let idle = gauge(&mut registry, "pool_idle_associations", "Associations idle in the pool");
    let waiting = gauge(&mut registry, "pool_waiting", "Callers waiting for an association");
    let effective_max = gauge(
        &mut registry,
        "pool_effective_max",
        "Effective maximum pool size (adapted to the remote's limit)",
    );
    let wait_p99 = gauge(
        &mut registry,
        "pool_acquire_wait_p99_seconds",
        "99th percentile of the acquire wait",
    );
    let acquisitions = counter(&mut registry, "pool_acquisitions", "Associations handed out");
    let timeouts = counter(&mut registry, "pool_acquire_timeouts", "Acquires that timed out");
    let created = counter(&mut registry, "pool_created", "Associations opened");
    let destroyed = counter(&mut registry, "pool_destroyed", "Associations ended, by reason");
    let stale = counter(
        &mut registry,
        "pool_stale_redos",
        "Operations redone on a fresh association after a stale one",
    );
    let validation_failures = counter(
        &mut registry,
        "pool_validation_failures",
        "Failed validations (C-ECHO on borrow)",
    );
    let breaker_state = gauge(
        &mut registry,
        "breaker_state",
        "Circuit breaker state (0 closed, 1 half-open, 2 open)",
    );
    let trips = counter(&mut registry, "breaker_trips", "Times the circuit opened");
    let rejected = counter(
        &mut registry,
        "breaker_rejected",
        "Calls rejected while the circuit was open",
    );
    let retries = counter(&mut registry, "retries", "Retries made");
    let opening = gauge(&mut registry, "pool_opening", "Associations being negotiated");
    let closing = gauge(&mut registry, "pool_closing", "Associations being released or aborted");
    let leaks = gauge(
        &mut registry,
        "pool_leak_suspects",
        "Borrows held past the leak threshold",
    );
    let rejected_waiters = counter(
        &mut registry,
        "pool_rejected_waiters",
        "Acquires refused at once (max_waiters)",
    );
    let health = gauge(
        &mut registry,
        "node_health",
        "Node health (0 healthy, 1 degraded, 2 down)",
    );
    let consecutive = gauge(
        &mut registry,
        "breaker_consecutive_failures",
        "Counted failures since the last success",
    );
    let deadline = counter(
        &mut registry,
        "deadline_exceeded",
        "Operations that ran out of their deadline",
    );
    let budget = counter(
        &mut registry,
        "retry_budget_exhausted",
        "Retries refused by the retry budget",
    );
    let max_size = gauge(&mut registry, "pool_max_size", "Configured maximum pool size");
    let peak = gauge(&mut registry, "pool_peak_active", "Most associations borrowed at once");
    let create_failures = counter(
        &mut registry,
        "pool_create_failures",
        "Associations that could not be opened",
    );
    let breaker_calls = counter(&mut registry, "breaker_calls", "Calls let through the circuit breaker");
    let breaker_failures = counter(
        &mut registry,
        "breaker_failures",
        "Failures counted by the circuit breaker",
    );
    #[cfg(feature = "redis")]
    register_shared(&mut registry, stats);

    for s in stats {
        let l: Labels = vec![("node".into(), s.node.clone()), ("ae_title".into(), s.ae_title.clone())];
        let p = &s.pool;
        total.get_or_create(&l).set(p.total as f64);
        active.get_or_create(&l).set(p.active as f64);
        idle.get_or_create(&l).set(p.idle as f64);
        waiting.get_or_create(&l).set(p.waiting as f64);
        effective_max.get_or_create(&l).set(p.effective_max as f64);
        max_size.get_or_create(&l).set(p.max_size as f64);
        peak.get_or_create(&l).set(p.peak_active as f64);
        create_failures.get_or_create(&l).inc_by(p.create_failures);
        wait_p99.get_or_create(&l).set(p.wait.p99_ms / 1000.0);
        acquisitions.get_or_create(&l).inc_by(p.acquisitions);
        timeouts.get_or_create(&l).inc_by(p.acquire_timeouts);
        created.get_or_create(&l).inc_by(p.created);
        stale.get_or_create(&l).inc_by(p.stale_redos);
        validation_failures.get_or_create(&l).inc_by(p.validation_failures);
        opening.get_or_create(&l).set(p.opening as f64);
        closing.get_or_create(&l).set(p.closing as f64);
        leaks.get_or_create(&l).set(p.leak_suspects as f64);
        rejected_waiters.get_or_create(&l).inc_by(p.rejected_waiters);
        health.get_or_create(&l).set(match s.health.status {
            HealthStatus::Healthy => 0.0,
            HealthStatus::Degraded => 1.0,
            HealthStatus::Down => 2.0,
        });
        for (reason, n) in p.destroyed.by_reason() {
            let mut lr = l.clone();
            lr.push(("reason".into(), reason.into()));
            destroyed.get_or_create(&lr).inc_by(n);
        }
        let b = &s.resilience;
        let state = match b.breaker.state {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        };
        breaker_state.get_or_create(&l).set(state);
        trips.get_or_create(&l).inc_by(b.breaker.trips);
        breaker_calls.get_or_create(&l).inc_by(b.breaker.calls);
        breaker_failures.get_or_create(&l).inc_by(b.breaker.failures);
        rejected.get_or_create(&l).inc_by(b.breaker.rejected);
        retries.get_or_create(&l).inc_by(b.retries);
        budget.get_or_create(&l).inc_by(b.budget_exhausted);
        deadline.get_or_create(&l).inc_by(b.deadline_exceeded);
        consecutive.get_or_create(&l).set(b.breaker.consecutive_failures as f64);
    }
    let mut out = String::new();
    if encode(&mut out, &registry).is_err() {
        out.clear();
    }
    out
}

/// The fleet-wide limits of the nodes that use them (`shared_limits`).
#[cfg(feature = "redis")]
fn register_shared(registry: &mut Registry, stats: &[NodeStats]) {
    let mut gauge = |name: &str, help: &str| {
        let f = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(name, help, f.clone());
        f
    };
    let held = gauge(
        "shared_leases_held",
        "Fleet-wide leases this process holds (one per open association)",
    );
    let fleet = gauge(
        "shared_fleet_leases",
        "Leases held across the fleet, as last seen in Redis",
    );
    let cap = gauge(
        "shared_max_associations",
        "The node's fleet-wide cap (max_shared_associations)",
    );
    let up = gauge(
        "shared_redis_up",
        "Whether the last Redis round trip worked (1) or not (0)",
    );
    let open = gauge(
        "shared_breaker_open",
        "Whether the fleet's circuit is open (1) or not (0)",
    );
    let mut counter = |name: &str, help: &str| {
        let f = Family::<Labels, Counter<u64>>::default();
        registry.register(name, help, f.clone());
        f
    };
    let renew_failures = counter(
        "shared_lease_renew_failures",
        "Lease renewals that failed (Redis unreachable)",
    );
    let fallbacks = counter(
        "shared_fallbacks",
        "Associations opened under the node's own limits because Redis was unreachable",
    );
    let acquired = counter("shared_leases_acquired", "Leases granted to this process");
    for s in stats {
        let Some(sh) = &s.shared else { continue };
        let l: Labels = vec![("node".into(), s.node.clone()), ("ae_title".into(), s.ae_title.clone())];
        held.get_or_create(&l).set(sh.leases_held as f64);
        fleet.get_or_create(&l).set(sh.fleet_leases_seen as f64);
        cap.get_or_create(&l).set(sh.max_shared_associations as f64);
        if sh.max_shared_associations > 0 {
            up.get_or_create(&l).set(if sh.redis_available { 1.0 } else { 0.0 });
        }
        open.get_or_create(&l)
            .set(if sh.shared_breaker_open { 1.0 } else { 0.0 });
        renew_failures.get_or_create(&l).inc_by(sh.renew_failures);
        fallbacks.get_or_create(&l).inc_by(sh.fallbacks);
        acquired.get_or_create(&l).inc_by(sh.leases_acquired);
    }
}
