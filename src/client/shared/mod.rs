//! Fleet-wide limits of the nodes, kept in Redis (feature `redis`): a counting
//! semaphore per node that caps the associations every pacs-net process sharing
//! the Redis opens to it (`max_shared_associations`), and a shared circuit
//! breaker state (`shared_breaker`).
//!
//! One [`SharedLimits`] per process (per [`Client`](super::Client)): one Redis
//! connection (re-established on its own), one background task that renews
//! every lease the process holds and notices when Redis comes back. A lease is
//! attached to the association it counts and given back when that association
//! is dropped, however it ends; a process killed outright stops renewing, and its
//! leases expire within `lease_seconds`.

mod breaker;
mod semaphore;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use tokio::time::Instant;

use crate::association::AssociationError;
use crate::config::{NodeConfig, OnUnavailable, SharedLimitsConfig};

pub use breaker::{Admission, SharedBreaker};
use semaphore::Keys;

/// Longest wait for one Redis round trip (connect or response) before Redis
/// counts as unavailable: an association is never held up long by Redis trouble.
const REDIS_TIMEOUT: Duration = Duration::from_millis(1_000);
/// The renewer's period at most (shorter with a short lease): also how soon a
/// Redis that came back is noticed.
const MAX_TICK: Duration = Duration::from_secs(1);
/// How long after an association ended its lease is given back: a PACS counts an
/// association until it has seen the transport close, a moment after our
/// A-RELEASE completes; giving the slot to another process at once could make
/// the PACS see one association too many.
pub const RELEASE_GRACE: Duration = Duration::from_millis(50);
/// How long a process that holds leases for a node waits for one more.
const HOLDER_PATIENCE: Duration = Duration::from_millis(250);
/// Poll interval bounds while waiting for a lease.
const POLL_MIN: Duration = Duration::from_millis(5);
const POLL_MAX: Duration = Duration::from_millis(50);

/// A node's shared-limit figures, for `--stats` and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SharedStats {
    /// The Redis (without credentials).
    pub redis: String,
    /// Whether the last Redis round trip worked.
    pub redis_available: bool,
    /// `max_shared_associations` (0: no fleet-wide cap, shared breaker only).
    pub max_shared_associations: usize,
    /// Leases this process holds for the node now (one per open association).
    pub leases_held: usize,
    /// Leases held across the fleet, as last seen in Redis.
    pub fleet_leases_seen: usize,
    /// Leases granted to this process so far.
    pub leases_acquired: u64,
    /// Lease renewals that failed (Redis unreachable).
    pub renew_failures: u64,
    /// Associations opened under the node's own limits because Redis was
    /// unreachable (`on_unavailable: "local"`).
    pub fallbacks: u64,
    /// Whether the fleet's breaker is open now (`shared_breaker`).
    pub shared_breaker_open: bool,
}

/// One process's link to the shared limits.
pub struct SharedLimits {
    inner: Arc<Inner>,
    renewer: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for SharedLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLimits")
            .field("redis", &self.inner.config.redis_display())
            .finish_non_exhaustive()
    }
}

impl Drop for SharedLimits {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

struct Inner {
    config: SharedLimitsConfig,
    conn: ConnectionManager,
    /// This process, in lease ids (pid + random: unique across hosts in practice).
    owner: String,
    next_lease: AtomicU64,
    /// Whether the last Redis round trip worked.
    available: AtomicBool,
    /// Every lease this process holds, by id, for the renewer.
    held: Mutex<HashMap<String, Arc<NodeCounters>>>,
    /// Per node key set.
    nodes: Mutex<Vec<Arc<NodeCounters>>>,
    acquire: Script,
    release: Script,
    renew: Script,
}

/// One node's semaphore keys and counters.
struct NodeCounters {
    node: String,
    keys: Keys,
    limit: usize,
    held: AtomicUsize,
    fleet_seen: AtomicUsize,
    acquired: AtomicU64,
    renew_failures: AtomicU64,
    fallbacks: AtomicU64,
    /// The fallback warning was logged in this outage (once per node per outage).
    warned: AtomicBool,
}

impl SharedLimits {
    /// The link for `config` (connects lazily: Redis may be down at start) and its
    /// renewer task. Needs a tokio runtime.
    pub fn start(config: SharedLimitsConfig) -> Result<Arc<SharedLimits>, String> {
        let client = redis::Client::open(config.redis_url.as_str())
            .map_err(|e| format!("shared_limits.redis_url {}: {e}", config.redis_display()))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|e| format!("shared limits: Redis at {}: {e}", config.redis_display()))?;
        let inner = Arc::new(Inner {
            owner: format!("{}-{:08x}", std::process::id(), rand::random::<u32>()),
            config,
            conn,
            next_lease: AtomicU64::new(1),
            available: AtomicBool::new(true),
            held: Mutex::default(),
            nodes: Mutex::default(),
            acquire: semaphore::acquire_script(),
            release: semaphore::release_script(),
            renew: semaphore::renew_script(),
        });
        let renewer = tokio::spawn(renew_loop(Arc::downgrade(&inner)));
        Ok(Arc::new(SharedLimits { inner, renewer }))
    }

