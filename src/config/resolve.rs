//! Raw structs → validated `Config`: node overrides over `network` over built-in defaults.
//!
//! Each raw section is checked on its own, at its own JSON path (a zero
//! `max_attempts` is reported where it is written). Checks that relate two
//! fields (`min_size` / `max_size`, `initial_delay_ms` / `max_delay_ms`) run on
//! the merged values and blame the field set at the most specific layer.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::time::Duration;

use super::ae::normalize_ae_title;
use super::error::ConfigError;
use super::raw::{RawAlerts, RawBreaker, RawConfig, RawLimits, RawNode, RawPool, RawRetry, RawTimeouts};
use super::settings::{AlertSettings, BreakerSettings, Limits, PoolSettings, RetrySettings, Timeouts};
use super::target::check_host;
use super::{
    Config, NodeConfig, DEFAULT_LOCAL_AE_TITLE, DEFAULT_MAX_PDU_LENGTH, DEFAULT_MAX_SEND_PDU_LENGTH,
    DEFAULT_REFUSED_CONTEXT_TTL, MAX_PDU_LENGTH, MAX_SEND_PDU_LENGTH, MIN_PDU_LENGTH,
};

/// The sections that set one group of fields (`nodes.X.retry`, `network.retry`),
/// with their JSON paths, most specific first.
type Layers<'a, T> = [(&'a str, &'a T)];

pub(crate) fn resolve(raw: RawConfig) -> Result<Config, ConfigError> {
    let local_ae_title = match &raw.local_ae_title {
        Some(ae) => ae_title("local_ae_title", ae)?,
        None => DEFAULT_LOCAL_AE_TITLE.to_string(),
    };
    let network = raw.network.unwrap_or_default();

    let mut pools = BTreeMap::new();
    for (name, pool) in network.connection_pools.iter().flatten() {
        pools.insert(name.clone(), resolve_pool(name, pool)?);
    }

    // The network sections must be valid on their own, even if every node overrides them.
    let net_timeouts = network.timeouts.map(|t| ("network.timeouts", t));
    let net_retry = network.retry.map(|r| ("network.retry", r));
    let net_breaker = network.circuit_breaker.map(|b| ("network.circuit_breaker", b));
    if let Some((path, t)) = &net_timeouts {
        check_timeouts(path, t)?;
    }
    if let Some((path, r)) = &net_retry {
        check_retry(path, r)?;
        merge_retry(&[(path, r)])?;
    }
    if let Some((path, b)) = &net_breaker {
        check_breaker(path, b)?;
    }
    let net_limits = network.limits.map(|l| ("network.limits", l));
    if let Some((path, l)) = &net_limits {
        check_limits(path, l)?;
    }

    let alerts = resolve_alerts(network.alerts.as_ref())?;
    let shared_limits = match &raw.shared_limits {
        Some(s) => Some(super::shared::resolve_shared_limits(s)?),
        None => None,
    };

    let network = NetworkLayers {
        timeouts: net_timeouts.as_ref().map(|(p, t)| (*p, t)),
        retry: net_retry.as_ref().map(|(p, r)| (*p, r)),
        breaker: net_breaker.as_ref().map(|(p, b)| (*p, b)),
        limits: net_limits.as_ref().map(|(p, l)| (*p, l)),
        pools: &pools,
        shared_limits: shared_limits.as_ref(),
    };
    let mut nodes = BTreeMap::new();
    for (name, node) in raw.nodes.iter().flatten() {
        nodes.insert(name.clone(), resolve_node(name, node, &network)?);
    }
    let listener = match &raw.listener {
        Some(l) => {
            if l.port == Some(0) {
                return Err(ConfigError::invalid(
                    "listener.port",
                    "must be a port number from 1 to 65535",
                ));
            }
            Some(super::ListenerConfig {
                port: l.port.unwrap_or(11112),
                bind: l.bind.clone().unwrap_or_else(|| "127.0.0.1".to_string()),
                storage_dir: l.storage_dir.clone(),
            })
        }
        None => None,
    };
    Ok(Config {
        local_ae_title,
        nodes,
        alerts,
        listener,
        shared_limits,
    })
}

/// What `network` contributes to every node.
struct NetworkLayers<'a> {
    timeouts: Option<(&'a str, &'a RawTimeouts)>,
    retry: Option<(&'a str, &'a RawRetry)>,
    breaker: Option<(&'a str, &'a RawBreaker)>,
    limits: Option<(&'a str, &'a RawLimits)>,
    pools: &'a BTreeMap<String, PoolSettings>,
    shared_limits: Option<&'a super::SharedLimitsConfig>,
}

