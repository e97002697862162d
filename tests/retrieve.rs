//! C-GET through a node's pool against the embedded SCP (which serves C-GET over
//! what it holds): the instances come back as files under DIR/<study>/<series>/,
//! byte for byte; counts, partial failure (B000 and its UID list), cancel, a peer
//! that answers no role selection, and a peer without C-GET.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pacs_net::client::{Node, OpOptions, RetrievalItem, RetrieveReport};
use pacs_net::config::{AdHocTarget, NodeConfig};
use pacs_net::dimse::{FindQuery, InstanceFile, QueryLevel, QueryModel, RetrieveEvent, Status};
use pacs_net::scp::{Behavior, Scp, ScpConfig};

const STUDY1: &str = "1.2.826.0.1.3680043.10.1234.1.1";
const STUDY3: &str = "1.2.826.0.1.3680043.10.1234.1.3";
const SERIES_1_1: &str = "1.2.826.0.1.3680043.10.1234.2.1.1";

async fn scp_holding_fixtures(behavior: Behavior, storage: &Path) -> Scp {
    let config = ScpConfig {
        behavior,
        storage_dir: Some(storage.to_path_buf()),
        ..ScpConfig::default()
    };
    let scp = Scp::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let loader = node(scp.port());
    for path in common::dicom_fixture_files() {
        let out = loader.store_file(&path).await;
        assert!(
            out.outcome.result.is_ok(),
            "{}: {:?}",
            path.display(),
            out.outcome.result
        );
    }
    loader.close(Duration::from_secs(2)).await;
    scp
}

fn node(port: u16) -> Arc<Node> {
    let target: AdHocTarget = format!("PACSNET_SCP@127.0.0.1:{port}").parse().unwrap();
    let mut c = NodeConfig::ad_hoc(&target);
    c.timeouts.dimse = Duration::from_secs(10);
    c.timeouts.retrieve = Duration::from_secs(10);
    Arc::new(Node::new(c, "GETTEST"))
}

fn query(level: QueryLevel, keys: &[&str]) -> FindQuery {
    FindQuery::new(
        QueryModel::StudyRoot,
        level,
        keys.iter().map(|k| k.parse().unwrap()).collect(),
    )
    .unwrap()
}

/// Run a C-GET to the end; the events seen, and the report.
async fn get_all(node: &Arc<Node>, q: FindQuery, out: &Path) -> (Vec<RetrieveEvent>, RetrieveReport) {
    let mut stream = node.get(q, out, OpOptions::default());
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let item = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("the retrieve ends in time")
            .expect("a Finished item ends the stream");
        match item {
            RetrievalItem::Event(e) => events.push(e),
            RetrievalItem::Finished(report) => return (events, *report),
        }
    }
}

fn fixture_of(sop_instance: &str) -> PathBuf {
    common::dicom_fixture_files()
        .into_iter()
        .find(|p| InstanceFile::open(p).unwrap().sop_instance_uid == sop_instance)
        .unwrap()
}

