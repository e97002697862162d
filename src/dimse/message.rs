//! DIMSE message framing: a command set, then optionally a data set, each as PDVs
//! of one presentation context (PS3.7 6.3.1, PS3.8 9.3.5).

use crate::association::{Association, Pdv};
use crate::config::Limits;

use super::command::Command;
use super::DimseError;

/// A received DIMSE message.
#[derive(Debug)]
pub struct Message {
    /// The Presentation Context ID it came on.
    pub context_id: u8,
    /// The command set.
    pub command: Command,
    /// The data set bytes, if the command has one.
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

/// Receive one whole message within the built-in [`Limits`].
pub async fn receive_message(assoc: &mut Association) -> Result<Message, DimseError> {
    receive_message_limited(assoc, &Limits::default()).await
}

/// Receive one whole message: command fragments up to the last, then the data set
/// fragments when the command says one follows. Fragments are accumulated only up
/// to `limits` (a peer could otherwise stream fragments for ever); past them, or on
/// a fragment of the wrong kind or context, the association is poisoned (it is
/// mid-message) and the error says which limit was hit.
pub async fn receive_message_limited(assoc: &mut Association, limits: &Limits) -> Result<Message, DimseError> {
    let mut reader = MessageReader::new(*limits);
    loop {
        let pdv = assoc.receive_pdv().await?;
        match reader.push(pdv) {
            Ok(None) => {}
            Ok(Some(msg)) => return Ok(msg),
            Err(e) => {
                assoc.poison();
                return Err(e);
            }
        }
    }
}

/// Reassembles PDVs into a message, within limits. Pure (no I/O), so it is what
/// the fuzzers drive.
#[derive(Debug)]
pub struct MessageReader {
    limits: Limits,
    context_id: Option<u8>,
    command_bytes: Vec<u8>,
    command: Option<Command>,
    data: Vec<u8>,
}

impl MessageReader {
    /// A reader that enforces `limits`.
    pub fn new(limits: Limits) -> Self {
        MessageReader {
            limits,
            context_id: None,
            command_bytes: Vec::new(),
            command: None,
            data: Vec::new(),
        }
    }

    /// Between messages (nothing of a message received yet).
    pub fn is_idle(&self) -> bool {
        self.context_id.is_none()
    }

    /// Take one PDV; returns the message once it is whole.
    pub fn push(&mut self, pdv: Pdv) -> Result<Option<Message>, DimseError> {
        match self.context_id {
            None => self.context_id = Some(pdv.context_id),
            Some(id) if id != pdv.context_id => {
                return Err(DimseError::Protocol(format!(
                    "fragment on presentation context {} inside a message on context {id}",
                    pdv.context_id
                )))
            }
            Some(_) => {}
        }
        let context_id = pdv.context_id;
        let Some(command) = &self.command else {
            if !pdv.is_command {
                return Err(DimseError::Protocol(
                    "data set fragment where a command was expected".into(),
                ));
            }
            append(
                &mut self.command_bytes,
                &pdv.data,
                self.limits.max_command_bytes,
                "command set",
                "max_command_bytes",
            )?;
            if !pdv.is_last {
                return Ok(None);
            }
            let command = Command::decode(&self.command_bytes).map_err(DimseError::MalformedCommand)?;
            self.command_bytes = Vec::new();
            if !command.has_data_set() {
                return Ok(Some(self.finish(context_id, command, None)));
            }
            self.command = Some(command);
            return Ok(None);
        };
        let _ = command;
        if pdv.is_command {
            return Err(DimseError::Protocol("command fragment inside a data set".into()));
        }
        append(
            &mut self.data,
            &pdv.data,
            self.limits.max_data_set_bytes,
            "data set",
            "max_data_set_bytes",
        )?;
        if !pdv.is_last {
            return Ok(None);
        }
        let data = std::mem::take(&mut self.data);
        let command = self.command.take().unwrap_or_default();
        Ok(Some(self.finish(context_id, command, Some(data))))
    }

