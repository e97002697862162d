//! The embedded SCP's C-GET and C-MOVE (PS3.4 C.4.3.2, C.4.2.2). C-GET: every
//! instance it holds under the matching entities goes back as a C-STORE
//! sub-operation on the requestor's own association; C-MOVE: on an association of
//! its own to the move destination (see [`serve_move`]). A pending response with
//! the counts follows each sub-operation; the final response carries the Failed
//! SOP Instance UID List where any failed. A C-CANCEL stops it after the
//! sub-operation in flight (final status FE00).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_ul::association::AsyncServerAssociation;
use dicom_ul::pdu::{PDataValueType, PresentationContextResultReason};
use dicom_ul::Pdu;

use crate::association::{uids, Pdv};
use crate::dimse::command::{field, response, store_rq, tag, Command, DimsePriority};
use crate::dimse::dataset_check::decode_checked;
use crate::dimse::MessageReader;

use super::handler::{send, Next, ScpStream};
use super::storage::RetrieveItem;
use super::Shared;

type ServerAssoc<S> = AsyncServerAssociation<S>;

/// How long the SCP waits for the requestor's C-STORE-RSP.
const STORE_RSP_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Counts {
    remaining: u16,
    completed: u16,
    failed: u16,
    warning: u16,
    failed_uids: Vec<String>,
}

impl Counts {
    fn apply(&self, cmd: Command, with_remaining: bool) -> Command {
        let cmd = cmd
            .with_u16(tag::COMPLETED_SUB_OPERATIONS, self.completed)
            .with_u16(tag::FAILED_SUB_OPERATIONS, self.failed)
            .with_u16(tag::WARNING_SUB_OPERATIONS, self.warning);
        if with_remaining {
            cmd.with_u16(tag::REMAINING_SUB_OPERATIONS, self.remaining)
        } else {
            cmd
        }
    }

    fn fail(&mut self, uid: &str) {
        self.failed = self.failed.saturating_add(1);
        self.failed_uids.push(uid.to_string());
    }
}

/// Serve one C-GET-RQ received on context `ctx` (transfer syntax `ts_uid`).
pub(super) async fn serve_get<S: ScpStream>(
    assoc: &mut ServerAssoc<S>,
    shared: &Arc<Shared>,
    ctx: u8,
    id: u16,
    sop_class: &str,
    ts_uid: &str,
    data: Option<Vec<u8>>,
) -> Next {
    shared.counters.get_requests.fetch_add(1, Ordering::SeqCst);
    let final_rsp = |status: u16| response(field::C_GET_RSP, Some(sop_class), id, status, false, None);
    let Some(data) = data else {
        return send(assoc, ctx, &final_rsp(0xA900), None).await;
    };
    let selected = select(shared, data, ts_uid, sop_class == uids::PATIENT_ROOT_GET, 0xA702).await;
    let items = match selected {
        Ok(items) => items,
        Err(status) => return send(assoc, ctx, &final_rsp(status), None).await,
    };
    let mut counts = Counts {
        remaining: u16::try_from(items.len()).unwrap_or(u16::MAX),
        ..Counts::default()
    };
    let mut reader = MessageReader::new(shared.config.limits);
    let mut cancelled = false;
    let mut next_store_id: u16 = 1;
    for item in items {
        let uid = item.instance.sop_instance_uid.clone();
        counts.remaining = counts.remaining.saturating_sub(1);
        if let Some(d) = shared.config.behavior.response_delay {
            tokio::time::sleep(d).await;
        }
        match sub_operation(assoc, &mut reader, item, next_store_id).await {
            SubOp::Done { status, cancel } => {
                cancelled |= cancel;
                match status {
                    0x0000 => counts.completed = counts.completed.saturating_add(1),
                    s if s == 0x0001 || (0xB000..=0xBFFF).contains(&s) => {
                        counts.warning = counts.warning.saturating_add(1)
                    }
                    _ => counts.fail(&uid),
                }
            }
            SubOp::NotSent(reason) => {
                tracing::debug!(sop_instance_uid = %uid, %reason, "C-GET sub-operation not sent");
                counts.fail(&uid);
            }
            SubOp::Lost => return Next::Stop,
        }
        next_store_id = next_store_id.wrapping_add(1).max(1);
        if cancelled {
            break;
        }
        if counts.remaining > 0 {
            let pending = counts.apply(
                response(field::C_GET_RSP, Some(sop_class), id, 0xFF00, false, None),
                true,
            );
            if let Next::Stop = send(assoc, ctx, &pending, None).await {
                return Next::Stop;
            }
        }
    }
    final_response(assoc, ctx, field::C_GET_RSP, sop_class, id, &counts, cancelled, ts_uid).await
}

