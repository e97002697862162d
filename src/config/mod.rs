//! The hospital JSON config: parsing, validation, and merging into per-node settings.
//!
//! ```
//! use pacs_net::config::Config;
//!
//! let config = Config::from_json_str(r#"{
//!     "nodes": {"MAIN_PACS": {"ae_title": "ORTHANC", "host": "127.0.0.1", "port": 4242}}
//! }"#)?;
//! let node = config.node("MAIN_PACS").expect("defined above");
//! assert_eq!(node.retry.max_attempts, 3); // built-in default
//! # Ok::<(), pacs_net::config::ConfigError>(())
//! ```

mod ae;
mod describe;
mod error;
mod parse;
mod raw;
mod resolve;
mod security;
mod settings;
mod shared;
mod target;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;

pub use ae::{normalize_ae_title, validate_ae_title, AE_TITLE_MAX_LEN};
pub use error::ConfigError;
pub use security::{IdentityKind, SecretSource, TlsSettings, TlsVersion, UserIdentitySettings};
pub use settings::*;
pub use shared::{
    redact_url, OnUnavailable, SharedLimitsConfig, DEFAULT_LEASE_SECONDS, DEFAULT_REDIS_URL, MAX_LEASE_SECONDS,
};
pub use target::{host_port, AdHocTarget};

/// Our AE title when neither `--calling-ae` nor `local_ae_title` gives one.
pub const DEFAULT_LOCAL_AE_TITLE: &str = "PACSNET";
/// The maximum PDU length we offer to receive, when a node does not set `max_pdu_length`.
pub const DEFAULT_MAX_PDU_LENGTH: u32 = 16_384;
/// Smallest `max_pdu_length` accepted (bytes).
pub const MIN_PDU_LENGTH: u32 = 4_096;
/// Largest `max_pdu_length` accepted (bytes).
pub const MAX_PDU_LENGTH: u32 = 1_048_576;
/// Default largest PDU we send (`max_send_pdu_length`).
pub const DEFAULT_MAX_SEND_PDU_LENGTH: u32 = crate::association::DEFAULT_MAX_SEND_PDU;
/// Largest `max_send_pdu_length` accepted.
pub const MAX_SEND_PDU_LENGTH: u32 = 16 * 1_048_576;
/// Default `refused_context_ttl_seconds`.
pub const DEFAULT_REFUSED_CONTEXT_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// A parsed, validated and merged config.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our AE title (leading/trailing spaces removed).
    pub local_ae_title: String,
    /// The nodes by name, each with its settings fully resolved.
    pub nodes: BTreeMap<String, NodeConfig>,
    /// Thresholds of the monitor's alerts (`network.alerts`).
    pub alerts: AlertSettings,
    /// `listener`: where a PACS opens associations to us (C-MOVE destination).
    pub listener: Option<ListenerConfig>,
    /// `shared_limits`: the Redis that keeps fleet-wide limits (feature `redis`).
    pub shared_limits: Option<SharedLimitsConfig>,
}

/// `listener` (AE title: `local_ae_title`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Default 11112.
    pub port: u16,
    /// Default `127.0.0.1`.
    pub bind: String,
    /// Where received instances are written (default: the command's `--out`).
    pub storage_dir: Option<std::path::PathBuf>,
}

impl Default for Config {
    /// No nodes, our AE title `PACSNET`: what applies without a config file.
    fn default() -> Self {
        Config {
            local_ae_title: DEFAULT_LOCAL_AE_TITLE.to_string(),
            nodes: BTreeMap::new(),
            alerts: AlertSettings::default(),
            listener: None,
            shared_limits: None,
        }
    }
}

