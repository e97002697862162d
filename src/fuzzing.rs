//! Entry points for the `cargo fuzz` targets in `fuzz/` (not a stable API).
//!
//! Each function takes arbitrary bytes and must return without panicking, without
//! allocating much more than it was given, and in time linear in its input.

use crate::association::{uids, Pdv};
use crate::config::{Config, Limits};
use crate::dimse::command::Command;
use crate::dimse::dataset_check;
use crate::dimse::MessageReader;

/// Limits small enough that the fuzzer explores both sides of them.
const FUZZ_LIMITS: Limits = Limits {
    max_command_bytes: 4096,
    max_data_set_bytes: 64 * 1024,
};

const TRANSFER_SYNTAXES: [&str; 3] = [uids::IMPLICIT_VR_LE, uids::EXPLICIT_VR_LE, uids::EXPLICIT_VR_BE];

/// The DIMSE command set decoder, and its accessors.
pub fn command_set(data: &[u8]) {
    if let Ok(cmd) = Command::decode(data) {
        let _ = (cmd.command_field(), cmd.status(), cmd.message_id(), cmd.responded_to());
        let _ = (cmd.has_data_set(), cmd.error_comment());
        let _ = cmd.encode();
    }
}

/// P-DATA reassembly: `data` is a series of PDVs, each `[control, context, len_lo,
/// len_hi, bytes...]` (control bit 0: command, bit 1: last); every whole message
/// with a data set is then checked and decoded as a C-FIND identifier would be.
pub fn message_reader(data: &[u8]) {
    let mut reader = MessageReader::new(FUZZ_LIMITS);
    let mut rest = data;
    while rest.len() >= 4 {
        let (control, context) = (rest[0], rest[1] % 4);
        let len = usize::from(u16::from_le_bytes([rest[2], rest[3]])).min(rest.len() - 4);
        let pdv = Pdv {
            context_id: context,
            is_command: control & 1 == 1,
            is_last: control & 2 == 2,
            data: rest[4..4 + len].to_vec(),
        };
        rest = &rest[4 + len..];
        match reader.push(pdv) {
            Ok(Some(msg)) => {
                if let Some(ds) = msg.data_set {
                    let ts = TRANSFER_SYNTAXES[usize::from(control >> 2) % TRANSFER_SYNTAXES.len()];
                    let _ = dataset_check::decode_checked(&ds, ts, FUZZ_LIMITS.max_data_set_bytes);
                }
            }
            Ok(None) => {}
            Err(_) => reader = MessageReader::new(FUZZ_LIMITS),
        }
    }
}

/// A C-FIND identifier (or response data set) as received: the structural check,
/// then dicom-parser, in each uncompressed transfer syntax; the first byte picks
/// the transfer syntax. The same bytes as the head of a retrieved instance: the
/// walk that finds its Study and Series Instance UIDs.
pub fn find_identifier(data: &[u8]) {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let ts = TRANSFER_SYNTAXES[usize::from(*first) % TRANSFER_SYNTAXES.len()];
    let _ = dataset_check::leading_values(
        rest,
        ts,
        &[
            dicom_dictionary_std::tags::STUDY_INSTANCE_UID,
            dicom_dictionary_std::tags::SERIES_INSTANCE_UID,
        ],
    );
    if let Ok(obj) = dataset_check::decode_checked(rest, ts, FUZZ_LIMITS.max_data_set_bytes) {
        // What the CLI does with a match.
        #[cfg(feature = "cli")]
        let _ = dicom_json::to_value(&obj);
        #[cfg(not(feature = "cli"))]
        let _ = obj;
    }
}

/// The hospital config parser.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::from_json_str(text);
    }
}

/// `InstanceFile::open` (the C-STORE file check) on `data` written to `path`.
pub fn instance_file(data: &[u8], path: &std::path::Path) {
    if std::fs::write(path, data).is_ok() {
        let _ = crate::dimse::InstanceFile::open(path);
    }
}

/// The streaming converter of C-STORE (`dimse::transcode`): the first byte picks
/// the source and target syntaxes (Implicit LE, Explicit LE, Explicit BE), the rest
/// is the data set. Output goes to a sink that refuses to grow past 4x the input
/// plus a margin: conversion never multiplies what it was given.
pub fn transcode(data: &[u8]) {
    use crate::dimse::transcode::{transcode, Syntax};
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    const SYNTAXES: [Syntax; 3] = [Syntax::IMPLICIT_LE, Syntax::EXPLICIT_LE, Syntax::EXPLICIT_BE];
    let from = SYNTAXES[usize::from(pick % 3)];
    let to = SYNTAXES[usize::from((pick / 3) % 3)];
    let mut out = BoundedSink {
        left: rest.len() * 4 + 4096,
    };
    let _ = transcode(rest, from, to, &mut out);
}

/// A `Write` that fails once `left` bytes are used up.
struct BoundedSink {
    left: usize,
}

impl std::io::Write for BoundedSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.left {
            return Err(std::io::Error::other("output larger than 4x the input"));
        }
        self.left -= buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
