//! The resilient executor and the pool against the embedded SCP misbehaving on
//! purpose: rejections, aborts, scripted statuses, stalls, idle closes, a capped
//! PACS, and a node that is down.

mod common;

use std::sync::Arc;
use std::time::Duration;

use pacs_net::client::{Node, OpError};
use pacs_net::config::{AdHocTarget, BreakerSettings, NodeConfig, RetrySettings, RetryStrategy};
use pacs_net::dimse::Status;
use pacs_net::resilience::{BreakerState, ExecError};
use pacs_net::scp::{Behavior, Scp, ScpConfig};

async fn scp_with(behavior: Behavior) -> Scp {
    let config = ScpConfig {
        behavior,
        ..ScpConfig::default()
    };
    Scp::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

fn node_config(port: u16) -> NodeConfig {
    let target: AdHocTarget = format!("PACSNET_SCP@127.0.0.1:{port}").parse().unwrap();
    let mut c = NodeConfig::ad_hoc(&target);
    c.retry = RetrySettings {
        max_attempts: 3,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        strategy: RetryStrategy::Fixed,
        ..RetrySettings::default()
    };
    c.breaker = BreakerSettings {
        failure_threshold: 5,
        ..BreakerSettings::default()
    };
    c.timeouts.connect = Duration::from_secs(2);
    c.timeouts.acse = Duration::from_secs(2);
    c.timeouts.dimse = Duration::from_secs(5);
    c
}

fn node(config: NodeConfig) -> Node {
    Node::new(config, "FAULTTEST")
}

fn fixture_files() -> Vec<std::path::PathBuf> {
    // Only files the default profile carries, so every store shares associations.
    common::dicom_fixture_files()
        .into_iter()
        .filter(|p| {
            let s = p.to_string_lossy();
            !s.contains("study2/series2") && !s.contains("study3/series2")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_rejections_then_success() {
    let scp = scp_with(Behavior {
        reject_transient_first: 2,
        ..Behavior::default()
    })
    .await;
    let n = node(node_config(scp.port()));
    let out = n.echo().await;
    assert_eq!(out.result.unwrap(), Status::SUCCESS);
    assert_eq!(out.attempts, 3, "two transient rejections, then success");
    assert_eq!(scp.stats().rejected, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_rejection_is_not_retried() {
    let scp = scp_with(Behavior {
        reject_permanent: true,
        ..Behavior::default()
    })
    .await;
    let n = node(node_config(scp.port()));
    let out = n.echo().await;
    assert_eq!(out.attempts, 1);
    let err = out.result.unwrap_err().to_string();
    assert!(err.contains("rejected") && err.contains("permanent"), "{err}");
    assert!(err.contains("calling AE title not recognized"), "{err}");
    assert_eq!(scp.stats().association_requests, 1, "the SCP saw one attempt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_mid_batch_is_retried_and_everything_is_stored() {
    let scp = scp_with(Behavior {
        abort_on_store: Some(10),
        ..Behavior::default()
    })
    .await;
    let n = node(node_config(scp.port()));
    let files = fixture_files();
    let mut attempts = Vec::new();
    for i in 0..30 {
        let out = n.store_file(&files[i % files.len()]).await;
        assert!(out.outcome.result.is_ok(), "file {i}: {:?}", out.outcome.result);
        attempts.push(out.outcome.attempts);
    }
    // The A-ABORT came before any response on an association reused from the pool:
    // that is the remote ending it, and the store is redone on a fresh association
    // without counting as a failed attempt (PS3.8 gives no way to tell the two).
    assert!(attempts.iter().all(|a| *a == 1), "{attempts:?}");
    assert_eq!(n.stats().pool.stale_redos, 1);
    assert_eq!(scp.stats().aborted_by_us, 1);
    assert_eq!(scp.stored().len(), files.len().min(30), "every file arrived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_resources_once_then_success() {
    let hook: pacs_net::scp::StoreStatusHook = Arc::new(|n, _| (n == 1).then_some(0xA700));
    let scp = scp_with(Behavior {
        store_status: Some(hook),
        ..Behavior::default()
    })
    .await;
    let n = node(node_config(scp.port()));
    let out = n.store_file(&fixture_files()[0]).await;
    assert_eq!(out.outcome.result.unwrap().status, Status::SUCCESS);
    assert_eq!(out.outcome.attempts, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a900_fails_one_file_without_retry_and_b000_is_a_warning() {
    let files = fixture_files();
    let bad = pacs_net::dimse::InstanceFile::open(&files[1]).unwrap().sop_instance_uid;
    let warn = pacs_net::dimse::InstanceFile::open(&files[2]).unwrap().sop_instance_uid;
    let hook: pacs_net::scp::StoreStatusHook = Arc::new(move |_, uid| {
        if uid == bad {
            Some(0xA900)
        } else if uid == warn {
            Some(0xB000)
        } else {
            None
        }
    });
    let scp = scp_with(Behavior {
        store_status: Some(hook),
        ..Behavior::default()
    })
    .await;
    let n = node(node_config(scp.port()));
    let mut outcomes = Vec::new();
    for f in &files[..4] {
        outcomes.push(n.store_file(f).await);
    }
    assert!(outcomes[0].outcome.result.is_ok());
    match &outcomes[1].outcome.result {
        Err(ExecError::Operation(OpError::Status { status, .. })) => assert_eq!(*status, Status(0xA900)),
        other => panic!("expected A900, got {other:?}"),
    }
    assert_eq!(outcomes[1].outcome.attempts, 1, "A900 is not retried");
    let warned = outcomes[2].outcome.result.as_ref().unwrap();
    assert_eq!(warned.status, Status(0xB000));
    assert!(warned.status.is_warning());
    assert!(outcomes[3].outcome.result.is_ok());
    assert_eq!(n.stats().resilience.breaker.state, BreakerState::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_responses_time_out_and_the_association_is_not_reused() {
    let scp = scp_with(Behavior {
        response_delay: Some(Duration::from_millis(600)),
        ..Behavior::default()
    })
    .await;
    let mut config = node_config(scp.port());
    config.timeouts.dimse = Duration::from_millis(150);
    config.retry.max_attempts = 2;
    let n = node(config);
    let out = n.echo().await;
    assert_eq!(out.attempts, 2);
    let err = out.result.unwrap_err().to_string();
    assert!(err.contains("DIMSE timeout"), "{err}");
    let stats = n.stats().pool;
    assert_eq!(stats.created, 2, "each attempt needed a new association");
    assert_eq!(stats.idle, 0, "a timed-out association is never returned to the pool");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_down_opens_the_breaker_and_the_rest_fails_fast() {
    let port = common::free_port();
    let mut config = node_config(port);
    config.retry.max_attempts = 1;
    config.breaker = BreakerSettings {
        failure_threshold: 5,
        open_duration: Duration::from_secs(60),
        ..BreakerSettings::default()
    };
    let n = node(config);
    let files = fixture_files();
    let mut circuit_open = 0;
    for i in 0..200 {
        let out = n.store_file(&files[i % files.len()]).await;
        if let Err(ExecError::CircuitOpen { .. }) = out.outcome.result {
            circuit_open += 1;
        }
    }
    assert_eq!(
        circuit_open, 195,
        "5 failures open the circuit; the other 195 are refused at once"
    );
    let s = n.stats().resilience.breaker;
    assert_eq!(s.state, BreakerState::Open);
    assert_eq!(s.trips, 1);
    // Only the first 5 tried to connect; the 195 others never reached the network.
    assert_eq!(n.stats().pool.create_failures, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_recovers_when_the_node_comes_back() {
    let port = common::free_port();
    let mut config = node_config(port);
    config.retry.max_attempts = 1;
    config.breaker = BreakerSettings {
        failure_threshold: 2,
        success_threshold: 1,
        open_duration: Duration::from_millis(300),
        half_open_max_calls: 1,
    };
    let n = node(config);
    for _ in 0..2 {
        let err = n.echo().await.result.unwrap_err().to_string();
        assert!(err.contains("cannot connect") || err.contains("refused"), "{err}");
    }
    assert_eq!(n.stats().resilience.breaker.state, BreakerState::Open);
    assert!(matches!(n.echo().await.result, Err(ExecError::CircuitOpen { .. })));
    let scp = Scp::start(ScpConfig::default(), format!("127.0.0.1:{port}").parse().unwrap())
        .await
        .unwrap();
    // Wait for open_duration to run out (the breaker says how much is left), not
    // for a guessed sleep.
    let open_ran_out = common::eventually(|| n.stats().resilience.breaker.open_remaining_secs == Some(0.0)).await;
    assert!(open_ran_out, "{:?}", n.stats().resilience.breaker);
    assert_eq!(
        scp.stats().association_requests,
        0,
        "nothing reached the node while open"
    );
    assert_eq!(
        n.echo().await.result.unwrap(),
        Status::SUCCESS,
        "one probe after open_duration"
    );
    assert_eq!(n.stats().resilience.breaker.state, BreakerState::Closed);
    assert_eq!(scp.stats().association_requests, 1, "the probe was the one association");
    drop(scp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_closing_idle_associations_never_fails_an_operation() {
    let scp = scp_with(Behavior {
        close_idle_after: Some(Duration::from_millis(300)),
        ..Behavior::default()
    })
    .await;
    let n = node(node_config(scp.port()));
    for i in 1..=3 {
        let out = n.echo().await;
        assert_eq!(out.result.unwrap(), Status::SUCCESS);
        assert_eq!(out.attempts, 1);
        // The next echo starts once the SCP has closed this idle association.
        let closed = common::eventually(|| scp.stats().closed_idle == i).await;
        assert!(closed, "the SCP closed association {i} when idle: {:?}", scp.stats());
    }
    let s = n.stats().pool;
    assert!(
        s.destroyed.stale + s.stale_redos >= 2,
        "stale associations were detected: {s:?}"
    );
    assert_eq!(scp.stats().closed_idle, 3);
    assert_eq!(scp.stats().accepted, 3, "each echo needed a new association");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capped_pacs_gets_at_most_its_limit_and_everything_is_stored() {
    let scp = scp_with(Behavior {
        max_associations: Some(2),
        ..Behavior::default()
    })
    .await;
    let mut config = node_config(scp.port());
    config.pool.max_size = 8;
    config.retry.max_attempts = 10;
    config.breaker.failure_threshold = 1000;
    let n = Arc::new(node(config));
    let files = fixture_files();
    let mut tasks = tokio::task::JoinSet::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(8));
    for i in 0..200 {
        let n = n.clone();
        let path = files[i % files.len()].clone();
        let permit = sem.clone().acquire_owned().await.unwrap();
        tasks.spawn(async move {
            let out = n.store_file(&path).await;
            drop(permit);
            out.outcome.result.is_ok()
        });
    }
    let mut ok = 0;
    while let Some(r) = tasks.join_next().await {
        ok += r.unwrap() as usize;
    }
    assert_eq!(ok, 200);
    assert!(scp.stats().peak_active <= 2, "{:?}", scp.stats());
    // The pool learned the remote's limit: its cap is below max_size (it may already
    // be climbing back, one step per quiet interval).
    let effective = n.stats().pool.effective_max;
    assert!(effective < 8, "effective max {effective}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_sets_are_converted_to_an_accepted_syntax_and_compressed_ones_are_refused_by_name() {
    use pacs_net::association::uids;
    let scp = scp_with(Behavior {
        transfer_syntaxes: Some(vec![uids::IMPLICIT_VR_LE.to_string()]),
        ..Behavior::default()
    })
    .await;
    let n = node(node_config(scp.port()));
    let dir = common::fixtures().join("dicom");
    // Explicit VR LE and big endian files: converted to Implicit VR LE.
    for rel in ["patient1/study1/series1/1.dcm", "patient1/study2/series2/1.dcm"] {
        let out = n.store_file(&dir.join(rel)).await;
        let rsp = out.outcome.result.unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert!(rsp.converted, "{rel}");
        assert_eq!(rsp.transfer_syntax, uids::IMPLICIT_VR_LE);
    }
    let stored = scp.stored();
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|s| s.transfer_syntax == uids::IMPLICIT_VR_LE));
    // The converted big-endian data set reads back with the same pixel data as the
    // explicit little-endian original would have: check its rows/columns survived.
    let be_uid = pacs_net::dimse::InstanceFile::open(&dir.join("patient1/study2/series2/1.dcm"))
        .unwrap()
        .sop_instance_uid;
    let data = scp.storage().data_set(&be_uid).unwrap();
    let obj = dicom_object::InMemDicomObject::read_dataset_with_ts(
        &data[..],
        &dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN.erased(),
    )
    .unwrap();
    assert_eq!(
        obj.element(dicom_dictionary_std::tags::ROWS)
            .unwrap()
            .to_int::<u16>()
            .unwrap(),
        64
    );
    // RLE: cannot be converted; the reason names the syntax; not retried.
    let out = n.store_file(&dir.join("patient2/study3/series2/1.dcm")).await;
    assert_eq!(out.outcome.attempts, 1);
    let err = out.outcome.result.unwrap_err().to_string();
    assert!(
        err.contains("RLE Lossless") && err.contains("cannot be converted"),
        "{err}"
    );
    // Remembered: the next RLE file fails at once, without a new negotiation.
    let before = scp.stats().association_requests;
    let out = n.store_file(&dir.join("patient2/study3/series2/1.dcm")).await;
    assert_eq!(out.outcome.attempts, 0);
    assert_eq!(scp.stats().association_requests, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifiers_larger_than_one_pdu() {
    use pacs_net::dimse::{FindQuery, QueryKey, QueryLevel, QueryModel};
    let scp = scp_with(Behavior::default()).await;
    let mut config = node_config(scp.port());
    config.max_pdu_length = 4096;
    let n = node(config);
    for f in fixture_files() {
        assert!(n.store_file(&f).await.outcome.result.is_ok());
    }
    // A UID list match of ~30 KB (the SCP's max PDU is 16 KB): the identifier
    // travels in several P-DATA-TF PDUs.
    let mut uids: Vec<String> = (0..600)
        .map(|i| format!("1.2.826.0.1.3680043.10.1234.1.{}", 1000 + i))
        .collect();
    uids.push("1.2.826.0.1.3680043.10.1234.1.1".into());
    let key: QueryKey = format!("StudyInstanceUID={}", uids.join("\\")).parse().unwrap();
    let q = FindQuery::new(QueryModel::StudyRoot, QueryLevel::Study, vec![key]).unwrap();
    let mut found = Vec::new();
    let out = n
        .find(&q, |m| {
            found.push(m);
            std::ops::ControlFlow::Continue(())
        })
        .await;
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert_eq!(found.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_the_peer_is_an_error_not_a_panic() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for round in 0..12u64 {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await;
            let mut junk = Vec::new();
            // Some rounds look like a PDU header with an absurd length or type.
            match round % 3 {
                0 => junk.extend_from_slice(&[0x02, 0x00, 0xFF, 0xFF, 0xFF, 0xF0]),
                1 => junk.extend_from_slice(&[0x03, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x09, 0x09, 0x09]),
                _ => {}
            }
            for _ in 0..64 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                junk.push(seed as u8);
            }
            let _ = s.write_all(&junk).await;
            let _ = s.shutdown().await;
        }
    });
    let mut config = node_config(port);
    config.retry.max_attempts = 1;
    config.breaker.failure_threshold = 100;
    config.timeouts.acse = Duration::from_millis(500);
    let n = node(config);
    for round in 0..6 {
        let out = n.echo().await;
        let err = match out.result {
            Err(e) => e,
            Ok(status) => panic!("round {round}: junk answered as {status:?}"),
        };
        // A protocol error from what the peer sent, found at once: not a timeout
        // (which an unanswered request would also give), not a retry.
        let text = err.to_string();
        assert!(
            text.contains("malformed PDU from the remote") && !text.contains("timeout"),
            "round {round}: {text}"
        );
        assert_eq!(out.attempts, 1, "round {round}");
    }
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_scp_survives_garbage_and_keeps_serving() {
    use tokio::io::AsyncWriteExt;
    let scp = scp_with(Behavior::default()).await;
    for junk in [
        vec![0x01u8, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3],
        vec![0x04, 0x00, 0x00, 0x00, 0x00, 0x02, 0x01, 0x03],
        (0..255u8).collect::<Vec<u8>>(),
    ] {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", scp.port())).await.unwrap();
        let _ = s.write_all(&junk).await;
        let _ = s.shutdown().await;
    }
    // Each connection was taken as an association request and refused; none was
    // accepted, none is left open.
    let counted = common::eventually(|| {
        let s = scp.stats();
        s.association_requests == 3 && s.active == 0
    })
    .await;
    let s = scp.stats();
    assert!(counted, "{s:?}");
    assert_eq!((s.rejected, s.accepted), (3, 0), "{s:?}");
    let n = node(node_config(scp.port()));
    assert_eq!(n.echo().await.result.unwrap(), Status::SUCCESS);
    let s = scp.stats();
    assert_eq!((s.association_requests, s.accepted, s.echoes), (4, 1, 1), "{s:?}");
}
