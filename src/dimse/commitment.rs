//! Storage Commitment Push Model (PS3.4 Annex J) on one association: the
//! N-ACTION-RQ that asks a PACS to commit to keeping instances (PS3.7 10.1.4), the
//! N-EVENT-REPORT-RQ that answers it (PS3.7 10.1.1), their data sets, and the
//! [`CommitmentRouter`] that hands a report arriving on another association (one
//! the PACS opens to our listener) to the request waiting for it, by Transaction UID.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use parking_lot::Mutex;

use crate::association::{uids, Association, ContextRequest, Profile, ProposedContext};
use crate::config::Limits;

use super::command::{field, tag, Command, DATA_SET_PRESENT, NO_DATA_SET};
use super::dataset_check::decode_checked;
use super::message::send_command;
use super::{DimseError, MessageReader, Status};

/// Storage Commitment Push Model SOP Class (PS3.4 J.3).
pub const STORAGE_COMMITMENT_PUSH: &str = "1.2.840.10008.1.20.1";
/// Its well-known SOP Instance (PS3.4 J.3.1).
pub const STORAGE_COMMITMENT_INSTANCE: &str = "1.2.840.10008.1.20.1.1";
/// N-ACTION Action Type ID "Request Storage Commitment" (PS3.4 J.3.2).
pub const ACTION_REQUEST_COMMITMENT: u16 = 1;
/// N-EVENT-REPORT Event Type ID "Storage Commitment Request Successful" (PS3.4 J.3.3).
pub const EVENT_ALL_COMMITTED: u16 = 1;
/// N-EVENT-REPORT Event Type ID "Storage Commitment Request Complete - Failures Exist".
pub const EVENT_FAILURES_EXIST: u16 = 2;

/// Failure Reason (0008,1197) values of PS3.4 J.3.3.1 that a report carries.
pub mod reason {
    /// Processing failure.
    pub const PROCESSING_FAILURE: u16 = 0x0110;
    /// No such object instance: the PACS does not hold it.
    pub const NO_SUCH_OBJECT_INSTANCE: u16 = 0x0112;
    /// Resource limitation.
    pub const RESOURCE_LIMITATION: u16 = 0x0213;
    /// Referenced SOP Class not supported.
    pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
    /// Class / instance conflict: held under another SOP class.
    pub const CLASS_INSTANCE_CONFLICT: u16 = 0x0119;
    /// Duplicate Transaction UID.
    pub const DUPLICATE_TRANSACTION_UID: u16 = 0x0131;
}

/// What a Failure Reason (PS3.4 J.3.3.1) means, in words.
pub fn failure_reason_meaning(code: u16) -> &'static str {
    match code {
        reason::PROCESSING_FAILURE => "processing failure",
        reason::NO_SUCH_OBJECT_INSTANCE => "no such object instance",
        reason::RESOURCE_LIMITATION => "resource limitation",
        reason::SOP_CLASS_NOT_SUPPORTED => "referenced SOP class not supported",
        reason::CLASS_INSTANCE_CONFLICT => "class / instance conflict",
        reason::DUPLICATE_TRANSACTION_UID => "duplicate transaction UID",
        _ => "unknown failure reason",
    }
}

/// One instance, by SOP Class and SOP Instance UID (an item of the Referenced SOP
/// Sequence).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SopRef {
    /// Referenced SOP Class UID (0008,1150).
    pub sop_class_uid: String,
    /// Referenced SOP Instance UID (0008,1155).
    pub sop_instance_uid: String,
}

/// The data set of an N-ACTION-RQ "Request Storage Commitment" (PS3.4 J.3.2.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentRequest {
    /// Transaction UID (0008,1195): names the request; the report carries it back.
    pub transaction_uid: String,
    /// Referenced SOP Sequence (0008,1199).
    pub instances: Vec<SopRef>,
}

/// The data set of an N-EVENT-REPORT-RQ (PS3.4 J.3.3.1): what the PACS committed
/// to, and what it did not, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentReport {
    /// Transaction UID (0008,1195) of the request it answers.
    pub transaction_uid: String,
    /// Event Type ID: 1 all committed, 2 failures exist.
    pub event_type: u16,
    /// Referenced SOP Sequence (0008,1199): committed.
    pub committed: Vec<SopRef>,
    /// Failed SOP Sequence (0008,1198): not committed, with the Failure Reason (0008,1197).
    pub failed: Vec<(SopRef, u16)>,
}

