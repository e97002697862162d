//! A storage listener: the embedded SCP's storage path, started for the length of
//! a C-MOVE (or long-lived, from the `listener` config) to receive the C-STORE
//! associations a PACS opens to us as the move destination. Files go to
//! `DIR/<Study>/<Series>/<SOP>.dcm`; every instance received is also handed to the
//! caller, with its Move Originator AE Title / Message ID, so that it can be
//! matched to the move that asked for it (PS3.7 9.3.1.1).

use std::net::SocketAddr;
use std::path::Path;

use tokio::sync::mpsc::UnboundedReceiver;

use super::{Scp, ScpConfig, StoredInstance};

/// A running storage listener; stops when dropped or shut down.
pub struct StorageListener {
    scp: Scp,
    received: UnboundedReceiver<StoredInstance>,
}

impl std::fmt::Debug for StorageListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageListener")
            .field("scp", &self.scp)
            .finish_non_exhaustive()
    }
}

impl StorageListener {
    /// Listen on `bind` as `ae_title`, writing under `dir`.
    pub async fn start(ae_title: &str, bind: SocketAddr, dir: &Path) -> std::io::Result<StorageListener> {
        let config = ScpConfig {
            ae_title: ae_title.to_string(),
            storage_dir: Some(dir.to_path_buf()),
            storage_by_study: true,
            ..ScpConfig::default()
        };
        let scp = Scp::start(config, bind).await?;
        let (tx, received) = tokio::sync::mpsc::unbounded_channel();
        scp.storage().notify_to(tx);
        Ok(StorageListener { scp, received })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.scp.local_addr()
    }

    /// The next instance received (`None` once the listener has stopped).
    pub async fn next(&mut self) -> Option<StoredInstance> {
        self.received.recv().await
    }

    /// An instance already received, if any (no waiting).
    pub fn try_next(&mut self) -> Option<StoredInstance> {
        self.received.try_recv().ok()
    }

    /// Stop accepting and end the associations.
    pub async fn shutdown(self) {
        self.scp.shutdown().await;
    }
}

/// Whether `instance` belongs to one of the C-MOVEs (by their Message IDs) that
/// `our_ae` sent: its Move Originator says so, or it names no originator (some
/// PACS leave it out). Before any Message ID is known, our AE title is enough.
pub fn belongs_to_move(instance: &StoredInstance, our_ae: &str, message_ids: &[u16]) -> bool {
    match &instance.move_originator {
        None => true,
        Some((ae, id)) => ae.trim() == our_ae.trim() && (message_ids.is_empty() || message_ids.contains(id)),
    }
}
