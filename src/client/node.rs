//! One remote node: its association pool, circuit breaker and retry policy, and the
//! resilient C-ECHO / C-STORE / C-FIND that run through them.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use dicom_object::InMemDicomObject;

use crate::association::{Association, AssociationError, AssociationParams, ContextRequest};
use crate::config::NodeConfig;
use crate::dimse::{self, DimseError, FindOutcome, FindQuery, InstanceFile, Priority, Status, StoreResponse};
use crate::pool::{Pool, PoolStats};
use crate::resilience::{ExecError, Executor, ExecutorStats};

use super::error::OpError;
use super::manager::AssociationManager;

/// Borrow an association fitting `req` and run `body` on it (as `a`). A reused
/// association that turns out to have been closed by the remote while idle (no
/// response at all) is replaced by a fresh one and the operation redone, once: that
/// is the pool's business, not a failed attempt. (A macro rather than a closure so
/// that the futures stay `Send` for any lifetime, and spawnable.)
macro_rules! on_association {
    ($node:expr, $req:expr, |$a:ident| $body:expr) => {{
        let mut guard = $node.pool.acquire($req).await?;
        let reused = guard.is_reused();
        let first = {
            let $a: &mut Association = &mut guard;
            $body
        };
        match first {
            Ok(v) => Ok(v),
            Err(DimseError::Association(e)) if reused && !guard.has_responded() && is_stale_symptom(&e) => {
                tracing::debug!(node = %$node.config.name, association = guard.id(), error = %e, "stale pooled association; redoing on a fresh one");
                drop(guard);
                $node.pool.record_stale_redo();
                let mut fresh = $node.pool.acquire_fresh($req).await?;
                let $a: &mut Association = &mut fresh;
                $body.map_err(OpError::from)
            }
            Err(e) => Err(OpError::from(e)),
        }
    }};
}

/// The error of a whole operation (after retries).
pub type OperationError = ExecError<OpError>;

/// The result of an operation, with how many attempts it took.
#[derive(Debug)]
pub struct Outcome<T> {
    pub result: Result<T, OperationError>,
    pub attempts: u32,
    /// The last DIMSE status received, over all attempts.
    pub last_status: Option<Status>,
}

/// The outcome of storing one file.
#[derive(Debug)]
pub struct StoreOutcome {
    pub path: std::path::PathBuf,
    pub file: Option<InstanceFile>,
    pub outcome: Outcome<StoreResponse>,
}

/// Pool, breaker and retry statistics of a node.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeStats {
    pub node: String,
    pub ae_title: String,
    pub address: String,
    pub pool: PoolStats,
    pub resilience: ExecutorStats,
}

/// A remote AE: one pool + breaker + retry policy.
pub struct Node {
    config: NodeConfig,
    pool: Pool<AssociationManager>,
    executor: Executor,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("name", &self.config.name).finish()
    }
}