fn resolve_node(name: &str, raw: &RawNode, net: &NetworkLayers) -> Result<NodeConfig, ConfigError> {
    let base = format!("nodes.{name}");
    if name.trim().is_empty() {
        return Err(ConfigError::invalid(
            "nodes",
            format!("node name {name:?} is empty; name nodes like \"MAIN_PACS\""),
        ));
    }
    let ae_title = ae_title(&format!("{base}.ae_title"), &raw.ae_title)?;
    let host = check_host(&raw.host).map_err(|m| ConfigError::invalid(format!("{base}.host"), m))?;
    if raw.port == 0 {
        return Err(ConfigError::invalid(
            format!("{base}.port"),
            "port 0 is not a valid TCP port; use 1 to 65535",
        ));
    }

    let pool = match &raw.pool {
        None => PoolSettings::default(),
        Some(pool_name) => match net.pools.get(pool_name) {
            Some(pool) => pool.clone(),
            None => return Err(unknown_pool(&base, pool_name, net.pools)),
        },
    };

    let max_pdu_length = raw.max_pdu_length.unwrap_or(DEFAULT_MAX_PDU_LENGTH);
    if !(MIN_PDU_LENGTH..=MAX_PDU_LENGTH).contains(&max_pdu_length) {
        return Err(ConfigError::invalid(
            format!("{base}.max_pdu_length"),
            format!(
                "{max_pdu_length} is out of range; use {MIN_PDU_LENGTH} to {MAX_PDU_LENGTH} bytes \
                 (0, \"unlimited\", is not supported)"
            ),
        ));
    }

    let max_send_pdu_length = raw.max_send_pdu_length.unwrap_or(DEFAULT_MAX_SEND_PDU_LENGTH);
    if !(MIN_PDU_LENGTH..=MAX_SEND_PDU_LENGTH).contains(&max_send_pdu_length) {
        return Err(ConfigError::invalid(
            format!("{base}.max_send_pdu_length"),
            format!("{max_send_pdu_length} is out of range; use {MIN_PDU_LENGTH} to {MAX_SEND_PDU_LENGTH} bytes"),
        ));
    }
    let refused_context_ttl = raw
        .refused_context_ttl_seconds
        .map(std::time::Duration::from_secs)
        .unwrap_or(DEFAULT_REFUSED_CONTEXT_TTL);

    let timeouts_path = format!("{base}.timeouts");
    let mut timeout_layers = Vec::new();
    if let Some(t) = &raw.timeouts {
        check_timeouts(&timeouts_path, t)?;
        timeout_layers.push((timeouts_path.as_str(), t));
    }
    timeout_layers.extend(net.timeouts);

    let retry_path = format!("{base}.retry");
    let mut retry_layers = Vec::new();
    if let Some(r) = &raw.retry {
        check_retry(&retry_path, r)?;
        retry_layers.push((retry_path.as_str(), r));
    }
    retry_layers.extend(net.retry);

    let breaker_path = format!("{base}.circuit_breaker");
    let mut breaker_layers = Vec::new();
    if let Some(b) = &raw.circuit_breaker {
        check_breaker(&breaker_path, b)?;
        breaker_layers.push((breaker_path.as_str(), b));
    }
    breaker_layers.extend(net.breaker);

    let limits_path = format!("{base}.limits");
    let mut limits_layers = Vec::new();
    if let Some(l) = &raw.limits {
        check_limits(&limits_path, l)?;
        limits_layers.push((limits_path.as_str(), l));
    }
    limits_layers.extend(net.limits);

    let tls = match &raw.tls {
        Some(t) => super::security::resolve_tls(&base, t)?,
        None => None,
    };
    let user_identity = match &raw.user_identity {
        Some(u) => Some(super::security::resolve_user_identity(&base, u)?),
        None => None,
    };

    let (max_shared_associations, shared_breaker) = super::shared::resolve_node_shared(
        &base,
        raw.max_shared_associations,
        raw.shared_breaker,
        net.shared_limits,
    )?;

    Ok(NodeConfig {
        max_shared_associations,
        shared_breaker,
        tls,
        user_identity,
        name: name.to_string(),
        ae_title,
        host,
        port: raw.port,
        pool_name: raw.pool.clone(),
        pool,
        max_pdu_length,
        max_send_pdu_length,
        refused_context_ttl,
        timeouts: merge_timeouts(&timeout_layers),
        retry: merge_retry(&retry_layers)?,
        breaker: merge_breaker(&breaker_layers),
        limits: merge_limits(&limits_layers),
    })
}

