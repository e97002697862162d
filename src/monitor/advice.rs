//! Recommendations: pure rules over a node's statistics and what happened in its
//! history window, each naming the config field to change, the change, and why.

use serde::Serialize;

use super::history::Counters;
use crate::config::NodeConfig;
use crate::pool::PoolStats;

/// One piece of advice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    /// Which rule made it (stable, for scripts and tests).
    pub rule: &'static str,
    /// The setting, as `nodes.MAIN_PACS.pool max_size`.
    pub field: String,
    /// Where to write it in the config file.
    pub path: String,
    /// What to do with it.
    pub change: String,
    /// The evidence.
    pub why: String,
}

/// What the rules look at, for one node.
#[derive(Debug, Clone)]
pub struct AdviceInput<'a> {
    /// The node's configuration.
    pub config: &'a NodeConfig,
    /// The node's pool statistics now.
    pub pool: &'a PoolStats,
    /// What happened over the history window.
    pub window: Counters,
    /// Most associations borrowed at once at any sample of the window.
    pub window_peak_active: usize,
    /// Acquire wait p95 above which callers are said to wait too long.
    pub wait_limit_ms: f64,
}

fn pool_field(config: &NodeConfig, field: &str) -> (String, String) {
    let path = match &config.pool_name {
        Some(pool) => format!("network.connection_pools.{pool}.{field}"),
        None => format!(
            "network.connection_pools.<a pool for {}>.{field}, named in nodes.{}.pool",
            config.name, config.name
        ),
    };
    (format!("nodes.{}.pool {field}", config.name), path)
}

fn node_field(config: &NodeConfig, section: &str, field: &str) -> (String, String) {
    (
        format!("nodes.{}.{section} {field}", config.name),
        format!("nodes.{}.{section}.{field}", config.name),
    )
}

