//! Storage Commitment (Push Model): `pacs-net commit` and `store --commit` against
//! Orthanc (its commitment SCP reports on a new association to our listener, our AE
//! in its DicomModalities), a pynetdicom commitment SCP (tests/peers/commit_scp.py)
//! reporting on the same association, on a new one, with failures, and never, and
//! our own SCP both ways; `Node::commit` in batches against the embedded SCP. What
//! is checked: the exit code, the stdout line, and each instance's `commitment` and
//! `commitment_failure_reason` in the report JSON.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use pacs_net::client::{CommitOptions, Commitment, Node, ReportVia};
use pacs_net::config::{AdHocTarget, NodeConfig};
use pacs_net::dimse::{InstanceFile, SopRef};
use pacs_net::scp::{CommitReportMode, CommitmentListener, Scp, ScpConfig};

/// `n` CT instances under `dir` (copies of a fixture, each its own SOP Instance
/// UID `ROOT.9.77.SET.i`); their SOP Instance UIDs in order.
fn series(dir: &Path, n: usize, set: u32) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    let src = fixtures().join("dicom/patient1/study1/series1/1.dcm");
    let mut uids = Vec::new();
    for i in 1..=n {
        let mut obj = dicom_object::open_file(&src).unwrap();
        let uid = format!("1.2.826.0.1.3680043.10.1234.9.77.{set}.{i}");
        obj.put(DataElement::new(
            tags::SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(uid.as_str()),
        ));
        obj.meta_mut().media_storage_sop_instance_uid = uid.clone();
        obj.meta_mut().update_information_group_length();
        obj.write_to_file(dir.join(format!("{i:04}.dcm"))).unwrap();
        uids.push(uid);
    }
    uids
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A pynetdicom commitment SCP with `extra` arguments, on a free port.
fn pynetdicom_commit_scp(extra: &[&str]) -> Option<(Peer, u16)> {
    let python = python_with(&["pynetdicom"])?;
    let port = free_port();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/commit_scp.py");
    let port_s = port.to_string();
    let mut args = vec![script.to_str().unwrap(), &port_s];
    args.extend_from_slice(extra);
    let peer = start_peer(python.to_str().unwrap(), &args, &[], port);
    Some((peer, port))
}

