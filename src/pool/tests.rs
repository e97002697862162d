//! Deterministic tests of the pool core with a fake resource and paused time.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::*;

#[derive(Debug, thiserror::Error)]
#[error("fake error: {0}")]
struct FakeError(&'static str);

#[derive(Debug)]
struct Res {
    kind: u8,
    alive: Arc<AtomicBool>,
    poisoned: bool,
}

#[derive(Default)]
struct Fake {
    live: Arc<AtomicUsize>,
    created: AtomicUsize,
    closed: AtomicUsize,
    aborted: AtomicUsize,
    fail_create: AtomicBool,
    capacity_error: AtomicBool,
    validate_fails: AtomicBool,
}

impl Manager for Arc<Fake> {
    type Resource = Res;
    type Request = u8;
    type Error = FakeError;
    async fn create(&self, req: &u8) -> Result<Res, FakeError> {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if self.capacity_error.load(Ordering::SeqCst) {
            return Err(FakeError("capacity"));
        }
        if self.fail_create.load(Ordering::SeqCst) {
            return Err(FakeError("down"));
        }
        self.created.fetch_add(1, Ordering::SeqCst);
        self.live.fetch_add(1, Ordering::SeqCst);
        Ok(Res {
            kind: *req,
            alive: Arc::new(AtomicBool::new(true)),
            poisoned: false,
        })
    }
    fn fits(&self, res: &Res, req: &u8) -> bool {
        res.kind == *req
    }
    fn is_alive(&self, res: &mut Res) -> bool {
        res.alive.load(Ordering::SeqCst)
    }
    async fn validate(&self, _res: &mut Res) -> Result<(), FakeError> {
        if self.validate_fails.load(Ordering::SeqCst) {
            Err(FakeError("validation"))
        } else {
            Ok(())
        }
    }
    fn is_reusable(&self, res: &Res) -> bool {
        !res.poisoned
    }
    async fn close(&self, _res: Res) {
        self.closed.fetch_add(1, Ordering::SeqCst);
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
    async fn abort(&self, _res: Res) {
        self.aborted.fetch_add(1, Ordering::SeqCst);
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
    fn is_capacity_error(&self, e: &FakeError) -> bool {
        e.0 == "capacity"
    }
}

fn settings(max: usize) -> PoolSettings {
    PoolSettings {
        max_size: max,
        acquire_timeout: Duration::from_secs(1),
        ..PoolSettings::default()
    }
}

async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn reuses_an_idle_resource() {
    let fake = Arc::new(Fake::default());
    let pool = Pool::new("n", fake.clone(), settings(4), None);
    let a = pool.acquire(&1).await.unwrap();
    assert!(!a.is_reused());
    drop(a);
    let b = pool.acquire(&1).await.unwrap();
    assert!(b.is_reused());
    assert_eq!(fake.created.load(Ordering::SeqCst), 1);
    let s = pool.stats();
    assert_eq!((s.total, s.active, s.idle), (1, 1, 0));
}

#[tokio::test(start_paused = true)]
async fn never_more_than_max_and_waiters_time_out() {
    let fake = Arc::new(Fake::default());
    let pool = Pool::new("n", fake.clone(), settings(2), None);
    let a = pool.acquire(&1).await.unwrap();
    let b = pool.acquire(&1).await.unwrap();
    let err = pool.acquire(&1).await.err().unwrap();
    assert!(err.to_string().contains("pool exhausted: node n, max_size 2"), "{err}");
    assert_eq!(pool.stats().acquire_timeouts, 1);
    drop(a);
    let c = pool.acquire(&1).await.unwrap();
    assert!(c.is_reused());
    drop((b, c));
    assert!(fake.live.load(Ordering::SeqCst) <= 2);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_gets_a_returned_resource() {
    let fake = Arc::new(Fake::default());
    let pool = Pool::new("n", fake.clone(), settings(1), None);
    let a = pool.acquire(&1).await.unwrap();
    let p2 = pool.clone();
    let waiter = tokio::spawn(async move { p2.acquire(&1).await.map(|g| g.is_reused()) });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(pool.stats().waiting, 1);
    drop(a);
    assert!(waiter.await.unwrap().unwrap());
    assert_eq!(fake.created.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_non_fitting_idle_resource_is_evicted_at_the_cap() {
    let fake = Arc::new(Fake::default());
    let pool = Pool::new("n", fake.clone(), settings(1), None);
    drop(pool.acquire(&1).await.unwrap());
    let b = pool.acquire(&2).await.unwrap();
    assert_eq!(b.kind, 2);
    settle().await;
    assert_eq!(pool.stats().destroyed.evicted, 1);
    assert_eq!(fake.closed.load(Ordering::SeqCst), 1, "evicted gracefully");
}

#[tokio::test(start_paused = true)]
async fn stale_and_poisoned_resources_are_not_handed_out() {
    let fake = Arc::new(Fake::default());
    let pool = Pool::new("n", fake.clone(), settings(2), None);
    let a = pool.acquire(&1).await.unwrap();
    let alive = a.alive.clone();
    drop(a);
    alive.store(false, Ordering::SeqCst);
    let b = pool.acquire(&1).await.unwrap();
    assert!(!b.is_reused(), "the stale one was discarded");
    let mut b = b;
    b.poisoned = true;
    drop(b);
    settle().await;
    let s = pool.stats();
    assert_eq!(s.destroyed.stale, 1);
    assert_eq!(s.destroyed.invalid, 1);
    assert_eq!(s.idle, 0);
    assert_eq!(fake.aborted.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn validation_on_borrow_after_the_interval() {
    let fake = Arc::new(Fake::default());
    let mut s = settings(2);
    s.validation_interval = Duration::from_secs(5);
    let pool = Pool::new("n", fake.clone(), s, None);
    drop(pool.acquire(&1).await.unwrap());
    tokio::time::sleep(Duration::from_secs(6)).await;
    fake.validate_fails.store(true, Ordering::SeqCst);
    let g = pool.acquire(&1).await.unwrap();
    assert!(!g.is_reused());
    let st = pool.stats();
    assert_eq!((st.validations, st.validation_failures), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn idle_resources_retire_but_min_size_stays() {
    let fake = Arc::new(Fake::default());
    let mut s = settings(4);
    s.min_size = 1;
    s.max_idle_time = Duration::from_secs(2);
    let pool = Pool::new("n", fake.clone(), s, Some(1));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(pool.stats().idle, 1, "warmed up");
    let a = pool.acquire(&1).await.unwrap();
    let b = pool.acquire(&1).await.unwrap();
    drop((a, b));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let st = pool.stats();
    assert_eq!(st.total, 1, "{st:?}");
    assert_eq!(st.destroyed.idle, 1);
}

#[tokio::test(start_paused = true)]
async fn max_uses_recycles() {
    let fake = Arc::new(Fake::default());
    let mut s = settings(2);
    s.max_uses = Some(2);
    let pool = Pool::new("n", fake.clone(), s, None);
    drop(pool.acquire(&1).await.unwrap());
    drop(pool.acquire(&1).await.unwrap());
    settle().await;
    assert_eq!(pool.stats().destroyed.uses, 1);
    assert!(!pool.acquire(&1).await.unwrap().is_reused());
}

#[tokio::test(start_paused = true)]
async fn capacity_errors_lower_the_effective_max_then_it_recovers() {
    let fake = Arc::new(Fake::default());
    let pool = Pool::new("n", fake.clone(), settings(4), None);
    let a = pool.acquire(&1).await.unwrap();
    let b = pool.acquire(&1).await.unwrap();
    fake.capacity_error.store(true, Ordering::SeqCst);
    assert!(matches!(pool.acquire(&1).await, Err(PoolError::Create(_))));
    assert_eq!(pool.stats().effective_max, 2);
    fake.capacity_error.store(false, Ordering::SeqCst);
    drop((a, b));
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(pool.stats().effective_max, 4);
}

#[tokio::test(start_paused = true)]
async fn close_releases_idle_and_refuses_new_borrows() {
    let fake = Arc::new(Fake::default());
    let pool = Pool::new("n", fake.clone(), settings(2), None);
    drop(pool.acquire(&1).await.unwrap());
    pool.close(Duration::from_secs(1)).await;
    assert_eq!(fake.closed.load(Ordering::SeqCst), 1);
    assert!(matches!(pool.acquire(&1).await, Err(PoolError::Closed { .. })));
}

#[tokio::test(start_paused = true)]
async fn cancelled_acquires_and_borrows_leak_nothing() {
    let fake = Arc::new(Fake::default());
    let pool = Pool::new("n", fake.clone(), settings(3), None);
    let mut tasks = Vec::new();
    for i in 0..60u64 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_millis(i % 7 * 3), async {
                let mut g = pool.acquire(&((i % 2) as u8)).await?;
                if i % 5 == 0 {
                    g.poisoned = true;
                }
                tokio::time::sleep(Duration::from_millis(i % 4 * 5)).await;
                Ok::<_, PoolError<FakeError>>(())
            })
            .await;
        }));
    }
    for (i, t) in tasks.iter().enumerate() {
        if i % 9 == 0 {
            t.abort();
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    settle().await;
    let s = pool.stats();
    assert_eq!(s.active, 0, "{s:?}");
    assert_eq!(s.waiting, 0, "{s:?}");
    assert_eq!(s.opening, 0, "{s:?}");
    assert!(s.total <= 3, "{s:?}");
    assert_eq!(fake.live.load(Ordering::SeqCst), s.total, "no resource leaked: {s:?}");
    assert!(pool.acquire(&0).await.is_ok());
}
