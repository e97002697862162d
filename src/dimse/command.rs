//! DIMSE command sets (group 0000, always Implicit VR Little Endian, PS3.7 E.1):
//! encoding requests and decoding responses.
//!
//! Command sets are small and fixed in shape, so they are encoded by hand: it is
//! exact (group length first, elements in tag order, even lengths) and cheap on the
//! hot path of a C-STORE.
// Public for `crate::testing` (raw commands in the protocol tests); without
// that feature only this crate uses them.
#![cfg_attr(not(feature = "testing"), allow(unreachable_pub, dead_code))]

use std::collections::BTreeMap;

/// Command Field values (PS3.7 E.1-1), named as the standard names them.
#[allow(missing_docs)]
pub mod field {
    pub const C_STORE_RQ: u16 = 0x0001;
    pub const C_STORE_RSP: u16 = 0x8001;
    pub const C_FIND_RQ: u16 = 0x0020;
    pub const C_FIND_RSP: u16 = 0x8020;
    pub const C_GET_RQ: u16 = 0x0010;
    pub const C_GET_RSP: u16 = 0x8010;
    pub const C_MOVE_RQ: u16 = 0x0021;
    pub const C_MOVE_RSP: u16 = 0x8021;
    pub const C_ECHO_RQ: u16 = 0x0030;
    pub const C_ECHO_RSP: u16 = 0x8030;
    pub const C_CANCEL_RQ: u16 = 0x0FFF;
    pub const N_EVENT_REPORT_RQ: u16 = 0x0100;
    pub const N_EVENT_REPORT_RSP: u16 = 0x8100;
    pub const N_ACTION_RQ: u16 = 0x0130;
    pub const N_ACTION_RSP: u16 = 0x8130;
}

/// Command Data Set Type (0000,0800): "no data set" value.
pub const NO_DATA_SET: u16 = 0x0101;
/// Any other value means a data set follows; 0x0000 is conventional.
pub const DATA_SET_PRESENT: u16 = 0x0000;

/// Command element tags (group 0000), as element numbers, named as PS3.7 E.1-1
/// names them.
#[allow(missing_docs)]
pub mod tag {
    pub const GROUP_LENGTH: u16 = 0x0000;
    pub const AFFECTED_SOP_CLASS_UID: u16 = 0x0002;
    pub const REQUESTED_SOP_CLASS_UID: u16 = 0x0003;
    pub const COMMAND_FIELD: u16 = 0x0100;
    pub const MESSAGE_ID: u16 = 0x0110;
    pub const MESSAGE_ID_BEING_RESPONDED_TO: u16 = 0x0120;
    pub const MOVE_DESTINATION: u16 = 0x0600;
    pub const PRIORITY: u16 = 0x0700;
    pub const COMMAND_DATA_SET_TYPE: u16 = 0x0800;
    pub const STATUS: u16 = 0x0900;
    pub const OFFENDING_ELEMENT: u16 = 0x0901;
    pub const ERROR_COMMENT: u16 = 0x0902;
    pub const ERROR_ID: u16 = 0x0903;
    pub const AFFECTED_SOP_INSTANCE_UID: u16 = 0x1000;
    pub const REQUESTED_SOP_INSTANCE_UID: u16 = 0x1001;
    pub const EVENT_TYPE_ID: u16 = 0x1002;
    pub const ACTION_TYPE_ID: u16 = 0x1008;
    pub const REMAINING_SUB_OPERATIONS: u16 = 0x1020;
    pub const COMPLETED_SUB_OPERATIONS: u16 = 0x1021;
    pub const FAILED_SUB_OPERATIONS: u16 = 0x1022;
    pub const WARNING_SUB_OPERATIONS: u16 = 0x1023;
    pub const MOVE_ORIGINATOR_AE: u16 = 0x1030;
    pub const MOVE_ORIGINATOR_MESSAGE_ID: u16 = 0x1031;
}

/// The name of a Command Field value (PS3.7 E.1-1).
pub fn command_name(field: u16) -> &'static str {
    match field {
        0x0001 => "C-STORE-RQ",
        0x8001 => "C-STORE-RSP",
        0x0010 => "C-GET-RQ",
        0x8010 => "C-GET-RSP",
        0x0020 => "C-FIND-RQ",
        0x8020 => "C-FIND-RSP",
        0x0021 => "C-MOVE-RQ",
        0x8021 => "C-MOVE-RSP",
        0x0030 => "C-ECHO-RQ",
        0x8030 => "C-ECHO-RSP",
        0x0100 => "N-EVENT-REPORT-RQ",
        0x8100 => "N-EVENT-REPORT-RSP",
        0x0130 => "N-ACTION-RQ",
        0x8130 => "N-ACTION-RSP",
        0x0FFF => "C-CANCEL-RQ",
        _ => "unknown command",
    }
}

