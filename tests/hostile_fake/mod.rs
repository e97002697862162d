//! A misbehaving C-FIND SCP for the hostile-peer tests: dicom-ul accepts the
//! association (Implicit VR LE only, so identifiers are crafted in one encoding),
//! then a script answers the C-FIND with raw P-DATA bytes.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_ul::association::server::ServerAssociationOptions;
use dicom_ul::pdu::PDataValueType;
use dicom_ul::Pdu;
use pacs_net::association::uids;
use pacs_net::testing::command::{field, response, Command};
use pacs_net::testing::encode_pdata;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// How the fake answers a C-FIND.
#[derive(Debug, Clone)]
pub enum Script {
    /// One pending response whose identifier declares (0010,0020) with length
    /// 0xFFFFFFF0 and carries 8 bytes; then a final success.
    HugeLength,
    /// A command set sent as 16 KiB fragments, `total` bytes in all, never last.
    HugeCommand { total: usize },
    /// `matches` pending responses, then FE00 though nobody asked to cancel.
    RemoteCancel { matches: usize },
    /// `matches` pending responses, then wait: on C-CANCEL, close the socket
    /// without a final response.
    CloseAfterCancel { matches: usize },
    /// `count` pending responses with identifiers of about `size` bytes, as fast
    /// as the socket takes them; then a final success.
    Flood { count: usize, size: usize },
}

/// What the fake saw.
#[derive(Debug, Default)]
pub struct Seen {
    pub associations: AtomicUsize,
    pub finds: AtomicUsize,
    pub cancels: AtomicUsize,
    /// Pending responses fully written to the socket.
    pub sent: AtomicUsize,
    /// A write stalled (the client stopped reading) at least once.
    pub stalled: AtomicBool,
    /// Every response of a flood was written.
    pub flood_done: AtomicBool,
    /// Signalled when `stalled` or `flood_done` is set.
    pub changed: tokio::sync::Notify,
}

pub struct Fake {
    pub port: u16,
    pub seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub const AE: &str = "HOSTILE";

pub async fn start(script: Script) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            s.associations.fetch_add(1, Ordering::SeqCst);
            let (script, seen) = (script.clone(), s.clone());
            tokio::spawn(async move {
                let _ = serve(socket, script, seen).await;
            });
        }
    });
    Fake { port, seen, task }
}

type Assoc = dicom_ul::association::AsyncServerAssociation<tokio::net::TcpStream>;

async fn serve(socket: tokio::net::TcpStream, script: Script, seen: Arc<Seen>) -> Option<()> {
    let mut assoc = ServerAssociationOptions::new()
        .ae_title(AE)
        .promiscuous(true)
        .strict(false)
        .with_abstract_syntax(uids::VERIFICATION)
        .with_abstract_syntax(uids::STUDY_ROOT_FIND)
        .with_abstract_syntax(uids::PATIENT_ROOT_FIND)
        .with_transfer_syntax(uids::IMPLICIT_VR_LE)
        .establish_async(socket)
        .await
        .ok()?;
    let max = match assoc.requestor_max_pdu_length() {
        0 => 16384,
        n => n,
    };
    loop {
        let pdu = assoc.receive().await.ok()?;
        let Pdu::PData { data } = pdu else {
            if let Pdu::ReleaseRQ = pdu {
                write(&mut assoc, &pdu_bytes(&Pdu::ReleaseRP)).await?;
            }
            return None;
        };
        for pdv in data {
            if pdv.value_type != PDataValueType::Command || !pdv.is_last {
                continue;
            }
            let Ok(cmd) = Command::decode(&pdv.data) else { continue };
            let ctx = pdv.presentation_context_id;
            let id = cmd.message_id().unwrap_or(0);
            let sop = cmd.text(0x0002).unwrap_or_default();
            match cmd.command_field() {
                Some(field::C_ECHO_RQ) => {
                    let rsp = response(field::C_ECHO_RSP, Some(&sop), id, 0, false, None);
                    write(&mut assoc, &pdata(ctx, &rsp, None, max)).await?;
                }
                Some(field::C_CANCEL_RQ) => {
                    seen.cancels.fetch_add(1, Ordering::SeqCst);
                }
                Some(field::C_FIND_RQ) => {
                    seen.finds.fetch_add(1, Ordering::SeqCst);
                    run_script(&mut assoc, &script, &seen, ctx, id, &sop, max).await?;
                }
                _ => {}
            }
        }
    }
}

