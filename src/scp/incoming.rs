//! A C-STORE whose data set is streamed to disk as its fragments arrive (the
//! storage listener: the C-MOVE destination), rather than gathered in memory:
//! the listener's memory stays bounded by the PDU size whatever the size of the
//! instances a PACS sends it.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use crate::association::Pdv;
use crate::dimse::command::{field, response, tag, Command};
use crate::dimse::part_file::PartFile;

use super::handler::{Conn, Next, ScpStream, ServerAssoc};
use super::storage::{is_valid_uid, StoredInstance};

/// The C-STORE being received.
pub(super) struct Incoming {
    ctx: u8,
    command: Command,
    transfer_syntax: String,
    dir: PathBuf,
    file: PartFile,
}

impl Conn<'_> {
    /// The command of a C-STORE-RQ is whole: open its file (or decide to drop its
    /// data set) and take its data set fragments from now on.
    pub(super) fn begin_incoming(&mut self, ctx: u8, command: Command, transfer_syntax: String, dir: PathBuf) {
        self.shared.counters.store_requests.fetch_add(1, Ordering::SeqCst);
        let sop_class = command.text(tag::AFFECTED_SOP_CLASS_UID).unwrap_or_default();
        let sop_instance = command.text(tag::AFFECTED_SOP_INSTANCE_UID).unwrap_or_default();
        // The same statuses as a C-STORE kept whole (`Storage::store_from`).
        let file = if !is_valid_uid(&sop_instance) {
            PartFile::refused(0x0117, "invalid SOP Instance UID")
        } else if !is_valid_uid(&sop_class) {
            PartFile::refused(0x0122, "invalid SOP Class UID")
        } else {
            PartFile::create(
                &dir,
                None,
                &sop_class,
                &sop_instance,
                &transfer_syntax,
                &self.calling_ae,
            )
        };
        self.incoming = Some(Incoming {
            ctx,
            command,
            transfer_syntax,
            dir,
            file,
        });
    }

    /// One fragment of the data set being received; on the last, file the
    /// instance and answer the C-STORE-RSP.
    pub(super) async fn on_incoming<S: ScpStream>(&mut self, assoc: &mut ServerAssoc<S>, pdv: Pdv) -> Next {
        let Some(incoming) = self.incoming.as_mut() else {
            return Next::Continue;
        };
        if pdv.is_command || pdv.context_id != incoming.ctx {
            tracing::debug!(
                context = pdv.context_id,
                "expected a C-STORE data set fragment on the same presentation context: aborting"
            );
            self.incoming = None;
            return self.abort(assoc).await;
        }
        incoming.file.write(&pdv.data);
        if !pdv.is_last {
            return Next::Continue;
        }
        let Some(Incoming {
            ctx,
            command,
            transfer_syntax,
            dir,
            file,
        }) = self.incoming.take()
        else {
            return Next::Continue;
        };
        let sop_class = command.text(tag::AFFECTED_SOP_CLASS_UID).unwrap_or_default();
        let sop_instance = command.text(tag::AFFECTED_SOP_INSTANCE_UID).unwrap_or_default();
        let bytes = file.bytes;
        // Flushing, reading the study and series back and renaming block.
        let instance = sop_instance.clone();
        let filed = tokio::task::spawn_blocking(move || file.finish(&dir, &instance))
            .await
            .unwrap_or_else(|e| Err((crate::dimse::Status(0xA700), format!("storage task failed: {e}"))));
        let status = match filed {
            Ok(path) => {
                self.shared.storage.received(StoredInstance {
                    sop_class_uid: sop_class.clone(),
                    sop_instance_uid: sop_instance.clone(),
                    transfer_syntax,
                    calling_ae: self.calling_ae.clone(),
                    size: usize::try_from(bytes).unwrap_or(usize::MAX),
                    path: Some(path),
                    move_originator: command
                        .text(tag::MOVE_ORIGINATOR_AE)
                        .filter(|ae| !ae.is_empty())
                        .map(|ae| (ae, command.u16(tag::MOVE_ORIGINATOR_MESSAGE_ID).unwrap_or(0))),
                });
                0x0000
            }
            Err((status, reason)) => {
                let uid = if is_valid_uid(&sop_instance) {
                    sop_instance.as_str()
                } else {
                    "(invalid)"
                };
                tracing::warn!(sop_instance_uid = %uid, reason = %reason, status = %status.hex(), "instance not stored");
                status.0
            }
        };
        self.delay().await;
        let id = command.message_id().unwrap_or(0);
        let rsp = response(
            field::C_STORE_RSP,
            Some(&sop_class),
            id,
            status,
            false,
            Some(&sop_instance),
        );
        self.send(assoc, ctx, &rsp, None).await
    }
}