/// DIMSE priority (0000,0700).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DimsePriority {
    /// LOW (0002H).
    Low = 0x0002,
    /// MEDIUM (0000H), what most SCUs send.
    #[default]
    Medium = 0x0000,
    /// HIGH (0001H).
    High = 0x0001,
}

/// A command set: element number → raw value bytes (already padded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    elements: BTreeMap<u16, Vec<u8>>,
}

/// A malformed command set from the remote.
#[derive(Debug, thiserror::Error)]
#[error("malformed DIMSE command set: {0}")]
pub struct CommandError(pub String);

impl Command {
    /// An empty command set.
    pub fn new() -> Self {
        Self::default()
    }

    /// With an US element set.
    pub fn with_u16(mut self, element: u16, value: u16) -> Self {
        self.elements.insert(element, value.to_le_bytes().to_vec());
        self
    }

    /// UI values are padded with NUL to even length.
    pub fn with_uid(mut self, element: u16, uid: &str) -> Self {
        let mut v = uid.as_bytes().to_vec();
        if v.len() % 2 == 1 {
            v.push(0);
        }
        self.elements.insert(element, v);
        self
    }

    /// Text values (AE, LO) are padded with a space to even length.
    pub fn with_text(mut self, element: u16, text: &str) -> Self {
        let mut v = text.as_bytes().to_vec();
        if v.len() % 2 == 1 {
            v.push(b' ');
        }
        self.elements.insert(element, v);
        self
    }

    /// Encode with a leading Command Group Length, Implicit VR LE.
    pub fn encode(&self) -> Vec<u8> {
        let body_len: usize = self
            .elements
            .iter()
            .filter(|(e, _)| **e != tag::GROUP_LENGTH)
            .map(|(_, v)| 8 + v.len())
            .sum();
        let mut out = Vec::with_capacity(12 + body_len);
        push_element(&mut out, tag::GROUP_LENGTH, &(body_len as u32).to_le_bytes());
        for (e, v) in self.elements.iter().filter(|(e, _)| **e != tag::GROUP_LENGTH) {
            push_element(&mut out, *e, v);
        }
        self.trace("sent", out.len());
        out
    }

    /// `-vv`: one line per DIMSE command set (command, message ID, status), never
    /// any data set content.
    fn trace(&self, direction: &'static str, bytes: usize) {
        if !tracing::enabled!(target: "pacs_net::dimse_trace", tracing::Level::DEBUG) {
            return;
        }
        let command = self.command_field().map_or("?", command_name);
        let status = self.status().map(|s| format!("{s:04X}"));
        tracing::debug!(
            target: "pacs_net::dimse_trace",
            direction,
            command,
            message_id = self.message_id().or(self.responded_to()),
            status = status.as_deref(),
            data_set = self.has_data_set(),
            bytes,
            "{direction} {command}{}{}",
            self.message_id()
                .or(self.responded_to())
                .map(|id| format!(" message ID {id}"))
                .unwrap_or_default(),
            status.as_deref().map(|s| format!(" status {s}")).unwrap_or_default(),
        );
    }

    /// Decode a command set; elements outside group 0000 are an error.
    pub fn decode(bytes: &[u8]) -> Result<Self, CommandError> {
        let mut elements = BTreeMap::new();
        let mut pos = 0usize;
        while pos < bytes.len() {
            let header = bytes
                .get(pos..pos + 8)
                .ok_or_else(|| CommandError(format!("truncated element header at byte {pos}")))?;
            let group = u16::from_le_bytes([header[0], header[1]]);
            let element = u16::from_le_bytes([header[2], header[3]]);
            let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
            if group != 0x0000 {
                return Err(CommandError(format!(
                    "element ({group:04X},{element:04X}) outside the command group"
                )));
            }
            let start = pos + 8;
            let value = bytes
                .get(start..start.saturating_add(len))
                .ok_or_else(|| CommandError(format!("element (0000,{element:04X}) runs past the end")))?;
            elements.insert(element, value.to_vec());
            pos = start + len;
        }
        let command = Command { elements };
        command.trace("received", bytes.len());
        Ok(command)
    }

    /// An US element's value.
    pub fn u16(&self, element: u16) -> Option<u16> {
        self.elements
            .get(&element)
            .filter(|v| v.len() >= 2)
            .map(|v| u16::from_le_bytes([v[0], v[1]]))
    }