/// The final response's data set: Failed SOP Instance UID List (0008,0058).
fn failed_uid_list(uids: &[String], ts_uid: &str) -> Option<Vec<u8>> {
    let ts = TransferSyntaxRegistry.get(ts_uid)?;
    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(
        tags::FAILED_SOP_INSTANCE_UID_LIST,
        VR::UI,
        PrimitiveValue::Strs(uids.iter().cloned().collect()),
    ));
    let mut out = Vec::new();
    obj.write_dataset_with_ts(&mut out, ts).ok()?;
    Some(out)
}

enum SubOp {
    /// The requestor answered the C-STORE with `status`; `cancel`: a C-CANCEL
    /// arrived meanwhile.
    Done { status: u16, cancel: bool },
    /// Could not be sent (no context for it, data unreadable): a failed sub-operation.
    NotSent(String),
    /// The association is gone.
    Lost,
}

/// One C-STORE sub-operation on the requestor's association.
async fn sub_operation<S: ScpStream>(
    assoc: &mut ServerAssoc<S>,
    reader: &mut MessageReader,
    item: RetrieveItem,
    store_id: u16,
) -> SubOp {
    let sop_class = item.instance.sop_class_uid.clone();
    let sop_instance = item.instance.sop_instance_uid.clone();
    let from = item.instance.transfer_syntax.clone();
    let contexts: Vec<(u8, String)> = assoc
        .presentation_contexts()
        .iter()
        .filter(|pc| pc.reason == PresentationContextResultReason::Acceptance)
        .filter(|pc| pc.abstract_syntax.trim_end_matches('\0') == sop_class)
        .map(|pc| (pc.id, pc.transfer_syntax.trim_end_matches('\0').to_string()))
        .collect();
    // The instance's own syntax, else an uncompressed one it converts to.
    let chosen = contexts
        .iter()
        .find(|(_, ts)| *ts == from)
        .or_else(|| {
            contexts
                .iter()
                .find(|(_, ts)| uids::is_convertible(&from) && uids::is_uncompressed(ts))
        })
        .cloned();
    let Some((ctx, to)) = chosen else {
        return SubOp::NotSent(format!(
            "no accepted presentation context for SOP class {sop_class} in {from}"
        ));
    };
    let prepared = tokio::task::spawn_blocking(move || data_set(item, &from, &to))
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    let bytes = match prepared {
        Ok(b) => b,
        Err(reason) => return SubOp::NotSent(reason),
    };
    let rq = store_rq(store_id, &sop_class, &sop_instance, DimsePriority::Medium);
    if let Next::Stop = send(assoc, ctx, &rq, Some(&bytes)).await {
        return SubOp::Lost;
    }
    drop(bytes);
    let mut cancel = false;
    loop {
        super::handler::quickack(assoc);
        let pdu = match tokio::time::timeout(STORE_RSP_TIMEOUT, assoc.receive()).await {
            Ok(Ok(pdu)) => pdu,
            _ => return SubOp::Lost,
        };
        let Pdu::PData { data } = pdu else {
            // A-ABORT, A-RELEASE-RQ in the middle of a C-GET, or anything else.
            return SubOp::Lost;
        };
        for v in data {
            let pdv = Pdv {
                context_id: v.presentation_context_id,
                is_command: v.value_type == PDataValueType::Command,
                is_last: v.is_last,
                data: v.data,
            };
            let msg = match reader.push(pdv) {
                Ok(Some(m)) => m,
                Ok(None) => continue,
                Err(_) => return SubOp::Lost,
            };
            match msg.command.command_field() {
                Some(field::C_CANCEL_RQ) => cancel = true,
                Some(field::C_STORE_RSP) if msg.command.responded_to() == Some(store_id) => {
                    return SubOp::Done {
                        status: msg.command.status().unwrap_or(0xC000),
                        cancel,
                    };
                }
                _ => {
                    tracing::debug!("unexpected message during a C-GET sub-operation: ignored");
                }
            }
        }
    }
}