fn data_set_bytes(path: &Path) -> (String, Vec<u8>) {
    let f = InstanceFile::open(path).unwrap();
    let bytes = std::fs::read(path).unwrap();
    (f.transfer_syntax.clone(), bytes[f.data_offset as usize..].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_study_comes_back_as_files_byte_for_byte() {
    let held = tempfile::tempdir().unwrap();
    let scp = scp_holding_fixtures(Behavior::default(), held.path()).await;
    let node = node(scp.port());
    let out = tempfile::tempdir().unwrap();
    let (events, report) = get_all(
        &node,
        query(QueryLevel::Study, &[&format!("StudyInstanceUID={STUDY1}")]),
        out.path(),
    )
    .await;
    let outcome = report.outcome.result.expect("C-GET succeeds");
    assert_eq!(outcome.status, Status::SUCCESS);
    assert_eq!(
        (outcome.sub_operations.completed, outcome.sub_operations.failed),
        (5, 0)
    );
    assert_eq!(outcome.written, 5);
    let instances: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            RetrieveEvent::Instance(i) => Some(i.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(instances.len(), 5);
    let mut identical = 0;
    for i in &instances {
        let path = i.path.clone().expect("written");
        // DIR/<study>/<series>/<sop>.dcm
        let rel = path.strip_prefix(out.path()).unwrap();
        let parts: Vec<_> = rel.iter().map(|p| p.to_string_lossy().to_string()).collect();
        assert_eq!(parts[0], STUDY1);
        assert_eq!(parts[2], format!("{}.dcm", i.sop_instance_uid));
        let (ts, got) = data_set_bytes(&path);
        assert_eq!(ts, i.transfer_syntax, "the file meta names the syntax it arrived in");
        let (orig_ts, want) = data_set_bytes(&fixture_of(&i.sop_instance_uid));
        if orig_ts == ts {
            assert_eq!(got, want, "{} is byte-identical in its data set", i.sop_instance_uid);
            identical += 1;
        }
    }
    assert!(
        identical >= 3,
        "the Explicit VR LE instances come back as they were stored"
    );
    assert!(report.last_response.unwrap().failed_sop_instance_uids.is_empty());
    // The pool took the association back clean.
    let stats = node.stats();
    assert_eq!(stats.pool.active, 0);
    assert!(node.echo().await.result.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_and_image_levels_select_what_they_name() {
    let held = tempfile::tempdir().unwrap();
    let scp = scp_holding_fixtures(Behavior::default(), held.path()).await;
    let node = node(scp.port());
    let out = tempfile::tempdir().unwrap();
    let (_, report) = get_all(
        &node,
        query(
            QueryLevel::Series,
            &[
                &format!("StudyInstanceUID={STUDY1}"),
                &format!("SeriesInstanceUID={SERIES_1_1}"),
            ],
        ),
        out.path(),
    )
    .await;
    assert_eq!(report.outcome.result.unwrap().written, 3);
    assert_eq!(common::files_under(&out.path().join(STUDY1).join(SERIES_1_1)).len(), 3);

    let out = tempfile::tempdir().unwrap();
    let sop = "1.2.826.0.1.3680043.10.1234.3.1.1.2";
    let (_, report) = get_all(
        &node,
        query(
            QueryLevel::Image,
            &[
                &format!("StudyInstanceUID={STUDY1}"),
                &format!("SeriesInstanceUID={SERIES_1_1}"),
                &format!("SOPInstanceUID={sop}"),
            ],
        ),
        out.path(),
    )
    .await;
    assert_eq!(report.outcome.result.unwrap().written, 1);
    assert!(out
        .path()
        .join(STUDY1)
        .join(SERIES_1_1)
        .join(format!("{sop}.dcm"))
        .is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_and_uncompressed_of_one_class_both_come_back_as_held() {
    let held = tempfile::tempdir().unwrap();
    let scp = scp_holding_fixtures(Behavior::default(), held.path()).await;
    let node = node(scp.port());
    let out = tempfile::tempdir().unwrap();
    // Study 3: CT in Explicit VR LE and CT in RLE Lossless.
    let (events, report) = get_all(
        &node,
        query(QueryLevel::Study, &[&format!("StudyInstanceUID={STUDY3}")]),
        out.path(),
    )
    .await;
    let outcome = report.outcome.result.unwrap();
    assert_eq!(
        (outcome.sub_operations.completed, outcome.sub_operations.failed),
        (3, 0)
    );
    let syntaxes: std::collections::BTreeSet<String> = events
        .iter()
        .filter_map(|e| match e {
            RetrieveEvent::Instance(i) => Some(i.transfer_syntax.clone()),
            _ => None,
        })
        .collect();
    assert!(syntaxes.contains("1.2.840.10008.1.2.5"), "{syntaxes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_answers_no_role_selection_still_delivers() {
    let held = tempfile::tempdir().unwrap();
    let behavior = Behavior {
        omit_role_selection: true,
        ..Behavior::default()
    };
    let scp = scp_holding_fixtures(behavior, held.path()).await;
    let node = node(scp.port());
    let out = tempfile::tempdir().unwrap();
    let (_, report) = get_all(
        &node,
        query(QueryLevel::Study, &[&format!("StudyInstanceUID={STUDY1}")]),
        out.path(),
    )
    .await;
    assert_eq!(report.outcome.result.unwrap().written, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_instance_is_a_partial_failure_with_its_uid() {
    let held = tempfile::tempdir().unwrap();
    let scp = scp_holding_fixtures(Behavior::default(), held.path()).await;
    let gone = "1.2.826.0.1.3680043.10.1234.3.1.1.3";
    let path = scp
        .stored()
        .into_iter()
        .find(|i| i.sop_instance_uid == gone)
        .and_then(|i| i.path)
        .unwrap();
    std::fs::remove_file(path).unwrap();
    let node = node(scp.port());
    let out = tempfile::tempdir().unwrap();
    let (_, report) = get_all(
        &node,
        query(QueryLevel::Study, &[&format!("StudyInstanceUID={STUDY1}")]),
        out.path(),
    )
    .await;
    let outcome = report
        .outcome
        .result
        .expect("B000 is a warning, not a failure of the operation");
    assert_eq!(outcome.status, Status(0xB000));
    assert_eq!(
        (outcome.sub_operations.completed, outcome.sub_operations.failed),
        (4, 1)
    );
    assert_eq!(outcome.failed_sop_instance_uids, vec![gone.to_string()]);
    assert_eq!(common::files_under(out.path()).len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_sends_c_cancel_and_leaves_a_clean_pool() {
    let held = tempfile::tempdir().unwrap();
    let behavior = Behavior {
        // Slow enough that the cancel arrives mid-retrieve.
        response_delay: Some(Duration::from_millis(150)),
        ..Behavior::default()
    };
    let scp = scp_holding_fixtures(behavior, held.path()).await;
    let node = node(scp.port());
    let out = tempfile::tempdir().unwrap();
    let mut stream = node.get(
        query(QueryLevel::Study, &[&format!("StudyInstanceUID={STUDY1}")]),
        out.path(),
        OpOptions::default(),
    );
    let mut instances = 0;
    let report = loop {
        match tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .unwrap()
            .unwrap()
        {
            RetrievalItem::Event(RetrieveEvent::Instance(_)) => {
                instances += 1;
                if instances == 1 {
                    stream.cancel();
                }
            }
            RetrievalItem::Event(_) => {}
            RetrievalItem::Finished(r) => break r,
        }
    };
    let outcome = report.outcome.result.expect("a cancel we asked for is not a failure");
    assert!(outcome.cancelled);
    assert_eq!(outcome.status, Status::CANCEL);
    assert!(outcome.written < 5, "stopped early: {}", outcome.written);
    assert_eq!(node.stats().pool.active, 0);
    assert!(node.echo().await.result.is_ok());
    // Dropping a stream cancels too, and the node stays usable.
    let out2 = tempfile::tempdir().unwrap();
    let mut dropped = node.get(
        query(QueryLevel::Study, &[&format!("StudyInstanceUID={STUDY1}")]),
        out2.path(),
        OpOptions::default(),
    );
    let _ = tokio::time::timeout(Duration::from_secs(30), dropped.next()).await;
    drop(dropped);
    for _ in 0..100 {
        if node.stats().pool.active == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(node.stats().pool.active, 0);
    assert!(node.echo().await.result.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_c_get_is_named_in_the_error() {
    let held = tempfile::tempdir().unwrap();
    let behavior = Behavior {
        no_get: true,
        ..Behavior::default()
    };
    let scp = scp_holding_fixtures(behavior, held.path()).await;
    let node = node(scp.port());
    let out = tempfile::tempdir().unwrap();
    let (_, report) = get_all(
        &node,
        query(QueryLevel::Study, &[&format!("StudyInstanceUID={STUDY1}")]),
        out.path(),
    )
    .await;
    let err = report.outcome.result.unwrap_err().to_string();
    assert!(err.contains("PACSNET_SCP") && err.contains("C-GET"), "{err}");
    assert_eq!(report.outcome.attempts, 1, "not retried");
}

/// A C-MOVE's instances reach a listener whose message limit is smaller than each
/// of them: the listener streams data sets to disk rather than gathering them
/// (its memory does not grow with the instance), and files them byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_destination_streams_instances_larger_than_its_message_limit() {
    let received = tempfile::tempdir().unwrap();
    let listener = Scp::start(
        ScpConfig {
            ae_title: "GETTEST".into(),
            storage_dir: Some(received.path().to_path_buf()),
            storage_by_study: true,
            limits: pacs_net::config::Limits {
                max_data_set_bytes: 4096,
                ..pacs_net::config::Limits::default()
            },
            ..ScpConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let (tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    listener.storage().notify_to(tx);

    let held = tempfile::tempdir().unwrap();
    let config = ScpConfig {
        storage_dir: Some(held.path().to_path_buf()),
        move_destinations: [("GETTEST".to_string(), ("127.0.0.1".to_string(), listener.port()))].into(),
        ..ScpConfig::default()
    };
    let scp = Scp::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let loader = node(scp.port());
    for path in common::dicom_fixture_files() {
        assert!(loader.store_file(&path).await.outcome.result.is_ok());
    }
    let mut stream = loader.move_to(
        query(QueryLevel::Study, &[&format!("StudyInstanceUID={STUDY1}")]),
        "GETTEST",
        OpOptions::default(),
    );
    let report = loop {
        match tokio::time::timeout(Duration::from_secs(60), stream.next()).await {
            Ok(Some(RetrievalItem::Finished(report))) => break report,
            Ok(Some(RetrievalItem::Event(_))) => {}
            other => panic!("the move ends with a report: {}", other.is_ok()),
        }
    };
    let outcome = report.outcome.result.expect("C-MOVE succeeds");
    assert_eq!(
        (outcome.sub_operations.completed, outcome.sub_operations.failed),
        (5, 0)
    );
    let mut larger_than_limit = 0;
    for _ in 0..5 {
        let got = tokio::time::timeout(Duration::from_secs(10), seen.recv())
            .await
            .unwrap()
            .unwrap();
        let path = got.path.clone().expect("written to disk");
        let rel: Vec<_> = path
            .strip_prefix(received.path())
            .unwrap()
            .iter()
            .map(|p| p.to_string_lossy().to_string())
            .collect();
        assert_eq!(rel[0], STUDY1);
        assert_eq!(rel[2], format!("{}.dcm", got.sop_instance_uid));
        assert_eq!(got.move_originator.as_ref().map(|(ae, _)| ae.as_str()), Some("GETTEST"));
        let (ts, data) = data_set_bytes(&path);
        assert_eq!(ts, got.transfer_syntax);
        assert_eq!(data.len(), got.size);
        let (orig_ts, want) = data_set_bytes(&fixture_of(&got.sop_instance_uid));
        if orig_ts == ts {
            assert_eq!(data, want, "{} is byte-identical", got.sop_instance_uid);
        }
        if got.size > 4096 {
            larger_than_limit += 1;
        }
    }
    assert!(larger_than_limit >= 3, "most fixtures exceed the 4096-byte limit");
    assert_eq!(listener.stats().aborted_by_us, 0);
    loader.close(Duration::from_secs(2)).await;
    scp.shutdown().await;
    listener.shutdown().await;
}