/// A fresh Transaction UID: `2.25.` and a random (version 4) UUID as a decimal
/// integer (PS3.5 B.2).
pub fn new_transaction_uid() -> String {
    let mut v: u128 = rand::random();
    // Version 4, variant 10 (RFC 4122).
    v = (v & !(0xF << 76)) | (0x4 << 76);
    v = (v & !(0x3 << 62)) | (0x2 << 62);
    format!("2.25.{v}")
}

fn uid_element(tag: dicom_core::Tag, uid: &str) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::UI, PrimitiveValue::from(uid))
}

fn sop_item(r: &SopRef) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        uid_element(tags::REFERENCED_SOP_CLASS_UID, &r.sop_class_uid),
        uid_element(tags::REFERENCED_SOP_INSTANCE_UID, &r.sop_instance_uid),
    ])
}

fn sequence(tag: dicom_core::Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
}

fn text(obj: &InMemDicomObject, tag: dicom_core::Tag) -> Option<String> {
    obj.element(tag)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn sop_refs(obj: &InMemDicomObject, tag: dicom_core::Tag) -> Result<Vec<(SopRef, Option<u16>)>, String> {
    let Ok(element) = obj.element(tag) else {
        return Ok(Vec::new());
    };
    let items = element
        .items()
        .ok_or_else(|| format!("({:04X},{:04X}) is not a sequence", tag.0, tag.1))?;
    items
        .iter()
        .map(|item| {
            let class = text(item, tags::REFERENCED_SOP_CLASS_UID);
            let instance = text(item, tags::REFERENCED_SOP_INSTANCE_UID);
            let reason = item
                .element(tags::FAILURE_REASON)
                .ok()
                .and_then(|e| e.to_int::<u16>().ok());
            match instance {
                Some(i) => Ok((
                    SopRef {
                        sop_class_uid: class.unwrap_or_default(),
                        sop_instance_uid: i,
                    },
                    reason,
                )),
                None => Err(format!(
                    "an item of ({:04X},{:04X}) without a Referenced SOP Instance UID",
                    tag.0, tag.1
                )),
            }
        })
        .collect()
}

impl CommitmentRequest {
    /// A request for `instances` under a fresh Transaction UID.
    pub fn new(instances: Vec<SopRef>) -> Self {
        CommitmentRequest {
            transaction_uid: new_transaction_uid(),
            instances,
        }
    }

    /// As the N-ACTION data set.
    pub fn to_data_set(&self) -> InMemDicomObject {
        InMemDicomObject::from_element_iter([
            uid_element(tags::TRANSACTION_UID, &self.transaction_uid),
            sequence(
                tags::REFERENCED_SOP_SEQUENCE,
                self.instances.iter().map(sop_item).collect(),
            ),
        ])
    }

    /// From an N-ACTION data set (the SCP side).
    pub fn from_data_set(obj: &InMemDicomObject) -> Result<Self, String> {
        let transaction_uid =
            text(obj, tags::TRANSACTION_UID).ok_or_else(|| "no Transaction UID (0008,1195)".to_string())?;
        if obj.element(tags::REFERENCED_SOP_SEQUENCE).is_err() {
            return Err("no Referenced SOP Sequence (0008,1199)".into());
        }
        let instances = sop_refs(obj, tags::REFERENCED_SOP_SEQUENCE)?
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        Ok(CommitmentRequest {
            transaction_uid,
            instances,
        })
    }
}

impl CommitmentReport {
    /// As the N-EVENT-REPORT data set (the SCP side); the event type follows from
    /// whether anything failed.
    pub fn to_data_set(&self) -> InMemDicomObject {
        let mut obj = InMemDicomObject::from_element_iter([uid_element(tags::TRANSACTION_UID, &self.transaction_uid)]);
        if !self.committed.is_empty() {
            obj.put(sequence(
                tags::REFERENCED_SOP_SEQUENCE,
                self.committed.iter().map(sop_item).collect(),
            ));
        }
        if !self.failed.is_empty() {
            let items = self
                .failed
                .iter()
                .map(|(r, reason)| {
                    let mut item = sop_item(r);
                    item.put(DataElement::new(
                        tags::FAILURE_REASON,
                        VR::US,
                        PrimitiveValue::from(*reason),
                    ));
                    item
                })
                .collect();
            obj.put(sequence(tags::FAILED_SOP_SEQUENCE, items));
        }
        obj
    }

    /// From an N-EVENT-REPORT data set of `event_type`. A failed item without a
    /// Failure Reason is a processing failure (0110).
    pub fn from_data_set(obj: &InMemDicomObject, event_type: u16) -> Result<Self, String> {
        let transaction_uid =
            text(obj, tags::TRANSACTION_UID).ok_or_else(|| "no Transaction UID (0008,1195)".to_string())?;
        let committed = sop_refs(obj, tags::REFERENCED_SOP_SEQUENCE)?
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        let failed = sop_refs(obj, tags::FAILED_SOP_SEQUENCE)?
            .into_iter()
            .map(|(r, reason)| (r, reason.unwrap_or(reason::PROCESSING_FAILURE)))
            .collect();
        Ok(CommitmentReport {
            transaction_uid,
            event_type,
            committed,
            failed,
        })
    }
}

/// N-ACTION-RQ (PS3.7 10.1.4.1.1) "Request Storage Commitment", with a data set.
pub fn n_action_rq(message_id: u16) -> Command {
    Command::new()
        .with_uid(tag::REQUESTED_SOP_CLASS_UID, STORAGE_COMMITMENT_PUSH)
        .with_u16(tag::COMMAND_FIELD, field::N_ACTION_RQ)
        .with_u16(tag::MESSAGE_ID, message_id)
        .with_u16(tag::COMMAND_DATA_SET_TYPE, DATA_SET_PRESENT)
        .with_uid(tag::REQUESTED_SOP_INSTANCE_UID, STORAGE_COMMITMENT_INSTANCE)
        .with_u16(tag::ACTION_TYPE_ID, ACTION_REQUEST_COMMITMENT)
}

/// N-ACTION-RSP (PS3.7 10.1.4.1.2), without a data set.
pub fn n_action_rsp(responded_to: u16, status: u16, action_type: Option<u16>) -> Command {
    let mut c = Command::new()
        .with_uid(tag::AFFECTED_SOP_CLASS_UID, STORAGE_COMMITMENT_PUSH)
        .with_u16(tag::COMMAND_FIELD, field::N_ACTION_RSP)
        .with_u16(tag::MESSAGE_ID_BEING_RESPONDED_TO, responded_to)
        .with_u16(tag::COMMAND_DATA_SET_TYPE, NO_DATA_SET)
        .with_u16(tag::STATUS, status)
        .with_uid(tag::AFFECTED_SOP_INSTANCE_UID, STORAGE_COMMITMENT_INSTANCE);
    if let Some(t) = action_type {
        c = c.with_u16(tag::ACTION_TYPE_ID, t);
    }
    c
}

/// N-EVENT-REPORT-RQ (PS3.7 10.1.1.1.1) of the commitment instance, with a data set.
pub fn n_event_report_rq(message_id: u16, event_type: u16) -> Command {
    Command::new()
        .with_uid(tag::AFFECTED_SOP_CLASS_UID, STORAGE_COMMITMENT_PUSH)
        .with_u16(tag::COMMAND_FIELD, field::N_EVENT_REPORT_RQ)
        .with_u16(tag::MESSAGE_ID, message_id)
        .with_u16(tag::COMMAND_DATA_SET_TYPE, DATA_SET_PRESENT)
        .with_uid(tag::AFFECTED_SOP_INSTANCE_UID, STORAGE_COMMITMENT_INSTANCE)
        .with_u16(tag::EVENT_TYPE_ID, event_type)
}

/// N-EVENT-REPORT-RSP (PS3.7 10.1.1.1.2), without a data set.
pub fn n_event_report_rsp(responded_to: u16, status: u16, event_type: Option<u16>) -> Command {
    let mut c = Command::new()
        .with_uid(tag::AFFECTED_SOP_CLASS_UID, STORAGE_COMMITMENT_PUSH)
        .with_u16(tag::COMMAND_FIELD, field::N_EVENT_REPORT_RSP)
        .with_u16(tag::MESSAGE_ID_BEING_RESPONDED_TO, responded_to)
        .with_u16(tag::COMMAND_DATA_SET_TYPE, NO_DATA_SET)
        .with_u16(tag::STATUS, status)
        .with_uid(tag::AFFECTED_SOP_INSTANCE_UID, STORAGE_COMMITMENT_INSTANCE);
    if let Some(t) = event_type {
        c = c.with_u16(tag::EVENT_TYPE_ID, t);
    }
    c
}

/// The pool request of a commitment: the Storage Commitment Push Model context in
/// an uncompressed syntax, on an association proposing it (and Verification, for
/// the pool's validation).
pub fn context_request() -> ContextRequest {
    ContextRequest {
        abstract_syntax: STORAGE_COMMITMENT_PUSH.to_string(),
        transfer_syntaxes: uids::UNCOMPRESSED_LE.iter().map(|s| s.to_string()).collect(),
        profile: Profile::Custom(vec![
            ProposedContext::new(STORAGE_COMMITMENT_PUSH, &uids::UNCOMPRESSED_LE),
            ProposedContext::new(uids::VERIFICATION, &uids::UNCOMPRESSED_LE),
        ]),
    }
}

/// Encode a data set in the transfer syntax of an accepted context.
pub fn encode_data_set(obj: &InMemDicomObject, ts_uid: &str, what: &str) -> Result<Vec<u8>, DimseError> {
    let ts = TransferSyntaxRegistry.get(ts_uid).ok_or_else(|| DimseError::Encode {
        what: format!("unknown transfer syntax {ts_uid}"),
        source: None,
    })?;
    let mut out = Vec::new();
    obj.write_dataset_with_ts(&mut out, ts)
        .map_err(|e| DimseError::Encode {
            what: what.to_string(),
            source: Some(Box::new(e)),
        })?;
    Ok(out)
}

/// The N-ACTION-RSP to a commitment request.
#[derive(Debug, Clone)]
pub struct ActionResponse {
    /// Its status.
    pub status: Status,
    /// Error Comment (0000,0902), if any.
    pub error_comment: Option<String>,
    /// Reports that came (on this association) before the response.
    pub early_reports: Vec<CommitmentReport>,
}

/// Send the N-ACTION-RQ for `request` on `assoc` and read its N-ACTION-RSP. The
/// caller has called [`Association::begin_operation`]. An N-EVENT-REPORT-RQ that a
/// PACS sends before its response is answered and kept in
/// [`ActionResponse::early_reports`].
pub async fn request_commitment(
    assoc: &mut Association,
    request: &CommitmentRequest,
    limits: &Limits,
) -> Result<ActionResponse, DimseError> {
    let ctx = assoc.select(&context_request()).cloned().ok_or_else(|| {
        DimseError::NoContext(format!(
            "{} did not accept Storage Commitment Push Model ({STORAGE_COMMITMENT_PUSH})",
            assoc.called_ae()
        ))
    })?;
    let data = encode_data_set(&request.to_data_set(), &ctx.transfer_syntax, "the N-ACTION data set")?;
    let id = assoc.next_message_id();
    send_command(assoc, ctx.id, &n_action_rq(id), Some(&data)).await?;
    let mut early_reports = Vec::new();
    let mut reader = MessageReader::new(*limits);
    let wait = assoc.timeouts().dimse;
    // Bounded: a peer sending report after report without answering is cut off.
    for _ in 0..64 {
        let msg = loop {
            let pdv = assoc.receive_pdv_within(wait).await?;
            match reader.push(pdv) {
                Ok(Some(m)) => break m,
                Ok(None) => {}
                Err(e) => {
                    assoc.poison();
                    return Err(e);
                }
            }
        };
        match msg.command.command_field() {
            Some(field::N_ACTION_RSP) if msg.command.responded_to() == Some(id) => {
                let Some(status) = msg.command.status() else {
                    assoc.poison();
                    return Err(DimseError::UnexpectedResponse("N-ACTION-RSP without a status".into()));
                };
                return Ok(ActionResponse {
                    status: Status(status),
                    error_comment: msg.command.error_comment(),
                    early_reports,
                });
            }
            Some(field::N_EVENT_REPORT_RQ) => {
                if let Some(r) = answer_report(assoc, msg, limits).await? {
                    early_reports.push(r);
                }
            }
            other => {
                assoc.poison();
                return Err(DimseError::UnexpectedResponse(format!(
                    "expected the N-ACTION-RSP to message {id}, got {:04X?} for message {:?}",
                    other,
                    msg.command.responded_to()
                )));
            }
        }
    }
    assoc.poison();
    Err(DimseError::Protocol(
        "too many N-EVENT-REPORTs before the N-ACTION-RSP".into(),
    ))
}

/// Wait on `assoc` for the next N-EVENT-REPORT-RQ of the commitment class (to
/// answer with [`answer_report`]). Only receives, and `reader` lives with the
/// caller, so a wait cut short by the caller's `select!` loses nothing: the caller
/// checks [`MessageReader::is_idle`] to know whether the association is
/// mid-message. Anything but an N-EVENT-REPORT-RQ poisons the association.
pub async fn receive_report_rq(
    assoc: &mut Association,
    reader: &mut MessageReader,
    within: Duration,
) -> Result<super::Message, DimseError> {
    loop {
        let pdv = assoc.receive_pdv_within(within).await?;
        let msg = match reader.push(pdv) {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(e) => {
                assoc.poison();
                return Err(e);
            }
        };
        if msg.command.command_field() != Some(field::N_EVENT_REPORT_RQ) {
            assoc.poison();
            return Err(DimseError::UnexpectedResponse(format!(
                "expected an N-EVENT-REPORT-RQ, got {}",
                msg.command
                    .command_field()
                    .map_or("no command field", super::command::command_name)
            )));
        }
        return Ok(msg);
    }
}

/// Answer an N-EVENT-REPORT-RQ on `assoc` (0000 when its report decodes, else
/// the failure status) and return the report.
pub async fn answer_report(
    assoc: &mut Association,
    msg: super::Message,
    limits: &Limits,
) -> Result<Option<CommitmentReport>, DimseError> {
    let ts = assoc
        .accepted_contexts()
        .iter()
        .find(|c| c.id == msg.context_id)
        .map(|c| c.transfer_syntax.clone());
    let id = msg.command.message_id().unwrap_or(0);
    let (status, report) = match ts {
        Some(ts) => decode_report(&msg.command, msg.data_set.as_deref(), &ts, limits),
        None => (0x0110, None),
    };
    let event_type = msg.command.u16(tag::EVENT_TYPE_ID);
    send_command(assoc, msg.context_id, &n_event_report_rsp(id, status, event_type), None).await?;
    Ok(report)
}

/// A received N-EVENT-REPORT-RQ as a report, and the status to answer it with
/// (PS3.7 10.1.1.1.8): 0000, or 0113 no such event type, 0118 no such SOP class,
/// 0110 processing failure (an undecodable data set).
pub fn decode_report(
    command: &Command,
    data_set: Option<&[u8]>,
    ts_uid: &str,
    limits: &Limits,
) -> (u16, Option<CommitmentReport>) {
    if command.text(tag::AFFECTED_SOP_CLASS_UID).as_deref() != Some(STORAGE_COMMITMENT_PUSH) {
        return (0x0118, None);
    }
    let event_type = match command.u16(tag::EVENT_TYPE_ID) {
        Some(t @ (EVENT_ALL_COMMITTED | EVENT_FAILURES_EXIST)) => t,
        _ => return (0x0113, None),
    };
    let Some(data) = data_set else {
        return (0x0110, None);
    };
    match decode_checked(data, ts_uid, limits.max_data_set_bytes)
        .map_err(|e| e.to_string())
        .and_then(|obj| CommitmentReport::from_data_set(&obj, event_type))
    {
        Ok(r) => (0x0000, Some(r)),
        Err(e) => {
            tracing::warn!(error = %e, "storage commitment report refused: 0110");
            (0x0110, None)
        }
    }
}

/// Hands reports to the commitment requests waiting for them, by Transaction
/// UID: a listener (or an association carrying another request's report)
/// delivers, a request registers before it sends its N-ACTION. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct CommitmentRouter {
    waiting: Arc<Mutex<HashMap<String, tokio::sync::mpsc::UnboundedSender<CommitmentReport>>>>,
}

