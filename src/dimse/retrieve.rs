//! C-GET and C-MOVE as an SCU (Query/Retrieve, PS3.4 C.4.2 and C.4.3, PS3.7
//! 9.1.3 and 9.1.4) on one association.
//!
//! A C-GET's instances come back as C-STORE sub-operations on the same
//! association (we negotiated the SCP role for their SOP classes): each data set
//! is written to disk as its fragments arrive, behind a Part 10 file meta group
//! that names the transfer syntax it arrived in, so memory stays bounded by the
//! PDU size whatever the instance size; the file is then moved to
//! `DIR/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm` and the
//! C-STORE answered. A C-MOVE only has responses here: its instances go to the
//! destination AE on associations of their own. Pending responses carry the
//! sub-operation counts; the final one may carry the Failed SOP Instance UID List.
//!
//! When the caller has seen enough (or has gone away), a C-CANCEL is sent (PS3.7
//! 9.3.3.3 / 9.3.4.3) and the association is worked on up to the final response,
//! so it stays usable; a peer that does not end within a bounded number of
//! messages has its association aborted.

use std::future::Future;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::association::uids::is_valid_uid;
use crate::association::{Association, ContextRequest, Pdv};
use crate::config::Limits;

use super::command::{cancel_rq, field, get_rq, move_rq, response, tag, Command, DimsePriority};
use super::dataset_check::decode_checked;
use super::message::send_command;
use super::part_file::{PartFile, SpareFile};
use super::query::FindQuery;
use super::{DimseError, Status};

/// Sub-operation counts of a C-GET / C-MOVE response (PS3.7 9.3.3.2, 9.3.4.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SubOperations {
    /// Not given in a final response (nor by some PACS at all).
    pub remaining: Option<u16>,
    /// Number of Completed Sub-operations (0000,1021).
    pub completed: u16,
    /// Number of Failed Sub-operations (0000,1022).
    pub failed: u16,
    /// Number of Warning Sub-operations (0000,1023).
    pub warning: u16,
}

impl SubOperations {
    fn of(cmd: &Command) -> Self {
        SubOperations {
            remaining: cmd.u16(tag::REMAINING_SUB_OPERATIONS),
            completed: cmd.u16(tag::COMPLETED_SUB_OPERATIONS).unwrap_or(0),
            failed: cmd.u16(tag::FAILED_SUB_OPERATIONS).unwrap_or(0),
            warning: cmd.u16(tag::WARNING_SUB_OPERATIONS).unwrap_or(0),
        }
    }
}

/// One instance a C-GET sent us (a C-STORE sub-operation), and what became of it.
#[derive(Debug, Clone)]
pub struct ReceivedInstance {
    /// SOP Class UID of the instance.
    pub sop_class_uid: String,
    /// SOP Instance UID of the instance.
    pub sop_instance_uid: String,
    /// The transfer syntax UID it was sent in.
    pub transfer_syntax: String,
    /// Where it was written; `None` when it was refused.
    pub path: Option<PathBuf>,
    /// Data set bytes received.
    pub bytes: u64,
    /// The status we answered the C-STORE with.
    pub status: Status,
    /// Why it was refused.
    pub error: Option<String>,
}

/// What a retrieve hands to its caller as it goes.
#[derive(Debug, Clone)]
pub enum RetrieveEvent {
    /// The request is sent, with this Message ID (what a C-MOVE's instances name as
    /// their Move Originator Message ID).
    Requested {
        /// Message ID (0000,0110) of the request.
        message_id: u16,
    },
    /// A pending response: the sub-operation counts so far.
    Progress(SubOperations),
    /// A C-STORE sub-operation received on the association (C-GET).
    Instance(ReceivedInstance),
}

/// Where retrieve events go. Delivery is awaited (backpressure).
pub trait RetrieveSink: Send {
    /// Take one event; `ControlFlow::Break` cancels the retrieve (C-CANCEL).
    fn deliver(&mut self, event: RetrieveEvent) -> impl Future<Output = ControlFlow<()>> + Send;

    /// Whether the consumer has gone away (checked at every message: C-CANCEL).
    fn is_closed(&self) -> bool {
        false
    }
}

/// A callback as a [`RetrieveSink`].
pub struct FnRetrieveSink<F>(pub F);

