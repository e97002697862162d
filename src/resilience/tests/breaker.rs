use parking_lot::Mutex;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use crate::resilience::BreakerSettings;
use crate::resilience::{BreakerPermit, BreakerState, CircuitBreaker};

const OPEN: Duration = Duration::from_secs(10);

fn settings(half_open_max_calls: u32) -> BreakerSettings {
    BreakerSettings {
        failure_threshold: 3,
        success_threshold: 2,
        open_duration: OPEN,
        half_open_max_calls,
    }
}

fn breaker() -> CircuitBreaker {
    CircuitBreaker::new("PACS", settings(1))
}

fn permit(b: &CircuitBreaker) -> BreakerPermit<'_> {
    match b.try_acquire() {
        Ok(p) => p,
        Err(e) => panic!("expected a permit, got: {e}"),
    }
}

fn fail(b: &CircuitBreaker, n: u32) {
    for _ in 0..n {
        permit(b).failure();
    }
}

/// Opens `b` and lets the open duration pass, so the next acquire probes.
async fn open_then_wait(b: &CircuitBreaker) {
    fail(b, 3);
    assert_eq!(b.state(), BreakerState::Open);
    tokio::time::advance(OPEN).await;
}

/// Records every hook call.
fn record_transitions(b: &CircuitBreaker) -> Arc<Mutex<Vec<(String, BreakerState, BreakerState)>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    b.on_state_change(move |name, from, to| {
        sink.lock().push((name.to_owned(), from, to));
    });
    log
}

#[test]
fn breaker_is_sync_and_send() {
    fn assert_sync_send<T: Sync + Send>() {}
    assert_sync_send::<CircuitBreaker>();
    assert_sync_send::<BreakerPermit<'static>>();
}

#[tokio::test(start_paused = true)]
async fn opens_at_the_threshold_of_consecutive_failures() {
    let b = breaker();
    fail(&b, 2);
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.stats().consecutive_failures, 2);
    fail(&b, 1);
    assert_eq!(b.state(), BreakerState::Open);
    let stats = b.stats();
    assert_eq!((stats.trips, stats.failures, stats.calls), (1, 3, 3));
    assert_eq!(stats.open_remaining_secs, Some(10.0));
}

