//! Deterministic pool tests: a fake manager (an in-memory "remote" that counts live
//! resources, opens, closes and aborts) and tokio's paused clock, so every wait and
//! timeout happens in virtual time and the schedule is the same on every run.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout, Instant};

use super::*;

#[derive(Debug, thiserror::Error)]
enum FakeError {
    #[error("connection refused")]
    Refused,
    #[error("remote at capacity")]
    Capacity,
    #[error("echo failed")]
    Echo,
}

/// The other end: what is open there, and how it should misbehave.
#[derive(Default)]
struct Remote {
    live: AtomicUsize,
    next_id: AtomicU64,
    opening: AtomicUsize,
    peak_opening: AtomicUsize,
    closes: AtomicUsize,
    aborts: AtomicUsize,
    validations: AtomicUsize,
    /// The next this many creations fail with `Refused`.
    fail_creates: AtomicUsize,
    /// Creation fails with `Capacity` at this many live resources (0: no limit).
    capacity: AtomicUsize,
    create_delay_ms: AtomicU64,
    validate_delay_ms: AtomicU64,
    /// Like a stock `storescp`: a new one is not answered while one is open (after
    /// 10 s: `Refused`, as an ACSE timeout would be).
    one_at_a_time: std::sync::atomic::AtomicBool,
    dead: Mutex<HashSet<u64>>,
    broken: Mutex<HashSet<u64>>,
}

impl Remote {
    fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }

    fn kill(&self, id: u64) {
        self.dead.lock().unwrap().insert(id);
    }

    fn break_echo(&self, id: u64) {
        self.broken.lock().unwrap().insert(id);
    }
}

struct FakeRes {
    id: u64,
    kind: u32,
    /// Set by a test to play "an operation was in flight".
    poisoned: bool,
    remote: Arc<Remote>,
}

impl Drop for FakeRes {
    fn drop(&mut self) {
        self.remote.live.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Fake(Arc<Remote>);

/// Counts a creation in flight, even one whose future is dropped.
struct Opening<'a>(&'a Remote);

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        self.0.opening.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Manager for Fake {
    type Resource = FakeRes;
    type Request = u32;
    type Error = FakeError;

    async fn create(&self, kind: &u32) -> Result<FakeRes, FakeError> {
        let remote = &self.0;
        let now_opening = remote.opening.fetch_add(1, Ordering::SeqCst) + 1;
        let _opening = Opening(remote);
        remote.peak_opening.fetch_max(now_opening, Ordering::SeqCst);
        let delay = remote.create_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            sleep(Duration::from_millis(delay)).await;
        }
        if remote.one_at_a_time.load(Ordering::SeqCst) {
            let since = tokio::time::Instant::now();
            while remote.live() > 0 {
                if since.elapsed() >= secs(10) {
                    return Err(FakeError::Refused);
                }
                sleep(ms(1)).await;
            }
        }
        let failing = remote.fail_creates.load(Ordering::SeqCst);
        if failing > 0 {
            remote.fail_creates.store(failing - 1, Ordering::SeqCst);
            return Err(FakeError::Refused);
        }
        let capacity = remote.capacity.load(Ordering::SeqCst);
        if capacity > 0 && remote.live() >= capacity {
            return Err(FakeError::Capacity);
        }
        remote.live.fetch_add(1, Ordering::SeqCst);
        Ok(FakeRes {
            id: remote.next_id.fetch_add(1, Ordering::SeqCst) + 1,
            kind: *kind,
            poisoned: false,
            remote: remote.clone(),
        })
    }

    fn fits(&self, res: &FakeRes, kind: &u32) -> bool {
        res.kind == *kind
    }

    fn is_alive(&self, res: &mut FakeRes) -> bool {
        !self.0.dead.lock().unwrap().contains(&res.id)
    }

    async fn validate(&self, res: &mut FakeRes) -> Result<(), FakeError> {
        self.0.validations.fetch_add(1, Ordering::SeqCst);
        let delay = self.0.validate_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            sleep(Duration::from_millis(delay)).await;
        }
        if self.0.broken.lock().unwrap().contains(&res.id) {
            return Err(FakeError::Echo);
        }
        Ok(())
    }

    fn is_reusable(&self, res: &FakeRes) -> bool {
        !res.poisoned
    }

    async fn close(&self, res: FakeRes) {
        self.0.closes.fetch_add(1, Ordering::SeqCst);
        drop(res);
    }

    async fn abort(&self, res: FakeRes) {
        self.0.aborts.fetch_add(1, Ordering::SeqCst);
        drop(res);
    }

    fn is_capacity_error(&self, err: &FakeError) -> bool {
        matches!(err, FakeError::Capacity)
    }

    fn is_limit_symptom(&self, err: &FakeError) -> bool {
        matches!(err, FakeError::Capacity | FakeError::Refused)
    }
}

type FakePool = Pool<Fake>;
type Acquired = Result<Pooled<Fake>, PoolError<FakeError>>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn settings(max_size: usize) -> PoolSettings {
    PoolSettings {
        max_size,
        acquire_timeout: secs(5),
        ..PoolSettings::default()
    }
}

fn new_pool(settings: PoolSettings) -> (FakePool, Arc<Remote>) {
    let remote = Arc::new(Remote::default());
    let pool = Pool::new("test", Fake(remote.clone()), settings, None);
    (pool, remote)
}

