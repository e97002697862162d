//! The association and DIMSE layers against the embedded SCP, without pool or retry.

use std::ops::ControlFlow;
mod common;

use common::{dicom_fixture_files as dicom_files, fixtures};

use pacs_net::association::{Association, AssociationParams, ContextRequest, Profile};
use pacs_net::config::Timeouts;
use pacs_net::dimse::{self, DimsePriority, FindQuery, InstanceFile, QueryLevel, QueryModel, Status};
use pacs_net::scp::{Scp, ScpConfig};

async fn start_scp() -> Scp {
    Scp::start(ScpConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn params(scp: &Scp) -> AssociationParams {
    AssociationParams {
        calling_ae: "TESTSCU".into(),
        called_ae: scp.ae_title().into(),
        host: "127.0.0.1".into(),
        port: scp.port(),
        max_pdu_length: 16384,
        max_send_pdu_length: 0,
        timeouts: Timeouts::default(),
        security: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_store_find_on_one_association() {
    let scp = start_scp().await;
    let mut assoc = Association::establish(&params(&scp), &Profile::Default).await.unwrap();
    assert_eq!(dimse::echo(&mut assoc).await.unwrap(), Status::SUCCESS);

    let files = dicom_files();
    assert_eq!(files.len(), common::DICOM_FIXTURES);
    let mut stored = 0;
    for path in files {
        let file = InstanceFile::open(&path).unwrap();
        let req = ContextRequest::store(&file.sop_class_uid, &file.transfer_syntax);
        if req.profile != Profile::Default {
            // Compressed / big endian files need their own association.
            let mut special = Association::establish(&params(&scp), &req.profile).await.unwrap();
            let rsp = dimse::store(&mut special, &file, DimsePriority::Medium).await.unwrap();
            assert_eq!(rsp.status, Status::SUCCESS, "{}", path.display());
            special.release().await;
        } else {
            let rsp = dimse::store(&mut assoc, &file, DimsePriority::Medium).await.unwrap();
            assert_eq!(rsp.status, Status::SUCCESS, "{}", path.display());
        }
        stored += 1;
    }
    assert_eq!(stored, common::DICOM_FIXTURES);
    let mut received: Vec<String> = scp.stored().into_iter().map(|i| i.sop_instance_uid).collect();
    received.sort();
    assert_eq!(
        received,
        common::dicom_fixture_uids(),
        "the SCP holds every instance sent"
    );
    assert!(scp.stored().iter().all(|i| i.calling_ae == "TESTSCU"));
    assert!(assoc.is_reusable());

    let query = FindQuery::new(
        QueryModel::StudyRoot,
        QueryLevel::Study,
        vec!["PatientID=PNT-0001".parse().unwrap()],
    )
    .unwrap();
    let mut studies = Vec::new();
    let outcome = dimse::find(&mut assoc, &query, DimsePriority::Medium, |m| {
        studies.push(m);
        ControlFlow::Continue(())
    })
    .await
    .unwrap();
    assert_eq!(outcome.status, Status::SUCCESS);
    assert_eq!(studies.len(), 2, "DOE^JANE has two studies");

    // --limit: cancel after the first match; the association stays usable.
    let all = FindQuery::new(QueryModel::StudyRoot, QueryLevel::Image, vec![]).unwrap();
    let mut n = 0;
    let outcome = dimse::find(&mut assoc, &all, DimsePriority::Medium, |_| {
        n += 1;
        ControlFlow::Break(())
    })
    .await
    .unwrap();
    assert!(outcome.cancelled);
    assert_eq!(n, 1);
    assert!(matches!(outcome.status, Status::CANCEL | Status::SUCCESS));
    assert_eq!(dimse::echo(&mut assoc).await.unwrap(), Status::SUCCESS);
    assoc.release().await;
    let stats = scp.stats();
    // One default-profile association, plus one each for the big-endian and RLE files;
    // all ended with A-RELEASE, none aborted.
    assert_eq!(stats.accepted, 3);
    assert_eq!(stats.released, 3);
    assert_eq!(stats.aborted_by_peer, 0);
}

#[test]
fn broken_files_are_refused_with_reasons() {
    let broken = fixtures().join("broken");
    let err = InstanceFile::open(&broken.join("notes.txt")).unwrap_err().to_string();
    assert!(err.contains("not a DICOM file"), "{err}");
    let err = InstanceFile::open(&broken.join("empty.dcm")).unwrap_err().to_string();
    assert!(err.contains("not a DICOM file"), "{err}");
    let err = InstanceFile::open(&broken.join("garbage.dcm")).unwrap_err().to_string();
    assert!(err.contains("not a DICOM file"), "{err}");
    let err = InstanceFile::open(&broken.join("truncated.dcm"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn every_fixture_passes_the_structure_check() {
    let files = dicom_files();
    assert_eq!(files.len(), common::DICOM_FIXTURES);
    for path in files {
        InstanceFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}