    /// The semaphore of `node`, if it sets `max_shared_associations`.
    /// `acquire_timeout`: how long an association may wait for a lease.
    pub fn limiter(&self, node: &NodeConfig) -> Option<NodeLimiter> {
        let limit = node.max_shared_associations?;
        let counters = Arc::new(NodeCounters {
            node: node.name.clone(),
            keys: Keys::for_node(&node.ae_title, &node.host, node.port),
            limit,
            held: AtomicUsize::new(0),
            fleet_seen: AtomicUsize::new(0),
            acquired: AtomicU64::new(0),
            renew_failures: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            warned: AtomicBool::new(false),
        });
        self.inner.nodes.lock().push(counters.clone());
        Some(NodeLimiter {
            inner: self.inner.clone(),
            counters,
            acquire_timeout: node.pool.acquire_timeout,
        })
    }

    /// The shared breaker of `node`, if it sets `shared_breaker`.
    pub fn breaker(&self, node: &NodeConfig) -> Option<Arc<SharedBreaker>> {
        node.shared_breaker
            .then(|| SharedBreaker::start(self.inner.conn.clone(), self.inner.config.redis_display(), node))
    }

    /// Whether the last Redis round trip worked.
    pub fn redis_available(&self) -> bool {
        self.inner.available.load(Ordering::Relaxed)
    }
}

/// Takes and gives back one node's leases (held by its association manager).
pub struct NodeLimiter {
    inner: Arc<Inner>,
    counters: Arc<NodeCounters>,
    acquire_timeout: Duration,
}

impl std::fmt::Debug for NodeLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeLimiter")
            .field("node", &self.counters.node)
            .field("limit", &self.counters.limit)
            .finish_non_exhaustive()
    }
}