fn ae_title(path: &str, value: &str) -> Result<String, ConfigError> {
    normalize_ae_title(value)
        .map_err(|reason| ConfigError::invalid(path, format!("invalid AE title {value:?}: {reason}")))
}

fn unknown_pool(base: &str, name: &str, pools: &BTreeMap<String, PoolSettings>) -> ConfigError {
    let defined = if pools.is_empty() {
        "no pools are defined under network.connection_pools".to_string()
    } else {
        let names: Vec<&str> = pools.keys().map(String::as_str).collect();
        format!("defined: {}", names.join(", "))
    };
    ConfigError::invalid(format!("{base}.pool"), format!("unknown pool {name:?} ({defined})"))
}

fn resolve_pool(name: &str, raw: &RawPool) -> Result<PoolSettings, ConfigError> {
    let base = format!("network.connection_pools.{name}");
    if name.trim().is_empty() {
        return Err(ConfigError::invalid(
            "network.connection_pools",
            format!("pool name {name:?} is empty"),
        ));
    }
    let d = PoolSettings::default();
    let layers: &Layers<RawPool> = &[(&base, raw)];
    let min_size = pick(layers, "min_size", |p| p.min_size, d.min_size);
    let max_size = pick(layers, "max_size", |p| p.max_size, d.max_size);
    if max_size.value == 0 {
        return Err(ConfigError::invalid(format!("{base}.max_size"), "must be at least 1"));
    }
    check_order(("min_size", &min_size), ("max_size", &max_size))?;
    if raw.max_concurrent_opens == Some(0) {
        return Err(ConfigError::invalid(
            format!("{base}.max_concurrent_opens"),
            "must be at least 1",
        ));
    }
    if raw.max_uses == Some(0) {
        return Err(ConfigError::invalid(
            format!("{base}.max_uses"),
            "must be at least 1 (leave it out for no limit)",
        ));
    }
    Ok(PoolSettings {
        min_size: min_size.value,
        max_size: max_size.value,
        max_idle_time: raw.max_idle_time.map_or(d.max_idle_time, Duration::from_secs),
        validation_interval: raw
            .validation_interval
            .map_or(d.validation_interval, Duration::from_secs),
        max_lifetime: raw.max_lifetime.map(Duration::from_secs).or(d.max_lifetime),
        max_uses: raw.max_uses.or(d.max_uses),
        acquire_timeout: raw.acquire_timeout_ms.map_or(d.acquire_timeout, Duration::from_millis),
        validate_on_borrow: raw.validate_on_borrow.unwrap_or(d.validate_on_borrow),
        max_waiters: raw.max_waiters.or(d.max_waiters),
        max_concurrent_opens: raw.max_concurrent_opens.unwrap_or(d.max_concurrent_opens),
        leak_threshold: raw.leak_threshold_seconds.map(Duration::from_secs).or(d.leak_threshold),
    })
}

fn check_timeouts(section: &str, raw: &RawTimeouts) -> Result<(), ConfigError> {
    for (field, value) in [
        ("connect_ms", raw.connect_ms),
        ("acse_ms", raw.acse_ms),
        ("dimse_ms", raw.dimse_ms),
        ("retrieve_ms", raw.retrieve_ms),
    ] {
        if value == Some(0) {
            return Err(ConfigError::invalid(
                format!("{section}.{field}"),
                "must be at least 1 ms (0 would time out at once)",
            ));
        }
    }
    Ok(())
}

fn check_retry(section: &str, raw: &RawRetry) -> Result<(), ConfigError> {
    let at = |field: &str, message: String| ConfigError::invalid(format!("{section}.{field}"), message);
    if raw.max_attempts == Some(0) {
        return Err(at(
            "max_attempts",
            "must be at least 1 (the first try counts; 1 = no retry)".into(),
        ));
    }
    if let Some(m) = raw.backoff_multiplier {
        if !m.is_finite() || m < 1.0 {
            return Err(at("backoff_multiplier", format!("must be at least 1.0 (got {m})")));
        }
    }
    if let Some(j) = raw.jitter_factor {
        if !(0.0..=1.0).contains(&j) {
            return Err(at("jitter_factor", format!("must be between 0 and 1 (got {j})")));
        }
    }
    for (field, value) in [
        ("budget_percent", raw.budget_percent),
        ("budget_min_per_second", raw.budget_min_per_second),
    ] {
        if let Some(v) = value {
            if !v.is_finite() || v < 0.0 {
                return Err(at(field, format!("must not be negative (got {v})")));
            }
        }
    }
    Ok(())
}

