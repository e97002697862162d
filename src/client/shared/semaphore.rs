//! The fleet-wide counting semaphore of one node: leases in a Redis sorted set,
//! taken and renewed by Lua scripts so that every step is atomic.
//!
//! The design is the fair counting semaphore of "Redis in Action" 6.3, with two
//! changes: expiry is a deadline scored by Redis's own clock (`TIME`), so hosts
//! with skewed clocks agree, and waiters queue in ticket order (a counter), so a
//! slot freed while several processes wait goes to the one that asked first and
//! no instance starves. A waiter that stops polling (killed, cancelled) leaves
//! the queue after [`QUEUE_LIVENESS`].

use std::time::Duration;

use redis::Script;

/// Keys of one node's semaphore. The `{...}` hash tag keeps them in one slot
/// (Redis Cluster runs a script only over keys of one slot).
#[derive(Debug, Clone)]
pub(super) struct Keys {
    /// Sorted set: lease id -> expiry (ms, Redis clock).
    pub holders: String,
    /// Sorted set: waiting lease id -> ticket.
    pub queue: String,
    /// Sorted set: waiting lease id -> liveness deadline (ms).
    pub alive: String,
    /// Counter of tickets.
    pub ticket: String,
}

impl Keys {
    /// The keys of the PACS `ae_title@host:port`: every process that talks to that
    /// PACS counts in the same set, whatever its config calls the node.
    pub(super) fn for_node(ae_title: &str, host: &str, port: u16) -> Keys {
        let tag = format!("pacs-net:{{{ae_title}@{host}:{port}}}");
        Keys {
            holders: format!("{tag}:leases"),
            queue: format!("{tag}:queue"),
            alive: format!("{tag}:queue-alive"),
            ticket: format!("{tag}:ticket"),
        }
    }
}

/// How long a waiter stays queued without polling again.
pub(super) const QUEUE_LIVENESS: Duration = Duration::from_secs(2);

/// The current time by Redis's clock, in ms, and the expired entries purged.
const PRELUDE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
";

/// KEYS: holders, queue, alive, ticket. ARGV: limit, lease_ms, lease id, liveness_ms.
/// Returns {granted (0/1), leases held across the fleet after the call}.
pub(super) fn acquire_script() -> Script {
    Script::new(&format!(
        r"{PRELUDE}
local limit = tonumber(ARGV[1])
local lease_ms = tonumber(ARGV[2])
local id = ARGV[3]
local live_ms = tonumber(ARGV[4])
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, m in ipairs(gone) do redis.call('ZREM', KEYS[2], m) end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if not redis.call('ZSCORE', KEYS[2], id) then
  redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[4]), id)
end
redis.call('ZADD', KEYS[3], now + live_ms, id)
local keep = math.max(lease_ms, live_ms) * 2
for i = 2, 4 do redis.call('PEXPIRE', KEYS[i], keep) end
local held = redis.call('ZCARD', KEYS[1])
local rank = redis.call('ZRANK', KEYS[2], id)
if held < limit and rank < limit - held then
  redis.call('ZADD', KEYS[1], now + lease_ms, id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  redis.call('PEXPIRE', KEYS[1], lease_ms * 2)
  return {{1, held + 1}}
end
return {{0, held}}
"
    ))
}

/// KEYS: holders, queue, alive. ARGV: lease ids. Gives leases back (or leaves
/// the queue). Returns the leases held across the fleet after the call.
pub(super) fn release_script() -> Script {
    Script::new(&format!(
        r"{PRELUDE}
for i = 1, #ARGV do
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
  redis.call('ZREM', KEYS[3], ARGV[i])
end
return redis.call('ZCARD', KEYS[1])
"
    ))
}

/// KEYS: holders. ARGV: lease_ms, lease ids. Pushes each lease's expiry a full
/// lease ahead. A lease that expired meanwhile (Redis restarted empty, this
/// process stalled) is written back: its association is open, and the count
/// must say so. Returns the leases held across the fleet.
pub(super) fn renew_script() -> Script {
    Script::new(&format!(
        r"{PRELUDE}
local lease_ms = tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], now + lease_ms, ARGV[i]) end
if #ARGV > 1 then redis.call('PEXPIRE', KEYS[1], lease_ms * 2) end
return redis.call('ZCARD', KEYS[1])
"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pacs_one_set_in_one_cluster_slot() {
        let k = Keys::for_node("ORTHANC", "10.0.0.5", 4242);
        assert_eq!(k.holders, "pacs-net:{ORTHANC@10.0.0.5:4242}:leases");
        assert!(k.queue.starts_with("pacs-net:{ORTHANC@10.0.0.5:4242}:"));
    }
}