impl NodeLimiter {
    /// A lease for one association, waiting up to the pool's `acquire_timeout`
    /// for one to free up (in ticket order across the fleet). Redis unreachable:
    /// a local lease (`on_unavailable: "local"`: counted once Redis is back) or an
    /// error (`"fail"`). Cancel-safe: a dropped wait leaves the queue.
    pub async fn acquire(&self) -> Result<Lease, AssociationError> {
        let c = &self.counters;
        let id = format!(
            "{}:{}",
            self.inner.owner,
            self.inner.next_lease.fetch_add(1, Ordering::Relaxed)
        );
        if !self.inner.available.load(Ordering::Relaxed) {
            // Known down: no round trip per association; the renewer notices the return.
            return self.unavailable(id, None);
        }
        let started = Instant::now();
        // A process that already holds leases for the node gives up soon: its pool
        // then queues the caller on its open associations and, at its (lowered)
        // cap, closes an idle one that does not fit, which frees a lease. Waiting
        // long here would let idle associations of every process hold the fleet's
        // slots while each waits for one more. A process with none waits its turn.
        let patience = if c.held.load(Ordering::Relaxed) > 0 {
            self.acquire_timeout.min(HOLDER_PATIENCE)
        } else {
            self.acquire_timeout
        };
        let deadline = started + patience;
        let mut queued = QueueGuard {
            inner: self.inner.clone(),
            keys: c.keys.clone(),
            id: Some(id.clone()),
        };
        let mut pause = POLL_MIN;
        loop {
            let mut conn = self.inner.conn.clone();
            let answer: Result<(u8, usize), redis::RedisError> = self
                .inner
                .acquire
                .key(&c.keys.holders)
                .key(&c.keys.queue)
                .key(&c.keys.alive)
                .key(&c.keys.ticket)
                .arg(c.limit)
                .arg(self.inner.config.lease.as_millis() as u64)
                .arg(&id)
                .arg(semaphore::QUEUE_LIVENESS.as_millis() as u64)
                .invoke_async(&mut conn)
                .await;
            match answer {
                Ok((granted, fleet)) => {
                    self.inner.mark_available(true);
                    c.fleet_seen.store(fleet, Ordering::Relaxed);
                    if granted == 1 {
                        queued.id = None;
                        c.acquired.fetch_add(1, Ordering::Relaxed);
                        return Ok(self.lease(id, true));
                    }
                }
                Err(e) => {
                    queued.id = None;
                    return self.unavailable(id, Some(e));
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(AssociationError::SharedLimit {
                    message: format!(
                        "no lease of node {}'s fleet-wide cap within {:.1}s (max_shared_associations {}, \
                         {} held across the fleet): every shared slot stayed busy",
                        c.node,
                        now.duration_since(started).as_secs_f64(),
                        c.limit,
                        c.fleet_seen.load(Ordering::Relaxed)
                    ),
                    transient: true,
                });
            }
            let jitter = Duration::from_millis(rand::random::<u64>() % 5);
            tokio::time::sleep((pause + jitter).min(deadline - now)).await;
            pause = (pause * 2).min(POLL_MAX);
        }
    }

    fn lease(&self, id: String, granted: bool) -> Lease {
        self.counters.held.fetch_add(1, Ordering::Relaxed);
        self.inner.held.lock().insert(id.clone(), self.counters.clone());
        Lease {
            inner: self.inner.clone(),
            counters: self.counters.clone(),
            id,
            granted,
        }
    }

    fn unavailable(&self, id: String, error: Option<redis::RedisError>) -> Result<Lease, AssociationError> {
        let c = &self.counters;
        let redis = self.inner.config.redis_display();
        let reason = match &error {
            Some(e) => e.to_string(),
            None => "unreachable at the last try".to_string(),
        };
        if error.is_some() {
            self.inner.mark_available(false);
        }
        match self.inner.config.on_unavailable {
            OnUnavailable::Fail => Err(AssociationError::SharedLimit {
                message: format!(
                    "shared limits: Redis at {redis} is unavailable ({reason}); on_unavailable is \"fail\", \
                     so no association is opened to node {}",
                    c.node
                ),
                transient: false,
            }),
            OnUnavailable::Local => {
                c.fallbacks.fetch_add(1, Ordering::Relaxed);
                if c.warned.swap(true, Ordering::Relaxed) {
                    tracing::debug!(node = %c.node, "shared limits: Redis unavailable: association counted locally only");
                    return Ok(self.lease(id, false));
                }
                tracing::warn!(
                    node = %c.node,
                    redis = %redis,
                    "shared limits: Redis unavailable ({reason}): node {} falls back to its own limits \
                     (pool max_size) until Redis is back",
                    c.node
                );
                Ok(self.lease(id, false))
            }
        }
    }

    /// This node's figures.
    pub fn stats(&self) -> SharedStats {
        let c = &self.counters;
        SharedStats {
            redis: self.inner.config.redis_display(),
            redis_available: self.inner.available.load(Ordering::Relaxed),
            max_shared_associations: c.limit,
            leases_held: c.held.load(Ordering::Relaxed),
            fleet_leases_seen: c.fleet_seen.load(Ordering::Relaxed),
            leases_acquired: c.acquired.load(Ordering::Relaxed),
            renew_failures: c.renew_failures.load(Ordering::Relaxed),
            fallbacks: c.fallbacks.load(Ordering::Relaxed),
            shared_breaker_open: false,
        }
    }
}

impl Inner {
    fn mark_available(&self, now: bool) {
        let before = self.available.swap(now, Ordering::Relaxed);
        if before != now {
            if now {
                for node in self.nodes.lock().iter() {
                    node.warned.store(false, Ordering::Relaxed);
                }
                tracing::info!(redis = %self.config.redis_display(), "shared limits: Redis is back: fleet-wide limits apply again");
            } else {
                tracing::warn!(redis = %self.config.redis_display(), on_unavailable = self.config.on_unavailable.as_str(), "shared limits: Redis unavailable");
            }
        }
    }

    async fn release(&self, keys: &Keys, ids: &[String]) -> Option<usize> {
        let mut conn = self.conn.clone();
        let mut call = self.release.key(&keys.holders);
        call.key(&keys.queue).key(&keys.alive);
        for id in ids {
            call.arg(id);
        }
        call.invoke_async::<usize>(&mut conn).await.ok()
    }
}

/// One association's place in a node's fleet-wide count. Dropped with the
/// association: given back at once (or, without a runtime, at its expiry).
pub struct Lease {
    inner: Arc<Inner>,
    counters: Arc<NodeCounters>,
    id: String,
    /// Granted by Redis (else taken locally while Redis was unavailable; the
    /// renewer writes it into Redis when it is back, since the association is open).
    granted: bool,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("node", &self.counters.node)
            .field("id", &self.id)
            .field("granted", &self.granted)
            .finish()
    }
}

