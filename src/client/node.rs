//! One remote node: its association pool, circuit breaker and retry policy, and
//! the public C-ECHO / C-STORE / C-FIND, each an [`Operation`] run by the one
//! driver ([`Node::run`]).

use std::sync::Arc;
use std::time::Duration;

use crate::association::{AssociationParams, ContextRequest};
use crate::config::NodeConfig;
use crate::pool::Pool;
use crate::resilience::{BreakerState, Executor};

use super::health::{self, Borrows, NodeHealth};
use super::manager::AssociationManager;
use super::operation::Echo;
use super::outcome::NodeStats;
use super::telemetry::{Labels, NodeMetrics, Telemetry};

/// A remote AE: one pool + breaker + retry policy.
///
/// Usually obtained from [`Client::node`](super::Client::node). Building one opens
/// nothing yet (pool warm-up, if any, runs in the background):
///
/// ```
/// use pacs_net::client::Client;
/// use pacs_net::config::Config;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let client = Client::new(Config::from_json_str("{}").unwrap(), None);
/// let node = client.node("STORESCP@127.0.0.1:1").unwrap();
/// assert_eq!(node.name(), "STORESCP@127.0.0.1:1");
/// let stats = node.stats();
/// assert_eq!(stats.ae_title, "STORESCP");
/// assert_eq!(stats.pool.active, 0);
/// # }
/// ```
///
/// Operations need a peer:
///
/// ```no_run
/// # use pacs_net::{client::Client, config::Config};
/// # #[tokio::main]
/// # async fn main() {
/// # let client = Client::new(Config::from_json_str("{}").unwrap(), None);
/// let node = client.node("ORTHANC@127.0.0.1:4242").unwrap();
/// let outcome = node.echo().await;
/// match outcome.result {
///     Ok(status) => println!("C-ECHO: status {status} after {} attempt(s)", outcome.attempts),
///     Err(e) => eprintln!("C-ECHO failed: {e}"),
/// }
/// # }
/// ```
pub struct Node {
    config: NodeConfig,
    pool: Pool<AssociationManager>,
    executor: Arc<Executor>,
    metrics: Arc<NodeMetrics>,
    borrows: Borrows,
    /// C-ECHO has no arguments: one operation serves every call.
    pub(super) echo: Echo,
    /// The fleet's breaker for this node (`shared_breaker`).
    #[cfg(feature = "redis")]
    pub(super) shared_breaker: Option<Arc<super::shared::SharedBreaker>>,
    /// Dropped with the node: stops the watchdog.
    _watchdog: Option<tokio::sync::watch::Sender<()>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("name", &self.config.name).finish()
    }
}

impl Node {
    /// Build the node's pool (warm-up starts in the background), executor and
    /// watchdog, with telemetry of its own. Needs a tokio runtime.
    pub fn new(config: NodeConfig, calling_ae: &str) -> Node {
        Node::with_telemetry(config, calling_ae, Telemetry::default())
    }

    /// Like [`Node::new`], recording into a client's shared telemetry.
    pub fn with_telemetry(config: NodeConfig, calling_ae: &str, telemetry: Telemetry) -> Node {
        #[cfg(feature = "redis")]
        return Node::with_shared(config, calling_ae, telemetry, None);
        #[cfg(not(feature = "redis"))]
        Node::build(config, calling_ae, telemetry, Shared::default())
    }

    /// Like [`Node::with_telemetry`], under the fleet-wide limits of `shared`
    /// (the node's `max_shared_associations` and `shared_breaker`).
    #[cfg(feature = "redis")]
    pub fn with_shared(
        config: NodeConfig,
        calling_ae: &str,
        telemetry: Telemetry,
        shared: Option<Arc<super::shared::SharedLimits>>,
    ) -> Node {
        let parts = Shared {
            limiter: shared.as_ref().and_then(|s| s.limiter(&config)),
            breaker: shared.as_ref().and_then(|s| s.breaker(&config)),
        };
        Node::build(config, calling_ae, telemetry, parts)
    }