/// One peer, with every setting resolved (node over `network` over built-in defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// The key in `nodes`, or `AET@HOST:PORT` for an ad-hoc target.
    pub name: String,
    /// The called AE title (leading/trailing spaces removed).
    pub ae_title: String,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The `network.connection_pools` entry used; `None`: built-in pool defaults.
    pub pool_name: Option<String>,
    /// The pool settings in force for this node.
    pub pool: PoolSettings,
    /// The maximum PDU length we offer to receive (bytes).
    pub max_pdu_length: u32,
    /// The largest PDU we send (bytes), whatever the remote announces
    /// (`max_send_pdu_length`, default 256 KiB).
    pub max_send_pdu_length: u32,
    /// How long a presentation context the remote refused as unsupported is not
    /// proposed again (`refused_context_ttl_seconds`, default 300 s).
    pub refused_context_ttl: std::time::Duration,
    /// Connect, ACSE and DIMSE timeouts.
    pub timeouts: Timeouts,
    /// Retry policy of the node's operations.
    pub retry: RetrySettings,
    /// Circuit breaker settings of the node.
    pub breaker: BreakerSettings,
    /// What the remote may make us hold (command sets, data sets).
    pub limits: Limits,
    /// DICOM TLS (`tls`); `None`: plain TCP.
    pub tls: Option<TlsSettings>,
    /// User identity negotiation (`user_identity`).
    pub user_identity: Option<UserIdentitySettings>,
    /// `max_shared_associations`: the fleet-wide cap of associations to this node
    /// (needs `shared_limits`); `None`: only the pool's own `max_size`.
    pub max_shared_associations: Option<usize>,
    /// `shared_breaker`: the breaker's open state is shared through `shared_limits`.
    pub shared_breaker: bool,
}

impl NodeConfig {
    /// A node for an ad-hoc `AET@HOST:PORT` target, with built-in defaults
    /// everywhere; its name is the target as `AET@HOST:PORT`.
    pub fn ad_hoc(target: &AdHocTarget) -> NodeConfig {
        NodeConfig {
            name: target.to_string(),
            ae_title: target.ae_title.clone(),
            host: target.host.clone(),
            port: target.port,
            pool_name: None,
            pool: PoolSettings::default(),
            max_pdu_length: DEFAULT_MAX_PDU_LENGTH,
            max_send_pdu_length: DEFAULT_MAX_SEND_PDU_LENGTH,
            refused_context_ttl: DEFAULT_REFUSED_CONTEXT_TTL,
            timeouts: Timeouts::default(),
            retry: RetrySettings::default(),
            breaker: BreakerSettings::default(),
            limits: Limits::default(),
            tls: None,
            user_identity: None,
            max_shared_associations: None,
            shared_breaker: false,
        }
    }
}

/// The JSON Schema (draft 2020-12) of the hospital config, generated from the very
/// structs the parser reads (so it cannot drift from what is accepted), for editors
/// to validate and complete a config.
#[cfg(feature = "schema")]
pub fn json_schema() -> String {
    let mut schema = schemars::schema_for!(raw::RawConfig);
    schema.insert("title".into(), "pacs-net hospital config".into());
    serde_json::to_string_pretty(&schema).unwrap_or_else(|_| "{}".to_string())
}

impl Config {
    /// Parses, validates and merges a config given as JSON text.
    pub fn from_json_str(text: &str) -> Result<Config, ConfigError> {
        resolve::resolve(parse::parse(text)?)
    }

    /// Reads, parses, validates and merges a config file; every error names the file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Io {
            file: path.to_path_buf(),
            error,
        })?;
        let mut config = Config::from_json_str(&text).map_err(|e| e.in_file(path))?;
        // File paths in a node's `tls` and `user_identity` are relative to the config's folder.
        let dir = path.parent().unwrap_or(Path::new(""));
        for node in config.nodes.values_mut() {
            if let Some(tls) = &mut node.tls {
                tls.rebase(dir);
            }
            if let Some(identity) = &mut node.user_identity {
                identity.rebase(dir);
            }
        }
        Ok(config)
    }

    /// The node of that name.
    pub fn node(&self, name: &str) -> Option<&NodeConfig> {
        self.nodes.get(name)
    }

    /// The node names, sorted.
    pub fn node_names(&self) -> Vec<&str> {
        self.nodes.keys().map(String::as_str).collect()
    }

    /// A command-line TARGET: the node of that name, or else an ad-hoc
    /// `AET@HOST:PORT` (built-in defaults). Neither: [`ConfigError::UnknownNode`]
    /// listing the known names, or [`ConfigError::Target`] if it has an `@` but
    /// is not a valid `AET@HOST:PORT`.
    pub fn resolve_target(&self, target: &str) -> Result<NodeConfig, ConfigError> {
        if let Some(node) = self.node(target) {
            return Ok(node.clone());
        }
        if target.contains('@') {
            let ad_hoc: AdHocTarget = target.parse()?;
            return Ok(NodeConfig::ad_hoc(&ad_hoc));
        }
        Err(ConfigError::UnknownNode {
            name: target.to_string(),
            known: self.nodes.keys().cloned().collect(),
        })
    }
}
