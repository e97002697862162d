//! The embedded SCP facing a hostile requestor: P-DATA on a context it never
//! accepted, and a C-FIND identifier that declares a 4 GiB element.

use std::time::Duration;

use pacs_net::association::{uids, Association, AssociationError, AssociationParams, Profile};
use pacs_net::config::Timeouts;
use pacs_net::dimse::{receive_message, DimseError};
use pacs_net::scp::{Scp, ScpConfig};
use pacs_net::testing::command::{find_rq, DimsePriority};
use pacs_net::testing::{encode_pdata, write_all};

async fn associate(scp: &Scp) -> Association {
    let params = AssociationParams {
        calling_ae: "HOSTILE".into(),
        called_ae: scp.ae_title().into(),
        host: "127.0.0.1".into(),
        port: scp.port(),
        max_pdu_length: 16384,
        max_send_pdu_length: 0,
        timeouts: Timeouts {
            dimse: Duration::from_secs(10),
            ..Timeouts::default()
        },
        security: Default::default(),
    };
    Association::establish(&params, &Profile::Default).await.unwrap()
}

#[tokio::test]
async fn p_data_on_a_context_never_accepted_is_aborted() {
    let scp = Scp::start(ScpConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut assoc = associate(&scp).await;
    let unused = (1..=255u8)
        .step_by(2)
        .find(|id| !assoc.accepted_contexts().iter().any(|c| c.id == *id))
        .unwrap();
    let mut buf = Vec::new();
    let cmd = find_rq(1, uids::STUDY_ROOT_FIND, DimsePriority::Medium).encode();
    encode_pdata(&mut buf, unused, true, &cmd, true, assoc.peer_max_pdu());
    write_all(&mut assoc, &buf).await.unwrap();
    let err = receive_message(&mut assoc).await.unwrap_err();
    assert!(
        matches!(
            err,
            DimseError::Association(AssociationError::Aborted(_) | AssociationError::PeerClosed)
        ),
        "{err}"
    );
    assert_eq!(scp.stats().aborted_by_us, 1);
    assert_eq!(
        scp.stats().find_requests,
        0,
        "never read as a C-FIND in some default encoding"
    );
}

#[tokio::test]
async fn a_c_find_identifier_declaring_4_gib_is_refused_with_a900() {
    let scp = Scp::start(ScpConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut assoc = associate(&scp).await;
    let ctx = assoc
        .accepted_contexts()
        .iter()
        .find(|c| c.abstract_syntax == uids::STUDY_ROOT_FIND && c.transfer_syntax == uids::IMPLICIT_VR_LE)
        .or_else(|| {
            assoc
                .accepted_contexts()
                .iter()
                .find(|c| c.abstract_syntax == uids::STUDY_ROOT_FIND)
        })
        .cloned()
        .unwrap();
    let mut ident = vec![0x10, 0x00, 0x20, 0x00];
    if ctx.transfer_syntax == uids::IMPLICIT_VR_LE {
        ident.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    } else {
        // Explicit VR LE: UN has a 4-byte length.
        ident.extend_from_slice(b"UN\0\0");
        ident.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    }
    ident.extend_from_slice(b"12345678");
    let mut buf = Vec::new();
    let cmd = find_rq(7, uids::STUDY_ROOT_FIND, DimsePriority::Medium).encode();
    encode_pdata(&mut buf, ctx.id, true, &cmd, true, assoc.peer_max_pdu());
    encode_pdata(&mut buf, ctx.id, false, &ident, true, assoc.peer_max_pdu());
    write_all(&mut assoc, &buf).await.unwrap();
    let rsp = receive_message(&mut assoc).await.unwrap();
    assert_eq!(rsp.command.status(), Some(0xA900));
    assert_eq!(scp.stats().find_requests, 1);
}