/// `commitment` of every `results` entry of a `store --report`, by SOP Instance UID.
fn commitments(report: &serde_json::Value, list: &str) -> Vec<(String, String, Option<String>)> {
    report[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["sop_instance_uid"].as_str().unwrap_or("").to_string(),
                r["commitment"].as_str().unwrap_or("(none)").to_string(),
                r["commitment_failure_reason"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[test]
fn store_commit_200_to_pynetdicom_reported_on_the_same_association() {
    let Some((_peer, port)) = pynetdicom_commit_scp(&["--report", "same"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let uids = series(&dir.path().join("in"), 200, 1);
    let report = dir.path().join("store.json");
    let target = format!("PYCOMMIT@127.0.0.1:{port}");
    let (code, stdout, stderr) = pacs_net(&[
        "store",
        &target,
        dir.path().join("in").to_str().unwrap(),
        "--commit",
        "--commit-timeout-seconds",
        "20",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("200 files: 200 stored"), "{stdout}");
    assert!(
        stdout.contains("storage commitment of 200 instances: 200 committed, 0 failed, 0 unknown (1 request)"),
        "{stdout}"
    );
    let r = json(&report);
    let c = commitments(&r, "results");
    assert_eq!(c.len(), 200);
    for (uid, commitment, reason) in &c {
        assert!(uids.contains(uid));
        assert_eq!(commitment, "committed", "{uid}");
        assert_eq!(reason, &None);
    }
}

#[test]
fn store_commit_200_to_pynetdicom_one_not_held_is_failed_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let uids = series(&dir.path().join("in"), 200, 2);
    let listen = free_port();
    let listen_s = listen.to_string();
    // The PACS "lost" one instance: it reports it as no such object instance.
    let Some((_peer, port)) = pynetdicom_commit_scp(&[
        "--report",
        "new",
        "--report-port",
        &listen_s,
        "--fail",
        &uids[41],
        "--fail-reason",
        "0112",
    ]) else {
        return;
    };
    let report = dir.path().join("store.json");
    let (code, stdout, stderr) = pacs_net(&[
        "store",
        &format!("PYCOMMIT@127.0.0.1:{port}"),
        dir.path().join("in").to_str().unwrap(),
        "--commit",
        "--port",
        &listen_s,
        "--commit-timeout-seconds",
        "20",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("200 files: 200 stored, 0 warnings, 0 failed"),
        "{stdout}"
    );
    assert!(stdout.contains("199 committed, 1 failed, 0 unknown"), "{stdout}");
    assert!(
        stderr.contains(uids[41].as_str()) && stderr.contains("0112 no such object instance"),
        "{stderr}"
    );
    let c = commitments(&json(&report), "results");
    for (uid, commitment, reason) in &c {
        if *uid == uids[41] {
            assert_eq!((commitment.as_str(), reason.as_deref()), ("failed", Some("0112")));
        } else {
            assert_eq!((commitment.as_str(), reason.as_deref()), ("committed", None), "{uid}");
        }
    }
}

#[test]
fn commit_to_pynetdicom_on_a_new_association_names_what_it_does_not_hold() {
    let listen = free_port();
    let listen_s = listen.to_string();
    let Some((_peer, port)) = pynetdicom_commit_scp(&["--report", "new", "--report-port", &listen_s]) else {
        return;
    };
    let target = format!("PYCOMMIT@127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    // It holds patient1's 8 instances, not the other 5.
    let (code, stdout, stderr) = pacs_net(&["store", &target, fixtures().join("dicom/patient1").to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let report = dir.path().join("commit.json");
    let (code, stdout, stderr) = pacs_net(&[
        "commit",
        &target,
        fixtures().join("dicom").to_str().unwrap(),
        "--port",
        &listen_s,
        "--timeout-seconds",
        "20",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("13 instances: 8 committed, 5 failed, 0 unknown"),
        "{stdout}"
    );
    let r = json(&report);
    assert_eq!(r["operation"], "commit");
    assert_eq!((r["committed"].as_u64(), r["failed"].as_u64()), (Some(8), Some(5)));
    assert_eq!(r["batches"][0]["action_status"], "0000");
    assert_eq!(r["batches"][0]["report"], "new_association");
    for i in r["instances"].as_array().unwrap() {
        let path = i["path"].as_str().unwrap();
        if path.contains("patient1") {
            assert_eq!(i["commitment"], "committed", "{path}");
            assert!(i.get("commitment_failure_reason").is_none());
        } else {
            assert_eq!(i["commitment"], "failed", "{path}");
            assert_eq!(i["commitment_failure_reason"], "0112", "{path}");
        }
        assert_eq!(i["transaction_uid"], r["batches"][0]["transaction_uid"]);
    }
}

#[test]
fn commit_that_is_never_reported_leaves_every_instance_unknown() {
    let Some((_peer, port)) = pynetdicom_commit_scp(&["--report", "never", "--hold-all"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("commit.json");
    let started = std::time::Instant::now();
    let (code, stdout, stderr) = pacs_net(&[
        "commit",
        &format!("PYCOMMIT@127.0.0.1:{port}"),
        fixtures().join("dicom").to_str().unwrap(),
        "--timeout-seconds",
        "1",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(
        stdout.contains("13 instances: 0 committed, 0 failed, 13 unknown"),
        "{stdout}"
    );
    assert!(stderr.contains("commitment unknown"), "{stderr}");
    let r = json(&report);
    assert_eq!(r["batches"][0]["action_status"], "0000");
    assert!(r["batches"][0]["report"].is_null());
    for i in r["instances"].as_array().unwrap() {
        assert_eq!(i["commitment"], "unknown");
        assert!(i.get("commitment_failure_reason").is_none());
    }
}

fn orthanc_with_us_as_modality(dir: &Path, listen: u16) -> Option<(Peer, String)> {
    if !peer_available("/usr/sbin/Orthanc") {
        return None;
    }
    let (peer, port, _http) = start_orthanc(
        dir,
        serde_json::json!({
            "DicomModalities": {"pacsnet": ["PACSNET", "127.0.0.1", listen]}
        }),
    );
    Some((peer, format!("ORTHANC@127.0.0.1:{port}")))
}

#[test]
fn store_commit_200_to_orthanc_reported_on_a_new_association() {
    let dir = tempfile::tempdir().unwrap();
    let listen = free_port();
    let Some((_orthanc, target)) = orthanc_with_us_as_modality(dir.path(), listen) else {
        return;
    };
    series(&dir.path().join("in"), 200, 3);
    let report = dir.path().join("store.json");
    let (code, stdout, stderr) = pacs_net(&[
        "store",
        &target,
        dir.path().join("in").to_str().unwrap(),
        "--commit",
        "--port",
        &listen.to_string(),
        "--commit-timeout-seconds",
        "30",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("200 committed, 0 failed, 0 unknown (1 request)"),
        "{stdout}"
    );
    let c = commitments(&json(&report), "results");
    assert_eq!(c.len(), 200);
    assert!(c.iter().all(|(_, s, r)| s == "committed" && r.is_none()), "{c:?}");
}

#[test]
fn commit_to_orthanc_fails_what_it_does_not_hold_with_0112() {
    let dir = tempfile::tempdir().unwrap();
    let listen = free_port();
    let Some((_orthanc, target)) = orthanc_with_us_as_modality(dir.path(), listen) else {
        return;
    };
    let (code, stdout, stderr) = pacs_net(&["store", &target, fixtures().join("dicom/patient2").to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let report = dir.path().join("commit.json");
    let (code, stdout, stderr) = pacs_net(&[
        "commit",
        &target,
        fixtures().join("dicom").to_str().unwrap(),
        "--port",
        &listen.to_string(),
        "--timeout-seconds",
        "30",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let r = json(&report);
    assert_eq!(r["batches"][0]["report"], "new_association");
    let held = r["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["path"].as_str().unwrap().contains("patient2"))
        .count();
    assert!(held > 0);
    assert_eq!(r["committed"].as_u64(), Some(held as u64));
    for i in r["instances"].as_array().unwrap() {
        if i["path"].as_str().unwrap().contains("patient2") {
            assert_eq!(i["commitment"], "committed");
        } else {
            assert_eq!(i["commitment"], "failed");
            assert_eq!(i["commitment_failure_reason"], "0112");
        }
    }
    // Everything held: exit 0.
    let (code, stdout, stderr) = pacs_net(&[
        "commit",
        &target,
        fixtures().join("dicom/patient2").to_str().unwrap(),
        "--port",
        &listen.to_string(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("{held} committed, 0 failed, 0 unknown")),
        "{stdout}"
    );
}

#[test]
fn our_scp_reports_on_the_same_association_and_on_a_new_one() {
    let listen = free_port();
    let listen_s = listen.to_string();
    for mode in ["same", "new"] {
        let port = free_port();
        let port_s = port.to_string();
        let mut args = vec![
            "scp",
            "--port",
            &port_s,
            "--ae-title",
            "OURSCP",
            "--commit-report",
            mode,
        ];
        if mode == "new" {
            args.extend(["--commit-report-port", &listen_s]);
        }
        let _scp = start_peer(env!("CARGO_BIN_EXE_pacs-net"), &args, &[], port);
        let target = format!("OURSCP@127.0.0.1:{port}");
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("store.json");
        let (code, stdout, stderr) = pacs_net(&[
            "store",
            &target,
            fixtures().join("dicom/patient1").to_str().unwrap(),
            "--commit",
            "--port",
            &listen_s,
            "--report",
            report.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{mode}: {stdout}\n{stderr}");
        assert!(stdout.contains("8 committed, 0 failed, 0 unknown"), "{mode}: {stdout}");
        let report = dir.path().join("commit.json");
        let (code, stdout, stderr) = pacs_net(&[
            "commit",
            &target,
            fixtures().join("dicom").to_str().unwrap(),
            "--port",
            &listen_s,
            "--report",
            report.to_str().unwrap(),
        ]);
        assert_eq!(code, 1, "{mode}: {stdout}\n{stderr}");
        let r = json(&report);
        let via = if mode == "same" {
            "same_association"
        } else {
            "new_association"
        };
        assert_eq!(r["batches"][0]["report"], via);
        assert_eq!(
            (r["committed"].as_u64(), r["failed"].as_u64()),
            (Some(8), Some(5)),
            "{mode}"
        );
        for i in r["instances"].as_array().unwrap() {
            if !i["path"].as_str().unwrap().contains("patient1") {
                assert_eq!(i["commitment_failure_reason"], "0112");
            }
        }
    }
}

#[test]
fn commit_usage_errors_exit_2_and_unreadable_files_exit_1() {
    let (code, _, stderr) = pacs_net(&["store", "A@127.0.0.1:1", "x", "--commit-timeout-seconds", "5"]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = pacs_net(&["commit", "A@127.0.0.1:1", "x", "--timeout-seconds", "0"]);
    assert_eq!(code, 2, "{stderr}");
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "not DICOM").unwrap();
    let report = dir.path().join("r.json");
    let (_scp, port) = start_our_scp(None);
    let (code, stdout, stderr) = pacs_net(&[
        "commit",
        &format!("OURSCP@127.0.0.1:{port}"),
        notes.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stderr.contains("notes.txt"), "{stderr}");
    let r = json(&report);
    assert_eq!(r["instances"][0]["commitment"], "unknown");
    assert!(r["instances"][0]["error"].as_str().unwrap().contains("DICOM"), "{r}");
}

fn node(port: u16) -> Arc<Node> {
    let target: AdHocTarget = format!("PACSNET_SCP@127.0.0.1:{port}").parse().unwrap();
    let mut c = NodeConfig::ad_hoc(&target);
    c.timeouts.dimse = Duration::from_secs(10);
    Arc::new(Node::new(c, "COMMITTEST"))
}

fn refs() -> Vec<SopRef> {
    dicom_fixture_files()
        .iter()
        .map(|p| {
            let f = InstanceFile::open(p).unwrap();
            SopRef {
                sop_class_uid: f.sop_class_uid,
                sop_instance_uid: f.sop_instance_uid,
            }
        })
        .collect()
}

#[tokio::test]
async fn node_commit_batches_each_with_its_own_transaction_and_routes_new_association_reports() {
    let listener = CommitmentListener::start("COMMITTEST", "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    for mode in [
        CommitReportMode::SameAssociation,
        CommitReportMode::NewAssociation {
            port: Some(listener.local_addr().port()),
        },
    ] {
        let config = ScpConfig {
            commit_report: mode.clone(),
            ..ScpConfig::default()
        };
        let scp = Scp::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let node = node(scp.port());
        let files = dicom_fixture_files();
        // Hold all but the last.
        for path in &files[..files.len() - 1] {
            assert!(node.store_file(path).await.outcome.result.is_ok());
        }
        let all = refs();
        let opts = CommitOptions {
            batch_size: 4,
            timeout: Duration::from_secs(10),
            router: Some(listener.router().clone()),
            ..CommitOptions::default()
        };
        let report = node.commit(all.clone(), &opts).await;
        assert_eq!(report.batches.len(), all.len().div_ceil(4), "{mode:?}");
        let mut txs: Vec<&str> = report.batches.iter().map(|b| b.transaction_uid.as_str()).collect();
        txs.dedup();
        assert_eq!(txs.len(), report.batches.len());
        let want_via = match mode {
            CommitReportMode::SameAssociation => ReportVia::SameAssociation,
            CommitReportMode::NewAssociation { .. } => ReportVia::OtherAssociation,
        };
        for b in &report.batches {
            let attempt = b.outcome.result.as_ref().unwrap();
            assert_eq!(attempt.report.as_ref().map(|(_, via)| *via), Some(want_via), "{mode:?}");
        }
        let last = &all[all.len() - 1];
        for (i, c) in report.instances.iter().enumerate() {
            assert_eq!(&c.instance, &all[i]);
            if c.instance == *last {
                assert_eq!(c.commitment, Commitment::Failed { reason: 0x0112 });
            } else {
                assert_eq!(
                    c.commitment,
                    Commitment::Committed,
                    "{mode:?} {}",
                    c.instance.sop_instance_uid
                );
            }
        }
        assert!(!report.all_committed());
        assert_eq!(report.counts(), (all.len() - 1, 1, 0));
        node.close(Duration::from_secs(2)).await;
        scp.shutdown().await;
    }
    listener.shutdown().await;
}

#[tokio::test]
async fn node_commit_without_a_report_is_unknown_never_committed() {
    // The requester's port is one nobody listens on: the report never arrives.
    let config = ScpConfig {
        commit_report: CommitReportMode::NewAssociation {
            port: Some(free_port()),
        },
        ..ScpConfig::default()
    };
    let scp = Scp::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let node = node(scp.port());
    for path in dicom_fixture_files() {
        assert!(node.store_file(&path).await.outcome.result.is_ok());
    }
    let opts = CommitOptions {
        timeout: Duration::from_millis(500),
        ..CommitOptions::default()
    };
    let report = node.commit(refs(), &opts).await;
    assert_eq!(report.batches.len(), 1);
    assert!(report.batches[0].outcome.result.as_ref().unwrap().report.is_none());
    assert!(report.instances.iter().all(|c| c.commitment == Commitment::Unknown));
    assert_eq!(report.counts(), (0, 0, refs().len()));
    node.close(Duration::from_secs(2)).await;
    scp.shutdown().await;
}

#[test]
fn commit_to_a_peer_without_storage_commitment_says_so_and_leaves_unknown() {
    if !peer_available("/usr/bin/storescp") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _storescp = start_peer(
        "/usr/bin/storescp",
        &["-od", dir.path().to_str().unwrap(), &port.to_string()],
        &[],
        port,
    );
    let report = dir.path().join("commit.json");
    let (code, stdout, stderr) = pacs_net(&[
        "commit",
        &format!("STORESCP@127.0.0.1:{port}"),
        fixtures().join("dicom/patient1").to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("8 instances: 0 committed, 0 failed, 8 unknown"),
        "{stdout}"
    );
    assert!(
        stderr.contains("did not accept Storage Commitment Push Model (1.2.840.10008.1.20.1)"),
        "{stderr}"
    );
    let r = json(&report);
    assert!(r["batches"][0]["action_status"].is_null());
    for i in r["instances"].as_array().unwrap() {
        assert_eq!(i["commitment"], "unknown");
        assert!(i["error"].as_str().unwrap().contains("request failed"), "{i}");
    }
}
