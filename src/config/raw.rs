//! Serde structs that mirror the hospital JSON exactly, before validation and merging.
//!
//! Every struct denies unknown fields and every field is optional, except a node's
//! `ae_title`, `host` and `port`. Nothing here is interpreted: units, defaults and
//! ranges are applied by `resolve`.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::settings::RetryStrategy;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, expecting = "a JSON object (the pacs-net config)")]
pub(crate) struct RawConfig {
    pub local_ae_title: Option<String>,
    #[serde(default, deserialize_with = "unique_map")]
    pub nodes: Option<BTreeMap<String, RawNode>>,
    pub network: Option<RawNetwork>,
    pub listener: Option<RawListener>,
    pub shared_limits: Option<super::shared::RawSharedLimits>,
}

/// `listener`: where pacs-net accepts associations a PACS opens to it.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, expecting = "a JSON object (listener)")]
pub(crate) struct RawListener {
    pub port: Option<u16>,
    pub bind: Option<String>,
    pub storage_dir: Option<std::path::PathBuf>,
}

/// One entry of `nodes`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, expecting = "a JSON object (a node)")]
pub(crate) struct RawNode {
    pub ae_title: String,
    pub host: String,
    pub port: u16,
    pub pool: Option<String>,
    pub max_pdu_length: Option<u32>,
    pub max_send_pdu_length: Option<u32>,
    pub refused_context_ttl_seconds: Option<u64>,
    pub timeouts: Option<RawTimeouts>,
    pub retry: Option<RawRetry>,
    pub circuit_breaker: Option<RawBreaker>,
    pub limits: Option<RawLimits>,
    pub tls: Option<super::security::RawTls>,
    pub user_identity: Option<super::security::RawUserIdentity>,
    /// Associations open to this node across every process sharing `shared_limits`.
    pub max_shared_associations: Option<usize>,
    /// Share the breaker's open state across those processes.
    pub shared_breaker: Option<bool>,
}

/// `network`: defaults shared by every node, and the named pools.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, expecting = "a JSON object (network defaults)")]
pub(crate) struct RawNetwork {
    #[serde(default, deserialize_with = "unique_map")]
    pub connection_pools: Option<BTreeMap<String, RawPool>>,
    pub timeouts: Option<RawTimeouts>,
    pub retry: Option<RawRetry>,
    pub circuit_breaker: Option<RawBreaker>,
    pub limits: Option<RawLimits>,
    pub alerts: Option<RawAlerts>,
}

/// `network.alerts`: thresholds of the monitor's alerts.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, expecting = "a JSON object (alert thresholds)")]
pub(crate) struct RawAlerts {
    /// Acquire wait p95 above this (ms) fires `acquire_wait` (default 100).
    pub acquire_wait_p95_ms: Option<u64>,
    /// Pool utilization above this percentage fires `utilization` (default 80).
    pub utilization_percent: Option<f64>,
    /// Failed operations above this percentage of all in the window fire `error_rate` (default 1).
    pub error_rate_percent: Option<f64>,
    /// The error-rate window, seconds (default 300).
    pub error_rate_window_seconds: Option<u64>,
    /// A circuit not closed for longer than this (seconds) fires `circuit_open` (default 300).
    pub circuit_open_seconds: Option<u64>,
    /// More consecutive failed health checks than this fire `health_checks` (default 3).
    pub failed_health_checks: Option<u32>,
}

/// `network.connection_pools.<name>`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, expecting = "a JSON object (a connection pool)")]
pub(crate) struct RawPool {
    pub min_size: Option<usize>,
    pub max_size: Option<usize>,
    /// Seconds.
    pub max_idle_time: Option<u64>,
    /// Seconds.
    pub validation_interval: Option<u64>,
    /// Seconds.
    pub max_lifetime: Option<u64>,
    pub max_uses: Option<u64>,
    pub acquire_timeout_ms: Option<u64>,
    pub validate_on_borrow: Option<bool>,
    pub max_waiters: Option<usize>,
    pub max_concurrent_opens: Option<usize>,
    pub leak_threshold_seconds: Option<u64>,
}

/// `timeouts` (network-wide or per node).
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, expecting = "a JSON object (timeouts)")]
pub(crate) struct RawTimeouts {
    pub connect_ms: Option<u64>,
    pub acse_ms: Option<u64>,
    pub dimse_ms: Option<u64>,
    pub retrieve_ms: Option<u64>,
}

/// `retry` (network-wide or per node).
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, expecting = "a JSON object (a retry policy)")]
pub(crate) struct RawRetry {
    pub max_attempts: Option<u32>,
    pub initial_delay_ms: Option<u64>,
    pub max_delay_ms: Option<u64>,
    pub strategy: Option<RetryStrategy>,
    pub backoff_multiplier: Option<f64>,
    pub jitter_factor: Option<f64>,
    pub budget_percent: Option<f64>,
    pub budget_min_per_second: Option<f64>,
}

/// `circuit_breaker` (network-wide or per node).
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, expecting = "a JSON object (a circuit breaker)")]
pub(crate) struct RawBreaker {
    pub failure_threshold: Option<u32>,
    pub success_threshold: Option<u32>,
    pub open_duration_seconds: Option<u64>,
    pub half_open_max_calls: Option<u32>,
}

/// `limits` (network-wide or per node): bytes a peer may make us hold.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, expecting = "a JSON object (limits)")]
pub(crate) struct RawLimits {
    pub max_command_bytes: Option<u64>,
    pub max_data_set_bytes: Option<u64>,
}

/// The start of the message [`unique_map`] fails with; `parse` moves the key into the path.
pub(crate) const DUPLICATE_KEY: &str = "duplicate key `";

/// Deserializes an optional JSON object into a map, failing on a repeated key
/// (serde_json would otherwise keep the last one silently: two `MAIN_PACS`
/// entries in a hospital config are a mistake, not an override).
fn unique_map<'de, D, V>(deserializer: D) -> Result<Option<BTreeMap<String, V>>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    deserializer.deserialize_option(OptionalUniqueMap(PhantomData))
}

struct OptionalUniqueMap<V>(PhantomData<V>);

impl<'de, V: Deserialize<'de>> Visitor<'de> for OptionalUniqueMap<V> {
    type Value = Option<BTreeMap<String, V>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(UniqueMap(PhantomData)).map(Some)
    }
}

struct UniqueMap<V>(PhantomData<V>);

impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueMap<V> {
    type Value = BTreeMap<String, V>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = BTreeMap::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!("{DUPLICATE_KEY}{key}`")));
            }
            let value = access.next_value::<V>()?;
            map.insert(key, value);
        }
        Ok(map)
    }
}
