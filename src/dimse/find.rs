//! C-FIND (Query/Retrieve FIND, PS3.7 9.1.2 and PS3.4 C.4.1): pending responses are
//! handed to the caller as they arrive; when the caller has seen enough, a C-CANCEL
//! is sent and the remaining responses drained up to the final one, so the
//! association stays usable.

use std::ops::ControlFlow;

use dicom_encoding::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::association::{Association, ContextRequest};

use super::command::{cancel_rq, field, find_rq, Priority};
use super::message::{receive_response, send_command};
use super::query::FindQuery;
use super::{DimseError, Status};

/// How a C-FIND ended.
#[derive(Debug, Clone)]
pub struct FindOutcome {
    /// The final status (success, cancel, or a failure).
    pub status: Status,
    /// Matches handed to the caller.
    pub matches: usize,
    /// Whether we sent C-CANCEL.
    pub cancelled: bool,
    /// Pending responses with status FF01 (optional keys not supported).
    pub pending_warnings: usize,
    pub error_comment: Option<String>,
}

/// Run `query` on `assoc`, calling `on_match` with each match as it arrives;
/// `ControlFlow::Break` cancels the rest.
pub async fn find<F>(
    assoc: &mut Association,
    query: &FindQuery,
    priority: Priority,
    mut on_match: F,
) -> Result<FindOutcome, DimseError>
where
    F: FnMut(InMemDicomObject) -> ControlFlow<()>,
{
    let sop_class = query.model.sop_class();
    let ctx = assoc
        .select(&ContextRequest::uncompressed(sop_class))
        .cloned()
        .ok_or_else(|| DimseError::NoContext(format!("the remote did not accept the C-FIND model {sop_class}")))?;
    let ts = TransferSyntaxRegistry
        .get(&ctx.transfer_syntax)
        .ok_or_else(|| DimseError::Encode(format!("unknown transfer syntax {}", ctx.transfer_syntax)))?;
    let identifier = query.identifier().map_err(|e| DimseError::Encode(e.to_string()))?;
    let mut encoded = Vec::new();
    identifier
        .write_dataset_with_ts(&mut encoded, ts)
        .map_err(|e| DimseError::Encode(e.to_string()))?;

    assoc.begin_operation();
    let id = assoc.next_message_id();
    send_command(assoc, ctx.id, &find_rq(id, sop_class, priority), Some(&encoded)).await?;

    let mut outcome = FindOutcome {
        status: Status::SUCCESS,
        matches: 0,
        cancelled: false,
        pending_warnings: 0,
        error_comment: None,
    };
    loop {
        let rsp = receive_response(assoc, id, field::C_FIND_RSP).await?;
        let status = Status(rsp.command.status().unwrap_or(0xFFFF));
        if !status.is_pending() {
            outcome.status = status;
            outcome.error_comment = rsp.command.error_comment();
            break;
        }
        if status == Status::PENDING_WARNING {
            outcome.pending_warnings += 1;
        }
        if outcome.cancelled {
            // Responses already in flight when we cancelled.
            continue;
        }
        let Some(data) = rsp.data_set else {
            assoc.poison();
            return Err(DimseError::UnexpectedResponse(
                "pending C-FIND response without an identifier".into(),
            ));
        };
        let obj = InMemDicomObject::read_dataset_with_ts(&data[..], ts).map_err(|e| {
            assoc.poison();
            DimseError::Decode(e.to_string())
        })?;
        outcome.matches += 1;
        if on_match(obj).is_break() {
            outcome.cancelled = true;
            send_command(assoc, ctx.id, &cancel_rq(id), None).await?;
        }
    }
    assoc.end_operation();
    Ok(outcome)
}
