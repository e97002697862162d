//! The embedded SCP: Verification, Storage (to a folder or memory) and
//! Patient/Study Root C-FIND, C-GET and C-MOVE over what it holds, on dicom-ul's server side.
//!
//! It is the target of `pacs-net demo` and `pacs-net scp`, and the in-process test
//! double; `Behavior` (feature `testing`) makes it misbehave on purpose for fault tests.

mod behavior;
mod commitment;
mod handler;
mod incoming;
mod listener;
mod retrieve;
mod storage;
mod worklist;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

// Fault injection: the test double's knobs, for this crate's tests and examples
// (feature `testing`), not part of the API.
#[cfg(not(feature = "testing"))]
pub(crate) use behavior::Behavior;
#[cfg(not(feature = "testing"))]
use behavior::RandomFaults;
#[cfg(feature = "testing")]
pub use behavior::{Behavior, RandomFaults, StoreStatusHook};
pub use commitment::{CommitReportMode, CommitmentListener};
pub use listener::{belongs_to_move, StorageListener};
pub use storage::{is_valid_uid, RetrieveItem, Storage, StoreRefusal, StoredInstance, DEFAULT_MAX_MEMORY_BYTES};
pub use worklist::{WorklistFolder, WorklistFolderError};

/// How to run the SCP.
#[derive(Debug, Clone)]
pub struct ScpConfig {
    /// Our AE title.
    pub ae_title: String,
    /// Write received instances under this folder (else keep them in memory).
    pub storage_dir: Option<PathBuf>,
    /// Faults to inject (rejections, aborts, delays): nameable and settable only with
    /// the `testing` feature; an application leaves it at its default.
    pub behavior: Behavior,
    /// What a requestor may make us hold: its command sets, and its data sets (a
    /// C-FIND identifier, and each C-STORE data set, is at most
    /// `limits.max_data_set_bytes`).
    pub limits: crate::config::Limits,
    /// Without `storage_dir`: data set bytes kept in memory at most; beyond,
    /// C-STORE is answered A700.
    pub max_memory_bytes: usize,
    /// Serve DICOM TLS with this configuration (see
    /// [`crate::association::tls_server_config`]); `None`: plain TCP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Write files as `storage_dir/<Study>/<Series>/<SOP>.dcm` (a retrieve's layout).
    pub storage_by_study: bool,
    /// Where the SCP's C-MOVE sends instances: destination AE title -> host:port.
    pub move_destinations: std::collections::BTreeMap<String, (String, u16)>,
    /// Where the SCP reports on the storage commitment requests it answers.
    pub commit_report: CommitReportMode,
    /// Where N-EVENT-REPORTs received go (a commitment listener); `None`: they
    /// are answered 0110.
    pub commit_router: Option<crate::dimse::CommitmentRouter>,
    /// Answer Modality Worklist C-FINDs from this folder of worklist files
    /// (`None`: worklist queries fail with C000).
    pub worklist: Option<WorklistFolder>,
}

impl std::fmt::Debug for Scp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scp").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Default for ScpConfig {
    fn default() -> Self {
        ScpConfig {
            ae_title: "PACSNET_SCP".into(),
            storage_dir: None,
            behavior: Behavior::default(),
            limits: crate::config::Limits {
                // Instances, not identifiers: the bundled 5 MB multi-frame file and
                // far bigger ones must fit.
                max_data_set_bytes: DEFAULT_MAX_INSTANCE_BYTES,
                ..crate::config::Limits::default()
            },
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            tls: None,
            storage_by_study: false,
            move_destinations: std::collections::BTreeMap::new(),
            commit_report: CommitReportMode::default(),
            commit_router: None,
            worklist: None,
        }
    }
}

/// Default largest data set the SCP takes (C-STORE of big multi-frame instances).
pub const DEFAULT_MAX_INSTANCE_BYTES: usize = 2 << 30;

/// Counters of what the SCP saw.
#[derive(Debug, Default)]
pub struct ScpCounters {
    /// A-ASSOCIATE-RQs received.
    pub association_requests: AtomicUsize,
    /// Associations accepted.
    pub accepted: AtomicUsize,
    /// Associations rejected.
    pub rejected: AtomicUsize,
    /// Associations open now.
    pub active: AtomicUsize,
    /// The most associations open at once.
    pub peak_active: AtomicUsize,
    /// Associations released by the requestor.
    pub released: AtomicUsize,
    /// Associations aborted by the requestor.
    pub aborted_by_peer: AtomicUsize,
    /// Associations we aborted.
    pub aborted_by_us: AtomicUsize,
    /// Associations closed after the idle timeout.
    pub closed_idle: AtomicUsize,
    /// C-ECHO requests.
    pub echoes: AtomicUsize,
    /// C-STORE requests.
    pub store_requests: AtomicUsize,
    /// C-FIND requests.
    pub find_requests: AtomicUsize,
    /// C-GET requests.
    pub get_requests: AtomicUsize,
    /// C-MOVE requests.
    pub move_requests: AtomicUsize,
    /// C-CANCEL requests.
    pub cancels: AtomicUsize,
}

