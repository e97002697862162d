//! C-STORE (Storage, PS3.7 9.1.1 and PS3.4 B.2).
//!
//! When the remote accepted the file's own transfer syntax the data set is streamed
//! from disk as it is stored, never decoded: memory stays bounded whatever the size.
//! Otherwise an uncompressed (or deflated) data set is converted, element by element
//! as it is sent ([`super::transcode`]), into an accepted uncompressed syntax; a
//! compressed one cannot be, and fails saying which syntax was refused. Either way
//! the data set goes out in chunks of whole PDUs, each written under the DIMSE
//! timeout, so progress (not the size of the file) is what the timeout bounds.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use crate::association::{encode_pdata, uids, Association, AssociationError, ContextRequest};

use super::command::{field, store_rq, DimsePriority};
use super::instance::{FileError, InstanceFile};
use super::message::receive_response;
use super::{DimseError, Status};

/// Data set bytes read from disk per write (several PDUs per system call).
const STREAM_CHUNK: usize = 512 * 1024;

/// The remote's answer to a C-STORE.
#[derive(Debug, Clone)]
pub struct StoreResponse {
    /// The DIMSE status (0000,0900) of the C-STORE-RSP.
    pub status: Status,
    /// Its Error Comment (0000,0902), if any.
    pub error_comment: Option<String>,
    /// Its Offending Element (0000,0901) list, if any.
    pub offending_elements: Vec<String>,
    /// The transfer syntax the data set was sent in.
    pub transfer_syntax: String,
    /// Whether it had to be re-encoded from the file's own syntax.
    pub converted: bool,
}

/// Store one instance on `assoc`.
pub async fn store(
    assoc: &mut Association,
    file: &InstanceFile,
    priority: DimsePriority,
) -> Result<StoreResponse, DimseError> {
    store_for_move(assoc, file, priority, None).await
}

/// Store one instance as a sub-operation of the C-MOVE `originator` (its AE title
/// and Message ID, carried in the C-STORE-RQ, PS3.7 9.3.1.1), or on its own.
pub async fn store_for_move(
    assoc: &mut Association,
    file: &InstanceFile,
    priority: DimsePriority,
    originator: Option<(&str, u16)>,
) -> Result<StoreResponse, DimseError> {
    let req = ContextRequest::store(&file.sop_class_uid, &file.transfer_syntax);
    let ctx = assoc.select(&req).cloned().ok_or_else(|| no_context(assoc, file))?;
    let converted = ctx.transfer_syntax != file.transfer_syntax;

    assoc.begin_operation();
    let id = assoc.next_message_id();
    let mut command = store_rq(id, &file.sop_class_uid, &file.sop_instance_uid, priority);
    if let Some((ae, message_id)) = originator {
        command = command
            .with_text(super::command::tag::MOVE_ORIGINATOR_AE, ae)
            .with_u16(super::command::tag::MOVE_ORIGINATOR_MESSAGE_ID, message_id);
    }
    let command = command.encode();
    let peer_max = assoc.peer_max_pdu();
    let mut out = Vec::with_capacity(STREAM_CHUNK + STREAM_CHUNK / 64 + 256);
    encode_pdata(&mut out, ctx.id, true, &command, true, peer_max);
    match converted {
        true => stream_converted(assoc, file, &ctx.transfer_syntax, ctx.id, peer_max, out).await?,
        false => match file.inline_data() {
            Some(bytes) if pad_deflated(file) => {
                encode_pdata(&mut out, ctx.id, false, &[bytes, &[0]].concat(), true, peer_max);
                assoc.write_all(&out).await?;
            }
            Some(bytes) => {
                encode_pdata(&mut out, ctx.id, false, bytes, true, peer_max);
                assoc.write_all(&out).await?;
            }
            None => stream_file(assoc, file, ctx.id, peer_max, out).await?,
        },
    }
    let rsp = receive_response(assoc, id, field::C_STORE_RSP).await?;
    assoc.end_operation();
    let status = Status(rsp.command.status().unwrap_or(0xFFFF));
    Ok(StoreResponse {
        status,
        error_comment: rsp.command.error_comment(),
        offending_elements: rsp.command.offending_elements(),
        transfer_syntax: ctx.transfer_syntax,
        converted,
    })
}