#[tokio::test(start_paused = true)]
async fn a_success_resets_the_consecutive_count() {
    let b = breaker();
    fail(&b, 2);
    permit(&b).success();
    assert_eq!(b.stats().consecutive_failures, 0);
    fail(&b, 2);
    assert_eq!(b.state(), BreakerState::Closed);
    fail(&b, 1);
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn an_ignored_permit_neither_counts_nor_resets() {
    let b = breaker();
    fail(&b, 2);
    drop(permit(&b));
    assert_eq!(b.stats().consecutive_failures, 2);
    assert_eq!(b.state(), BreakerState::Closed);
    fail(&b, 1);
    assert_eq!(b.state(), BreakerState::Open);
    let stats = b.stats();
    assert_eq!((stats.calls, stats.failures, stats.successes), (4, 3, 0));
}

#[tokio::test(start_paused = true)]
async fn open_rejects_with_the_time_to_the_next_probe() {
    let b = breaker();
    fail(&b, 3);
    tokio::time::advance(Duration::from_secs(4)).await;
    let err = b.try_acquire().expect_err("open breaker must reject");
    assert_eq!(err.node, "PACS");
    assert_eq!(err.retry_in, Duration::from_secs(6));
    assert_eq!(err.consecutive_failures, 3);
    assert_eq!(
        err.to_string(),
        "circuit open for node PACS: 3 consecutive failures; next probe in 6.0s"
    );
    // Just before the end: still open.
    tokio::time::advance(Duration::from_millis(5_999)).await;
    let err = b.try_acquire().expect_err("still open");
    assert_eq!(err.retry_in, Duration::from_millis(1));
    let stats = b.stats();
    assert_eq!(stats.rejected, 2);
    assert_eq!(stats.state, BreakerState::Open);
    assert!((stats.last_transition_secs_ago - 9.999).abs() < 1e-9);
}

#[tokio::test(start_paused = true)]
async fn open_turns_half_open_after_the_open_duration() {
    let b = breaker();
    open_then_wait(&b).await;
    // No timer: the state changes on the next call.
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(b.stats().open_remaining_secs, Some(0.0));
    let probe = permit(&b);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    // One probe at a time by default: a second caller is refused at once.
    let err = b.try_acquire().expect_err("probe slot taken");
    assert_eq!(err.retry_in, Duration::ZERO);
    drop(probe);
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_at_most_max_calls_concurrent_probes() {
    let b = Arc::new(CircuitBreaker::new("PACS", settings(2)));
    open_then_wait(&b).await;
    // Ten tasks ask at once and hold what they get until all have asked.
    let gate = Arc::new(tokio::sync::Barrier::new(10));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (b, gate) = (Arc::clone(&b), Arc::clone(&gate));
        tasks.push(tokio::spawn(async move {
            let permit = b.try_acquire();
            let granted = permit.is_ok();
            gate.wait().await;
            drop(permit);
            granted
        }));
    }
    let mut granted = 0;
    for task in tasks {
        granted += u32::from(task.await.expect("task panicked"));
    }
    assert_eq!(granted, 2);
    assert_eq!(b.stats().rejected, 8);
    // The ignored probes freed their slots.
    assert_eq!(b.state(), BreakerState::HalfOpen);
    let (p1, p2) = (permit(&b), permit(&b));
    assert!(b.try_acquire().is_err());
    drop((p1, p2));
}

#[test]
fn half_open_probe_cap_holds_across_threads() {
    // Real threads racing, so real time: a zero open duration makes the
    // breaker half-open on the first call after it opens.
    let b = CircuitBreaker::new(
        "PACS",
        BreakerSettings {
            open_duration: Duration::ZERO,
            ..settings(3)
        },
    );
    fail(&b, 3);
    let start = Barrier::new(16);
    let hold = Barrier::new(16);
    let granted = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    let permit = b.try_acquire();
                    let granted = permit.is_ok();
                    hold.wait();
                    drop(permit);
                    granted
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| u32::from(h.join().expect("thread panicked")))
            .sum::<u32>()
    });
    assert_eq!(granted, 3);
    assert_eq!(b.state(), BreakerState::HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn success_threshold_probes_close_it() {
    let b = breaker();
    open_then_wait(&b).await;
    permit(&b).success();
    assert_eq!(b.state(), BreakerState::HalfOpen);
    permit(&b).success();
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.stats().consecutive_failures, 0);
    // Closed again: a fresh run of failures is needed to open it.
    fail(&b, 2);
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_for_a_new_open_duration() {
    let b = breaker();
    open_then_wait(&b).await;
    permit(&b).success();
    permit(&b).failure();
    assert_eq!(b.state(), BreakerState::Open);
    let err = b.try_acquire().expect_err("re-opened");
    assert_eq!(err.retry_in, OPEN);
    assert_eq!(err.consecutive_failures, 1);
    assert_eq!(b.stats().trips, 2);
    // The successes before the failure are forgotten: two more are needed.
    tokio::time::advance(OPEN).await;
    permit(&b).success();
    assert_eq!(b.state(), BreakerState::HalfOpen);
    permit(&b).success();
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn an_ignored_probe_frees_its_slot_without_counting() {
    let b = breaker();
    open_then_wait(&b).await;
    drop(permit(&b));
    drop(permit(&b));
    assert_eq!(b.state(), BreakerState::HalfOpen);
    permit(&b).success();
    permit(&b).success();
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn stale_outcomes_do_not_move_the_state() {
    let b = breaker();
    // Two slow calls started while closed...
    let (slow1, slow2) = (permit(&b), permit(&b));
    fail(&b, 3);
    // ...the first succeeding after the breaker opened does not close it,
    slow1.success();
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(b.stats().consecutive_failures, 3);
    // and the second, finishing once it is half-open, neither counts as a
    // probe success nor frees the probe's slot.
    tokio::time::advance(OPEN).await;
    let probe = permit(&b);
    slow2.success();
    assert!(b.try_acquire().is_err());
    probe.success();
    // One probe success of the two needed.
    assert_eq!(b.state(), BreakerState::HalfOpen);
    // Stale successes still count in the statistics.
    assert_eq!(b.stats().successes, 3);
}

#[tokio::test(start_paused = true)]
async fn force_open_holds_until_reset() {
    let b = breaker();
    let log = record_transitions(&b);
    b.force_open();
    assert_eq!(b.state(), BreakerState::Open);
    tokio::time::advance(Duration::from_secs(3_600)).await;
    let err = b.try_acquire().expect_err("forced open");
    assert_eq!(err.retry_in, OPEN);
    let stats = b.stats();
    assert!(stats.forced);
    assert_eq!(stats.open_remaining_secs, None);
    assert_eq!(stats.trips, 0);
    b.reset();
    assert_eq!(b.state(), BreakerState::Closed);
    assert!(!b.stats().forced);
    permit(&b).success();
    let log = log.lock().clone();
    assert_eq!(
        log,
        vec![
            ("PACS".to_owned(), BreakerState::Closed, BreakerState::Open),
            ("PACS".to_owned(), BreakerState::Open, BreakerState::Closed),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn reset_clears_failures_and_disowns_permits_in_flight() {
    let b = breaker();
    fail(&b, 2);
    let in_flight = permit(&b);
    b.reset();
    assert_eq!(b.stats().consecutive_failures, 0);
    in_flight.failure();
    fail(&b, 2);
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn hooks_see_every_transition_outside_the_lock() {
    let b = Arc::new(breaker());
    let log = record_transitions(&b);
    // A hook that calls back into the breaker would deadlock under its lock.
    let weak = Arc::downgrade(&b);
    let seen_states = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen_states);
    b.on_state_change(move |_, _, to| {
        if let Some(b) = weak.upgrade() {
            let state = b.stats().state;
            sink.lock().push((to, state));
        }
    });

    open_then_wait(&b).await;
    permit(&b).failure(); // half-open probe fails: open again
    tokio::time::advance(OPEN).await;
    permit(&b).success();
    permit(&b).success();

    use BreakerState::*;
    let log: Vec<_> = log
        .lock()
        .iter()
        .map(|(name, from, to)| {
            assert_eq!(name, "PACS");
            (*from, *to)
        })
        .collect();
    assert_eq!(
        log,
        vec![
            (Closed, Open),
            (Open, HalfOpen),
            (HalfOpen, Open),
            (Open, HalfOpen),
            (HalfOpen, Closed),
        ]
    );
    let seen = seen_states.lock().clone();
    assert!(seen.iter().all(|(to, state)| to == state), "{seen:?}");
    assert_eq!(seen.len(), 5);
}

#[tokio::test(start_paused = true)]
async fn stats_serialize_with_snake_case_states() {
    let b = breaker();
    open_then_wait(&b).await;
    let _probe = permit(&b);
    tokio::time::advance(Duration::from_millis(1_500)).await;
    let json = serde_json::to_value(b.stats()).expect("stats serialize");
    assert_eq!(json["name"], "PACS");
    assert_eq!(json["state"], "half_open");
    assert_eq!(json["consecutive_failures"], 3);
    assert_eq!(json["calls"], 4);
    assert_eq!(json["failures"], 3);
    assert_eq!(json["trips"], 1);
    assert_eq!(json["rejected"], 0);
    assert_eq!(json["successes"], 0);
    assert_eq!(json["last_transition_secs_ago"], 1.5);
    assert!(json["open_remaining_secs"].is_null());
    for (state, name) in [
        (BreakerState::Closed, "closed"),
        (BreakerState::Open, "open"),
        (BreakerState::HalfOpen, "half_open"),
    ] {
        assert_eq!(serde_json::to_value(state).expect("serialize"), name);
        assert_eq!(state.to_string(), name);
    }
}

#[tokio::test(start_paused = true)]
async fn zero_thresholds_are_taken_as_one() {
    let b = CircuitBreaker::new(
        "PACS",
        BreakerSettings {
            failure_threshold: 0,
            success_threshold: 0,
            open_duration: OPEN,
            half_open_max_calls: 0,
        },
    );
    permit(&b).success();
    assert_eq!(b.state(), BreakerState::Closed);
    permit(&b).failure();
    assert_eq!(b.state(), BreakerState::Open);
    tokio::time::advance(OPEN).await;
    permit(&b).success();
    assert_eq!(b.state(), BreakerState::Closed);
}