/// The data set of `item` in `to` (converted from `from` where they differ).
fn data_set(item: RetrieveItem, from: &str, to: &str) -> Result<Vec<u8>, String> {
    let raw = match (item.data, &item.instance.path) {
        (Some(d), _) => d,
        (None, Some(path)) => {
            let file = crate::dimse::InstanceFile::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut reader = file.data_reader().map_err(|e| e.to_string())?;
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut reader, &mut out).map_err(|e| e.to_string())?;
            out
        }
        (None, None) => return Err("the instance's data set is not held".into()),
    };
    if from == to {
        return Ok(raw);
    }
    let to_syntax = crate::dimse::transcode::Syntax::of(to).ok_or("unknown transfer syntax")?;
    let mut out = Vec::with_capacity(raw.len());
    if from == uids::DEFLATED_EXPLICIT_VR_LE {
        crate::dimse::transcode::transcode(
            crate::dimse::transcode::Inflate::new(&raw[..]),
            crate::dimse::transcode::Syntax::EXPLICIT_LE,
            to_syntax,
            &mut out,
        )
    } else {
        let from_syntax = crate::dimse::transcode::Syntax::of(from).ok_or("unknown transfer syntax")?;
        crate::dimse::transcode::transcode(&raw[..], from_syntax, to_syntax, &mut out)
    }
    .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Write one message (command, and data set if any).
/// The instances a C-GET or C-MOVE identifier selects, decoded and looked up on the
/// blocking pool; a failure status otherwise (A900 for an identifier that does not
/// decode, `lost` if the lookup itself was lost).
async fn select(
    shared: &Arc<Shared>,
    data: Vec<u8>,
    ts_uid: &str,
    patient_root: bool,
    lost: u16,
) -> Result<Vec<RetrieveItem>, u16> {
    let owned = shared.clone();
    let ts = ts_uid.to_string();
    let limit = shared.config.limits.max_data_set_bytes;
    tokio::task::spawn_blocking(move || {
        let identifier = decode_checked(&data, &ts, limit).map_err(|_| 0xA900u16)?;
        owned.storage.retrieve_set(&identifier, patient_root)
    })
    .await
    .unwrap_or(Err(lost))
}

/// The final C-GET or C-MOVE response: FE00 when cancelled, B000 when a
/// sub-operation failed or warned, else 0000; the counts, and the Failed SOP
/// Instance UID List when there is one.
#[allow(clippy::too_many_arguments)]
async fn final_response<S: ScpStream>(
    assoc: &mut ServerAssoc<S>,
    ctx: u8,
    command_field: u16,
    sop_class: &str,
    id: u16,
    counts: &Counts,
    cancelled: bool,
    ts_uid: &str,
) -> Next {
    let status = if cancelled {
        0xFE00
    } else if counts.failed > 0 || counts.warning > 0 {
        0xB000
    } else {
        0x0000
    };
    let failed_list = if counts.failed_uids.is_empty() {
        None
    } else {
        failed_uid_list(&counts.failed_uids, ts_uid)
    };
    let rsp = counts.apply(
        response(command_field, Some(sop_class), id, status, failed_list.is_some(), None),
        cancelled,
    );
    send(assoc, ctx, &rsp, failed_list.as_deref()).await
}

