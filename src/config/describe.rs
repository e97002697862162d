//! `Config::describe`: the resolved config as aligned text, for `pacs-net config check`.
//!
//! Settings are listed under their JSON field names, in the file's units, so
//! that what is printed maps back to what to edit.

use std::fmt::{Display, Write};
use std::time::Duration;

use super::{Config, NodeConfig};

/// Column where values start.
const VALUE_COLUMN: usize = 28;

impl Config {
    /// Every node with its address, pool, timeouts, retry and breaker settings,
    /// as resolved (after merging), one setting a line, values aligned.
    pub fn describe(&self) -> String {
        let mut out = Text::default();
        out.line(0, "local_ae_title", &self.local_ae_title);
        match self.nodes.len() {
            0 => out.line(0, "nodes", "none"),
            n => out.line(0, "nodes", n),
        }
        for node in self.nodes.values() {
            out.blank();
            describe_node(&mut out, node);
        }
        if let Some(shared) = &self.shared_limits {
            out.blank();
            out.heading(0, "shared_limits");
            out.line(1, "redis_url", shared.redis_display());
            out.line(1, "lease_seconds", secs(shared.lease));
            out.line(1, "on_unavailable", shared.on_unavailable.as_str());
        }
        out.blank();
        describe_alerts(&mut out, &self.alerts);
        out.0
    }
}

fn describe_node(out: &mut Text, node: &NodeConfig) {
    out.heading(0, &format!("node {}", node.name));
    let address = format!("{}@{}", node.ae_title, super::host_port(&node.host, node.port));
    out.line(1, "address", address);
    out.line(1, "max_pdu_length", format!("{} bytes", node.max_pdu_length));

    let p = &node.pool;
    match &node.pool_name {
        Some(name) => out.line(1, "pool", name),
        None => out.line(1, "pool", "(built-in defaults)"),
    }
    out.line(2, "min_size", p.min_size);
    out.line(2, "max_size", p.max_size);
    out.line(2, "max_idle_time", secs(p.max_idle_time));
    out.line(2, "validation_interval", secs(p.validation_interval));
    out.line(2, "max_lifetime", p.max_lifetime.map_or("none".into(), secs));
    out.line(2, "max_uses", or_unlimited(p.max_uses));
    out.line(2, "acquire_timeout_ms", ms(p.acquire_timeout));
    out.line(2, "validate_on_borrow", p.validate_on_borrow);
    out.line(2, "max_waiters", or_unlimited(p.max_waiters));
    out.line(2, "max_concurrent_opens", p.max_concurrent_opens);
    out.line(2, "leak_threshold_seconds", p.leak_threshold.map_or("off".into(), secs));

    let t = &node.timeouts;
    out.heading(1, "timeouts");
    out.line(2, "connect_ms", ms(t.connect));
    out.line(2, "acse_ms", ms(t.acse));
    out.line(2, "dimse_ms", ms(t.dimse));
    out.line(2, "retrieve_ms", ms(t.retrieve));

    let r = &node.retry;
    out.heading(1, "retry");
    out.line(2, "max_attempts", r.max_attempts);
    out.line(2, "strategy", r.strategy.as_str());
    out.line(2, "initial_delay_ms", ms(r.initial_delay));
    out.line(2, "max_delay_ms", ms(r.max_delay));
    out.line(2, "backoff_multiplier", format!("{:?}", r.backoff_multiplier));
    out.line(2, "jitter_factor", format!("{:?}", r.jitter_factor));
    out.line(2, "budget_percent", format!("{} %", r.budget_percent));
    out.line(2, "budget_min_per_second", format!("{:?}", r.budget_min_per_second));

    let b = &node.breaker;
    out.heading(1, "circuit_breaker");
    out.line(2, "failure_threshold", b.failure_threshold);
    out.line(2, "success_threshold", b.success_threshold);
    out.line(2, "open_duration_seconds", secs(b.open_duration));
    out.line(2, "half_open_max_calls", b.half_open_max_calls);

    let l = &node.limits;
    out.heading(1, "limits");
    out.line(2, "max_command_bytes", format!("{} bytes", l.max_command_bytes));
    out.line(2, "max_data_set_bytes", format!("{} bytes", l.max_data_set_bytes));

    describe_security(out, node);

    if node.max_shared_associations.is_some() || node.shared_breaker {
        out.line(
            1,
            "max_shared_associations",
            node.max_shared_associations
                .map_or("none (no fleet-wide cap)".to_string(), |n| n.to_string()),
        );
        out.line(1, "shared_breaker", node.shared_breaker);
    }
}

/// `tls` and `user_identity`: file paths and where secrets come from, never a secret.
fn describe_security(out: &mut Text, node: &NodeConfig) {
    match &node.tls {
        None => out.line(1, "tls", "off (plain TCP)"),
        Some(t) => {
            out.heading(1, "tls");
            out.line(2, "enabled", true);
            out.line(2, "server_name", t.server_name.as_deref().unwrap_or(&node.host));
            let path = |p: &Option<std::path::PathBuf>, none: &str| {
                p.as_ref().map_or(none.to_string(), |p| p.display().to_string())
            };
            out.line(2, "ca_file", path(&t.ca_file, "(system trust roots)"));
            out.line(2, "cert_file", path(&t.cert_file, "none (no client certificate)"));
            out.line(2, "key_file", path(&t.key_file, "none"));
            out.line(2, "min_version", t.min_version.as_str());
            out.line(
                2,
                "verify_peer",
                if t.verify_peer {
                    "true"
                } else {
                    "false (WARNING: the server's certificate is not checked)"
                },
            );
        }
    }
    if let Some(u) = &node.user_identity {
        out.heading(1, "user_identity");
        out.line(2, "type", u.kind.as_str());
        if let Some(name) = &u.username {
            out.line(2, "username", name);
        }
        if let Some(secret) = &u.secret {
            out.line(2, "secret", format!("from {} (not shown)", secret.describe()));
        }
        out.line(2, "positive_response_requested", u.positive_response_requested);
    }
}

fn describe_alerts(out: &mut Text, a: &super::AlertSettings) {
    out.heading(0, "network.alerts");
    out.line(1, "acquire_wait_p95_ms", ms(a.acquire_wait_p95));
    out.line(1, "utilization_percent", format!("{} %", a.utilization_percent));
    out.line(1, "error_rate_percent", format!("{} %", a.error_rate_percent));
    out.line(1, "error_rate_window_seconds", secs(a.error_rate_window));
    out.line(1, "circuit_open_seconds", secs(a.circuit_open));
    out.line(1, "failed_health_checks", a.failed_health_checks);
}

fn secs(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.3} s", d.as_secs_f64())
    }
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

fn or_unlimited<T: Display>(value: Option<T>) -> String {
    value.map_or_else(|| "unlimited".to_string(), |v| v.to_string())
}

/// The text being built.
#[derive(Default)]
struct Text(String);

impl Text {
    fn line(&mut self, depth: usize, key: &str, value: impl Display) {
        let indent = depth * 2;
        let width = VALUE_COLUMN.saturating_sub(indent + 1).max(key.len());
        // Writing to a String cannot fail.
        let _ = writeln!(self.0, "{:indent$}{key:<width$} {value}", "");
    }

    fn heading(&mut self, depth: usize, text: &str) {
        let _ = writeln!(self.0, "{:indent$}{text}", "", indent = depth * 2);
    }

    fn blank(&mut self) {
        self.0.push('\n');
    }
}
