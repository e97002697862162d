//! The public API: a [`Client`] holds the nodes of a hospital config (created on
//! first use), each a pool of associations with its own circuit breaker and retry
//! policy, and runs C-ECHO, C-STORE and C-FIND through them.

mod commitment;
mod driver;
mod error;
mod find;
pub mod health;
mod manager;
mod node;
mod operation;
mod outcome;
mod retrieve;
#[cfg(feature = "redis")]
pub mod shared;
mod telemetry;
mod worklist;

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use crate::dimse::open_instance;
pub use commitment::{
    BatchOutcome, CommitAttempt, CommitOptions, CommitReport, Commitment, InstanceCommitment, ReportVia,
    COMMIT_BATCH_SIZE, DEFAULT_COMMIT_CONCURRENCY, DEFAULT_COMMIT_TIMEOUT,
};
pub use error::{is_unknown_host, OpError};
pub use find::FIND_STREAM_BUFFER;
pub use health::{HealthStatus, LeakReport, NodeHealth};
pub use manager::{AssociationManager, NegotiationMemory};
pub use node::Node;
pub use operation::Operation;
pub use outcome::{NodeStats, OpOptions, OperationError, Outcome, StoreOutcome};
pub use retrieve::{Retrieval, RetrievalItem, RetrieveReport, RetrieveRequest, RETRIEVAL_BUFFER};
pub use telemetry::Telemetry;

use crate::config::{Config, ConfigError, NodeConfig};

/// Nodes by name, created on first use so that a command touching one node opens
/// no association to the others.
///
/// ```
/// use pacs_net::client::Client;
/// use pacs_net::config::Config;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let config = Config::from_json_str(
///     r#"{"nodes": {"MAIN_PACS": {"ae_title": "ORTHANC", "host": "127.0.0.1", "port": 4242}}}"#,
/// )
/// .unwrap();
/// let client = Client::new(config, Some("MY_SCU".into()));
/// assert_eq!(client.calling_ae(), "MY_SCU");
/// // Nodes are created on first use: a config node by name, or AET@HOST:PORT.
/// let node = client.node("MAIN_PACS").unwrap();
/// assert_eq!(node.config().ae_title, "ORTHANC");
/// assert_eq!(client.stats().len(), 1);
/// assert!(client.node("NO_SUCH_NODE").is_err());
/// # }
/// ```
pub struct Client {
    config: Config,
    calling_ae: String,
    nodes: Mutex<BTreeMap<String, Arc<Node>>>,
    telemetry: Telemetry,
    overrides: RunOverrides,
    /// The link to `shared_limits`' Redis, made with the first node.
    #[cfg(feature = "redis")]
    shared: Mutex<Option<Arc<shared::SharedLimits>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("calling_ae", &self.calling_ae)
            .finish_non_exhaustive()
    }
}

/// Settings one run overrides on every node it uses (the CLI's `--attempts`,
/// `--connect-timeout-ms`, `--acse-timeout-ms`, `--dimse-timeout-ms`), and whether
/// an unreachable node gets one quick retry at most (one-shot commands).
#[derive(Debug, Clone, Default)]
pub struct RunOverrides {
    /// Attempts per operation (`--attempts`).
    pub max_attempts: Option<u32>,
    /// TCP connect timeout (`--connect-timeout-ms`).
    pub connect_timeout: Option<Duration>,
    /// A-ASSOCIATE response timeout (`--acse-timeout-ms`).
    pub acse_timeout: Option<Duration>,
    /// DIMSE response timeout (`--dimse-timeout-ms`).
    pub dimse_timeout: Option<Duration>,
    /// See [`crate::resilience::Executor::set_quick_unreachable`].
    pub quick_unreachable: bool,
    /// TLS for an ad-hoc `AET@HOST:PORT` target (`--tls*`); a config node keeps its own.
    pub ad_hoc_tls: Option<crate::config::TlsSettings>,
    /// User identity for an ad-hoc target (`--user`, `--password-env`).
    pub ad_hoc_user_identity: Option<crate::config::UserIdentitySettings>,
}

