//! Hostile and buggy peers: a C-FIND SCP that lies about lengths, floods, or cuts
//! a query short, and what pacs-net makes of it (issue 9).

mod common;
#[path = "hostile_fake/mod.rs"]
mod fake;

use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pacs_net::client::{Node, OpError, OpOptions};
use pacs_net::config::{AdHocTarget, BreakerSettings, NodeConfig, RetrySettings, RetryStrategy};
use pacs_net::dimse::{FindQuery, QueryLevel, QueryModel};

use fake::{Script, AE};

fn node_config(port: u16) -> NodeConfig {
    let target: AdHocTarget = format!("{AE}@127.0.0.1:{port}").parse().unwrap();
    let mut c = NodeConfig::ad_hoc(&target);
    c.retry = RetrySettings {
        max_attempts: 3,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
        strategy: RetryStrategy::Fixed,
        ..RetrySettings::default()
    };
    c.breaker = BreakerSettings {
        failure_threshold: 5,
        ..BreakerSettings::default()
    };
    c.timeouts.dimse = Duration::from_secs(10);
    c
}

fn study_query() -> FindQuery {
    FindQuery::new(
        QueryModel::StudyRoot,
        QueryLevel::Study,
        vec!["PatientID".parse().unwrap()],
    )
    .unwrap()
}

fn last_op_error(out: &pacs_net::client::Outcome<pacs_net::dimse::FindOutcome>) -> &OpError {
    out.result
        .as_ref()
        .err()
        .and_then(|e| e.last_error())
        .expect("an operation error")
}

#[tokio::test]
async fn a_4_gib_element_length_is_a_protocol_error_not_an_allocation_nor_a_retry() {
    let fake = fake::start(Script::HugeLength).await;
    let node = Node::new(node_config(fake.port), "HOSTILETEST");
    let out = node.find(&study_query(), |_| ControlFlow::Continue(())).await;
    let err = last_op_error(&out).to_string();
    assert!(
        err.contains("(0010,0020) declares 4294967280 bytes but only 8 follow"),
        "the error names the problem: {err}"
    );
    assert!(!err.contains("PID00001"), "no patient data in errors: {err}");
    assert_eq!(out.attempts, 1, "a decode error is permanent: not retried");
    assert_eq!(fake.seen.associations.load(Ordering::SeqCst), 1);
    let stats = node.stats();
    assert_eq!(
        stats.resilience.breaker.failures, 1,
        "a misbehaving node counts against its breaker"
    );
    assert_eq!(stats.pool.total, 0, "the association was aborted, not pooled");
}

#[tokio::test]
async fn an_endless_command_set_hits_max_command_bytes() {
    let fake = fake::start(Script::HugeCommand { total: 256 * 1024 }).await;
    let mut config = node_config(fake.port);
    config.limits.max_command_bytes = 32 * 1024;
    let node = Node::new(config, "HOSTILETEST");
    let out = node.find(&study_query(), |_| ControlFlow::Continue(())).await;
    let err = last_op_error(&out).to_string();
    assert!(err.contains("limits.max_command_bytes"), "{err}");
    assert!(err.contains("32768"), "{err}");
    assert_eq!(out.attempts, 1);
    assert_eq!(node.stats().pool.total, 0);
}

#[tokio::test]
async fn a_c_find_the_remote_cuts_short_is_an_error_saying_results_are_incomplete() {
    let fake = fake::start(Script::RemoteCancel { matches: 2 }).await;
    let node = Node::new(node_config(fake.port), "HOSTILETEST");
    let mut seen = 0;
    let out = node
        .find(&study_query(), |_| {
            seen += 1;
            ControlFlow::Continue(())
        })
        .await;
    assert_eq!(seen, 2);
    let err = last_op_error(&out);
    assert!(matches!(err, OpError::Incomplete { matches: 2 }), "{err:?}");
    assert!(err.to_string().contains("incomplete"), "{err}");
    assert_eq!(out.last_status.map(|s| s.0), Some(0xFE00));
}

#[tokio::test]
async fn a_stream_the_remote_cuts_short_ends_with_an_error() {
    let fake = fake::start(Script::RemoteCancel { matches: 3 }).await;
    let node = Arc::new(Node::new(node_config(fake.port), "HOSTILETEST"));
    let items: Vec<_> = node.find_stream(study_query(), OpOptions::default()).collect().await;
    assert_eq!(items.len(), 4);
    assert!(items[..3].iter().all(|i| i.is_ok()));
    let last = items[3].as_ref().unwrap_err().to_string();
    assert!(last.contains("incomplete"), "{last}");
}