async fn run_script(
    assoc: &mut Assoc,
    script: &Script,
    seen: &Seen,
    ctx: u8,
    id: u16,
    sop: &str,
    max: u32,
) -> Option<()> {
    let pending = response(field::C_FIND_RSP, Some(sop), id, 0xFF00, true, None);
    let final_ok = response(field::C_FIND_RSP, Some(sop), id, 0x0000, false, None);
    match script {
        Script::HugeLength => {
            let mut ident = vec![0x10, 0x00, 0x20, 0x00];
            ident.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
            ident.extend_from_slice(b"PID00001");
            write(assoc, &pdata(ctx, &pending, Some(&ident), max)).await?;
            write(assoc, &pdata(ctx, &final_ok, None, max)).await?;
        }
        Script::HugeCommand { total } => {
            let chunk = vec![0u8; 16 * 1024];
            let mut buf = Vec::new();
            let mut sent = 0;
            while sent < *total {
                encode_pdata(&mut buf, ctx, true, &chunk, false, max);
                write(assoc, &buf).await?;
                buf.clear();
                sent += chunk.len();
            }
        }
        Script::RemoteCancel { matches } => {
            for i in 0..*matches {
                write(assoc, &pdata(ctx, &pending, Some(&identifier(i, 0)), max)).await?;
            }
            let cancelled = response(field::C_FIND_RSP, Some(sop), id, 0xFE00, false, None);
            write(assoc, &pdata(ctx, &cancelled, None, max)).await?;
        }
        Script::CloseAfterCancel { matches } => {
            for i in 0..*matches {
                write(assoc, &pdata(ctx, &pending, Some(&identifier(i, 0)), max)).await?;
            }
            // Wait for the C-CANCEL, then hang up without a final response.
            loop {
                let Pdu::PData { data } = assoc.receive().await.ok()? else {
                    return None;
                };
                let cancel = data
                    .iter()
                    .any(|v| Command::decode(&v.data).ok().and_then(|c| c.command_field()) == Some(field::C_CANCEL_RQ));
                if cancel {
                    seen.cancels.fetch_add(1, Ordering::SeqCst);
                    let _ = assoc.inner_stream().shutdown().await;
                    return None;
                }
            }
        }
        Script::Flood { count, size } => {
            for i in 0..*count {
                let bytes = pdata(ctx, &pending, Some(&identifier(i, *size)), max);
                let stream = assoc.inner_stream();
                match tokio::time::timeout(Duration::from_millis(300), stream.write_all(&bytes)).await {
                    Ok(r) => r.ok()?,
                    Err(_) => {
                        // The client stopped reading: backpressure reached us. (A
                        // timed-out write_all may have written part: end here.)
                        seen.stalled.store(true, Ordering::SeqCst);
                        seen.changed.notify_one();
                        return None;
                    }
                }
                seen.sent.fetch_add(1, Ordering::SeqCst);
            }
            seen.flood_done.store(true, Ordering::SeqCst);
            seen.changed.notify_one();
            write(assoc, &pdata(ctx, &final_ok, None, max)).await?;
        }
    }
    Some(())
}

/// A study-level match, padded with a long StudyDescription-like LT to `size` bytes.
fn identifier(i: usize, size: usize) -> Vec<u8> {
    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(
        tags::QUERY_RETRIEVE_LEVEL,
        VR::CS,
        PrimitiveValue::from("STUDY"),
    ));
    obj.put(DataElement::new(
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(format!("1.2.826.0.1.3680043.10.1234.9.{}", i + 1)),
    ));
    obj.put(DataElement::new(
        tags::PATIENT_ID,
        VR::LO,
        PrimitiveValue::from(format!("PID{i:05}")),
    ));
    if size > 0 {
        obj.put(DataElement::new(
            tags::ADDITIONAL_PATIENT_HISTORY,
            VR::LT,
            PrimitiveValue::from("x".repeat(size)),
        ));
    }
    let ts = TransferSyntaxRegistry.get(uids::IMPLICIT_VR_LE).unwrap();
    let mut out = Vec::new();
    obj.write_dataset_with_ts(&mut out, ts).unwrap();
    out
}

fn pdata(ctx: u8, cmd: &Command, data: Option<&[u8]>, max: u32) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_pdata(&mut buf, ctx, true, &cmd.encode(), true, max);
    if let Some(d) = data {
        encode_pdata(&mut buf, ctx, false, d, true, max);
    }
    buf
}

fn pdu_bytes(pdu: &Pdu) -> Vec<u8> {
    let mut out = Vec::new();
    dicom_ul::pdu::write_pdu(&mut out, pdu).unwrap();
    out
}

async fn write(assoc: &mut Assoc, bytes: &[u8]) -> Option<()> {
    assoc.inner_stream().write_all(bytes).await.ok()
}