/// Lets every runnable task (teardowns, hand-offs) run; virtual time barely moves.
async fn settle() {
    sleep(ms(1)).await;
}

fn spawn_acquire(pool: &FakePool, kind: u32, priority: Priority) -> JoinHandle<Acquired> {
    let pool = pool.clone();
    tokio::spawn(async move { pool.acquire_with(&kind, priority).await })
}

/// After everything has been returned and torn down: nothing borrowed, queued or in
/// flight, and the remote holds exactly what the pool counts.
fn assert_quiet(pool: &FakePool, remote: &Remote) -> PoolStats {
    let stats = pool.stats();
    assert_eq!(stats.active, 0, "{stats:?}");
    assert_eq!(stats.waiting, 0, "{stats:?}");
    assert_eq!(stats.opening, 0, "{stats:?}");
    assert_eq!(stats.closing, 0, "{stats:?}");
    assert!(stats.total <= stats.max_size, "{stats:?}");
    assert_eq!(remote.live(), stats.total, "{stats:?}");
    stats
}

#[tokio::test(start_paused = true)]
async fn reuses_the_most_recently_used_idle_resource() {
    let (pool, remote) = new_pool(settings(4));
    let a = pool.acquire(&1).await.unwrap();
    let b = pool.acquire(&1).await.unwrap();
    assert!(!a.is_reused());
    assert_eq!(a.uses(), 1);
    let b_id = b.id;
    drop(a);
    drop(b);
    let c = pool.acquire(&1).await.unwrap();
    assert_eq!(c.id, b_id);
    assert!(c.is_reused());
    assert_eq!(c.uses(), 2);
    let stats = pool.stats();
    assert_eq!((stats.created, stats.acquisitions, stats.releases), (2, 3, 2));
    assert_eq!((stats.total, stats.active, stats.idle), (2, 1, 1));
    assert_eq!(stats.peak_active, 2);
    drop(c);
    assert_quiet(&pool, &remote);
}

#[tokio::test(start_paused = true)]
async fn max_size_caps_all_request_kinds_and_waits_time_out() {
    let (pool, _remote) = new_pool(settings(2));
    let a = pool.acquire(&1).await.unwrap();
    let b = pool.acquire(&2).await.unwrap();
    assert_eq!((a.kind, b.kind), (1, 2));
    let start = Instant::now();
    let err = pool.acquire(&3).await.unwrap_err();
    assert_eq!(start.elapsed(), secs(5));
    assert!(matches!(err, PoolError::Timeout { waiters: 1, .. }));
    assert_eq!(
        err.to_string(),
        "pool test exhausted: max_size 2, 1 waiters, waited 5.0s"
    );
    let stats = pool.stats();
    assert_eq!((stats.acquire_timeouts, stats.waiting, stats.total), (1, 0, 2));
    assert_eq!(stats.wait.max_ms, 5_000.0);
}

#[tokio::test(start_paused = true)]
async fn stale_idle_resources_are_aborted_and_replaced() {
    let (pool, remote) = new_pool(settings(4));
    let a = pool.acquire(&1).await.unwrap();
    let a_id = a.id;
    drop(a);
    remote.kill(a_id);
    let b = pool.acquire(&1).await.unwrap();
    assert_ne!(b.id, a_id);
    assert!(!b.is_reused());
    drop(b);
    settle().await;
    let stats = assert_quiet(&pool, &remote);
    assert_eq!(stats.destroyed.stale, 1);
    assert_eq!(Remote::get(&remote.aborts), 1);
}

#[tokio::test(start_paused = true)]
async fn validates_only_after_validation_interval_and_replaces_failures() {
    let (pool, remote) = new_pool(PoolSettings {
        validation_interval: secs(10),
        ..settings(4)
    });
    drop(pool.acquire(&1).await.unwrap());
    sleep(secs(5)).await;
    let a = pool.acquire(&1).await.unwrap();
    assert_eq!(Remote::get(&remote.validations), 0);
    let a_id = a.id;
    drop(a);
    sleep(secs(11)).await;
    let a = pool.acquire(&1).await.unwrap();
    assert_eq!((a.id, Remote::get(&remote.validations)), (a_id, 1));
    drop(a);
    remote.break_echo(a_id);
    sleep(secs(11)).await;
    let b = pool.acquire(&1).await.unwrap();
    assert_ne!(b.id, a_id);
    drop(b);
    settle().await;
    let stats = assert_quiet(&pool, &remote);
    assert_eq!((stats.validations, stats.validation_failures), (2, 1));
    assert_eq!(stats.destroyed.invalid, 1);
    assert_eq!(Remote::get(&remote.aborts), 1);

    // Without validate_on_borrow nothing is checked.
    let (pool, remote) = new_pool(PoolSettings {
        validation_interval: secs(10),
        validate_on_borrow: false,
        ..settings(4)
    });
    drop(pool.acquire(&1).await.unwrap());
    sleep(secs(11)).await;
    drop(pool.acquire(&1).await.unwrap());
    assert_eq!(Remote::get(&remote.validations), 0);
}