#[tokio::test]
async fn losing_the_association_after_our_c_cancel_is_a_cancelled_success() {
    let fake = fake::start(Script::CloseAfterCancel { matches: 5 }).await;
    let node = Node::new(node_config(fake.port), "HOSTILETEST");
    let mut seen = 0;
    let out = node
        .find(&study_query(), |_| {
            seen += 1;
            if seen == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .await;
    let found = out.result.expect("we asked to stop: the query succeeded");
    assert!(found.cancelled);
    assert_eq!(found.matches, 2);
    assert_eq!(out.attempts, 1);
    assert_eq!(fake.seen.cancels.load(Ordering::SeqCst), 1);
    let stats = node.stats();
    assert_eq!(
        stats.resilience.breaker.failures, 0,
        "our own cancel says nothing about the node"
    );
    assert_eq!(stats.pool.total, 0, "the association was lost, not pooled");
}

#[tokio::test]
async fn find_limit_exits_0_with_the_results_asked_for_when_the_remote_hangs_up_after_c_cancel() {
    let fake = fake::start(Script::CloseAfterCancel { matches: 5 }).await;
    let target = format!("{AE}@127.0.0.1:{}", fake.port);
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || {
        common::pacs_net(&["find", &target, "-k", "PatientID", "--limit", "2", "--format", "csv"])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "stderr: {stderr}");
    assert_eq!(stdout.lines().count(), 3, "a header and 2 rows: {stdout}");
}

#[tokio::test]
async fn find_exits_1_and_says_so_when_the_remote_cuts_the_results_short() {
    let fake = fake::start(Script::RemoteCancel { matches: 2 }).await;
    let target = format!("{AE}@127.0.0.1:{}", fake.port);
    let (code, _stdout, stderr) =
        tokio::task::spawn_blocking(move || common::pacs_net(&["find", &target, "-k", "PatientID"]))
            .await
            .unwrap();
    assert_eq!(code, 1);
    assert!(stderr.contains("incomplete"), "{stderr}");
}

#[tokio::test]
async fn find_of_a_4_gib_length_fails_once_naming_the_problem() {
    let fake = fake::start(Script::HugeLength).await;
    let target = format!("{AE}@127.0.0.1:{}", fake.port);
    let (code, _stdout, stderr) =
        tokio::task::spawn_blocking(move || common::pacs_net(&["find", &target, "-k", "PatientID"]))
            .await
            .unwrap();
    assert_eq!(code, 1);
    assert!(stderr.contains("declares 4294967280 bytes"), "{stderr}");
    // Not retried: one association, one attempt.
    assert_eq!(fake.seen.associations.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_slow_stream_consumer_holds_the_query_back_and_dropping_it_cancels() {
    // 400 matches of 256 KiB: 100 MB, far more than socket buffers and the
    // stream's buffer hold together.
    let fake = fake::start(Script::Flood {
        count: 400,
        size: 256 * 1024,
    })
    .await;
    let node = Arc::new(Node::new(node_config(fake.port), "HOSTILETEST"));
    let mut stream = Box::pin(node.find_stream(study_query(), OpOptions::default()));
    assert!(stream.next().await.unwrap().is_ok());
    // The consumer now stops reading. Without backpressure the node would drain
    // the whole flood into memory; with it, the fake's writes stall.
    tokio::time::timeout(Duration::from_secs(120), fake.seen.changed.notified())
        .await
        .expect("the fake either stalls or finishes");
    assert!(
        !fake.seen.flood_done.load(Ordering::SeqCst),
        "all 400 matches were read while the consumer held one"
    );
    assert!(fake.seen.stalled.load(Ordering::SeqCst));
    let sent = fake.seen.sent.load(Ordering::SeqCst);
    assert!(sent < 400, "sent {sent}");
    drop(stream);
}

#[tokio::test]
async fn deadlines_shorter_than_the_timeouts_still_open_the_breaker_of_a_black_holed_node() {
    // Accepts TCP connections (the kernel's backlog) and never answers.
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = node_config(hole.local_addr().unwrap().port());
    config.breaker.failure_threshold = 3;
    config.breaker.open_duration = Duration::from_millis(300);
    let node = Node::new(config, "HOSTILETEST");
    let opts = OpOptions {
        deadline: Some(Duration::from_millis(200)),
        ..OpOptions::default()
    };
    for _ in 0..3 {
        let out = node.echo_with(&opts).await;
        let err = out.result.unwrap_err();
        assert!(err.to_string().contains("deadline"), "{err}");
    }
    assert_eq!(
        node.stats().resilience.breaker.state,
        pacs_net::resilience::BreakerState::Open
    );
    let refused = node.echo_with(&opts).await;
    assert_eq!(refused.attempts, 0, "the circuit is open: fail fast");
    assert!(refused.result.unwrap_err().to_string().contains("circuit"));
    // Past the open duration, one probe is let through; cut by its deadline, it
    // failed, and the circuit opens again rather than staying half-open.
    let open_ran_out = common::eventually(|| node.stats().resilience.breaker.open_remaining_secs == Some(0.0)).await;
    assert!(open_ran_out, "{:?}", node.stats().resilience.breaker);
    let probe = node.echo_with(&opts).await;
    assert_eq!(probe.attempts, 1);
    let breaker = node.stats().resilience.breaker;
    assert_eq!(breaker.state, pacs_net::resilience::BreakerState::Open);
    assert_eq!(breaker.trips, 2);
}

#[tokio::test]
async fn an_operation_cut_by_its_deadline_leaves_no_borrow_behind() {
    use pacs_net::scp::{Behavior, Scp, ScpConfig};
    let scp = Scp::start(
        ScpConfig {
            behavior: Behavior {
                response_delay: Some(Duration::from_secs(30)),
                ..Behavior::default()
            },
            ..ScpConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let target: AdHocTarget = format!("PACSNET_SCP@127.0.0.1:{}", scp.port()).parse().unwrap();
    let node = Node::new(NodeConfig::ad_hoc(&target), "HOSTILETEST");
    let opts = OpOptions {
        deadline: Some(Duration::from_millis(300)),
        ..OpOptions::default()
    };
    let out = node.echo_with(&opts).await;
    let err = out.result.unwrap_err().to_string();
    assert!(err.contains("deadline"), "cut by its deadline: {err}");
    assert!(
        node.borrowed_operations().is_empty(),
        "{:?}",
        node.borrowed_operations()
    );
    assert_eq!(node.stats().pool.active, 0);
}
