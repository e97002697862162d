//! Overhead of the resilience layer on the hot path.
//!
//! - `executor/run_ok_closed`: `Executor::run` around an operation that
//!   succeeds at once, breaker closed: what every DICOM operation pays.
//! - `executor/run_rejected_open`: `Executor::run` while the breaker is open:
//!   how fast a call to a node known to be down fails (goal < 100 µs).
//! - `breaker/try_acquire_rejected_open`: the bare breaker rejection.
//!
//! Short measurements: these are nanosecond-scale and settle quickly.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use pacs_net::config::{BreakerSettings, RetrySettings};
use pacs_net::resilience::{Classify, Executor};

/// A failure that is retryable and counts for the breaker (a refused connection).
#[derive(Debug)]
struct Refused;

impl Classify for Refused {
    fn is_retryable(&self) -> bool {
        true
    }

    fn counts_for_breaker(&self) -> bool {
        true
    }
}

fn settings() -> (RetrySettings, BreakerSettings) {
    let breaker = BreakerSettings {
        // Long enough that the open breaker stays open for the whole run.
        open_duration: Duration::from_secs(3_600),
        ..BreakerSettings::default()
    };
    (RetrySettings::default(), breaker)
}

fn bench(c: &mut Criterion) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_time().build() {
        Ok(rt) => rt,
        Err(e) => panic!("tokio runtime: {e}"),
    };

    let (retry, breaker) = settings();
    let closed = Executor::new("BENCH", retry, breaker);
    c.bench_function("executor/run_ok_closed", |b| {
        b.to_async(&rt).iter(|| async {
            let outcome = closed
                .run(None, |attempt| async move { Ok::<u32, Refused>(attempt) })
                .await;
            black_box(outcome.attempts)
        })
    });

    // Trip the breaker the way production does: consecutive counted failures
    // (one attempt each, so the budget and back-off play no part).
    let (mut retry, breaker) = settings();
    retry.max_attempts = 1;
    let open = Executor::new("BENCH", retry, breaker);
    rt.block_on(async {
        for _ in 0..open.breaker().settings().failure_threshold {
            let _ = open.run(None, |_| async { Err::<(), _>(Refused) }).await;
        }
    });
    assert_eq!(open.breaker().state(), pacs_net::resilience::BreakerState::Open);
    c.bench_function("executor/run_rejected_open", |b| {
        b.to_async(&rt).iter(|| async {
            let outcome = open
                .run(None, |attempt| async move { Ok::<u32, Refused>(attempt) })
                .await;
            black_box(outcome.result.is_err())
        })
    });
    c.bench_function("breaker/try_acquire_rejected_open", |b| {
        b.iter(|| black_box(open.breaker().try_acquire().is_err()))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