impl Lease {
    /// Gives the lease back, after [`RELEASE_GRACE`]: for an association that
    /// has just ended, so that the PACS has seen its transport close.
    pub async fn release(mut self) {
        tokio::time::sleep(RELEASE_GRACE).await;
        self.forget();
        let id = std::mem::take(&mut self.id);
        if let Some(fleet) = self.inner.release(&self.counters.keys, &[id]).await {
            self.counters.fleet_seen.store(fleet, Ordering::Relaxed);
        }
    }

    /// Gives the lease back now (no grace): an acquire + release round, as the
    /// benchmark measures it.
    pub async fn release_now(mut self) {
        self.forget();
        let id = std::mem::take(&mut self.id);
        self.inner.release(&self.counters.keys, &[id]).await;
    }

    /// No longer held by this process (nor renewed).
    fn forget(&mut self) {
        if self.inner.held.lock().remove(&self.id).is_some() {
            self.counters.held.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.id.is_empty() {
            return; // given back by `release`
        }
        self.forget();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let inner = self.inner.clone();
            let counters = self.counters.clone();
            let id = std::mem::take(&mut self.id);
            drop(handle.spawn(async move {
                tokio::time::sleep(RELEASE_GRACE).await;
                if let Some(fleet) = inner.release(&counters.keys, &[id]).await {
                    counters.fleet_seen.store(fleet, Ordering::Relaxed);
                }
            }));
        }
    }
}

/// Takes a waiter out of the queue when its wait ends without a lease.
struct QueueGuard {
    inner: Arc<Inner>,
    keys: Keys,
    id: Option<String>,
}

impl Drop for QueueGuard {
    fn drop(&mut self) {
        let (Some(id), Ok(handle)) = (self.id.take(), tokio::runtime::Handle::try_current()) else {
            return;
        };
        let inner = self.inner.clone();
        let keys = self.keys.clone();
        drop(handle.spawn(async move {
            inner.release(&keys, &[id]).await;
        }));
    }
}

/// Renews every lease of the process, a third of a lease apart (at most a
/// second), one script call per node; notices Redis coming back.
async fn renew_loop(inner: std::sync::Weak<Inner>) {
    let tick = match inner.upgrade() {
        Some(i) => (i.config.lease / 3).clamp(Duration::from_millis(100), MAX_TICK),
        None => return,
    };
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let nodes: Vec<Arc<NodeCounters>> = inner.nodes.lock().clone();
        let held: Vec<(String, Arc<NodeCounters>)> = inner
            .held
            .lock()
            .iter()
            .map(|(id, c)| (id.clone(), c.clone()))
            .collect();
        for node in nodes {
            let ids: Vec<&String> = held
                .iter()
                .filter(|(_, c)| Arc::ptr_eq(c, &node))
                .map(|(id, _)| id)
                .collect();
            let mut conn = inner.conn.clone();
            let mut call = inner.renew.key(&node.keys.holders);
            call.arg(inner.config.lease.as_millis() as u64);
            for id in &ids {
                call.arg(id.as_str());
            }
            match call.invoke_async::<usize>(&mut conn).await {
                Ok(fleet) => {
                    node.fleet_seen.store(fleet, Ordering::Relaxed);
                    inner.mark_available(true);
                }
                Err(e) => {
                    if !ids.is_empty() {
                        node.renew_failures.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::debug!(node = %node.node, "shared limits: lease renewal failed: {e}");
                    inner.mark_available(false);
                }
            }
        }
    }
}

/// A node's view of the fleet-wide limits.
impl super::Node {
    /// The fleet's breaker for this node, if `shared_breaker` is on.
    #[cfg(feature = "redis")]
    pub(crate) fn shared_breaker(&self) -> Option<&Arc<SharedBreaker>> {
        self.shared_breaker.as_ref()
    }

    /// The node's fleet-wide figures (`shared_limits`), if it uses them.
    #[cfg(feature = "redis")]
    pub fn shared_stats(&self) -> Option<SharedStats> {
        let mut stats = match self.pool().manager().limiter() {
            Some(l) => l.stats(),
            None => {
                let (redis, available) = self.shared_breaker.as_ref()?.redis();
                SharedStats {
                    redis: redis.to_string(),
                    redis_available: available,
                    ..Default::default()
                }
            }
        };
        stats.shared_breaker_open = self.shared_breaker.as_ref().is_some_and(|b| b.is_open());
        Some(stats)
    }
}