impl RunOverrides {
    fn apply(&self, config: &mut NodeConfig) {
        if let Some(n) = self.max_attempts {
            config.retry.max_attempts = n.max(1);
        }
        if let Some(t) = self.connect_timeout {
            config.timeouts.connect = t;
        }
        if let Some(t) = self.acse_timeout {
            config.timeouts.acse = t;
        }
        if let Some(t) = self.dimse_timeout {
            config.timeouts.dimse = t;
        }
    }
}

impl Client {
    /// `calling_ae` overrides the config's `local_ae_title`.
    pub fn new(config: Config, calling_ae: Option<String>) -> Client {
        let calling_ae = calling_ae.unwrap_or_else(|| config.local_ae_title.clone());
        Client {
            config,
            calling_ae,
            nodes: Mutex::new(BTreeMap::new()),
            telemetry: Telemetry::default(),
            overrides: RunOverrides::default(),
            #[cfg(feature = "redis")]
            shared: Mutex::new(None),
        }
    }

    /// The same client, with settings overridden for this run on every node it
    /// creates.
    pub fn with_overrides(mut self, overrides: RunOverrides) -> Client {
        self.overrides = overrides;
        self
    }

    /// Our AE title (Calling AE Title).
    pub fn calling_ae(&self) -> &str {
        &self.calling_ae
    }

    /// The hospital config the client was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The node for TARGET: a node name from the config, or `AET@HOST:PORT`
    /// ([`Config::resolve_target`]).
    pub fn node(&self, target: &str) -> Result<Arc<Node>, ConfigError> {
        let mut nodes = self.nodes.lock();
        if let Some(n) = nodes.get(target) {
            return Ok(n.clone());
        }
        let mut config = self.config.resolve_target(target)?;
        let ad_hoc_security = self.overrides.ad_hoc_tls.is_some() || self.overrides.ad_hoc_user_identity.is_some();
        if self.config.node(target).is_none() {
            config.tls = self.overrides.ad_hoc_tls.clone();
            config.user_identity = self.overrides.ad_hoc_user_identity.clone();
        } else if ad_hoc_security {
            tracing::warn!(
                node = target,
                "--tls*/--user apply to AET@HOST:PORT targets; node {target} uses its own tls and user_identity from the config"
            );
        }
        self.overrides.apply(&mut config);
        #[cfg(feature = "redis")]
        let node = Arc::new(Node::with_shared(
            config,
            &self.calling_ae,
            self.telemetry.clone(),
            self.shared_limits()?,
        ));
        #[cfg(not(feature = "redis"))]
        let node = Arc::new(Node::with_telemetry(config, &self.calling_ae, self.telemetry.clone()));
        node.executor().set_quick_unreachable(self.overrides.quick_unreachable);
        nodes.insert(target.to_string(), node.clone());
        Ok(node)
    }

    /// Create every node of the config now (pools warm up to `min_size`, the
    /// watchdogs start, and every node shows in stats and metrics), as a long-running
    /// service wants; the CLI creates nodes on first use instead.
    pub fn start_all(&self) -> Vec<Arc<Node>> {
        let names: Vec<String> = self.config.node_names().into_iter().map(String::from).collect();
        names.iter().filter_map(|n| self.node(n).ok()).collect()
    }

    /// The process's link to `shared_limits` (started on first use), if configured.
    #[cfg(feature = "redis")]
    fn shared_limits(&self) -> Result<Option<Arc<shared::SharedLimits>>, ConfigError> {
        let Some(config) = &self.config.shared_limits else {
            return Ok(None);
        };
        let mut slot = self.shared.lock();
        if let Some(s) = &*slot {
            return Ok(Some(s.clone()));
        }
        let started = shared::SharedLimits::start(config.clone())
            .map_err(|message| ConfigError::invalid("shared_limits.redis_url", message))?;
        *slot = Some(started.clone());
        Ok(Some(started))
    }

    /// The nodes used so far.
    pub fn nodes(&self) -> Vec<Arc<Node>> {
        self.nodes.lock().values().cloned().collect()
    }

    /// The operation metrics of every node of this client.
    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// Statistics of the nodes used so far.
    pub fn stats(&self) -> Vec<NodeStats> {
        self.nodes().iter().map(|n| n.stats()).collect()
    }

    /// Close every pool: A-RELEASE idle associations, wait for busy ones up to
    /// `timeout`, then abort the rest.
    pub async fn close(&self, timeout: Duration) {
        for node in self.nodes() {
            node.close(timeout).await;
        }
    }
}