impl<F> std::fmt::Debug for FnRetrieveSink<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnRetrieveSink").finish_non_exhaustive()
    }
}

impl<F> RetrieveSink for FnRetrieveSink<F>
where
    F: FnMut(RetrieveEvent) -> ControlFlow<()> + Send,
{
    fn deliver(&mut self, event: RetrieveEvent) -> impl Future<Output = ControlFlow<()>> + Send {
        std::future::ready((self.0)(event))
    }
}

/// C-GET or C-MOVE, and for a move, its destination AE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetrieveKind {
    /// C-GET: the instances come back on the same association.
    Get,
    /// C-MOVE: the PACS sends the instances to another AE.
    Move {
        /// Move Destination (0000,0600): the AE title to send to.
        destination: String,
    },
}

impl RetrieveKind {
    /// `C-GET` or `C-MOVE`.
    pub fn name(&self) -> &'static str {
        match self {
            RetrieveKind::Get => "C-GET",
            RetrieveKind::Move { .. } => "C-MOVE",
        }
    }

    /// The SOP class of the request in `query`'s model.
    pub fn sop_class(&self, query: &FindQuery) -> &'static str {
        match self {
            RetrieveKind::Get => query.model.get_sop_class(),
            RetrieveKind::Move { .. } => query.model.move_sop_class(),
        }
    }

    fn rsp_field(&self) -> u16 {
        match self {
            RetrieveKind::Get => field::C_GET_RSP,
            RetrieveKind::Move { .. } => field::C_MOVE_RSP,
        }
    }
}

/// How a retrieve ended.
#[derive(Debug, Clone)]
pub struct RetrieveOutcome {
    /// The final status (success, warning, cancel, or a failure).
    pub status: Status,
    /// The counts of the final response (or of the last pending one, where the
    /// final response left them out).
    pub sub_operations: SubOperations,
    /// Failed SOP Instance UID List (0008,0058) of the final response.
    pub failed_sop_instance_uids: Vec<String>,
    /// Error Comment (0000,0902) of the final response.
    pub error_comment: Option<String>,
    /// Whether we sent C-CANCEL.
    pub cancelled: bool,
    /// The association broke after our C-CANCEL (before the final response).
    pub lost_after_cancel: bool,
    /// C-STORE sub-operations received on the association, and written.
    pub received: usize,
    /// Of which written.
    pub written: usize,
    /// Data set bytes written.
    pub bytes: u64,
}

impl Default for RetrieveOutcome {
    /// Success, nothing counted or received yet.
    fn default() -> Self {
        RetrieveOutcome {
            status: Status::SUCCESS,
            sub_operations: SubOperations::default(),
            failed_sop_instance_uids: Vec::new(),
            error_comment: None,
            cancelled: false,
            lost_after_cancel: false,
            received: 0,
            written: 0,
            bytes: 0,
        }
    }
}

/// After our C-CANCEL, at most this many messages are taken before the
/// association is given up on (a peer that ignores the cancel would keep us here).
const MAX_MESSAGES_AFTER_CANCEL: usize = 4096;