    /// A text or UID value with its padding removed.
    pub fn text(&self, element: u16) -> Option<String> {
        self.elements.get(&element).map(|v| {
            String::from_utf8_lossy(v)
                .trim_end_matches(['\0', ' '])
                .trim_start()
                .to_string()
        })
    }

    /// Command Field (0000,0100).
    pub fn command_field(&self) -> Option<u16> {
        self.u16(tag::COMMAND_FIELD)
    }

    /// Whether a data set follows (Command Data Set Type, 0000,0800).
    pub fn has_data_set(&self) -> bool {
        self.u16(tag::COMMAND_DATA_SET_TYPE).is_some_and(|t| t != NO_DATA_SET)
    }

    /// Status (0000,0900).
    pub fn status(&self) -> Option<u16> {
        self.u16(tag::STATUS)
    }

    /// Message ID Being Responded To (0000,0120).
    pub fn responded_to(&self) -> Option<u16> {
        self.u16(tag::MESSAGE_ID_BEING_RESPONDED_TO)
    }

    /// Message ID (0000,0110).
    pub fn message_id(&self) -> Option<u16> {
        self.u16(tag::MESSAGE_ID)
    }

    /// Error Comment (0000,0902), if the remote gave one.
    pub fn error_comment(&self) -> Option<String> {
        self.text(tag::ERROR_COMMENT).filter(|s| !s.is_empty())
    }