/// Every rule that applies, in a fixed order.
pub fn recommend(input: &AdviceInput) -> Vec<Recommendation> {
    let mut out = Vec::new();
    let c = input.config;
    let p = input.pool;
    let w = &input.window;
    let mut add = |rule: &'static str, (field, path): (String, String), change: String, why: String| {
        out.push(Recommendation {
            rule,
            field,
            path,
            change,
            why,
        })
    };

    // The remote accepts fewer associations than we may open: opening more only
    // earns rejections and retries.
    if p.effective_max < p.max_size {
        add(
            "remote_limit",
            pool_field(c, "max_size"),
            format!("set max_size to {}", p.effective_max),
            format!(
                "the remote limited the pool to {} of {} associations{}",
                p.effective_max,
                p.max_size,
                match p.remote_limited {
                    0 => String::new(),
                    n => format!(" ({n} association request(s) refused while others were open)"),
                }
            ),
        );
    } else if p.wait.samples > 0
        && p.wait.p95_ms > input.wait_limit_ms
        && input.window_peak_active.max(p.peak_active.min(p.max_size)) >= p.max_size
    {
        add(
            "pool_too_small",
            pool_field(c, "max_size"),
            format!("raise max_size above {}", p.max_size),
            format!(
                "callers waited p95 {:.0} ms (> {:.0} ms) for an association while all {} were busy",
                p.wait.p95_ms, input.wait_limit_ms, p.max_size
            ),
        );
    }

    if w.stale > 0 {
        let idle = c.pool.max_idle_time.as_secs();
        add(
            "stale_idle",
            pool_field(c, "max_idle_time"),
            format!(
                "set max_idle_time below the remote's idle timeout (now {idle} s; try {} s)",
                (idle / 2).max(1)
            ),
            format!(
                "{} pooled association(s) were found closed by the remote after idling in the pool (up to {idle} s)",
                w.stale
            ),
        );
    }

    if w.validation_failures > 0 {
        let v = c.pool.validation_interval.as_secs();
        add(
            "validation_failures",
            pool_field(c, "validation_interval"),
            format!("lower validation_interval (now {v} s)"),
            format!(
                "{} association(s) failed their C-ECHO validation before reuse: they go bad sooner than they are checked",
                w.validation_failures
            ),
        );
    }

    if w.trips > 0 && w.probe_dimse_timeouts > 0 {
        add(
            "dimse_timeouts",
            node_field(c, "timeouts", "dimse_ms"),
            format!(
                "raise dimse_ms (now {} ms), or look at the PACS",
                c.timeouts.dimse.as_millis()
            ),
            format!(
                "the circuit opened {} time(s) while health checks timed out waiting for a DIMSE response ({} time(s))",
                w.trips, w.probe_dimse_timeouts
            ),
        );
    }

    if w.budget_exhausted > 0 {
        add(
            "retry_budget",
            node_field(c, "retry", "budget_percent"),
            "leave budget_percent as it is: look at the node".to_string(),
            format!(
                "the retry budget ran out {} time(s): most operations fail, so the node is failing, not flaky, and more retries would only add load",
                w.budget_exhausted
            ),
        );
    }

    if w.acquire_timeouts > 0 && p.effective_max >= p.max_size {
        add(
            "acquire_timeouts",
            pool_field(c, "acquire_timeout_ms"),
            format!(
                "raise acquire_timeout_ms (now {} ms) or max_size ({})",
                c.pool.acquire_timeout.as_millis(),
                p.max_size
            ),
            format!("{} caller(s) gave up waiting for an association", w.acquire_timeouts),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AdHocTarget;
    use crate::pool::{DestroyedStats, WaitStats};

    fn config() -> NodeConfig {
        let t: AdHocTarget = "PACS@127.0.0.1:104".parse().unwrap();
        let mut c = NodeConfig::ad_hoc(&t);
        c.name = "MAIN_PACS".into();
        c.pool_name = Some("main_pacs".into());
        c
    }

    fn pool() -> PoolStats {
        PoolStats {
            pool: "MAIN_PACS".into(),
            total: 2,
            active: 1,
            idle: 1,
            waiting: 0,
            opening: 0,
            closing: 0,
            effective_max: 8,
            max_size: 8,
            acquisitions: 100,
            releases: 100,
            acquire_timeouts: 0,
            rejected_waiters: 0,
            created: 2,
            create_failures: 0,
            destroyed: DestroyedStats::default(),
            validations: 0,
            validation_failures: 0,
            stale_redos: 0,
            peak_active: 2,
            wait: WaitStats {
                p50_ms: 0.1,
                p95_ms: 1.0,
                p99_ms: 2.0,
                max_ms: 3.0,
                samples: 100,
            },
            leak_suspects: 0,
            remote_limited: 0,
            unanswered_opens: 0,
        }
    }

    fn rules(pool: &PoolStats, window: Counters, peak: usize) -> Vec<Recommendation> {
        let c = config();
        recommend(&AdviceInput {
            config: &c,
            pool,
            window,
            window_peak_active: peak,
            wait_limit_ms: 100.0,
        })
    }

    fn only(recs: &[Recommendation]) -> &Recommendation {
        assert_eq!(recs.len(), 1, "{recs:#?}");
        &recs[0]
    }

    #[test]
    fn a_healthy_node_gets_no_advice() {
        assert!(rules(&pool(), Counters::default(), 2).is_empty());
    }

    #[test]
    fn long_waits_at_full_utilization_raise_max_size() {
        let mut p = pool();
        p.wait.p95_ms = 250.0;
        p.peak_active = 8;
        let recs = rules(&p, Counters::default(), 8);
        let r = only(&recs);
        assert_eq!(r.rule, "pool_too_small");
        assert_eq!(r.field, "nodes.MAIN_PACS.pool max_size");
        assert_eq!(r.path, "network.connection_pools.main_pacs.max_size");
        assert!(r.change.contains("raise max_size above 8"), "{}", r.change);
        assert!(r.why.contains("p95 250 ms"), "{}", r.why);
        // Long waits while the pool was not full: not a pool size problem.
        p.peak_active = 3;
        assert!(rules(&p, Counters::default(), 3).is_empty());
    }

    #[test]
    fn a_remote_limit_sets_max_size_to_it() {
        let mut p = pool();
        p.effective_max = 6;
        p.remote_limited = 4;
        let recs = rules(&p, Counters::default(), 6);
        let r = only(&recs);
        assert_eq!(r.rule, "remote_limit");
        assert_eq!(r.change, "set max_size to 6");
        assert!(r.why.contains("6 of 8"), "{}", r.why);
    }

    #[test]
    fn stale_associations_lower_max_idle_time() {
        let w = Counters {
            stale: 3,
            ..Counters::default()
        };
        let recs = rules(&pool(), w, 1);
        let r = only(&recs);
        assert_eq!(r.rule, "stale_idle");
        assert_eq!(r.field, "nodes.MAIN_PACS.pool max_idle_time");
        assert!(r.change.contains("now 300 s; try 150 s"), "{}", r.change);
        assert!(r.why.starts_with("3 pooled"), "{}", r.why);
    }

    #[test]
    fn validation_failures_lower_validation_interval() {
        let w = Counters {
            validation_failures: 2,
            ..Counters::default()
        };
        let r = only(&rules(&pool(), w, 1)).clone();
        assert_eq!(r.rule, "validation_failures");
        assert_eq!(r.field, "nodes.MAIN_PACS.pool validation_interval");
        assert!(r.change.contains("now 30 s"), "{}", r.change);
    }

    #[test]
    fn trips_on_dimse_timeouts_raise_dimse_ms() {
        let w = Counters {
            trips: 1,
            probe_dimse_timeouts: 4,
            ..Counters::default()
        };
        let r = only(&rules(&pool(), w, 1)).clone();
        assert_eq!(r.rule, "dimse_timeouts");
        assert_eq!(r.field, "nodes.MAIN_PACS.timeouts dimse_ms");
        assert_eq!(r.path, "nodes.MAIN_PACS.timeouts.dimse_ms");
        assert!(r.change.contains("now 30000 ms"), "{}", r.change);
        // Trips for other reasons (refused connections): not this advice.
        let w = Counters {
            trips: 1,
            ..Counters::default()
        };
        assert!(rules(&pool(), w, 1).is_empty());
    }

    #[test]
    fn an_exhausted_retry_budget_says_the_node_is_failing() {
        let w = Counters {
            budget_exhausted: 5,
            ..Counters::default()
        };
        let r = only(&rules(&pool(), w, 1)).clone();
        assert_eq!(r.rule, "retry_budget");
        assert_eq!(r.field, "nodes.MAIN_PACS.retry budget_percent");
        assert!(r.why.contains("failing, not flaky"), "{}", r.why);
    }

    #[test]
    fn acquire_timeouts_raise_the_acquire_timeout() {
        let w = Counters {
            acquire_timeouts: 2,
            ..Counters::default()
        };
        let r = only(&rules(&pool(), w, 8)).clone();
        assert_eq!(r.rule, "acquire_timeouts");
        assert_eq!(r.field, "nodes.MAIN_PACS.pool acquire_timeout_ms");
    }

    #[test]
    fn a_node_on_built_in_pool_defaults_is_told_where_to_write() {
        let mut c = config();
        c.pool_name = None;
        let mut p = pool();
        p.effective_max = 2;
        let recs = recommend(&AdviceInput {
            config: &c,
            pool: &p,
            window: Counters::default(),
            window_peak_active: 2,
            wait_limit_ms: 100.0,
        });
        assert!(
            recs[0].path.contains("named in nodes.MAIN_PACS.pool"),
            "{}",
            recs[0].path
        );
    }
}
