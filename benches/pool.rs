//! Acquire+drop throughput of the pacs-net pool against deadpool (managed) and bb8.
//!
//! Each iteration spawns `tasks` tasks that each acquire and drop a no-op resource
//! `CYCLES` times, on a 2-worker multi-thread runtime; the throughput is in
//! acquire+drop cycles per second. Shapes are (pool size, tasks): 8/8 (no
//! contention), 4/16 and 16/32 (callers outnumber resources, so hand-offs and
//! waiting dominate). Every pool runs with its defaults except the size.
//!
//! `cargo bench --bench pool` (add `-- --quick` for a rough run).

use std::convert::Infallible;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pacs_net::config::PoolSettings;
use pacs_net::pool::{Manager, Pool};

const CYCLES: usize = 200;
const SHAPES: [(usize, usize); 3] = [(8, 8), (4, 16), (16, 32)];

struct Noop;

impl Manager for Noop {
    type Resource = ();
    type Request = ();
    type Error = Infallible;

    async fn create(&self, _: &()) -> Result<(), Infallible> {
        Ok(())
    }

    fn fits(&self, _: &(), _: &()) -> bool {
        true
    }

    fn is_alive(&self, _: &mut ()) -> bool {
        true
    }

    async fn validate(&self, _: &mut ()) -> Result<(), Infallible> {
        Ok(())
    }

    fn is_reusable(&self, _: &()) -> bool {
        true
    }

    async fn close(&self, _: ()) {}

    async fn abort(&self, _: ()) {}
}

struct DeadpoolNoop;

impl deadpool::managed::Manager for DeadpoolNoop {
    type Type = ();
    type Error = Infallible;

    async fn create(&self) -> Result<(), Infallible> {
        Ok(())
    }

    async fn recycle(
        &self,
        _: &mut (),
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Infallible> {
        Ok(())
    }
}

struct Bb8Noop;

impl bb8::ManageConnection for Bb8Noop {
    type Connection = ();
    type Error = Infallible;

    async fn connect(&self) -> Result<(), Infallible> {
        Ok(())
    }

    async fn is_valid(&self, _: &mut ()) -> Result<(), Infallible> {
        Ok(())
    }

    fn has_broken(&self, _: &mut ()) -> bool {
        false
    }
}

/// Runs `tasks` tasks of `CYCLES` acquire+drop cycles; returns the failed acquisitions
/// (a panicked task counts all its cycles as failed).
async fn cycles<P, F, Fut>(pool: &P, tasks: usize, cycle: F) -> usize
where
    P: Clone + Send + 'static,
    F: Fn(P) -> Fut + Copy + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut failed = 0;
                for _ in 0..CYCLES {
                    if !cycle(pool.clone()).await {
                        failed += 1;
                    }
                }
                failed
            })
        })
        .collect();
    let mut failed = 0;
    for handle in handles {
        failed += handle.await.unwrap_or(CYCLES);
    }
    failed
}

/// A pool that failed an acquisition did less work than the figure claims: the
/// bench stops there rather than print a throughput that is not one.
fn require_no_failures(name: &str, shape: &str, failed: usize) {
    assert_eq!(failed, 0, "{name} {shape}: {failed} acquisitions failed");
}

fn bench_pools(c: &mut Criterion) {
    // Every comparison runs or the bench fails: a missing competitor is not a result.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut group = c.benchmark_group("pool");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    for (size, tasks) in SHAPES {
        group.throughput(Throughput::Elements((tasks * CYCLES) as u64));
        let shape = format!("{size}/{tasks}");

        let ours = runtime.block_on(async {
            let settings = PoolSettings {
                max_size: size,
                ..PoolSettings::default()
            };
            Pool::new("bench", Noop, settings, None)
        });
        group.bench_function(BenchmarkId::new("pacs-net", &shape), |b| {
            b.to_async(&runtime).iter(|| async {
                let failed = cycles(&ours, tasks, |pool: Pool<Noop>| async move {
                    pool.acquire(&()).await.is_ok()
                })
                .await;
                require_no_failures("pacs-net", &shape, failed);
            })
        });

        let deadpool = deadpool::managed::Pool::builder(DeadpoolNoop)
            .max_size(size)
            .build()
            .expect("a deadpool pool");
        group.bench_function(BenchmarkId::new("deadpool", &shape), |b| {
            b.to_async(&runtime).iter(|| async {
                let failed = cycles(
                    &deadpool,
                    tasks,
                    |pool: deadpool::managed::Pool<DeadpoolNoop>| async move { pool.get().await.is_ok() },
                )
                .await;
                require_no_failures("deadpool", &shape, failed);
            })
        });

        let bb8 = runtime
            .block_on(async {
                bb8::Pool::builder()
                    .max_size(u32::try_from(size).expect("a pool size bb8 takes"))
                    .build(Bb8Noop)
                    .await
            })
            .expect("a bb8 pool");
        group.bench_function(BenchmarkId::new("bb8", &shape), |b| {
            b.to_async(&runtime).iter(|| async {
                let failed = cycles(&bb8, tasks, |pool: bb8::Pool<Bb8Noop>| async move {
                    pool.get().await.is_ok()
                })
                .await;
                require_no_failures("bb8", &shape, failed);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_pools);
criterion_main!(benches);