fn check_breaker(section: &str, raw: &RawBreaker) -> Result<(), ConfigError> {
    for (field, value) in [
        ("failure_threshold", raw.failure_threshold),
        ("success_threshold", raw.success_threshold),
        ("half_open_max_calls", raw.half_open_max_calls),
    ] {
        if value == Some(0) {
            return Err(ConfigError::invalid(format!("{section}.{field}"), "must be at least 1"));
        }
    }
    Ok(())
}

fn resolve_alerts(raw: Option<&RawAlerts>) -> Result<AlertSettings, ConfigError> {
    let mut out = AlertSettings::default();
    let Some(raw) = raw else { return Ok(out) };
    let section = "network.alerts";
    for (field, value) in [
        ("utilization_percent", raw.utilization_percent),
        ("error_rate_percent", raw.error_rate_percent),
    ] {
        if value.is_some_and(|v| !(v > 0.0 && v <= 100.0)) {
            return Err(ConfigError::invalid(
                format!("{section}.{field}"),
                "must be a percentage above 0 and at most 100",
            ));
        }
    }
    for (field, value) in [
        ("error_rate_window_seconds", raw.error_rate_window_seconds),
        ("circuit_open_seconds", raw.circuit_open_seconds),
    ] {
        if value == Some(0) {
            return Err(ConfigError::invalid(format!("{section}.{field}"), "must be at least 1"));
        }
    }
    if let Some(v) = raw.acquire_wait_p95_ms {
        out.acquire_wait_p95 = Duration::from_millis(v);
    }
    if let Some(v) = raw.utilization_percent {
        out.utilization_percent = v;
    }
    if let Some(v) = raw.error_rate_percent {
        out.error_rate_percent = v;
    }
    if let Some(v) = raw.error_rate_window_seconds {
        out.error_rate_window = Duration::from_secs(v);
    }
    if let Some(v) = raw.circuit_open_seconds {
        out.circuit_open = Duration::from_secs(v);
    }
    if let Some(v) = raw.failed_health_checks {
        out.failed_health_checks = v;
    }
    Ok(out)
}

/// Smallest `max_command_bytes` accepted: a C-STORE-RSP with an error comment fits.
const MIN_COMMAND_BYTES: u64 = 1024;
/// Smallest `max_data_set_bytes` accepted: a C-FIND identifier of a few keys fits.
const MIN_DATA_SET_BYTES: u64 = 4096;

fn check_limits(section: &str, raw: &RawLimits) -> Result<(), ConfigError> {
    for (field, value, min) in [
        ("max_command_bytes", raw.max_command_bytes, MIN_COMMAND_BYTES),
        ("max_data_set_bytes", raw.max_data_set_bytes, MIN_DATA_SET_BYTES),
    ] {
        if let Some(v) = value {
            if v < min || usize::try_from(v).is_err() {
                return Err(ConfigError::invalid(
                    format!("{section}.{field}"),
                    format!("{v} is out of range; use at least {min} bytes"),
                ));
            }
        }
    }
    Ok(())
}

fn merge_limits(layers: &Layers<RawLimits>) -> Limits {
    let d = Limits::default();
    let bytes = |get: fn(&RawLimits) -> Option<u64>, default: usize| {
        layers
            .iter()
            .find_map(|(_, l)| get(l))
            .and_then(|v| usize::try_from(v).ok())
            .unwrap_or(default)
    };
    Limits {
        max_command_bytes: bytes(|l| l.max_command_bytes, d.max_command_bytes),
        max_data_set_bytes: bytes(|l| l.max_data_set_bytes, d.max_data_set_bytes),
    }
}