    #[cfg_attr(not(feature = "redis"), allow(unused_variables))]
    fn build(config: NodeConfig, calling_ae: &str, telemetry: Telemetry, shared: Shared) -> Node {
        let params = AssociationParams {
            calling_ae: calling_ae.to_string(),
            called_ae: config.ae_title.clone(),
            host: config.host.clone(),
            port: config.port,
            max_pdu_length: config.max_pdu_length,
            max_send_pdu_length: config.max_send_pdu_length,
            timeouts: config.timeouts,
            security: crate::association::Security::for_node(&config),
        };
        let manager = AssociationManager::with_refusal_ttl(params, config.refused_context_ttl);
        #[cfg(feature = "redis")]
        let manager = manager.with_limiter(shared.limiter);
        let pool = Pool::new(
            config.name.clone(),
            manager,
            config.pool.clone(),
            Some(ContextRequest::verification()),
        );
        let executor = Arc::new(Executor::new(
            &config.name,
            config.retry.clone(),
            config.breaker.clone(),
        ));
        {
            // Background warm-up (`min_size`) follows the breaker: no reconnecting
            // every few seconds to a node the breaker has declared down.
            let executor = Arc::downgrade(&executor);
            pool.set_replenish_gate(move || {
                executor
                    .upgrade()
                    .is_none_or(|e| e.breaker().state() == BreakerState::Closed)
            });
        }
        let labels: Labels = vec![
            ("node".into(), config.name.clone()),
            ("ae_title".into(), config.ae_title.clone()),
        ];
        let metrics = Arc::new(NodeMetrics::new(telemetry, labels));
        {
            let metrics = metrics.clone();
            executor.breaker().on_state_change(move |name, from, to| {
                metrics.breaker_transition(BreakerState::as_str(to));
                match to {
                    BreakerState::Open => tracing::warn!(node = %name, from = BreakerState::as_str(from), "circuit opened for {name}: operations fail fast until the next probe"),
                    BreakerState::HalfOpen => tracing::info!(node = %name, "circuit half-open: probing"),
                    BreakerState::Closed => tracing::info!(node = %name, from = BreakerState::as_str(from), "circuit closed"),
                }
            });
        }
        let borrows: Borrows = Arc::default();
        let watchdog = health::spawn_watchdog(
            config.name.clone(),
            pool.clone(),
            executor.clone(),
            borrows.clone(),
            metrics.clone(),
        );
        Node {
            config,
            pool,
            executor,
            metrics,
            borrows,
            echo: Echo::new(),
            #[cfg(feature = "redis")]
            shared_breaker: shared.breaker,
            _watchdog: watchdog,
        }
    }

    /// The node's name: its key in the config, or `AET@HOST:PORT`.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The node's resolved configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The node's association pool.
    pub fn pool(&self) -> &Pool<AssociationManager> {
        &self.pool
    }

    /// The node's retry policy, retry budget and circuit breaker.
    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    pub(crate) fn metrics(&self) -> &NodeMetrics {
        &self.metrics
    }

    pub(crate) fn borrows(&self) -> &Borrows {
        &self.borrows
    }

    /// Pool, breaker and retry statistics, and health.
    pub fn stats(&self) -> NodeStats {
        let pool = self.pool.stats();
        let resilience = self.executor.stats();
        let health = health::assess(
            &pool,
            &resilience.breaker,
            health::leak_reports(&self.pool, &self.borrows),
        );
        NodeStats {
            node: self.config.name.clone(),
            ae_title: self.config.ae_title.clone(),
            address: crate::config::host_port(&self.config.host, self.config.port),
            pool,
            resilience,
            health,
            #[cfg(feature = "redis")]
            shared: self.shared_stats(),
        }
    }

    /// Health alone.
    pub fn health(&self) -> NodeHealth {
        self.stats().health
    }

    /// Release idle associations, wait for busy ones up to `timeout`, abort the rest.
    pub async fn close(&self, timeout: Duration) {
        self.pool.close(timeout).await;
    }

    /// Operations holding an association now, by pool id (what leak reports name).
    pub fn borrowed_operations(&self) -> Vec<(u64, &'static str)> {
        let map = self.borrows.lock();
        let mut v: Vec<_> = map.iter().map(|(id, op)| (*id, *op)).collect();
        v.sort_unstable();
        v
    }
}

/// What a node takes from the shared limits (nothing without the `redis` feature).
#[derive(Default)]
struct Shared {
    #[cfg(feature = "redis")]
    limiter: Option<super::shared::NodeLimiter>,
    #[cfg(feature = "redis")]
    breaker: Option<Arc<super::shared::SharedBreaker>>,
}