/// Run a C-GET (instances written under `out_dir`) or C-MOVE on `assoc`.
///
/// `wait` bounds the wait for each message of the retrieve (the node's retrieve
/// timeout, which a PACS may need before its first response); the fragments of a
/// message that has begun are each bounded by the DIMSE timeout.
#[allow(clippy::too_many_arguments)]
pub async fn retrieve<S: RetrieveSink>(
    assoc: &mut Association,
    query: &FindQuery,
    kind: &RetrieveKind,
    priority: DimsePriority,
    limits: &Limits,
    wait: Duration,
    out_dir: &Path,
    sink: &mut S,
) -> Result<RetrieveOutcome, DimseError> {
    let sop_class = kind.sop_class(query);
    let ctx = assoc
        .select(&ContextRequest::uncompressed(sop_class))
        .cloned()
        .ok_or_else(|| {
            DimseError::NoContext(format!(
                "{} does not support {} in the {} model (the presentation context was refused)",
                assoc.called_ae(),
                kind.name(),
                match query.model {
                    super::QueryModel::StudyRoot => "Study Root",
                    super::QueryModel::PatientRoot => "Patient Root",
                }
            ))
        })?;
    let ts = TransferSyntaxRegistry
        .get(&ctx.transfer_syntax)
        .ok_or_else(|| DimseError::Encode {
            what: format!("unknown transfer syntax {}", ctx.transfer_syntax),
            source: None,
        })?;
    let identifier = query.retrieve_identifier().map_err(|e| DimseError::Encode {
        what: "the retrieve identifier".into(),
        source: Some(Box::new(e)),
    })?;
    let mut encoded = Vec::new();
    identifier
        .write_dataset_with_ts(&mut encoded, ts)
        .map_err(|e| DimseError::Encode {
            what: "the retrieve identifier".into(),
            source: Some(Box::new(e)),
        })?;

    assoc.begin_operation();
    let id = assoc.next_message_id();
    let rq = match kind {
        RetrieveKind::Get => get_rq(id, sop_class, priority),
        RetrieveKind::Move { destination } => move_rq(id, sop_class, priority, destination),
    };
    send_command(assoc, ctx.id, &rq, Some(&encoded)).await?;

    let mut outcome = RetrieveOutcome::default();
    if sink
        .deliver(RetrieveEvent::Requested { message_id: id })
        .await
        .is_break()
    {
        cancel(assoc, ctx.id, id, &mut outcome).await;
    }
    let mut after_cancel = 0usize;
    let mut receiver = Receiver {
        wait,
        dimse: assoc.timeouts().dimse,
        limits: *limits,
        spare: None,
    };
    loop {
        if outcome.cancelled {
            after_cancel += 1;
            if after_cancel > MAX_MESSAGES_AFTER_CANCEL {
                assoc.poison();
                outcome.status = Status::CANCEL;
                outcome.lost_after_cancel = true;
                break;
            }
        } else if sink.is_closed() {
            cancel(assoc, ctx.id, id, &mut outcome).await;
            if outcome.lost_after_cancel {
                break;
            }
        }
        let step = receiver.next(assoc, kind, id, out_dir).await;
        let step = match step {
            Ok(s) => s,
            Err(e) if outcome.cancelled => {
                tracing::debug!(association = assoc.id(), error = %e, "association lost after C-CANCEL");
                assoc.poison();
                outcome.status = Status::CANCEL;
                outcome.lost_after_cancel = true;
                break;
            }
            Err(e) => {
                assoc.poison();
                return Err(e);
            }
        };
        let event = match step {
            Step::Stored(instance) => {
                outcome.received += 1;
                if instance.path.is_some() {
                    outcome.written += 1;
                    outcome.bytes += instance.bytes;
                }
                RetrieveEvent::Instance(instance)
            }
            Step::Response { command, data } => {
                let status = Status(command.status().unwrap_or(0xFFFF));
                let counts = SubOperations::of(&command);
                if status.is_pending() {
                    outcome.sub_operations = counts;
                    RetrieveEvent::Progress(counts)
                } else {
                    // A final response may leave the counts out (PS3.7 C.4.3.1.4:
                    // they are conditional): keep the last pending ones then.
                    let any = [
                        tag::COMPLETED_SUB_OPERATIONS,
                        tag::FAILED_SUB_OPERATIONS,
                        tag::WARNING_SUB_OPERATIONS,
                    ]
                    .iter()
                    .any(|t| command.u16(*t).is_some());
                    if any {
                        outcome.sub_operations = SubOperations {
                            remaining: counts.remaining,
                            ..counts
                        };
                    } else {
                        outcome.sub_operations.remaining = counts.remaining.or(outcome.sub_operations.remaining);
                    }
                    outcome.status = status;
                    outcome.error_comment = command.error_comment();
                    if let Some(data) = data {
                        outcome.failed_sop_instance_uids =
                            failed_uid_list(&data, &ctx.transfer_syntax, limits.max_data_set_bytes);
                    }
                    break;
                }
            }
        };
        if outcome.cancelled {
            continue;
        }
        if sink.deliver(event).await.is_break() {
            cancel(assoc, ctx.id, id, &mut outcome).await;
            if outcome.lost_after_cancel {
                break;
            }
        }
    }
    assoc.end_operation();
    Ok(outcome)
}