    /// Offending Element (0000,0901), as "(gggg,eeee)" tags.
    pub fn offending_elements(&self) -> Vec<String> {
        self.elements
            .get(&tag::OFFENDING_ELEMENT)
            .map(|v| {
                v.chunks_exact(4)
                    .map(|c| {
                        format!(
                            "({:04X},{:04X})",
                            u16::from_le_bytes([c[0], c[1]]),
                            u16::from_le_bytes([c[2], c[3]])
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn push_element(out: &mut Vec<u8>, element: u16, value: &[u8]) {
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&element.to_le_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
}

/// C-ECHO-RQ (PS3.7 9.3.5.1).
pub fn echo_rq(message_id: u16) -> Command {
    Command::new()
        .with_uid(tag::AFFECTED_SOP_CLASS_UID, crate::association::uids::VERIFICATION)
        .with_u16(tag::COMMAND_FIELD, field::C_ECHO_RQ)
        .with_u16(tag::MESSAGE_ID, message_id)
        .with_u16(tag::COMMAND_DATA_SET_TYPE, NO_DATA_SET)
}

/// C-STORE-RQ (PS3.7 9.3.1.1).
pub fn store_rq(message_id: u16, sop_class: &str, sop_instance: &str, priority: DimsePriority) -> Command {
    Command::new()
        .with_uid(tag::AFFECTED_SOP_CLASS_UID, sop_class)
        .with_u16(tag::COMMAND_FIELD, field::C_STORE_RQ)
        .with_u16(tag::MESSAGE_ID, message_id)
        .with_u16(tag::PRIORITY, priority as u16)
        .with_u16(tag::COMMAND_DATA_SET_TYPE, DATA_SET_PRESENT)
        .with_uid(tag::AFFECTED_SOP_INSTANCE_UID, sop_instance)
}

/// C-FIND-RQ (PS3.7 9.3.2.1).
pub fn find_rq(message_id: u16, sop_class: &str, priority: DimsePriority) -> Command {
    Command::new()
        .with_uid(tag::AFFECTED_SOP_CLASS_UID, sop_class)
        .with_u16(tag::COMMAND_FIELD, field::C_FIND_RQ)
        .with_u16(tag::MESSAGE_ID, message_id)
        .with_u16(tag::PRIORITY, priority as u16)
        .with_u16(tag::COMMAND_DATA_SET_TYPE, DATA_SET_PRESENT)
}

/// C-GET-RQ (PS3.7 9.3.3.1).
pub fn get_rq(message_id: u16, sop_class: &str, priority: DimsePriority) -> Command {
    Command::new()
        .with_uid(tag::AFFECTED_SOP_CLASS_UID, sop_class)
        .with_u16(tag::COMMAND_FIELD, field::C_GET_RQ)
        .with_u16(tag::MESSAGE_ID, message_id)
        .with_u16(tag::PRIORITY, priority as u16)
        .with_u16(tag::COMMAND_DATA_SET_TYPE, DATA_SET_PRESENT)
}

/// C-MOVE-RQ (PS3.7 9.3.4.1) to `destination`.
pub fn move_rq(message_id: u16, sop_class: &str, priority: DimsePriority, destination: &str) -> Command {
    Command::new()
        .with_uid(tag::AFFECTED_SOP_CLASS_UID, sop_class)
        .with_u16(tag::COMMAND_FIELD, field::C_MOVE_RQ)
        .with_u16(tag::MESSAGE_ID, message_id)
        .with_text(tag::MOVE_DESTINATION, destination)
        .with_u16(tag::PRIORITY, priority as u16)
        .with_u16(tag::COMMAND_DATA_SET_TYPE, DATA_SET_PRESENT)
}

/// C-CANCEL-RQ (PS3.7 9.3.2.3) for the C-FIND with `message_id`.
pub fn cancel_rq(message_id: u16) -> Command {
    Command::new()
        .with_u16(tag::COMMAND_FIELD, field::C_CANCEL_RQ)
        .with_u16(tag::MESSAGE_ID_BEING_RESPONDED_TO, message_id)
        .with_u16(tag::COMMAND_DATA_SET_TYPE, NO_DATA_SET)
}

/// A response to `rq_field` with `status` (used by the embedded SCP).
pub fn response(
    rsp_field: u16,
    sop_class: Option<&str>,
    responded_to: u16,
    status: u16,
    data_set: bool,
    sop_instance: Option<&str>,
) -> Command {
    let mut c = Command::new()
        .with_u16(tag::COMMAND_FIELD, rsp_field)
        .with_u16(tag::MESSAGE_ID_BEING_RESPONDED_TO, responded_to)
        .with_u16(
            tag::COMMAND_DATA_SET_TYPE,
            if data_set { DATA_SET_PRESENT } else { NO_DATA_SET },
        )
        .with_u16(tag::STATUS, status);
    if let Some(sop_class) = sop_class {
        c = c.with_uid(tag::AFFECTED_SOP_CLASS_UID, sop_class);
    }
    if let Some(sop_instance) = sop_instance {
        c = c.with_uid(tag::AFFECTED_SOP_INSTANCE_UID, sop_instance);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_rq_encodes_exactly() {
        let bytes = echo_rq(7).encode();
        // group length(12) + sop class(8+18) + field(10) + msg id(10) + ds type(10)
        assert_eq!(bytes.len(), 12 + 26 + 10 + 10 + 10);
        assert_eq!(&bytes[0..8], &[0, 0, 0, 0, 4, 0, 0, 0]);
        let group_len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        assert_eq!(group_len as usize, bytes.len() - 12);
        // "1.2.840.10008.1.1" is 17 chars: padded with NUL to 18.
        assert_eq!(&bytes[12..20], &[0, 0, 2, 0, 18, 0, 0, 0]);
        assert_eq!(bytes[20 + 17], 0);
        let decoded = Command::decode(&bytes).unwrap();
        assert_eq!(decoded.command_field(), Some(field::C_ECHO_RQ));
        assert_eq!(decoded.message_id(), Some(7));
        assert!(!decoded.has_data_set());
        assert_eq!(
            decoded.text(tag::AFFECTED_SOP_CLASS_UID).as_deref(),
            Some("1.2.840.10008.1.1")
        );
    }

    #[test]
    fn elements_are_in_tag_order() {
        let bytes = store_rq(1, "1.2.3", "4.5.6", DimsePriority::Medium).encode();
        let mut pos = 0;
        let mut last = None;
        while pos < bytes.len() {
            let e = u16::from_le_bytes([bytes[pos + 2], bytes[pos + 3]]);
            let len = u32::from_le_bytes([bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]]) as usize;
            assert!(len % 2 == 0, "odd length for element {e:04X}");
            if let Some(l) = last {
                assert!(e > l);
            }
            last = Some(e);
            pos += 8 + len;
        }
    }

    #[test]
    fn decode_rejects_garbage_without_panicking() {
        assert!(Command::decode(&[0, 0, 0, 0, 255, 255, 255, 255]).is_err());
        assert!(Command::decode(&[8, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(Command::decode(&[0, 0, 1]).is_err());
        assert!(Command::decode(&[]).unwrap().command_field().is_none());
    }

    #[test]
    fn response_fields_round_trip() {
        let rsp = response(field::C_STORE_RSP, Some("1.2"), 9, 0xB000, false, Some("1.2.3"));
        let d = Command::decode(&rsp.encode()).unwrap();
        assert_eq!(d.status(), Some(0xB000));
        assert_eq!(d.responded_to(), Some(9));
        assert_eq!(d.text(tag::AFFECTED_SOP_INSTANCE_UID).as_deref(), Some("1.2.3"));
    }
}
