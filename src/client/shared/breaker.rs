//! The fleet's circuit breaker state for one node (`shared_breaker`): when one
//! process's breaker opens, it writes the open state into Redis with the open
//! period as TTL, and every process sharing the Redis fails fast until it ends;
//! then the fleet lets `half_open_max_calls` probes through in all, and the first
//! probe that succeeds closes the circuit for everyone (a failed one reopens it).
//! Each process's own breaker keeps its own statistics.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::ConnectionManager;
use redis::Script;
use tokio::time::Instant;

use crate::config::NodeConfig;

/// How often the fleet's state is read (how soon others see a breaker open).
pub(super) const POLL: Duration = Duration::from_millis(200);

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;
/// Not read yet: the first operation asks Redis.
const UNKNOWN: u8 = 3;

/// What the fleet's breaker says about the next operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead (closed, or Redis unavailable: the local breaker decides).
    Pass,
    /// Go ahead as one of the fleet's half-open probes: report the outcome.
    Probe,
    /// Fail fast: the fleet's circuit is open for this long yet (or its probes are taken).
    Refused(Duration),
}

/// One node's share of the fleet's breaker.
pub struct SharedBreaker {
    conn: ConnectionManager,
    /// The Redis, without credentials.
    redis: String,
    /// Whether the last read of the fleet's state worked.
    reachable: AtomicBool,
    node: String,
    open_key: String,
    half_key: String,
    probes_key: String,
    open_for: Duration,
    max_probes: u32,
    /// The state last read (CLOSED / OPEN / HALF_OPEN) and, when open, until when.
    state: AtomicU8,
    open_until: Mutex<Option<Instant>>,
    admit: Script,
    poller: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for SharedBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBreaker")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl Drop for SharedBreaker {
    fn drop(&mut self) {
        if let Some(p) = self.poller.lock().take() {
            p.abort();
        }
    }
}