impl Node {
    /// Build the node's pool (warm-up starts in the background) and executor.
    /// Needs a tokio runtime.
    pub fn new(config: NodeConfig, calling_ae: &str) -> Node {
        let params = AssociationParams {
            calling_ae: calling_ae.to_string(),
            called_ae: config.ae_title.clone(),
            host: config.host.clone(),
            port: config.port,
            max_pdu_length: config.max_pdu_length,
            timeouts: config.timeouts,
        };
        let manager = AssociationManager::new(params);
        let pool = Pool::new(
            config.name.clone(),
            manager,
            config.pool.clone(),
            Some(ContextRequest::verification()),
        );
        let executor = Executor::new(&config.name, config.retry.clone(), config.breaker.clone());
        Node { config, pool, executor }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    pub fn pool(&self) -> &Pool<AssociationManager> {
        &self.pool
    }

    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    pub fn stats(&self) -> NodeStats {
        NodeStats {
            node: self.config.name.clone(),
            ae_title: self.config.ae_title.clone(),
            address: format!("{}:{}", self.config.host, self.config.port),
            pool: self.pool.stats(),
            resilience: self.executor.stats(),
        }
    }

    /// Release idle associations, wait for busy ones up to `timeout`, abort the rest.
    pub async fn close(&self, timeout: Duration) {
        self.pool.close(timeout).await;
    }

    /// C-ECHO.
    pub async fn echo(&self) -> Outcome<Status> {
        let req = ContextRequest::verification();
        let last_status = Mutex::new(None);
        let out = self
            .executor
            .run(None, |_attempt| {
                let req = &req;
                let last_status = &last_status;
                async move {
                    let status = on_association!(self, req, |a| dimse::echo(a).await)?;
                    set(last_status, status);
                    if status.is_success() {
                        Ok(status)
                    } else {
                        Err(OpError::Status { status, comment: None })
                    }
                }
            })
            .await;
        Outcome {
            result: out.result,
            attempts: out.attempts,
            last_status: take(last_status),
        }
    }

    /// C-STORE of one file (read, checked, sent with the retry policy).
    pub async fn store_file(&self, path: &Path) -> StoreOutcome {
        let owned = path.to_path_buf();
        let opened = tokio::task::spawn_blocking(move || InstanceFile::open(&owned)).await;
        let file = match opened {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => return not_sent(path, OpError::File(e)),
            Err(e) => {
                return not_sent(
                    path,
                    OpError::File(dimse::FileError::Io(std::io::Error::other(e.to_string()))),
                )
            }
        };
        let outcome = self.store(&file).await;
        StoreOutcome {
            path: path.to_path_buf(),
            file: Some(file),
            outcome,
        }
    }

    /// C-STORE of an instance already opened.
    pub async fn store(&self, file: &InstanceFile) -> Outcome<StoreResponse> {
        let req = ContextRequest::store(&file.sop_class_uid, &file.transfer_syntax);
        if self.pool.manager().memory().known_refused(&req) {
            let err = OpError::Dimse(DimseError::NoContext(format!(
                "{} refused SOP class {} in {} on an earlier association",
                self.config.ae_title,
                file.sop_class_uid,
                crate::association::uids::transfer_syntax_name(&file.transfer_syntax)
            )));
            return Outcome {
                result: Err(ExecError::Operation(err)),
                attempts: 0,
                last_status: None,
            };
        }
        let last_status = Mutex::new(None);
        let out = self
            .executor
            .run(None, |attempt| {
                let req = &req;
                let last_status = &last_status;
                async move {
                    tracing::debug!(node = %self.config.name, sop_instance_uid = %file.sop_instance_uid, attempt, "C-STORE");
                    let rsp = on_association!(self, req, |a| dimse::store(a, file, Priority::Medium).await)?;
                    set(last_status, rsp.status);
                    if rsp.status.is_success() {
                        Ok(rsp)
                    } else {
                        Err(OpError::Status { status: rsp.status, comment: rsp.error_comment })
                    }
                }
            })
            .await;
        Outcome {
            result: out.result,
            attempts: out.attempts,
            last_status: take(last_status),
        }
    }

    /// C-FIND; `on_match` sees each match as it arrives and may stop the query
    /// (C-CANCEL). An attempt that fails after matches were delivered is not retried.
    pub async fn find<F>(&self, query: &FindQuery, mut on_match: F) -> Outcome<FindOutcome>
    where
        F: FnMut(InMemDicomObject) -> ControlFlow<()> + Send,
    {
        let req = ContextRequest::uncompressed(query.model.sop_class());
        let last_status = Mutex::new(None);
        let delivered = AtomicUsize::new(0);
        let on_match = Mutex::new(&mut on_match);
        let out = self
            .executor
            .run(None, |_attempt| {
                let req = &req;
                let last_status = &last_status;
                let delivered = &delivered;
                let on_match = &on_match;
                async move {
                    let before = delivered.load(Ordering::SeqCst);
                    let res: Result<FindOutcome, OpError> = async {
                        on_association!(self, req, |a| dimse::find(a, query, Priority::Medium, |m| {
                            delivered.fetch_add(1, Ordering::SeqCst);
                            let mut f = on_match.lock().unwrap_or_else(|p| p.into_inner());
                            (*f)(m)
                        })
                        .await)
                    }
                    .await;
                    let now = delivered.load(Ordering::SeqCst);
                    match res {
                        Ok(outcome) => {
                            set(last_status, outcome.status);
                            if outcome.status.is_success() || outcome.status == Status::CANCEL {
                                Ok(outcome)
                            } else {
                                Err(OpError::Status {
                                    status: outcome.status,
                                    comment: outcome.error_comment,
                                })
                            }
                        }
                        Err(e) if now > before => Err(OpError::Interrupted {
                            matches: now - before,
                            source: Box::new(e),
                        }),
                        Err(e) => Err(e),
                    }
                }
            })
            .await;
        Outcome {
            result: out.result,
            attempts: out.attempts,
            last_status: take(last_status),
        }
    }
}

fn set(cell: &Mutex<Option<Status>>, status: Status) {
    *cell.lock().unwrap_or_else(|p| p.into_inner()) = Some(status);
}

fn take(cell: Mutex<Option<Status>>) -> Option<Status> {
    cell.into_inner().unwrap_or_else(|p| p.into_inner())
}

fn not_sent(path: &Path, err: OpError) -> StoreOutcome {
    StoreOutcome {
        path: path.to_path_buf(),
        file: None,
        outcome: Outcome {
            result: Err(ExecError::Operation(err)),
            attempts: 0,
            last_status: None,
        },
    }
}

fn is_stale_symptom(e: &AssociationError) -> bool {
    matches!(
        e,
        AssociationError::PeerClosed
            | AssociationError::PeerReleased
            | AssociationError::Aborted(_)
            | AssociationError::Io(_)
    )
}
