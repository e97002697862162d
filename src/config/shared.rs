//! `shared_limits` and a node's `max_shared_associations` / `shared_breaker`: the
//! fleet-wide limits kept in Redis, as read from the config (the client's
//! `shared` module enforces them).

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// Default `lease_seconds`.
pub const DEFAULT_LEASE_SECONDS: u64 = 30;
/// Default `redis_url`.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379/0";
/// Longest `lease_seconds` accepted: a lease outlives a killed process by up to
/// this, so hours would lock a fleet out of its own slots.
pub const MAX_LEASE_SECONDS: u64 = 3_600;

/// `shared_limits` as written.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, expecting = "a JSON object (shared limits)")]
pub(crate) struct RawSharedLimits {
    /// `redis://[:password@]host:port/db` (default `redis://127.0.0.1:6379/0`).
    pub redis_url: Option<String>,
    /// How long a lease lives without renewal (default 30 s).
    pub lease_seconds: Option<u64>,
    /// `local` (default) or `fail`.
    pub on_unavailable: Option<OnUnavailable>,
}

/// What an operation does when Redis cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum OnUnavailable {
    /// Fall back to the node's own limits (pool `max_size`, local breaker), with a
    /// warning and a metric.
    #[default]
    Local,
    /// Fail the operation with an error that names Redis.
    Fail,
}

impl OnUnavailable {
    /// The config's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OnUnavailable::Local => "local",
            OnUnavailable::Fail => "fail",
        }
    }
}

/// `shared_limits`, resolved.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedLimitsConfig {
    /// The Redis URL (may hold a password: print [`SharedLimitsConfig::redis_display`]).
    pub redis_url: String,
    /// A lease's lifetime without renewal; renewed every third of it.
    pub lease: Duration,
    /// Redis unreachable: fall back or fail.
    pub on_unavailable: OnUnavailable,
}

impl std::fmt::Debug for SharedLimitsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLimitsConfig")
            .field("redis_url", &self.redis_display())
            .field("lease", &self.lease)
            .field("on_unavailable", &self.on_unavailable)
            .finish()
    }
}

impl SharedLimitsConfig {
    /// The URL without its credentials, for logs and errors.
    pub fn redis_display(&self) -> String {
        redact_url(&self.redis_url)
    }
}

/// `redis://user:secret@host:6379/0` -> `redis://host:6379/0`.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

pub(crate) fn resolve_shared_limits(raw: &RawSharedLimits) -> Result<SharedLimitsConfig, ConfigError> {
    if !cfg!(feature = "redis") {
        return Err(ConfigError::invalid(
            "shared_limits",
            "this build of pacs-net has no Redis support (cargo feature `redis`): \
             rebuild with `--features redis`, or remove `shared_limits`",
        ));
    }
    let redis_url = raw.redis_url.clone().unwrap_or_else(|| DEFAULT_REDIS_URL.to_string());
    let scheme_ok = ["redis://", "redis+unix://", "unix://"]
        .iter()
        .any(|s| redis_url.starts_with(s));
    if !scheme_ok || redis_url.len() <= "redis://".len() {
        return Err(ConfigError::invalid(
            "shared_limits.redis_url",
            format!(
                "{:?} is not a Redis URL; write redis://HOST:PORT/DB, e.g. {DEFAULT_REDIS_URL}",
                redact_url(&redis_url)
            ),
        ));
    }
    let lease_seconds = raw.lease_seconds.unwrap_or(DEFAULT_LEASE_SECONDS);
    if !(1..=MAX_LEASE_SECONDS).contains(&lease_seconds) {
        return Err(ConfigError::invalid(
            "shared_limits.lease_seconds",
            format!("{lease_seconds} is out of range; use 1 to {MAX_LEASE_SECONDS} seconds"),
        ));
    }
    Ok(SharedLimitsConfig {
        redis_url,
        lease: Duration::from_secs(lease_seconds),
        on_unavailable: raw.on_unavailable.unwrap_or_default(),
    })
}

/// A node's `max_shared_associations` and `shared_breaker`, checked against
/// `shared_limits`.
pub(crate) fn resolve_node_shared(
    base: &str,
    max_shared_associations: Option<usize>,
    shared_breaker: Option<bool>,
    shared_limits: Option<&SharedLimitsConfig>,
) -> Result<(Option<usize>, bool), ConfigError> {
    if max_shared_associations == Some(0) {
        return Err(ConfigError::invalid(
            format!("{base}.max_shared_associations"),
            "must be at least 1 (leave it out for no fleet-wide cap)",
        ));
    }
    if shared_limits.is_none() {
        if max_shared_associations.is_some() {
            return Err(ConfigError::invalid(
                format!("{base}.max_shared_associations"),
                "needs a top-level `shared_limits` section (the Redis that keeps the count)",
            ));
        }
        if shared_breaker == Some(true) {
            return Err(ConfigError::invalid(
                format!("{base}.shared_breaker"),
                "needs a top-level `shared_limits` section (the Redis that keeps the state)",
            ));
        }
    }
    Ok((max_shared_associations, shared_breaker.unwrap_or(false)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "redis"))]
    #[test]
    fn without_the_feature_the_config_says_how_to_get_it() {
        let e = crate::config::Config::from_json_str(r#"{"shared_limits": {}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("shared_limits") && e.contains("--features redis"), "{e}");
    }

    #[test]
    fn credentials_never_shown() {
        assert_eq!(redact_url("redis://:s3cret@10.0.0.1:6379/0"), "redis://10.0.0.1:6379/0");
        assert_eq!(redact_url("redis://u:p@h/1"), "redis://h/1");
        assert_eq!(redact_url("redis://h:1/0"), "redis://h:1/0");
    }
}