/// A snapshot of [`ScpCounters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ScpStats {
    /// A-ASSOCIATE-RQs received.
    pub association_requests: usize,
    /// Associations accepted.
    pub accepted: usize,
    /// Associations rejected.
    pub rejected: usize,
    /// Associations open now.
    pub active: usize,
    /// The most associations open at once.
    pub peak_active: usize,
    /// Associations released by the requestor.
    pub released: usize,
    /// Associations aborted by the requestor.
    pub aborted_by_peer: usize,
    /// Associations we aborted.
    pub aborted_by_us: usize,
    /// Associations closed after the idle timeout.
    pub closed_idle: usize,
    /// C-ECHO requests.
    pub echoes: usize,
    /// C-STORE requests.
    pub store_requests: usize,
    /// C-FIND requests.
    pub find_requests: usize,
    /// C-GET requests.
    pub get_requests: usize,
    /// C-MOVE requests.
    pub move_requests: usize,
    /// C-CANCEL requests.
    pub cancels: usize,
}

impl ScpCounters {
    fn snapshot(&self) -> ScpStats {
        let g = |a: &AtomicUsize| a.load(Ordering::SeqCst);
        ScpStats {
            association_requests: g(&self.association_requests),
            accepted: g(&self.accepted),
            rejected: g(&self.rejected),
            active: g(&self.active),
            peak_active: g(&self.peak_active),
            released: g(&self.released),
            aborted_by_peer: g(&self.aborted_by_peer),
            aborted_by_us: g(&self.aborted_by_us),
            closed_idle: g(&self.closed_idle),
            echoes: g(&self.echoes),
            store_requests: g(&self.store_requests),
            find_requests: g(&self.find_requests),
            get_requests: g(&self.get_requests),
            move_requests: g(&self.move_requests),
            cancels: g(&self.cancels),
        }
    }
}

/// Calling AE titles of the most recent accepted associations kept (bounded: a
/// long-running SCP keeps no more).
const RECENT_CALLING_AES: usize = 64;

/// Shared state of a running SCP.
pub(crate) struct Shared {
    pub config: ScpConfig,
    pub counters: ScpCounters,
    pub storage: Storage,
    /// Calling AE titles of the last [`RECENT_CALLING_AES`] accepted associations,
    /// oldest first.
    pub recent_calling_aes: parking_lot::Mutex<std::collections::VecDeque<String>>,
}

impl Shared {
    pub(crate) fn record_calling_ae(&self, ae: &str) {
        let mut recent = self.recent_calling_aes.lock();
        if recent.len() == RECENT_CALLING_AES {
            recent.pop_front();
        }
        recent.push_back(ae.to_string());
    }
}

/// A running SCP; stops when [`Scp::shutdown`] is called or it is dropped.
pub struct Scp {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Scp {
    /// Bind `bind` (port 0 = a free port) and serve in the background.
    pub async fn start(config: ScpConfig, bind: SocketAddr) -> std::io::Result<Scp> {
        if let Some(dir) = &config.storage_dir {
            std::fs::create_dir_all(dir)?;
        }
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let mut storage = Storage::with_memory_limit(config.storage_dir.clone(), config.max_memory_bytes);
        if config.storage_by_study {
            storage = storage.by_study();
        }
        let shared = Arc::new(Shared {
            config,
            counters: ScpCounters::default(),
            storage,
            recent_calling_aes: Default::default(),
        });
        if let Some(dir) = shared.config.storage_dir.clone() {
            // Parsing every file already there blocks: off the runtime's threads.
            let indexing = shared.clone();
            let n = tokio::task::spawn_blocking(move || indexing.storage.load_existing(&dir))
                .await
                .map_err(std::io::Error::other)?;
            if n > 0 {
                tracing::info!(instances = n, "indexed instances already in the storage folder");
            }
        }
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, shared.clone(), stop_rx));
        tracing::info!(%addr, ae_title = %shared.config.ae_title, "SCP listening");
        Ok(Scp {
            addr,
            shared,
            stop,
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The TCP port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Its AE title.
    pub fn ae_title(&self) -> &str {
        &self.shared.config.ae_title
    }

    /// A snapshot of its counters.
    pub fn stats(&self) -> ScpStats {
        self.shared.counters.snapshot()
    }

    /// Calling AE titles of the most recent accepted associations (at most 64),
    /// oldest first: who the SCP saw, whatever service they used.
    pub fn recent_calling_aes(&self) -> Vec<String> {
        let recent = self.shared.recent_calling_aes.lock();
        recent.iter().cloned().collect()
    }

    /// Instances received so far.
    pub fn stored(&self) -> Vec<StoredInstance> {
        self.shared.storage.instances()
    }

    /// The SCP's instance store.
    pub fn storage(&self) -> &Storage {
        &self.shared.storage
    }

    /// Stop accepting and end every association.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Serve until the stop signal (for the `scp` command: Ctrl-C).
    pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }
}

impl Drop for Scp {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let shared = shared.clone();
                    let stop = stop.clone();
                    connections.spawn(async move { handler::serve(socket, peer, shared, stop).await });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_calling_aes_keep_the_latest_64_oldest_first() {
        let shared = Shared {
            config: ScpConfig::default(),
            counters: ScpCounters::default(),
            storage: Storage::new(None),
            recent_calling_aes: Default::default(),
        };
        for i in 0..70 {
            shared.record_calling_ae(&format!("AE{i}"));
        }
        let recent = shared.recent_calling_aes.lock();
        assert_eq!(recent.len(), RECENT_CALLING_AES);
        assert_eq!(recent.front().map(String::as_str), Some("AE6"));
        assert_eq!(recent.back().map(String::as_str), Some("AE69"));
    }
}
