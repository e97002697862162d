//! The association layer against peers that break PS3.8 on purpose: PDUs larger
//! than we announced, PDUs that claim more than they carry, release collisions and
//! a remote that releases an idle association. Each fake peer is a raw TCP server
//! on a free loopback port that speaks just enough of the protocol.

use std::time::Duration;

use dicom_ul::pdu::{AssociationAC, PresentationContextResult, PresentationContextResultReason, UserVariableItem};
use dicom_ul::Pdu;
use pacs_net::association::{uids, Association, AssociationError, AssociationParams, ContextRequest, Profile};
use pacs_net::config::Timeouts;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn params(port: u16) -> AssociationParams {
    AssociationParams {
        calling_ae: "PROTO".into(),
        called_ae: "FAKE".into(),
        host: "127.0.0.1".into(),
        port,
        max_pdu_length: 16384,
        max_send_pdu_length: 0,
        timeouts: Timeouts {
            connect: Duration::from_secs(2),
            acse: Duration::from_secs(2),
            dimse: Duration::from_secs(2),
            ..Timeouts::default()
        },
        security: Default::default(),
    }
}

/// Read one PDU (type, body) from the socket.
async fn read_pdu(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut hdr = [0u8; 6];
    s.read_exact(&mut hdr).await.ok()?;
    let len = u32::from_be_bytes([hdr[2], hdr[3], hdr[4], hdr[5]]);
    let mut body = vec![0u8; len as usize];
    s.read_exact(&mut body).await.ok()?;
    Some((hdr[0], body))
}

async fn write(s: &mut TcpStream, pdu: &Pdu) {
    let mut out = Vec::new();
    dicom_ul::pdu::write_pdu(&mut out, pdu).unwrap();
    s.write_all(&out).await.unwrap();
}

/// Accept the A-ASSOCIATE-RQ, accepting Verification (context 1) in Implicit VR.
async fn accept(s: &mut TcpStream) {
    let (ty, _) = read_pdu(s).await.unwrap();
    assert_eq!(ty, 0x01, "A-ASSOCIATE-RQ");
    write(
        s,
        &Pdu::AssociationAC(AssociationAC {
            protocol_version: 1,
            calling_ae_title: "PROTO".into(),
            called_ae_title: "FAKE".into(),
            application_context_name: "1.2.840.10008.3.1.1.1".into(),
            presentation_contexts: vec![PresentationContextResult {
                id: 1,
                reason: PresentationContextResultReason::Acceptance,
                transfer_syntax: uids::IMPLICIT_VR_LE.into(),
            }],
            user_variables: vec![UserVariableItem::MaxLength(16384)],
        }),
    )
    .await;
}

/// A fake peer running `script` on its one connection; returns its port and what
/// it saw (PDU types, in order).
async fn fake<F, Fut>(script: F) -> (u16, tokio::task::JoinHandle<Vec<u8>>)
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Vec<u8>> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        script(s).await
    });
    (port, task)
}

fn verification_only() -> Profile {
    Profile::Custom(vec![pacs_net::association::ProposedContext::new(
        uids::VERIFICATION,
        &[uids::IMPLICIT_VR_LE],
    )])
}

#[tokio::test]
async fn an_associate_answer_claiming_4_gib_is_a_malformed_pdu_not_a_closed_connection() {
    let (port, _peer) = fake(|mut s| async move {
        let _ = read_pdu(&mut s).await;
        s.write_all(&[0x02, 0, 0xFF, 0xFF, 0xFF, 0xF0, 0, 1]).await.unwrap();
        Vec::new()
    })
    .await;
    let err = Association::establish(&params(port), &verification_only())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, AssociationError::Protocol(_)), "{text}");
    assert!(text.contains("malformed PDU") && text.contains("4294967280"), "{text}");
}

#[tokio::test]
async fn a_pdu_larger_than_we_announced_ends_the_association_with_a_protocol_error() {
    let (port, _peer) = fake(|mut s| async move {
        accept(&mut s).await;
        // The C-ECHO-RQ, answered by a P-DATA-TF declaring 1 MiB (we announced
        // 16 KiB), and then nothing.
        let _ = read_pdu(&mut s).await;
        s.write_all(&[0x04, 0, 0x00, 0x10, 0x00, 0x00]).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        Vec::new()
    })
    .await;
    let mut assoc = Association::establish(&params(port), &verification_only())
        .await
        .unwrap();
    let err = pacs_net::dimse::echo(&mut assoc).await.unwrap_err().to_string();
    assert!(
        err.contains("declares 1048576 bytes") && err.contains("16384 we announced"),
        "{err}"
    );
    assert!(!assoc.is_reusable());
}