fn no_context(assoc: &Association, file: &InstanceFile) -> DimseError {
    let class_accepted: Vec<&str> = assoc
        .accepted_contexts()
        .iter()
        .filter(|c| c.abstract_syntax == file.sop_class_uid)
        .map(|c| c.transfer_syntax.as_str())
        .collect();
    if class_accepted.is_empty() {
        DimseError::NoContext(format!("the remote did not accept SOP class {}", file.sop_class_uid))
    } else if !uids::is_convertible(&file.transfer_syntax) {
        DimseError::NoContext(format!(
            "the remote did not accept {} for SOP class {}, and a compressed data set cannot be converted (accepted: {})",
            uids::transfer_syntax_name(&file.transfer_syntax),
            file.sop_class_uid,
            class_accepted.join(", ")
        ))
    } else {
        DimseError::NoContext(format!(
            "no usable transfer syntax for SOP class {} (file in {}, accepted: {})",
            file.sop_class_uid,
            uids::transfer_syntax_name(&file.transfer_syntax),
            class_accepted.join(", ")
        ))
    }
}

/// A deflated data set of odd length goes out with one trailing zero byte (PS3.5
/// A.5: the deflated stream is padded to even length; DCMTK refuses odd fragments).
fn pad_deflated(file: &InstanceFile) -> bool {
    file.transfer_syntax == uids::DEFLATED_EXPLICIT_VR_LE && file.data_len() % 2 == 1
}

/// Chunk size: whole PDVs of `peer_max`, about `STREAM_CHUNK` bytes.
fn chunk_len(peer_max: u32) -> usize {
    let per_pdv = (peer_max as usize).saturating_sub(6).max(1);
    (STREAM_CHUNK / per_pdv).max(1) * per_pdv
}

/// Send the data set converted to `to_ts` as it is read: a blocking task converts
/// into chunks (two in flight at most), and each chunk is written as soon as the
/// next one exists (the last one carries the "last fragment" bit).
async fn stream_converted(
    assoc: &mut Association,
    file: &InstanceFile,
    to_ts: &str,
    ctx: u8,
    peer_max: u32,
    mut out: Vec<u8>,
) -> Result<(), DimseError> {
    let from_ts = file.transfer_syntax.clone();
    let to = super::transcode::Syntax::of(to_ts).ok_or_else(|| FileError::Convert {
        to: uids::transfer_syntax_name(to_ts),
        reason: "unknown transfer syntax".into(),
    })?;
    let chunk = chunk_len(peer_max);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(1);
    let reader = file.data_reader()?;
    let converter = tokio::task::spawn_blocking(move || {
        let sink = ChunkSink {
            tx,
            buf: Vec::with_capacity(chunk),
            chunk,
        };
        if from_ts == uids::DEFLATED_EXPLICIT_VR_LE {
            let from = super::transcode::Syntax::EXPLICIT_LE;
            super::transcode::transcode(super::transcode::Inflate::new(reader), from, to, sink)
        } else {
            let from = super::transcode::Syntax::of(&from_ts).unwrap_or(super::transcode::Syntax::EXPLICIT_LE);
            super::transcode::transcode(reader, from, to, sink)
        }
    });
    let mut held: Option<Vec<u8>> = None;
    let mut sent_any = false;
    loop {
        let next = rx.recv().await;
        let last = next.is_none();
        if let Some(prev) = held.take() {
            if last {
                // Only a complete conversion may end the message.
                match converter.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        assoc.poison();
                        return Err(e.into());
                    }
                    Err(e) => {
                        assoc.poison();
                        return Err(FileError::Io(std::io::Error::other(e.to_string())).into());
                    }
                }
                encode_pdata(&mut out, ctx, false, &prev, true, peer_max);
                assoc.write_all(&out).await?;
                return Ok(());
            }
            encode_pdata(&mut out, ctx, false, &prev, false, peer_max);
            assoc.write_all(&out).await?;
            out.clear();
            sent_any = true;
        }
        match next {
            Some(c) => held = Some(c),
            None => {
                // Nothing came out at all: the conversion failed before its first
                // chunk (the command may still be unsent), or the data set is empty.
                let res = converter.await;
                if sent_any {
                    assoc.poison();
                }
                if !sent_any && !matches!(res, Ok(Ok(()))) {
                    // Nothing of the message left: the association is as it was.
                    assoc.end_operation();
                }
                return match res {
                    Ok(Ok(())) => {
                        encode_pdata(&mut out, ctx, false, &[], true, peer_max);
                        assoc.write_all(&out).await?;
                        Ok(())
                    }
                    Ok(Err(e)) => Err(e.into()),
                    Err(e) => Err(FileError::Io(std::io::Error::other(e.to_string())).into()),
                };
            }
        }
    }
}

/// The converter's output: whole chunks handed to the sending task.
struct ChunkSink {
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
    chunk: usize,
}

impl ChunkSink {
    fn send(&mut self) -> std::io::Result<()> {
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(self.chunk));
        self.tx
            .blocking_send(full)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the C-STORE was abandoned"))
    }
}