#[tokio::test(start_paused = true)]
async fn creation_is_throttled_by_max_concurrent_opens() {
    let (pool, remote) = new_pool(PoolSettings {
        max_concurrent_opens: 2,
        ..settings(5)
    });
    remote.create_delay_ms.store(100, Ordering::SeqCst);
    let start = Instant::now();
    let tasks: Vec<_> = (0..5).map(|_| spawn_acquire(&pool, 1, Priority::Normal)).collect();
    let mut guards = Vec::new();
    for task in tasks {
        guards.push(task.await.unwrap().unwrap());
    }
    // Three waves of at most two creations each.
    assert_eq!(start.elapsed(), ms(300));
    assert_eq!(Remote::get(&remote.peak_opening), 2);
    assert_eq!(pool.stats().created, 5);
}

#[tokio::test(start_paused = true)]
async fn a_non_fitting_idle_resource_is_closed_before_creating() {
    // Below the cap too: a single-association remote would otherwise queue the new
    // one behind the idle one.
    for max_size in [1, 4] {
        let (pool, remote) = new_pool(settings(max_size));
        drop(pool.acquire(&1).await.unwrap());
        let b = pool.acquire(&2).await.unwrap();
        assert_eq!(b.kind, 2);
        // Closed before the new one was opened, not alongside.
        assert_eq!((Remote::get(&remote.closes), remote.live()), (1, 1));
        drop(b);
        let stats = assert_quiet(&pool, &remote);
        assert_eq!((stats.destroyed.evicted, stats.created, stats.total), (1, 2, 1));
    }
}

#[tokio::test(start_paused = true)]
async fn a_returned_resource_goes_straight_to_a_fitting_waiter() {
    let (pool, remote) = new_pool(settings(1));
    let a = pool.acquire(&1).await.unwrap();
    let a_id = a.id;
    let waiter = spawn_acquire(&pool, 1, Priority::Normal);
    settle().await;
    assert_eq!(pool.stats().waiting, 1);
    sleep(secs(2)).await;
    drop(a);
    let b = waiter.await.unwrap().unwrap();
    assert_eq!((b.id, b.is_reused(), b.uses()), (a_id, true, 2));
    let stats = pool.stats();
    assert_eq!(stats.created, 1);
    assert!(stats.wait.max_ms >= 2_000.0 && stats.wait.max_ms < 2_100.0, "{stats:?}");
    drop(b);
    assert_quiet(&pool, &remote);
}

#[tokio::test(start_paused = true)]
async fn a_returned_resource_fitting_no_waiter_is_evicted_for_the_head_waiter() {
    let (pool, remote) = new_pool(settings(1));
    let a = pool.acquire(&1).await.unwrap();
    let waiter = spawn_acquire(&pool, 2, Priority::Normal);
    settle().await;
    drop(a);
    let b = waiter.await.unwrap().unwrap();
    assert_eq!((b.kind, b.is_reused()), (2, false));
    drop(b);
    let stats = assert_quiet(&pool, &remote);
    assert_eq!(stats.destroyed.evicted, 1);
}

#[tokio::test(start_paused = true)]
async fn an_uncommon_request_is_not_starved_by_common_ones() {
    let (pool, _remote) = new_pool(PoolSettings {
        acquire_timeout: secs(10),
        ..settings(1)
    });
    // Three callers keep the only slot busy with kind 1, and one of them is always
    // waiting when it comes back.
    let churners: Vec<_> = (0..3)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let end = Instant::now() + secs(5);
                while Instant::now() < end {
                    let guard = pool.acquire(&1).await.unwrap();
                    sleep(ms(10)).await;
                    drop(guard);
                }
            })
        })
        .collect();
    sleep(ms(100)).await;
    let start = Instant::now();
    let odd = pool.acquire(&2).await.unwrap();
    let waited = start.elapsed();
    assert!(waited >= AGING_STEP && waited < AGING_STEP + ms(50), "{waited:?}");
    assert_eq!(odd.kind, 2);
    drop(odd);
    for churner in churners {
        churner.await.unwrap();
    }
    assert!(pool.stats().destroyed.evicted >= 2);
}

#[tokio::test(start_paused = true)]
async fn max_waiters_rejects_at_once() {
    let (pool, _remote) = new_pool(PoolSettings {
        max_waiters: Some(1),
        ..settings(1)
    });
    let _a = pool.acquire(&1).await.unwrap();
    let _waiter = spawn_acquire(&pool, 1, Priority::Normal);
    settle().await;
    let start = Instant::now();
    let err = pool.acquire(&1).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert!(matches!(err, PoolError::TooManyWaiters { max_waiters: 1, .. }));
    assert_eq!(pool.stats().rejected_waiters, 1);
}