#[tokio::test]
async fn a_pdu_cut_short_is_reported_as_truncated() {
    let (port, _peer) = fake(|mut s| async move {
        accept(&mut s).await;
        let _ = read_pdu(&mut s).await;
        // Claims 100 bytes, carries 10, closes.
        s.write_all(&[0x04, 0, 0, 0, 0, 100, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
            .await
            .unwrap();
        Vec::new()
    })
    .await;
    let mut assoc = Association::establish(&params(port), &verification_only())
        .await
        .unwrap();
    let err = pacs_net::dimse::echo(&mut assoc).await.unwrap_err().to_string();
    assert!(
        err.contains("truncated PDU") && err.contains("10 of the 100 bytes"),
        "{err}"
    );
}

/// PS3.8 9.2.8: both sides send A-RELEASE-RQ. The requestor answers with
/// A-RELEASE-RP first and then waits for the acceptor's RP; nothing is aborted.
#[tokio::test]
async fn a_release_collision_follows_the_state_machine() {
    let (port, peer) = fake(|mut s| async move {
        accept(&mut s).await;
        let mut seen = Vec::new();
        let (ty, _) = read_pdu(&mut s).await.unwrap();
        seen.push(ty); // our A-RELEASE-RQ
        write(&mut s, &Pdu::ReleaseRQ).await; // collision
        if let Some((ty, _)) = read_pdu(&mut s).await {
            seen.push(ty); // must be our A-RELEASE-RP
        }
        write(&mut s, &Pdu::ReleaseRP).await;
        // Then the requestor closes; anything else (an A-ABORT) would show here.
        while let Some((ty, _)) = read_pdu(&mut s).await {
            seen.push(ty);
        }
        seen
    })
    .await;
    let assoc = Association::establish(&params(port), &verification_only())
        .await
        .unwrap();
    assoc.release().await;
    let seen = peer.await.unwrap();
    assert_eq!(
        seen,
        vec![0x05, 0x06],
        "A-RELEASE-RQ, then A-RELEASE-RP, and no A-ABORT"
    );
}

/// A PACS that ends an idle association with A-RELEASE-RQ gets A-RELEASE-RP when the
/// pool retires it, not an A-ABORT.
#[tokio::test]
async fn a_release_request_on_an_idle_association_is_answered_with_a_release_reply() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (port, peer) = fake(|mut s| async move {
        accept(&mut s).await;
        write(&mut s, &Pdu::ReleaseRQ).await;
        let _ = tx.send(());
        let mut seen = Vec::new();
        while let Some((ty, _)) = read_pdu(&mut s).await {
            seen.push(ty);
        }
        seen
    })
    .await;
    let mut assoc = Association::establish(&params(port), &verification_only())
        .await
        .unwrap();
    rx.await.unwrap();
    // Bounded wait for the bytes to reach our socket.
    let mut alive = true;
    for _ in 0..200 {
        alive = assoc.is_alive();
        if !alive {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!alive, "the pending A-RELEASE-RQ makes it stale");
    assoc.abort().await; // what the pool does with a stale association
    assert_eq!(peer.await.unwrap(), vec![0x06], "answered with A-RELEASE-RP only");
}

/// The same request arriving while an operation waits for its response: the
/// operation fails (PeerReleased), and the teardown answers A-RELEASE-RP.
#[tokio::test]
async fn a_release_request_instead_of_a_response_is_answered_not_aborted() {
    let (port, peer) = fake(|mut s| async move {
        accept(&mut s).await;
        let _ = read_pdu(&mut s).await; // C-ECHO-RQ
        write(&mut s, &Pdu::ReleaseRQ).await;
        let mut seen = Vec::new();
        while let Some((ty, _)) = read_pdu(&mut s).await {
            seen.push(ty);
        }
        seen
    })
    .await;
    let mut assoc = Association::establish(&params(port), &verification_only())
        .await
        .unwrap();
    let err = pacs_net::dimse::echo(&mut assoc).await.unwrap_err();
    assert!(err.to_string().contains("asked to release"), "{err}");
    assert!(
        !assoc.has_responded(),
        "a release request is not a response: the pool may redo the operation"
    );
    assoc.abort().await;
    assert_eq!(peer.await.unwrap(), vec![0x06]);
}

#[tokio::test]
async fn refusal_reasons_are_reported_per_context() {
    let (port, _peer) = fake(|mut s| async move {
        let _ = read_pdu(&mut s).await;
        write(
            &mut s,
            &Pdu::AssociationAC(AssociationAC {
                protocol_version: 1,
                calling_ae_title: "PROTO".into(),
                called_ae_title: "FAKE".into(),
                application_context_name: "1.2.840.10008.3.1.1.1".into(),
                presentation_contexts: vec![
                    PresentationContextResult {
                        id: 1,
                        reason: PresentationContextResultReason::Acceptance,
                        transfer_syntax: uids::IMPLICIT_VR_LE.into(),
                    },
                    PresentationContextResult {
                        id: 3,
                        reason: PresentationContextResultReason::TransferSyntaxesNotSupported,
                        transfer_syntax: uids::IMPLICIT_VR_LE.into(),
                    },
                ],
                user_variables: vec![UserVariableItem::MaxLength(0)],
            }),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        Vec::new()
    })
    .await;
    let req = ContextRequest::store("1.2.840.10008.5.1.4.1.1.2", uids::EXPLICIT_VR_BE);
    let profile = Profile::Custom(vec![
        pacs_net::association::ProposedContext::new(uids::VERIFICATION, &[uids::IMPLICIT_VR_LE]),
        pacs_net::association::ProposedContext::new(&req.abstract_syntax, &[uids::EXPLICIT_VR_BE]),
    ]);
    let assoc = Association::establish(&params(port), &profile).await.unwrap();
    assert_eq!(assoc.refused_contexts().len(), 1);
    assert_eq!(
        assoc.refused_contexts()[0].reason,
        pacs_net::association::ContextRefusal::TransferSyntaxesNotSupported
    );
    assert_eq!(assoc.peer_announced_max_pdu(), 0);
    assert!(assoc.select(&req).is_none());
}