/// A request's place in a [`CommitmentRouter`]; leaves it when dropped.
#[derive(Debug)]
pub struct Registration {
    router: CommitmentRouter,
    transaction_uid: String,
    /// Reports for this Transaction UID.
    pub reports: tokio::sync::mpsc::UnboundedReceiver<CommitmentReport>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.router.waiting.lock().remove(&self.transaction_uid);
    }
}

impl CommitmentRouter {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wait for reports of `transaction_uid`.
    pub fn register(&self, transaction_uid: &str) -> Registration {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.waiting.lock().insert(transaction_uid.to_string(), tx);
        Registration {
            router: self.clone(),
            transaction_uid: transaction_uid.to_string(),
            reports: rx,
        }
    }

    /// Hand `report` to the request waiting for it; false when none is.
    pub fn deliver(&self, report: CommitmentReport) -> bool {
        let waiting = self.waiting.lock();
        match waiting.get(&report.transaction_uid) {
            Some(tx) => tx.send(report).is_ok(),
            None => false,
        }
    }

    /// Whether a request waits for `transaction_uid`.
    pub fn is_waiting(&self, transaction_uid: &str) -> bool {
        self.waiting.lock().contains_key(transaction_uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sop(i: u32) -> SopRef {
        SopRef {
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            sop_instance_uid: format!("1.2.3.{i}"),
        }
    }

    #[test]
    fn transaction_uids_are_fresh_valid_uids() {
        let a = new_transaction_uid();
        let b = new_transaction_uid();
        assert_ne!(a, b);
        assert!(uids::is_valid_uid(&a), "{a}");
        assert!(a.starts_with("2.25."));
    }

    #[test]
    fn request_round_trips_through_its_data_set() {
        let req = CommitmentRequest::new(vec![sop(1), sop(2)]);
        let bytes = encode_data_set(&req.to_data_set(), uids::EXPLICIT_VR_LE, "test").unwrap();
        let obj = decode_checked(&bytes, uids::EXPLICIT_VR_LE, 1 << 20).unwrap();
        assert_eq!(CommitmentRequest::from_data_set(&obj).unwrap(), req);
        let bytes = encode_data_set(&req.to_data_set(), uids::IMPLICIT_VR_LE, "test").unwrap();
        let obj = decode_checked(&bytes, uids::IMPLICIT_VR_LE, 1 << 20).unwrap();
        assert_eq!(CommitmentRequest::from_data_set(&obj).unwrap(), req);
    }

    #[test]
    fn report_with_failures_round_trips_and_is_answered_0000() {
        let report = CommitmentReport {
            transaction_uid: new_transaction_uid(),
            event_type: EVENT_FAILURES_EXIST,
            committed: vec![sop(1)],
            failed: vec![(sop(2), reason::NO_SUCH_OBJECT_INSTANCE)],
        };
        let bytes = encode_data_set(&report.to_data_set(), uids::IMPLICIT_VR_LE, "test").unwrap();
        let cmd = Command::decode(&n_event_report_rq(3, EVENT_FAILURES_EXIST).encode()).unwrap();
        let (status, decoded) = decode_report(&cmd, Some(&bytes), uids::IMPLICIT_VR_LE, &Limits::default());
        assert_eq!(status, 0x0000);
        assert_eq!(decoded.unwrap(), report);
    }

    #[test]
    fn bad_reports_get_the_failure_status_of_ps3_7() {
        let limits = Limits::default();
        let cmd = Command::decode(&n_event_report_rq(3, 9).encode()).unwrap();
        assert_eq!(decode_report(&cmd, Some(&[]), uids::IMPLICIT_VR_LE, &limits).0, 0x0113);
        let cmd = Command::decode(&n_event_report_rq(3, 1).encode()).unwrap();
        assert_eq!(
            decode_report(&cmd, Some(&[1, 2, 3]), uids::IMPLICIT_VR_LE, &limits).0,
            0x0110
        );
        // No Transaction UID.
        let bytes = encode_data_set(&InMemDicomObject::new_empty(), uids::IMPLICIT_VR_LE, "t").unwrap();
        assert_eq!(
            decode_report(&cmd, Some(&bytes), uids::IMPLICIT_VR_LE, &limits).0,
            0x0110
        );
    }

    #[test]
    fn n_action_rq_names_the_well_known_instance_and_action_1() {
        let c = Command::decode(&n_action_rq(5).encode()).unwrap();
        assert_eq!(c.command_field(), Some(field::N_ACTION_RQ));
        assert_eq!(
            c.text(tag::REQUESTED_SOP_CLASS_UID).as_deref(),
            Some(STORAGE_COMMITMENT_PUSH)
        );
        assert_eq!(
            c.text(tag::REQUESTED_SOP_INSTANCE_UID).as_deref(),
            Some(STORAGE_COMMITMENT_INSTANCE)
        );
        assert_eq!(c.u16(tag::ACTION_TYPE_ID), Some(1));
        assert!(c.has_data_set());
    }

    #[test]
    fn router_delivers_by_transaction_uid_until_the_registration_drops() {
        let router = CommitmentRouter::new();
        let mut reg = router.register("1.2.3");
        let report = CommitmentReport {
            transaction_uid: "1.2.3".into(),
            event_type: 1,
            committed: vec![sop(1)],
            failed: vec![],
        };
        assert!(router.deliver(report.clone()));
        assert_eq!(reg.reports.try_recv().unwrap(), report);
        assert!(!router.deliver(CommitmentReport {
            transaction_uid: "9.9".into(),
            ..report.clone()
        }));
        drop(reg);
        assert!(!router.is_waiting("1.2.3"));
        assert!(!router.deliver(report));
    }
}
