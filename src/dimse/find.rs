//! C-FIND (Query/Retrieve FIND, PS3.7 9.1.2 and PS3.4 C.4.1): pending responses are
//! handed to the caller as they arrive; when the caller has seen enough, a C-CANCEL
//! is sent and the remaining responses drained up to the final one, so the
//! association stays usable.

use std::future::Future;
use std::ops::ControlFlow;

use dicom_encoding::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::association::Association;

use super::command::{cancel_rq, field, find_rq, DimsePriority};
use super::dataset_check::decode_checked;
use super::message::{receive_response_limited, send_command};
use super::query::FindRequest;
use super::{DimseError, Status};
use crate::config::Limits;

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
    /// Error Comment (0000,0902) of the final response.
    pub error_comment: Option<String>,
    /// The association broke after our C-CANCEL (before the final response): the
    /// outcome is still a cancelled query, the association was aborted.
    pub lost_after_cancel: bool,
}

/// Where C-FIND matches go. Delivery is awaited, so a slow consumer slows the
/// query down (backpressure) instead of matches piling up in memory.
pub trait MatchSink: Send {
    /// Take one match; `ControlFlow::Break` cancels the rest (C-CANCEL).
    fn deliver(&mut self, m: InMemDicomObject) -> impl Future<Output = ControlFlow<()>> + Send;

    /// Whether the consumer has gone away; checked at every response, so a dropped
    /// consumer is noticed (and C-CANCEL sent) within one response.
    fn is_closed(&self) -> bool {
        false
    }
}

/// A synchronous callback as a [`MatchSink`].
pub struct FnSink<F>(pub F);

impl<F> std::fmt::Debug for FnSink<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnSink").finish_non_exhaustive()
    }
}

impl<F> MatchSink for FnSink<F>
where
    F: FnMut(InMemDicomObject) -> ControlFlow<()> + Send,
{
    fn deliver(&mut self, m: InMemDicomObject) -> impl Future<Output = ControlFlow<()>> + Send {
        std::future::ready((self.0)(m))
    }
}

/// After our C-CANCEL, at most this many responses are drained before the
/// association is given up on (a peer that ignores the cancel would keep us here).
const MAX_DRAINED_AFTER_CANCEL: usize = 1024;

/// Run `query` on `assoc`, calling `on_match` with each match as it arrives;
/// `ControlFlow::Break` cancels the rest. Built-in [`Limits`].
pub async fn find<F, Q: FindRequest + ?Sized>(
    assoc: &mut Association,
    query: &Q,
    priority: DimsePriority,
    on_match: F,
) -> Result<FindOutcome, DimseError>
where
    F: FnMut(InMemDicomObject) -> ControlFlow<()> + Send,
{
    find_into(assoc, query, priority, &Limits::default(), &mut FnSink(on_match)).await
}

/// Run `query` on `assoc`, handing each match to `sink` (awaited), within `limits`.
///
/// Every identifier is size- and structure-checked before it is decoded
/// ([`super::dataset_check`]); a bad one is a [`DimseError::Decode`] and aborts
/// the association. Once we have sent C-CANCEL, the query's outcome is settled:
/// the responses still in flight are drained (up to the final one, so the
/// association stays usable), and if the association is lost meanwhile the
/// outcome is still a cancelled success, with the association aborted.
pub async fn find_into<S: MatchSink, Q: FindRequest + ?Sized>(
    assoc: &mut Association,
    query: &Q,
    priority: DimsePriority,
    limits: &Limits,
    sink: &mut S,
) -> Result<FindOutcome, DimseError> {
    let sop_class = query.sop_class();
    let ctx = assoc.select(&query.context()).cloned().ok_or_else(|| {
        DimseError::NoContext(format!(
            "the remote did not accept the C-FIND model {sop_class} ({})",
            crate::association::uid_name(sop_class)
        ))
    })?;
    let ts = TransferSyntaxRegistry
        .get(&ctx.transfer_syntax)
        .ok_or_else(|| DimseError::Encode {
            what: format!("unknown transfer syntax {}", ctx.transfer_syntax),
            source: None,
        })?;
    let identifier = query.identifier().map_err(|e| DimseError::Encode {
        what: "the C-FIND identifier".into(),
        source: Some(Box::new(e)),
    })?;
    let mut encoded = Vec::new();
    identifier
        .write_dataset_with_ts(&mut encoded, ts)
        .map_err(|e| DimseError::Encode {
            what: "the C-FIND identifier".into(),
            source: Some(Box::new(e)),
        })?;

    assoc.begin_operation();
    let id = assoc.next_message_id();
    send_command(assoc, ctx.id, &find_rq(id, sop_class, priority), Some(&encoded)).await?;

    let mut outcome = FindOutcome {
        status: Status::SUCCESS,
        matches: 0,
        cancelled: false,
        pending_warnings: 0,
        error_comment: None,
        lost_after_cancel: false,
    };
    let mut drained = 0usize;
    loop {
        let rsp = match receive_response_limited(assoc, id, field::C_FIND_RSP, limits).await {
            Ok(rsp) => rsp,
            Err(e) if outcome.cancelled => {
                // We asked to stop; what happens to the association now changes
                // nothing for the caller, and says nothing about the node.
                tracing::debug!(association = assoc.id(), error = %e, "association lost after C-CANCEL");
                assoc.poison();
                outcome.status = Status::CANCEL;
                outcome.lost_after_cancel = true;
                break;
            }
            Err(e) => return Err(e),
        };
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
            drained += 1;
            if drained > MAX_DRAINED_AFTER_CANCEL {
                assoc.poison();
                outcome.status = Status::CANCEL;
                outcome.lost_after_cancel = true;
                break;
            }
            continue;
        }
        if sink.is_closed() {
            if cancel(assoc, ctx.id, id, &mut outcome).await {
                break;
            }
            continue;
        }
        let Some(data) = rsp.data_set else {
            assoc.poison();
            return Err(DimseError::Protocol(
                "pending C-FIND response without an identifier".into(),
            ));
        };
        let mut obj = decode_checked(&data, &ctx.transfer_syntax, limits.max_data_set_bytes).map_err(|e| {
            assoc.poison();
            DimseError::Decode {
                what: "C-FIND response identifier".into(),
                source: Box::new(e),
            }
        })?;
        super::charset::redecode_text(&mut obj);
        drop(data);
        outcome.matches += 1;
        if sink.deliver(obj).await.is_break() && cancel(assoc, ctx.id, id, &mut outcome).await {
            break;
        }
    }
    assoc.end_operation();
    Ok(outcome)
}

/// Send C-CANCEL; true when the association is lost (the query is settled as
/// cancelled all the same).
async fn cancel(assoc: &mut Association, ctx: u8, id: u16, outcome: &mut FindOutcome) -> bool {
    outcome.cancelled = true;
    match send_command(assoc, ctx, &cancel_rq(id), None).await {
        Ok(()) => false,
        Err(e) => {
            tracing::debug!(association = assoc.id(), error = %e, "C-CANCEL could not be sent");
            assoc.poison();
            outcome.status = Status::CANCEL;
            outcome.lost_after_cancel = true;
            true
        }
    }
}
