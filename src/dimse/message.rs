//! DIMSE message framing: a command set, then optionally a data set, each as PDVs
//! of one presentation context (PS3.7 6.3.1, PS3.8 9.3.5).

use crate::association::{Association, AssociationError};

use super::command::Command;
use super::DimseError;

/// A received DIMSE message.
#[derive(Debug)]
pub struct Message {
    pub context_id: u8,
    pub command: Command,
    pub data_set: Option<Vec<u8>>,
}

/// Send a command set, and the data set (already encoded) if any, in one write.
pub async fn send_command(
    assoc: &mut Association,
    context_id: u8,
    command: &Command,
    data_set: Option<&[u8]>,
) -> Result<(), DimseError> {
    let peer_max = assoc.peer_max_pdu();
    let encoded = command.encode();
    let mut buf = Vec::with_capacity(encoded.len() + 12 + data_set.map_or(0, |d| d.len() + 12 * (1 + d.len() / 4096)));
    crate::association::encode_pdata(&mut buf, context_id, true, &encoded, true, peer_max);
    if let Some(ds) = data_set {
        crate::association::encode_pdata(&mut buf, context_id, false, ds, true, peer_max);
    }
    assoc.write_all(&buf).await?;
    Ok(())
}

/// Receive one whole message: command fragments up to the last, then the data set
/// fragments when the command says one follows.
pub async fn receive_message(assoc: &mut Association) -> Result<Message, DimseError> {
    let mut command_bytes = Vec::new();
    let context_id;
    loop {
        let pdv = assoc.receive_pdv().await?;
        if !pdv.is_command {
            assoc.poison();
            return Err(AssociationError::Protocol("data set fragment where a command was expected".into()).into());
        }
        command_bytes.extend_from_slice(&pdv.data);
        if pdv.is_last {
            context_id = pdv.context_id;
            break;
        }
    }
    let command = Command::decode(&command_bytes).map_err(|e| {
        assoc.poison();
        DimseError::UnexpectedResponse(e.to_string())
    })?;
    let data_set = if command.has_data_set() {
        let mut data = Vec::new();
        loop {
            let pdv = assoc.receive_pdv().await?;
            if pdv.is_command {
                assoc.poison();
                return Err(AssociationError::Protocol("command fragment inside a data set".into()).into());
            }
            data.extend_from_slice(&pdv.data);
            if pdv.is_last {
                break;
            }
        }
        Some(data)
    } else {
        None
    };
    Ok(Message {
        context_id,
        command,
        data_set,
    })
}

/// Receive the response to `message_id` with command field `rsp_field`. Anything
/// else is a protocol violation that leaves the association in an unknown state.
pub(crate) async fn receive_response(
    assoc: &mut Association,
    message_id: u16,
    rsp_field: u16,
) -> Result<Message, DimseError> {
    let msg = receive_message(assoc).await?;
    if msg.command.command_field() != Some(rsp_field) || msg.command.responded_to() != Some(message_id) {
        assoc.poison();
        return Err(DimseError::UnexpectedResponse(format!(
            "expected command field {rsp_field:04X} for message {message_id}, got {:04X?} for message {:?}",
            msg.command.command_field(),
            msg.command.responded_to()
        )));
    }
    if msg.command.status().is_none() {
        assoc.poison();
        return Err(DimseError::UnexpectedResponse("response without a status".into()));
    }
    Ok(msg)
}
