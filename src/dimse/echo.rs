//! C-ECHO (Verification, PS3.7 9.1.5).

use crate::association::uids::{self, UNCOMPRESSED_LE};
use crate::association::Association;

use super::command::{echo_rq, field};
use super::message::{receive_response, send_command};
use super::{DimseError, Status};

/// One C-ECHO on `assoc`; returns the remote's status.
pub async fn echo(assoc: &mut Association) -> Result<Status, DimseError> {
    // As `ContextRequest::verification()` would select, without building one per echo.
    let ctx = UNCOMPRESSED_LE
        .iter()
        .find_map(|ts| {
            assoc
                .accepted_contexts()
                .iter()
                .find(|c| c.abstract_syntax == uids::VERIFICATION && c.transfer_syntax == *ts)
        })
        .map(|c| c.id)
        .ok_or_else(|| DimseError::NoContext("the remote did not accept Verification (C-ECHO)".into()))?;
    assoc.begin_operation();
    let id = assoc.next_message_id();
    send_command(assoc, ctx, &echo_rq(id), None).await?;
    let rsp = receive_response(assoc, id, field::C_ECHO_RSP).await?;
    assoc.end_operation();
    Ok(Status(rsp.command.status().unwrap_or(0xFFFF)))
}