/// Queues one waiter per (label, priority), spacing arrivals by `gap`, then frees the
/// single resource and returns the order in which they got it.
async fn serve_order(waiters: &[(&'static str, Priority)], gap: Duration) -> Vec<&'static str> {
    let (pool, _remote) = new_pool(PoolSettings {
        acquire_timeout: secs(60),
        ..settings(1)
    });
    let held = pool.acquire(&1).await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (i, &(label, priority)) in waiters.iter().enumerate() {
        if i > 0 {
            sleep(gap).await;
        }
        let (pool, order) = (pool.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let guard = pool.acquire_with(&1, priority).await.unwrap();
            order.lock().unwrap().push(label);
            sleep(ms(10)).await;
            drop(guard);
        }));
    }
    settle().await;
    assert_eq!(pool.stats().waiting, waiters.len());
    drop(held);
    for task in tasks {
        task.await.unwrap();
    }
    let served = order.lock().unwrap().clone();
    served
}

#[tokio::test(start_paused = true)]
async fn waiters_are_served_by_priority_then_fifo() {
    let order = serve_order(
        &[
            ("low", Priority::Low),
            ("normal-1", Priority::Normal),
            ("high", Priority::High),
            ("normal-2", Priority::Normal),
            ("critical", Priority::Critical),
            ("normal-3", Priority::Normal),
        ],
        ms(1),
    )
    .await;
    assert_eq!(order, ["critical", "high", "normal-1", "normal-2", "normal-3", "low"]);
}

#[tokio::test(start_paused = true)]
async fn aging_keeps_low_priority_from_starving() {
    // The Low waiter has waited 3.5 s when the Critical one arrives: it now has
    // Critical's level and came first.
    let order = serve_order(&[("low", Priority::Low), ("critical", Priority::Critical)], ms(3_500)).await;
    assert_eq!(order, ["low", "critical"]);
    // 1.5 s only lifts it to Normal's level: High still goes first.
    let order = serve_order(&[("low", Priority::Low), ("high", Priority::High)], ms(1_500)).await;
    assert_eq!(order, ["high", "low"]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_creation_frees_its_slot_for_a_waiter() {
    let (pool, remote) = new_pool(settings(1));
    remote.create_delay_ms.store(10, Ordering::SeqCst);
    remote.fail_creates.store(1, Ordering::SeqCst);
    let first = spawn_acquire(&pool, 1, Priority::Normal);
    settle().await;
    let second = spawn_acquire(&pool, 1, Priority::Normal);
    settle().await;
    let stats = pool.stats();
    assert_eq!((stats.opening, stats.waiting), (1, 1));
    let err = first.await.unwrap().unwrap_err();
    assert!(matches!(err, PoolError::Create(FakeError::Refused)));
    let ok = second.await.unwrap().unwrap();
    assert!(!ok.is_reused());
    drop(ok);
    let stats = assert_quiet(&pool, &remote);
    assert_eq!((stats.create_failures, stats.created), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_capacity_error_lowers_the_cap_which_then_recovers() {
    let (pool, remote) = new_pool(settings(4));
    remote.capacity.store(2, Ordering::SeqCst);
    let _a = pool.acquire(&1).await.unwrap();
    let _b = pool.acquire(&1).await.unwrap();
    // The remote says it is full while two are open: the caller queues on those
    // instead of failing.
    assert!(timeout(ms(100), pool.acquire(&1)).await.is_err());
    assert_eq!(pool.stats().effective_max, 2);
    assert_eq!(pool.stats().remote_limited, 0, "a capacity error is not counted twice");
    // At the lowered cap, a caller waits instead of hammering the remote.
    assert!(timeout(ms(100), pool.acquire(&1)).await.is_err());
    assert_eq!(pool.stats().create_failures, 1);
    sleep(ms(4_000)).await;
    assert_eq!(pool.stats().effective_max, 2);
    sleep(ms(2_000)).await;
    assert_eq!(pool.stats().effective_max, 3);
    sleep(secs(5)).await;
    assert_eq!(pool.stats().effective_max, 4);
    sleep(secs(10)).await;
    assert_eq!(pool.stats().effective_max, 4);
}

#[tokio::test(start_paused = true)]
async fn idle_resources_retire_after_max_idle_time_down_to_min_size() {
    let (pool, remote) = new_pool(PoolSettings {
        min_size: 1,
        max_idle_time: secs(10),
        ..settings(3)
    });
    let guards: Vec<_> = vec![
        pool.acquire(&1).await.unwrap(),
        pool.acquire(&1).await.unwrap(),
        pool.acquire(&1).await.unwrap(),
    ];
    drop(guards);
    sleep(secs(9)).await;
    assert_eq!(pool.stats().total, 3);
    sleep(secs(3)).await;
    let stats = assert_quiet(&pool, &remote);
    assert_eq!((stats.total, stats.destroyed.idle), (1, 2));
    assert_eq!(Remote::get(&remote.closes), 2);
}

/// A pool warming up two resources of kind 7 on `remote`.
fn warm_pool(remote: &Arc<Remote>) -> FakePool {
    let settings = PoolSettings {
        min_size: 2,
        ..settings(4)
    };
    Pool::new("warm", Fake(remote.clone()), settings, Some(7))
}

#[tokio::test(start_paused = true)]
async fn min_size_is_warmed_up_in_the_background() {
    let pool = warm_pool(&Arc::new(Remote::default()));
    settle().await;
    let stats = pool.stats();
    assert_eq!((stats.idle, stats.created), (2, 2));
    let a = pool.acquire(&7).await.unwrap();
    assert!(a.is_reused());
}

#[tokio::test(start_paused = true)]
async fn warm_up_failures_are_not_fatal_and_are_retried() {
    let remote = Arc::new(Remote::default());
    remote.fail_creates.store(2, Ordering::SeqCst);
    let pool = warm_pool(&remote);
    settle().await;
    let stats = pool.stats();
    assert_eq!((stats.total, stats.create_failures), (0, 2));
    let a = pool.acquire(&7).await.unwrap();
    assert!(!a.is_reused());
    sleep(REPLENISH_BACKOFF + secs(1)).await;
    let stats = pool.stats();
    assert_eq!((stats.total, stats.idle, stats.created), (2, 1, 2));
}

#[tokio::test(start_paused = true)]
async fn resources_retire_after_their_jittered_lifetime() {
    let (pool, remote) = new_pool(PoolSettings {
        max_lifetime: Some(secs(10)),
        ..settings(2)
    });
    drop(pool.acquire(&1).await.unwrap());
    sleep(ms(8_900)).await;
    assert_eq!(pool.stats().total, 1);
    // Within 10 s ± 10%, plus one maintenance tick.
    sleep(ms(3_200)).await;
    let stats = assert_quiet(&pool, &remote);
    assert_eq!((stats.total, stats.destroyed.lifetime), (0, 1));
    assert_eq!(Remote::get(&remote.closes), 1);
}

#[tokio::test(start_paused = true)]
async fn resources_retire_after_max_uses() {
    let (pool, remote) = new_pool(PoolSettings {
        max_uses: Some(3),
        ..settings(2)
    });
    for use_no in 1..=3 {
        let a = pool.acquire(&1).await.unwrap();
        assert_eq!(a.uses(), use_no);
    }
    settle().await;
    let stats = assert_quiet(&pool, &remote);
    assert_eq!((stats.total, stats.destroyed.uses), (0, 1));
    let b = pool.acquire(&1).await.unwrap();
    assert_eq!(b.uses(), 1);
    assert_eq!(pool.stats().created, 2);
}

#[tokio::test(start_paused = true)]
async fn unreusable_or_invalidated_resources_are_aborted() {
    let (pool, remote) = new_pool(settings(2));
    let mut a = pool.acquire(&1).await.unwrap();
    a.poisoned = true;
    drop(a);
    pool.acquire(&1).await.unwrap().invalidate();
    settle().await;
    let stats = assert_quiet(&pool, &remote);
    assert_eq!((stats.total, stats.destroyed.invalid), (0, 2));
    assert_eq!(Remote::get(&remote.aborts), 2);
}

#[tokio::test(start_paused = true)]
async fn close_closes_idle_and_aborts_late_returns() {
    let (pool, remote) = new_pool(settings(3));
    let early = pool.acquire(&1).await.unwrap();
    let late = pool.acquire(&1).await.unwrap();
    drop(pool.acquire(&2).await.unwrap());
    let closer = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.close(secs(2)).await })
    };
    settle().await;
    // The idle one is closed at once.
    assert_eq!(Remote::get(&remote.closes), 1);
    assert!(matches!(pool.acquire(&1).await, Err(PoolError::Closed { .. })));
    assert!(matches!(pool.try_acquire(&1), Err(PoolError::Closed { .. })));
    sleep(secs(1)).await;
    // Back within busy_timeout: closed gracefully.
    drop(early);
    closer.await.unwrap();
    settle().await;
    assert_eq!(Remote::get(&remote.closes), 2);
    // Back after it: aborted.
    drop(late);
    settle().await;
    let stats = assert_quiet(&pool, &remote);
    assert_eq!((stats.total, stats.destroyed.closed), (0, 3));
    assert_eq!(Remote::get(&remote.aborts), 1);
}

#[tokio::test(start_paused = true)]
async fn close_fails_waiters() {
    let (pool, remote) = new_pool(settings(1));
    let a = pool.acquire(&1).await.unwrap();
    let waiter = spawn_acquire(&pool, 1, Priority::Normal);
    settle().await;
    pool.close(Duration::ZERO).await;
    let err = waiter.await.unwrap().unwrap_err();
    assert_eq!(err.to_string(), "pool test closed");
    drop(a);
    settle().await;
    assert_quiet(&pool, &remote);
}

#[tokio::test(start_paused = true)]
async fn close_returns_once_everything_is_back() {
    let (pool, remote) = new_pool(settings(2));
    let a = pool.acquire(&1).await.unwrap();
    let start = Instant::now();
    let closer = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.close(secs(10)).await })
    };
    sleep(secs(1)).await;
    drop(a);
    closer.await.unwrap();
    assert!(start.elapsed() < secs(2));
    assert_eq!(Remote::get(&remote.closes), 1);
    assert_eq!(remote.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn resize_shrinks_idle_and_growing_serves_waiters() {
    let (pool, remote) = new_pool(settings(4));
    let guards: Vec<_> = vec![
        pool.acquire(&1).await.unwrap(),
        pool.acquire(&1).await.unwrap(),
        pool.acquire(&1).await.unwrap(),
        pool.acquire(&1).await.unwrap(),
    ];
    drop(guards);
    pool.resize(2);
    settle().await;
    let stats = assert_quiet(&pool, &remote);
    assert_eq!((stats.total, stats.max_size, stats.effective_max), (2, 2, 2));
    assert_eq!(stats.destroyed.closed, 2);

    let (pool, remote) = new_pool(settings(1));
    let a = pool.acquire(&1).await.unwrap();
    let waiter = spawn_acquire(&pool, 2, Priority::Normal);
    settle().await;
    pool.resize(2);
    let b = waiter.await.unwrap().unwrap();
    assert_eq!(b.kind, 2);
    drop((a, b));
    // Shrinking while busy: the excess is closed when it comes back.
    let (a, b) = (pool.acquire(&1).await.unwrap(), pool.acquire(&2).await.unwrap());
    pool.resize(1);
    drop((a, b));
    settle().await;
    let stats = assert_quiet(&pool, &remote);
    assert_eq!(stats.total, 1);
}

#[tokio::test(start_paused = true)]
async fn long_borrows_are_reported_as_leak_suspects() {
    let (pool, _remote) = new_pool(PoolSettings {
        leak_threshold: Some(secs(5)),
        ..settings(3)
    });
    let a = pool.acquire(&1).await.unwrap();
    let _b = pool.acquire(&1).await.unwrap();
    sleep(secs(4)).await;
    let c = pool.acquire(&2).await.unwrap();
    assert!(pool.leak_suspects().is_empty());
    sleep(secs(2)).await;
    assert!(a.borrowed_for() >= secs(6));
    let suspects = pool.leak_suspects();
    assert_eq!(suspects.len(), 2);
    assert_eq!(suspects[0].id, a.id());
    assert!(suspects[0].held_for >= suspects[1].held_for);
    assert_eq!(pool.stats().leak_suspects, 2);
    drop((a, c));
    assert_eq!(pool.stats().leak_suspects, 1);
}

#[tokio::test(start_paused = true)]
async fn acquire_fresh_never_reuses() {
    let (pool, remote) = new_pool(settings(2));
    let a = pool.acquire(&1).await.unwrap();
    let fresh = pool.acquire_fresh(&1).await.unwrap();
    assert!(!fresh.is_reused());
    drop((a, fresh));
    // With idle ones around it evicts one (even a fitting one) and creates.
    let fresh = pool.acquire_fresh(&1).await.unwrap();
    assert!(!fresh.is_reused());
    let stats = pool.stats();
    assert_eq!((stats.created, stats.idle, stats.destroyed.evicted), (3, 1, 1));
    pool.record_stale_redo();
    assert_eq!(pool.stats().stale_redos, 1);
    drop(fresh);
    settle().await;
    assert_quiet(&pool, &remote);
}

#[tokio::test(start_paused = true)]
async fn try_acquire_only_hands_out_fitting_idle_resources() {
    let (pool, _remote) = new_pool(PoolSettings {
        validation_interval: secs(10),
        ..settings(2)
    });
    let err = pool.try_acquire(&1).unwrap_err();
    assert!(matches!(
        err,
        PoolError::Timeout {
            waited: Duration::ZERO,
            ..
        }
    ));
    drop(pool.acquire(&1).await.unwrap());
    let a = pool.try_acquire(&1).unwrap();
    assert!(a.is_reused());
    assert!(pool.try_acquire(&2).is_err());
    drop(a);
    // One that would need validation (async) is left for `acquire`.
    sleep(secs(11)).await;
    assert!(pool.try_acquire(&1).is_err());
    assert!(pool.acquire(&1).await.unwrap().is_reused());
    assert_eq!(pool.stats().acquire_timeouts, 0);
}

#[tokio::test(start_paused = true)]
async fn a_resource_handed_to_a_cancelled_waiter_goes_back_to_idle() {
    let (pool, remote) = new_pool(settings(1));
    let a = pool.acquire(&1).await.unwrap();
    let a_id = a.id;
    let waiter = spawn_acquire(&pool, 1, Priority::Normal);
    settle().await;
    // The hand-off lands in the waiter's channel; the waiter is cancelled before it
    // can take it.
    drop(a);
    waiter.abort();
    assert!(waiter.await.unwrap_err().is_cancelled());
    let stats = assert_quiet(&pool, &remote);
    assert_eq!((stats.idle, stats.total), (1, 1));
    let b = pool.try_acquire(&1).unwrap();
    assert_eq!((b.id, b.uses()), (a_id, 2));
}

#[tokio::test(start_paused = true)]
async fn an_eviction_granted_to_a_cancelled_waiter_is_undone() {
    let (pool, remote) = new_pool(settings(1));
    let a = pool.acquire(&1).await.unwrap();
    let waiter = spawn_acquire(&pool, 2, Priority::Normal);
    settle().await;
    drop(a);
    waiter.abort();
    assert!(waiter.await.unwrap_err().is_cancelled());
    let stats = assert_quiet(&pool, &remote);
    assert_eq!((stats.idle, stats.destroyed.evicted), (1, 0));
    assert!(pool.try_acquire(&1).is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_slot_granted_to_a_cancelled_waiter_is_freed() {
    let (pool, remote) = new_pool(settings(1));
    let a = pool.acquire(&1).await.unwrap();
    let waiter = spawn_acquire(&pool, 1, Priority::Normal);
    settle().await;
    pool.resize(2);
    waiter.abort();
    assert!(waiter.await.unwrap_err().is_cancelled());
    drop(a);
    let stats = assert_quiet(&pool, &remote);
    assert_eq!((stats.total, stats.created), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_creation_or_a_validation_leaks_nothing() {
    let (pool, remote) = new_pool(PoolSettings {
        validation_interval: secs(1),
        ..settings(1)
    });
    remote.create_delay_ms.store(100, Ordering::SeqCst);
    let creating = spawn_acquire(&pool, 1, Priority::Normal);
    sleep(ms(10)).await;
    assert_eq!(pool.stats().opening, 1);
    creating.abort();
    settle().await;
    assert_quiet(&pool, &remote);

    drop(pool.acquire(&1).await.unwrap());
    remote.validate_delay_ms.store(100, Ordering::SeqCst);
    sleep(secs(2)).await;
    let validating = spawn_acquire(&pool, 1, Priority::Normal);
    sleep(ms(10)).await;
    assert_eq!(Remote::get(&remote.validations), 1);
    validating.abort();
    settle().await;
    let stats = assert_quiet(&pool, &remote);
    // Its state unknown, the resource half-way through validation is aborted.
    assert_eq!((stats.total, stats.destroyed.invalid), (0, 1));
    assert_eq!(Remote::get(&remote.aborts), 1);
}

#[tokio::test(start_paused = true)]
async fn random_cancellations_leak_nothing() {
    const MAX: usize = 4;
    let (pool, remote) = new_pool(PoolSettings {
        max_concurrent_opens: 2,
        acquire_timeout: ms(30),
        validation_interval: ms(1),
        max_waiters: Some(40),
        max_uses: Some(7),
        ..settings(MAX)
    });
    remote.create_delay_ms.store(3, Ordering::SeqCst);
    remote.validate_delay_ms.store(2, Ordering::SeqCst);
    let priorities = [Priority::Critical, Priority::High, Priority::Normal, Priority::Low];
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut tasks: Vec<JoinHandle<()>> = Vec::new();
    for _ in 0..600 {
        let (pool, remote) = (pool.clone(), remote.clone());
        let kind = rng.random_range(0..3u32);
        let priority = priorities[rng.random_range(0..priorities.len())];
        let limit = ms(rng.random_range(1..40));
        let hold = ms(rng.random_range(0..15));
        let fate = rng.random_range(0..12u32);
        let fresh = rng.random_bool(0.1);
        tasks.push(tokio::spawn(async move {
            let acquiring = async {
                if fresh {
                    pool.acquire_fresh(&kind).await
                } else {
                    pool.acquire_with(&kind, priority).await
                }
            };
            let Ok(Ok(mut guard)) = timeout(limit, acquiring).await else {
                return;
            };
            sleep(hold).await;
            match fate {
                0 => guard.invalidate(),
                1 => guard.poisoned = true,
                2 => remote.kill(guard.id),
                3 => remote.break_echo(guard.id),
                _ => {}
            }
        }));
        if rng.random_bool(0.5) {
            sleep(ms(rng.random_range(0..4))).await;
        }
        // Now and then a lull, so resources sit idle and need validation.
        if rng.random_bool(0.02) {
            sleep(ms(rng.random_range(10..40))).await;
        }
        if rng.random_bool(0.15) {
            let victim = rng.random_range(0..tasks.len());
            tasks[victim].abort();
        }
    }
    for task in tasks {
        let _ = task.await;
    }
    sleep(ms(50)).await;
    let stats = assert_quiet(&pool, &remote);
    assert!(stats.total <= MAX);
    assert!(stats.peak_active <= MAX);
    // The run went through the paths it is meant to exercise.
    assert!(stats.acquire_timeouts > 0, "{stats:?}");
    assert!(stats.destroyed.invalid > 0 && stats.destroyed.stale > 0, "{stats:?}");
    assert!(
        stats.destroyed.evicted > 0 && stats.validation_failures > 0,
        "{stats:?}"
    );
    let fresh = pool.acquire(&1).await.unwrap();
    drop(fresh);
    assert_quiet(&pool, &remote);
}

#[tokio::test(start_paused = true)]
async fn a_guard_dropped_without_a_runtime_is_still_accounted_for() {
    let (pool, remote) = new_pool(settings(2));
    let kept = pool.acquire(&1).await.unwrap();
    let broken = pool.acquire(&1).await.unwrap();
    std::thread::spawn(move || {
        drop(kept);
        broken.invalidate();
    })
    .join()
    .unwrap();
    let stats = assert_quiet(&pool, &remote);
    assert_eq!((stats.idle, stats.destroyed.invalid), (1, 1));
    // No runtime to abort it on: it was dropped instead.
    assert_eq!(Remote::get(&remote.aborts), 0);
}

#[tokio::test(start_paused = true)]
async fn maintenance_stops_when_the_pool_is_dropped_or_closed() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let (pool, remote) = new_pool(settings(2));
    drop(pool.acquire(&1).await.unwrap());
    settle().await;
    assert_eq!(metrics.num_alive_tasks(), before + 1);
    drop(pool);
    sleep(secs(2)).await;
    assert_eq!(metrics.num_alive_tasks(), before);
    // The pool (and its manager) are gone, idle resources with them.
    assert_eq!((Arc::strong_count(&remote), remote.live()), (1, 0));

    let (pool, _remote) = new_pool(settings(2));
    settle().await;
    assert_eq!(metrics.num_alive_tasks(), before + 1);
    pool.close(secs(1)).await;
    sleep(secs(2)).await;
    assert_eq!(metrics.num_alive_tasks(), before);
}

#[test]
fn pool_futures_and_guards_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<FakePool>();
    assert_send_sync::<Pooled<Fake>>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let pool = new_pool(settings(1)).0;
    let request = 1;
    assert_send(&pool.acquire(&request));
    assert_send(&pool.acquire_fresh(&request));
    assert_send(&pool.close(Duration::ZERO));
}

#[tokio::test(start_paused = true)]
async fn callers_queue_on_the_open_resource_of_a_remote_that_takes_one_at_a_time() {
    let (pool, remote) = new_pool(settings(4));
    remote.one_at_a_time.store(true, Ordering::SeqCst);
    remote.create_delay_ms.store(1, Ordering::SeqCst);
    let start = tokio::time::Instant::now();
    let tasks: Vec<JoinHandle<()>> = (0..4)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for _ in 0..5 {
                    let guard = pool.acquire(&1).await.unwrap();
                    sleep(ms(2)).await;
                    drop(guard);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // 20 borrows of 2 ms one after the other, not a 10 s timeout per extra caller.
    assert!(start.elapsed() < ms(200), "{:?}", start.elapsed());
    let stats = pool.stats();
    assert_eq!(
        (stats.total, stats.created, stats.acquisitions),
        (1, 1, 20),
        "{stats:?}"
    );
    assert!(stats.unanswered_opens >= 1, "{stats:?}");
    // Closing abandons the unanswered creations instead of waiting for them.
    pool.close(secs(1)).await;
    assert!(start.elapsed() < ms(300), "{:?}", start.elapsed());
    settle().await;
    let stats = pool.stats();
    assert_eq!(
        (stats.opening, stats.unanswered_opens, remote.live()),
        (0, 0, 0),
        "{stats:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refusal_while_one_is_open_lowers_the_cap_and_the_caller_waits_for_it() {
    let (pool, remote) = new_pool(settings(4));
    let first = pool.acquire(&1).await.unwrap();
    remote.fail_creates.store(1, Ordering::SeqCst);
    let second = spawn_acquire(&pool, 1, Priority::Normal);
    settle().await;
    let stats = pool.stats();
    assert_eq!(
        (stats.effective_max, stats.remote_limited, stats.waiting),
        (1, 1, 1),
        "{stats:?}"
    );
    assert!(!second.is_finished(), "queued, not failed");
    drop(first);
    let second = second.await.unwrap().unwrap();
    assert!(second.is_reused());
    drop(second);
    assert_quiet(&pool, &remote);
}

#[tokio::test(start_paused = true)]
async fn validating_stale_resources_stays_within_the_acquire_timeout() {
    let (pool, remote) = new_pool(PoolSettings {
        validation_interval: secs(1),
        acquire_timeout: secs(5),
        ..settings(4)
    });
    // Three idle resources, each of which will hang in validation for 30 s (a
    // stale association costs a whole DIMSE timeout).
    let held: Vec<_> = vec![
        pool.acquire(&1).await.unwrap(),
        pool.acquire(&1).await.unwrap(),
        pool.acquire(&1).await.unwrap(),
    ];
    drop(held);
    sleep(secs(2)).await;
    remote.validate_delay_ms.store(30_000, Ordering::SeqCst);
    let start = Instant::now();
    let err = pool.acquire(&1).await.unwrap_err();
    assert_eq!(start.elapsed(), secs(5), "the acquire timeout bounds validation");
    assert!(matches!(err, PoolError::Timeout { .. }), "{err}");
    assert_eq!(Remote::get(&remote.validations), 1);
    settle().await;
    let stats = assert_quiet(&pool, &remote);
    assert_eq!(stats.destroyed.invalid, 1, "the one cut mid-validation is aborted");
}

#[tokio::test(start_paused = true)]
async fn background_opening_follows_the_gate() {
    let remote = Arc::new(Remote::default());
    remote.fail_creates.store(1000, Ordering::SeqCst);
    let pool = warm_pool(&remote);
    let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let gate = open.clone();
    pool.set_replenish_gate(move || !gate.load(Ordering::SeqCst));
    settle().await;
    assert_eq!(
        pool.stats().create_failures,
        0,
        "no background opening while the gate is shut"
    );
    sleep(REPLENISH_BACKOFF * 4).await;
    assert_eq!(pool.stats().create_failures, 0);
    open.store(false, Ordering::SeqCst);
    remote.fail_creates.store(0, Ordering::SeqCst);
    sleep(secs(2)).await;
    assert_eq!(pool.stats().idle, 2, "warmed up once the gate opens");
}

#[tokio::test(start_paused = true)]
async fn acquisition_progress_tells_queueing_from_opening() {
    let (pool, remote) = new_pool(settings(1));
    remote.create_delay_ms.store(100, Ordering::SeqCst);
    let progress = Arc::new(AcquireProgress::default());
    let p = progress.clone();
    let pool2 = pool.clone();
    let opening = tokio::spawn(async move { pool2.acquire_tracked(&1, Priority::Normal, false, &p).await });
    sleep(ms(10)).await;
    assert_eq!(progress.phase(), AcquirePhase::Opening);
    let held = opening.await.unwrap().unwrap();
    assert_eq!(progress.phase(), AcquirePhase::Acquired);
    let queued = Arc::new(AcquireProgress::default());
    let q = queued.clone();
    let pool3 = pool.clone();
    let waiting = tokio::spawn(async move { pool3.acquire_tracked(&1, Priority::Normal, false, &q).await });
    sleep(ms(10)).await;
    assert_eq!(queued.phase(), AcquirePhase::Waiting);
    drop(held);
    assert!(waiting.await.unwrap().is_ok());
}