/// Send C-CANCEL (PS3.7 9.3.3.3); on failure the retrieve is settled as cancelled
/// with its association lost.
async fn cancel(assoc: &mut Association, ctx: u8, id: u16, outcome: &mut RetrieveOutcome) {
    outcome.cancelled = true;
    if let Err(e) = send_command(assoc, ctx, &cancel_rq(id), None).await {
        tracing::debug!(association = assoc.id(), error = %e, "C-CANCEL could not be sent");
        assoc.poison();
        outcome.status = Status::CANCEL;
        outcome.lost_after_cancel = true;
    }
}

/// The Failed SOP Instance UID List (0008,0058) of a final response's data set;
/// a data set that cannot be read yields none (it changes no count).
fn failed_uid_list(data: &[u8], ts: &str, limit: usize) -> Vec<String> {
    match decode_checked(data, ts, limit) {
        Ok(obj) => obj
            .element(tags::FAILED_SOP_INSTANCE_UID_LIST)
            .ok()
            .and_then(|e| e.to_multi_str().ok().map(|v| v.to_vec()))
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.trim_end_matches(['\0', ' ']).trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        Err(e) => {
            tracing::debug!(error = %e, "final retrieve response: unreadable data set");
            Vec::new()
        }
    }
}

/// What one message of the retrieve was.
enum Step {
    /// A C-STORE sub-operation, answered.
    Stored(ReceivedInstance),
    /// A C-GET-RSP / C-MOVE-RSP to our request.
    Response { command: Command, data: Option<Vec<u8>> },
}

/// Reads the messages of a retrieve off the association.
struct Receiver {
    wait: Duration,
    dimse: Duration,
    limits: Limits,
    /// The next instance's file, made while the PACS prepares it (removed with the
    /// receiver when no instance came to take it).
    spare: Option<SpareFile>,
}

impl Receiver {
    async fn pdv(&self, assoc: &mut Association, at_boundary: bool) -> Result<Pdv, DimseError> {
        let limit = if at_boundary { self.wait } else { self.dimse };
        Ok(assoc.receive_pdv_within(limit).await?)
    }

    /// The next message: a C-STORE-RQ is answered (its data set written as it
    /// comes), a response to `id` is returned; anything else is a protocol error.
    async fn next(
        &mut self,
        assoc: &mut Association,
        kind: &RetrieveKind,
        id: u16,
        out_dir: &Path,
    ) -> Result<Step, DimseError> {
        let mut command_bytes = Vec::new();
        let first = self.pdv(assoc, true).await?;
        let ctx = first.context_id;
        let mut pdv = first;
        loop {
            if !pdv.is_command || pdv.context_id != ctx {
                return Err(DimseError::Protocol(
                    "expected a command fragment on the message's presentation context".into(),
                ));
            }
            if command_bytes.len() + pdv.data.len() > self.limits.max_command_bytes {
                return Err(DimseError::LimitExceeded {
                    what: "command set",
                    limit: self.limits.max_command_bytes,
                    field: "max_command_bytes",
                });
            }
            command_bytes.extend_from_slice(&pdv.data);
            if pdv.is_last {
                break;
            }
            pdv = self.pdv(assoc, false).await?;
        }
        let command = Command::decode(&command_bytes).map_err(|e| DimseError::Protocol(e.to_string()))?;
        match command.command_field() {
            Some(f) if f == kind.rsp_field() && command.responded_to() == Some(id) => {
                if command.status().is_none() {
                    return Err(DimseError::UnexpectedResponse(format!(
                        "{} response without a status",
                        kind.name()
                    )));
                }
                let data = if command.has_data_set() {
                    Some(self.collect_data(assoc, ctx).await?)
                } else {
                    None
                };
                Ok(Step::Response { command, data })
            }
            Some(field::C_STORE_RQ) if *kind == RetrieveKind::Get && command.has_data_set() => {
                let instance = self.store(assoc, ctx, &command, out_dir).await?;
                Ok(Step::Stored(instance))
            }
            other => Err(DimseError::UnexpectedResponse(format!(
                "{} during a {} (message {id}): expected its responses{}",
                other.map_or("a command without a command field", super::command::command_name),
                kind.name(),
                if *kind == RetrieveKind::Get {
                    " or C-STORE sub-operations"
                } else {
                    ""
                }
            ))),
        }
    }