impl SharedBreaker {
    pub(super) fn start(conn: ConnectionManager, redis: String, node: &NodeConfig) -> Arc<SharedBreaker> {
        let tag = format!("pacs-net:{{{}@{}:{}}}", node.ae_title, node.host, node.port);
        let breaker = Arc::new(SharedBreaker {
            conn,
            redis,
            reachable: AtomicBool::new(true),
            node: node.name.clone(),
            open_key: format!("{tag}:breaker-open"),
            half_key: format!("{tag}:breaker-half-open"),
            probes_key: format!("{tag}:breaker-probes"),
            open_for: node.breaker.open_duration,
            max_probes: node.breaker.half_open_max_calls.max(1),
            state: AtomicU8::new(UNKNOWN),
            open_until: Mutex::new(None),
            // KEYS: open, half, probes. ARGV: max probes.
            // {0, 0} closed; {1, pttl} open; {2, 1|0} half-open, probe granted or not.
            admit: Script::new(
                r"
local open = redis.call('PTTL', KEYS[1])
if open > 0 then return {1, open} end
local half = redis.call('PTTL', KEYS[2])
if half <= 0 then return {0, 0} end
local n = redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], half)
if n <= tonumber(ARGV[1]) then return {2, 1} end
return {2, 0}
",
            ),
            poller: Mutex::new(None),
        });
        let poller = tokio::spawn(poll_loop(Arc::downgrade(&breaker)));
        *breaker.poller.lock() = Some(poller);
        breaker
    }

    /// The Redis (without credentials) and whether its last read worked.
    pub fn redis(&self) -> (&str, bool) {
        (&self.redis, self.reachable.load(Ordering::Relaxed))
    }

    /// Whether the fleet's circuit is open now, as last read.
    pub fn is_open(&self) -> bool {
        self.state.load(Ordering::Relaxed) == OPEN
    }

    /// Before an operation. Only when the fleet's state is not closed (as last read)
    /// does this cost a Redis round trip.
    pub async fn admit(&self) -> Admission {
        match self.state.load(Ordering::Relaxed) {
            CLOSED => Admission::Pass,
            OPEN => {
                let remaining = self
                    .open_until
                    .lock()
                    .map(|u| u.saturating_duration_since(Instant::now()))
                    .unwrap_or_default();
                if remaining > Duration::ZERO {
                    Admission::Refused(remaining)
                } else {
                    self.admit_now().await
                }
            }
            _ => self.admit_now().await,
        }
    }

    async fn admit_now(&self) -> Admission {
        let mut conn = self.conn.clone();
        let answer: Result<(u8, i64), _> = self
            .admit
            .key(&self.open_key)
            .key(&self.half_key)
            .key(&self.probes_key)
            .arg(self.max_probes)
            .invoke_async(&mut conn)
            .await;
        match answer {
            Ok((1, pttl)) => {
                let left = Duration::from_millis(pttl.max(0) as u64);
                self.record(OPEN, Some(left));
                Admission::Refused(left)
            }
            Ok((2, 1)) => Admission::Probe,
            Ok((2, _)) => Admission::Refused(POLL),
            Ok(_) => {
                self.record(CLOSED, None);
                Admission::Pass
            }
            // Redis unavailable: the local breaker alone decides.
            Err(_) => Admission::Pass,
        }
    }

    fn record(&self, state: u8, open_for: Option<Duration>) {
        self.state.store(state, Ordering::Relaxed);
        *self.open_until.lock() = open_for.map(|d| Instant::now() + d);
    }

    /// This process's breaker opened (or a fleet probe failed): open the fleet's
    /// circuit for the open period, then half-open.
    pub async fn publish_open(&self) {
        self.record(OPEN, Some(self.open_for));
        let this = self;
        {
            let open_ms = this.open_for.as_millis().max(1) as u64;
            let mut conn = this.conn.clone();
            let result: Result<(), _> = redis::pipe()
                .cmd("SET")
                .arg(&this.open_key)
                .arg(1)
                .arg("PX")
                .arg(open_ms)
                .ignore()
                // Half-open lasts as long again after the open period: long enough for probes.
                .cmd("SET")
                .arg(&this.half_key)
                .arg(1)
                .arg("PX")
                .arg(open_ms * 2)
                .ignore()
                .cmd("DEL")
                .arg(&this.probes_key)
                .ignore()
                .query_async(&mut conn)
                .await;
            match result {
                Ok(()) => {
                    tracing::warn!(node = %this.node, "circuit opened across the fleet (shared_breaker) for {:.1}s", this.open_for.as_secs_f64())
                }
                Err(e) => {
                    tracing::warn!(node = %this.node, "shared breaker: could not publish the open circuit to Redis: {e}")
                }
            }
        }
    }

    /// A fleet probe (or any operation in a process whose circuit just closed)
    /// succeeded: the circuit closes for everyone.
    pub async fn publish_closed(&self) {
        self.record(CLOSED, None);
        let this = self;
        {
            let mut conn = this.conn.clone();
            let result: Result<(), _> = redis::cmd("DEL")
                .arg(&this.open_key)
                .arg(&this.half_key)
                .arg(&this.probes_key)
                .query_async(&mut conn)
                .await;
            if result.is_ok() {
                tracing::info!(node = %this.node, "circuit closed across the fleet (shared_breaker)");
            }
        }
    }
}

/// Reads the fleet's state every [`POLL`].
async fn poll_loop(breaker: std::sync::Weak<SharedBreaker>) {
    let mut interval = tokio::time::interval(POLL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(b) = breaker.upgrade() else { return };
        let mut conn = b.conn.clone();
        let answer: Result<(i64, i64), _> = redis::pipe()
            .cmd("PTTL")
            .arg(&b.open_key)
            .cmd("PTTL")
            .arg(&b.half_key)
            .query_async(&mut conn)
            .await;
        b.reachable.store(answer.is_ok(), Ordering::Relaxed);
        match answer {
            Ok((open, _)) if open > 0 => {
                if b.state.load(Ordering::Relaxed) != OPEN {
                    tracing::warn!(node = %b.node, "circuit open across the fleet (shared_breaker): failing fast for {:.1}s", open as f64 / 1000.0);
                }
                b.record(OPEN, Some(Duration::from_millis(open as u64)));
            }
            Ok((_, half)) if half > 0 => b.record(HALF_OPEN, None),
            Ok(_) => b.record(CLOSED, None),
            // Redis unavailable: the local breaker alone decides.
            Err(_) => b.record(CLOSED, None),
        }
    }
}