impl std::io::Write for ChunkSink {
    fn write(&mut self, mut data: &[u8]) -> std::io::Result<usize> {
        let n = data.len();
        while !data.is_empty() {
            let room = self.chunk - self.buf.len();
            let take = room.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == self.chunk {
                self.send()?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        Ok(())
    }
}

/// Send the data set straight from the file, `STREAM_CHUNK` at a time, the command
/// (already in `out`) riding in the first write.
///
/// Each chunk is read by one blocking task (opening the file rides with the first,
/// so a small file costs a single hop to the blocking pool, not one per call as with
/// `tokio::fs`), and the next chunk is read while the current one is written.
async fn stream_file(
    assoc: &mut Association,
    file: &InstanceFile,
    ctx: u8,
    peer_max: u32,
    mut out: Vec<u8>,
) -> Result<(), DimseError> {
    let total = file.data_len();
    // Round chunks to whole PDVs so only the last PDU of the data set is short.
    let chunk_len = chunk_len(peer_max) as u64;
    let path = file.path.clone();
    let offset = file.data_offset;
    let first = chunk_len.min(total) as usize;
    let mut pending = Some(tokio::task::spawn_blocking(move || {
        let mut f = File::open(&path).map_err(ReadError::Open)?;
        f.seek(SeekFrom::Start(offset)).map_err(ReadError::Open)?;
        read_chunk(f, vec![0u8; first])
    }));
    let mut remaining = total;
    let mut spare: Vec<u8> = Vec::new();
    while let Some(task) = pending.take() {
        let (f, chunk) = match task.await {
            Ok(Ok(read)) => read,
            Ok(Err(ReadError::Open(e))) => return Err(FileError::Io(e).into()),
            Ok(Err(ReadError::Read(e))) => {
                // Part of the message may be on the wire: the association cannot carry on.
                assoc.poison();
                return Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    FileError::Truncated("the file shrank while it was being sent".into()).into()
                } else {
                    FileError::Io(e).into()
                });
            }
            Err(e) => {
                assoc.poison();
                return Err(FileError::Io(std::io::Error::other(e.to_string())).into());
            }
        };
        remaining -= chunk.len() as u64;
        let mut chunk = chunk;
        if remaining > 0 {
            let mut next = std::mem::take(&mut spare);
            next.resize(chunk_len.min(remaining) as usize, 0);
            pending = Some(tokio::task::spawn_blocking(move || read_chunk(f, next)));
        } else if pad_deflated(file) {
            chunk.push(0);
        }
        encode_pdata(&mut out, ctx, false, &chunk, remaining == 0, peer_max);
        assoc
            .write_all(&out)
            .await
            .map_err(|e: AssociationError| DimseError::from(e))?;
        out.clear();
        spare = chunk;
    }
    Ok(())
}

enum ReadError {
    Open(std::io::Error),
    Read(std::io::Error),
}

/// Fill `buf` from `f` (blocking), handing both back for the next chunk.
fn read_chunk(mut f: File, mut buf: Vec<u8>) -> Result<(File, Vec<u8>), ReadError> {
    f.read_exact(&mut buf).map_err(ReadError::Read)?;
    Ok((f, buf))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::association::{AssociationParams, Profile};
    use crate::config::Timeouts;
    use crate::scp::{Scp, ScpConfig};

    use super::*;

    /// A data set of several chunks plus a remainder arrives whole, and the
    /// association can carry on afterwards.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streams_a_multi_chunk_data_set_whole() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/dicom/multiframe/mr_multiframe_40.dcm");
        let file = InstanceFile::open(&path).unwrap();
        assert!(file.data_len() > 2 * STREAM_CHUNK as u64);
        let scp = Scp::start(ScpConfig::default(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let params = AssociationParams {
            calling_ae: "TESTSCU".into(),
            called_ae: scp.ae_title().into(),
            host: "127.0.0.1".into(),
            port: scp.port(),
            max_pdu_length: 16384,
            max_send_pdu_length: 0,
            timeouts: Timeouts::default(),
            security: Default::default(),
        };
        let mut assoc = Association::establish(&params, &Profile::Default).await.unwrap();
        let rsp = store(&mut assoc, &file, DimsePriority::Medium).await.unwrap();
        assert!(rsp.status.is_success());
        assert!(!rsp.converted);
        let stored = scp.stored();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].size as u64, file.data_len());
        assert!(assoc.is_reusable());
        assert!(crate::dimse::echo(&mut assoc).await.unwrap().is_success());
        assoc.release().await;
    }
}