    /// A (small) data set of a response, in memory within the limits.
    async fn collect_data(&self, assoc: &mut Association, ctx: u8) -> Result<Vec<u8>, DimseError> {
        let mut data = Vec::new();
        loop {
            let pdv = self.pdv(assoc, false).await?;
            if pdv.is_command || pdv.context_id != ctx {
                return Err(DimseError::Protocol("expected a data set fragment".into()));
            }
            if data.len() + pdv.data.len() > self.limits.max_data_set_bytes {
                return Err(DimseError::LimitExceeded {
                    what: "data set",
                    limit: self.limits.max_data_set_bytes,
                    field: "max_data_set_bytes",
                });
            }
            data.extend_from_slice(&pdv.data);
            if pdv.is_last {
                return Ok(data);
            }
        }
    }

    /// A C-STORE sub-operation: stream its data set to a file, file it under its
    /// study and series, answer the C-STORE-RSP.
    async fn store(
        &mut self,
        assoc: &mut Association,
        ctx: u8,
        command: &Command,
        out_dir: &Path,
    ) -> Result<ReceivedInstance, DimseError> {
        let sop_class = command.text(tag::AFFECTED_SOP_CLASS_UID).unwrap_or_default();
        let sop_instance = command.text(tag::AFFECTED_SOP_INSTANCE_UID).unwrap_or_default();
        let store_id = command.message_id().unwrap_or(0);
        let transfer_syntax = assoc
            .accepted_contexts()
            .iter()
            .find(|c| c.id == ctx)
            .map(|c| c.transfer_syntax.clone())
            .ok_or_else(|| DimseError::Protocol(format!("C-STORE on presentation context {ctx}, never accepted")))?;
        if assoc.scp_role_granted(&sop_class) == Some(false) {
            tracing::debug!(
                sop_class_uid = %sop_class,
                "C-STORE sub-operation for a SOP class whose SCP role the remote refused; taking it all the same"
            );
        }
        let mut file = if !is_valid_uid(&sop_instance) || !is_valid_uid(&sop_class) {
            PartFile::refused(0xC000, "the C-STORE names no valid SOP Class and Instance UID")
        } else {
            PartFile::create(
                out_dir,
                self.spare.take(),
                &sop_class,
                &sop_instance,
                &transfer_syntax,
                assoc.called_ae(),
            )
        };
        loop {
            let pdv = self.pdv(assoc, false).await?;
            if pdv.is_command || pdv.context_id != ctx {
                file.discard();
                return Err(DimseError::Protocol(
                    "expected a C-STORE data set fragment on the same presentation context".into(),
                ));
            }
            file.write(&pdv.data);
            if pdv.is_last {
                break;
            }
        }
        let bytes = file.bytes;
        let (path, status, error) = match file.finish(out_dir, &sop_instance) {
            Ok(path) => (Some(path), Status::SUCCESS, None),
            Err((status, reason)) => {
                let uid = if is_valid_uid(&sop_instance) {
                    sop_instance.as_str()
                } else {
                    "(invalid)"
                };
                tracing::warn!(sop_instance_uid = %uid, status = %status.hex(), reason = %reason, "retrieved instance not written");
                (None, status, Some(reason))
            }
        };
        let rsp = response(
            field::C_STORE_RSP,
            Some(&sop_class),
            store_id,
            status.0,
            false,
            Some(&sop_instance),
        );
        send_command(assoc, ctx, &rsp, None).await?;
        // The PACS now reads its next instance: make that one's file meanwhile.
        if path.is_some() && self.spare.is_none() {
            self.spare = SpareFile::create(out_dir);
        }
        Ok(ReceivedInstance {
            sop_class_uid: sop_class,
            sop_instance_uid: sop_instance,
            transfer_syntax,
            path,
            bytes,
            status,
            error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_read_from_the_command() {
        let cmd = response(field::C_GET_RSP, Some("1.2"), 3, 0xFF00, false, None)
            .with_u16(tag::REMAINING_SUB_OPERATIONS, 7)
            .with_u16(tag::COMPLETED_SUB_OPERATIONS, 2)
            .with_u16(tag::FAILED_SUB_OPERATIONS, 1);
        let c = SubOperations::of(&Command::decode(&cmd.encode()).unwrap());
        assert_eq!(
            c,
            SubOperations {
                remaining: Some(7),
                completed: 2,
                failed: 1,
                warning: 0
            }
        );
    }
}