fn merge_timeouts(layers: &Layers<RawTimeouts>) -> Timeouts {
    let d = Timeouts::default();
    let ms = |get: fn(&RawTimeouts) -> Option<u64>, default: Duration| {
        layers
            .iter()
            .find_map(|(_, t)| get(t))
            .map_or(default, Duration::from_millis)
    };
    Timeouts {
        connect: ms(|t| t.connect_ms, d.connect),
        acse: ms(|t| t.acse_ms, d.acse),
        dimse: ms(|t| t.dimse_ms, d.dimse),
        retrieve: ms(|t| t.retrieve_ms, d.retrieve),
    }
}

fn merge_retry(layers: &Layers<RawRetry>) -> Result<RetrySettings, ConfigError> {
    let d = RetrySettings::default();
    let first =
        |get: fn(&RawRetry) -> Option<f64>, default: f64| layers.iter().find_map(|(_, r)| get(r)).unwrap_or(default);
    let initial = pick(
        layers,
        "initial_delay_ms",
        |r| r.initial_delay_ms,
        millis(d.initial_delay),
    );
    let max = pick(layers, "max_delay_ms", |r| r.max_delay_ms, millis(d.max_delay));
    check_order(("initial_delay_ms", &initial), ("max_delay_ms", &max))?;
    Ok(RetrySettings {
        max_attempts: layers
            .iter()
            .find_map(|(_, r)| r.max_attempts)
            .unwrap_or(d.max_attempts),
        initial_delay: Duration::from_millis(initial.value),
        max_delay: Duration::from_millis(max.value),
        strategy: layers.iter().find_map(|(_, r)| r.strategy).unwrap_or(d.strategy),
        backoff_multiplier: first(|r| r.backoff_multiplier, d.backoff_multiplier),
        jitter_factor: first(|r| r.jitter_factor, d.jitter_factor),
        budget_percent: first(|r| r.budget_percent, d.budget_percent),
        budget_min_per_second: first(|r| r.budget_min_per_second, d.budget_min_per_second),
    })
}

fn merge_breaker(layers: &Layers<RawBreaker>) -> BreakerSettings {
    let d = BreakerSettings::default();
    let first =
        |get: fn(&RawBreaker) -> Option<u32>, default: u32| layers.iter().find_map(|(_, b)| get(b)).unwrap_or(default);
    BreakerSettings {
        failure_threshold: first(|b| b.failure_threshold, d.failure_threshold),
        success_threshold: first(|b| b.success_threshold, d.success_threshold),
        open_duration: layers
            .iter()
            .find_map(|(_, b)| b.open_duration_seconds)
            .map_or(d.open_duration, Duration::from_secs),
        half_open_max_calls: first(|b| b.half_open_max_calls, d.half_open_max_calls),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A merged value and where it was set: `rank` is the index of the layer
/// (0 = most specific), `layers.len()` for the built-in default.
struct Picked<T> {
    value: T,
    rank: usize,
    path: Option<String>,
}

fn pick<R, T>(layers: &Layers<R>, field: &str, get: impl Fn(&R) -> Option<T>, default: T) -> Picked<T> {
    for (rank, (section, raw)) in layers.iter().enumerate() {
        if let Some(value) = get(raw) {
            return Picked {
                value,
                rank,
                path: Some(format!("{section}.{field}")),
            };
        }
    }
    Picked {
        value: default,
        rank: layers.len(),
        path: None,
    }
}

/// Requires `low <= high`; otherwise blames whichever of the two was set at the
/// more specific layer (`low` on a tie), and says where the other one came from.
fn check_order<T: PartialOrd + Display>(
    (low_name, low): (&str, &Picked<T>),
    (high_name, high): (&str, &Picked<T>),
) -> Result<(), ConfigError> {
    if low.value <= high.value {
        return Ok(());
    }
    let origin = |other: &Picked<T>, blamed: &Picked<T>| {
        if other.rank == blamed.rank {
            String::new()
        } else if let Some(path) = &other.path {
            format!(", set at {path}")
        } else {
            ", the built-in default".to_string()
        }
    };
    let (path, message) = if low.rank <= high.rank {
        (
            &low.path,
            format!(
                "{low_name} ({}) is greater than {high_name} ({}{})",
                low.value,
                high.value,
                origin(high, low)
            ),
        )
    } else {
        (
            &high.path,
            format!(
                "{high_name} ({}) is less than {low_name} ({}{})",
                high.value,
                low.value,
                origin(low, high)
            ),
        )
    };
    // Two built-in defaults never conflict, so the blamed one was set somewhere.
    Err(ConfigError::invalid(path.clone().unwrap_or_default(), message))
}