/// Serve one C-MOVE-RQ (PS3.4 C.4.2.2): the matching instances go to the move
/// destination (looked up in [`super::ScpConfig::move_destinations`]; an unknown
/// one is A801) on an association of their own, each C-STORE carrying the Move
/// Originator AE Title and Message ID; a pending C-MOVE-RSP with the counts
/// follows each.
#[allow(clippy::too_many_arguments)]
pub(super) async fn serve_move<S: ScpStream>(
    assoc: &mut ServerAssoc<S>,
    shared: &Arc<Shared>,
    ctx: u8,
    id: u16,
    sop_class: &str,
    ts_uid: &str,
    data: Option<Vec<u8>>,
    destination: &str,
    originator_ae: &str,
) -> Next {
    shared.counters.move_requests.fetch_add(1, Ordering::SeqCst);
    let final_rsp = |status: u16| response(field::C_MOVE_RSP, Some(sop_class), id, status, false, None);
    let Some((host, port)) = shared.config.move_destinations.get(destination.trim()).cloned() else {
        tracing::info!(destination, "C-MOVE to an unknown destination: A801");
        return send(assoc, ctx, &final_rsp(0xA801), None).await;
    };
    let Some(data) = data else {
        return send(assoc, ctx, &final_rsp(0xA900), None).await;
    };
    let selected = select(shared, data, ts_uid, sop_class == uids::PATIENT_ROOT_MOVE, 0xA701).await;
    let items = match selected {
        Ok(items) => items,
        Err(status) => return send(assoc, ctx, &final_rsp(status), None).await,
    };
    let mut counts = Counts {
        remaining: u16::try_from(items.len()).unwrap_or(u16::MAX),
        ..Counts::default()
    };
    if items.is_empty() {
        return send(assoc, ctx, &counts.apply(final_rsp(0x0000), false), None).await;
    }
    // One context per SOP class and syntax held, plus the uncompressed ones.
    let mut contexts: Vec<crate::association::ProposedContext> = Vec::new();
    for item in &items {
        let class = &item.instance.sop_class_uid;
        let own = crate::association::ProposedContext::new(class, &[item.instance.transfer_syntax.as_str()]);
        let plain = crate::association::ProposedContext::new(class, &uids::UNCOMPRESSED_LE);
        for c in [own, plain] {
            if !contexts.contains(&c) && contexts.len() < crate::association::MAX_PRESENTATION_CONTEXTS {
                contexts.push(c);
            }
        }
    }
    let params = crate::association::AssociationParams {
        calling_ae: shared.config.ae_title.clone(),
        called_ae: destination.trim().to_string(),
        host,
        port,
        max_pdu_length: 0,
        max_send_pdu_length: 0,
        timeouts: crate::config::Timeouts::default(),
        security: Default::default(),
    };
    let mut sub =
        match crate::association::Association::establish(&params, &crate::association::Profile::Custom(contexts)).await
        {
            Ok(a) => a,
            Err(e) => {
                tracing::info!(destination, error = %e, "C-MOVE destination unreachable: A801");
                return send(assoc, ctx, &final_rsp(0xA801), None).await;
            }
        };
    let mut cancelled = false;
    for item in items {
        let uid = item.instance.sop_instance_uid.clone();
        counts.remaining = counts.remaining.saturating_sub(1);
        if let Some(d) = shared.config.behavior.response_delay {
            tokio::time::sleep(d).await;
        }
        let i = &item.instance;
        let file = match (item.data, &i.path) {
            (Some(data), _) => Ok(crate::dimse::InstanceFile::in_memory(
                &i.sop_class_uid,
                &i.sop_instance_uid,
                &i.transfer_syntax,
                data,
            )),
            (None, Some(path)) => crate::dimse::InstanceFile::open(path).map_err(|e| e.to_string()),
            (None, None) => Err("the instance's data set is not held".to_string()),
        };
        let stored = match file {
            Ok(file) => crate::dimse::store_for_move(&mut sub, &file, DimsePriority::Medium, Some((originator_ae, id)))
                .await
                .map(|r| r.status.0)
                .map_err(|e| e.to_string()),
            Err(reason) => Err(reason),
        };
        match stored {
            Ok(0x0000) => counts.completed = counts.completed.saturating_add(1),
            Ok(s) if s == 0x0001 || (0xB000..=0xBFFF).contains(&s) => counts.warning = counts.warning.saturating_add(1),
            Ok(_) => counts.fail(&uid),
            Err(reason) => {
                tracing::debug!(sop_instance_uid = %uid, %reason, "C-MOVE sub-operation failed");
                counts.fail(&uid);
            }
        }
        // A C-CANCEL may be waiting: look without blocking.
        if let Ok(Ok(pdu)) = tokio::time::timeout(Duration::ZERO, assoc.receive()).await {
            match &pdu {
                Pdu::PData { data } => {
                    cancelled = data.iter().any(|v| {
                        v.value_type == PDataValueType::Command
                            && Command::decode(&v.data).ok().and_then(|c| c.command_field()) == Some(field::C_CANCEL_RQ)
                    });
                }
                _ => {
                    sub.abort().await;
                    return Next::Stop;
                }
            }
        }
        if cancelled {
            break;
        }
        if counts.remaining > 0 {
            let pending = counts.apply(
                response(field::C_MOVE_RSP, Some(sop_class), id, 0xFF00, false, None),
                true,
            );
            if let Next::Stop = send(assoc, ctx, &pending, None).await {
                sub.abort().await;
                return Next::Stop;
            }
        }
    }
    sub.release().await;
    final_response(assoc, ctx, field::C_MOVE_RSP, sop_class, id, &counts, cancelled, ts_uid).await
}