    /// A command that is whole and waits for its data set, of which nothing has
    /// come yet, and that `wanted` picks: handed over with its presentation context
    /// to a caller that receives the data set itself (streamed to disk), leaving
    /// the reader between messages.
    pub fn take_awaiting_data(&mut self, wanted: impl FnOnce(&Command) -> bool) -> Option<(u8, Command)> {
        let ctx = self.context_id?;
        if !self.data.is_empty() || !self.command.as_ref().is_some_and(wanted) {
            return None;
        }
        self.context_id = None;
        self.command.take().map(|c| (ctx, c))
    }

    fn finish(&mut self, context_id: u8, command: Command, data_set: Option<Vec<u8>>) -> Message {
        self.context_id = None;
        Message {
            context_id,
            command,
            data_set,
        }
    }
}

fn append(
    buf: &mut Vec<u8>,
    more: &[u8],
    limit: usize,
    what: &'static str,
    field: &'static str,
) -> Result<(), DimseError> {
    let size = buf.len().saturating_add(more.len());
    if size > limit {
        return Err(DimseError::LimitExceeded { what, limit, field });
    }
    buf.extend_from_slice(more);
    Ok(())
}

/// Receive the response to `message_id` with command field `rsp_field`. Anything
/// else is a protocol violation that leaves the association in an unknown state.
pub(crate) async fn receive_response(
    assoc: &mut Association,
    message_id: u16,
    rsp_field: u16,
) -> Result<Message, DimseError> {
    receive_response_limited(assoc, message_id, rsp_field, &Limits::default()).await
}

/// [`receive_response`] within `limits`.
pub(crate) async fn receive_response_limited(
    assoc: &mut Association,
    message_id: u16,
    rsp_field: u16,
    limits: &Limits,
) -> Result<Message, DimseError> {
    let msg = receive_message_limited(assoc, limits).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dimse::command::{cancel_rq, find_rq, DimsePriority};

    fn pdv(context_id: u8, is_command: bool, is_last: bool, data: &[u8]) -> Pdv {
        Pdv {
            context_id,
            is_command,
            is_last,
            data: data.to_vec(),
        }
    }

    #[test]
    fn reassembles_a_command_and_its_data_set() {
        let mut r = MessageReader::new(Limits::default());
        let cmd = find_rq(1, "1.2.3", DimsePriority::Medium).encode();
        let (a, b) = cmd.split_at(10);
        assert!(r.push(pdv(1, true, false, a)).unwrap().is_none());
        assert!(r.push(pdv(1, true, true, b)).unwrap().is_none());
        assert!(!r.is_idle());
        assert!(r.push(pdv(1, false, false, b"ab")).unwrap().is_none());
        let msg = r.push(pdv(1, false, true, b"cd")).unwrap().unwrap();
        assert_eq!(msg.data_set.as_deref(), Some(&b"abcd"[..]));
        assert!(r.is_idle());
        let msg = r.push(pdv(3, true, true, &cancel_rq(1).encode())).unwrap().unwrap();
        assert_eq!((msg.context_id, msg.data_set), (3, None));
    }

    #[test]
    fn refuses_what_a_message_cannot_be() {
        let cmd = find_rq(1, "1.2.3", DimsePriority::Medium).encode();
        let mut r = MessageReader::new(Limits::default());
        assert!(matches!(
            r.push(pdv(1, false, true, b"x")),
            Err(DimseError::Protocol(_))
        ));
        let mut r = MessageReader::new(Limits::default());
        r.push(pdv(1, true, true, &cmd)).unwrap();
        let err = r.push(pdv(5, false, true, b"x")).unwrap_err();
        assert!(err.to_string().contains("context 5"), "{err}");
        let limits = Limits {
            max_command_bytes: 16,
            max_data_set_bytes: 4,
        };
        let mut r = MessageReader::new(limits);
        let err = r.push(pdv(1, true, false, &[0; 17])).unwrap_err();
        assert!(matches!(err, DimseError::LimitExceeded { limit: 16, .. }), "{err}");
        let mut r = MessageReader::new(Limits {
            max_command_bytes: 1024,
            ..limits
        });
        r.push(pdv(1, true, true, &cmd)).unwrap();
        r.push(pdv(1, false, false, b"abc")).unwrap();
        let err = r.push(pdv(1, false, false, b"de")).unwrap_err();
        assert!(err.to_string().contains("limits.max_data_set_bytes"), "{err}");
    }
}
