//! The pool's DICOM side: how associations to one node are created, checked,
//! validated, recycled and ended.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::association::{Association, AssociationError, AssociationParams, ContextRequest, Profile};
use crate::dimse;
use crate::pool::Manager;

/// What the remote said, per (abstract syntax, transfer syntax), on earlier
/// associations: lets an operation it will certainly refuse fail at once, without
/// negotiating a new association every time.
#[derive(Debug, Default)]
pub struct NegotiationMemory {
    accepted: Mutex<HashMap<(String, String), bool>>,
}

impl NegotiationMemory {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), bool>> {
        self.accepted.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, profile: &Profile, assoc: &Association) {
        let mut map = self.lock();
        for ctx in profile.contexts() {
            for ts in &ctx.transfer_syntaxes {
                let accepted = assoc
                    .accepted_contexts()
                    .iter()
                    .any(|a| a.abstract_syntax == ctx.abstract_syntax && &a.transfer_syntax == ts);
                let key = (ctx.abstract_syntax.clone(), ts.clone());
                // Once accepted, always remembered as possible: one context with several
                // syntaxes only ever gets one of them accepted.
                let entry = map.entry(key).or_insert(accepted);
                *entry |= accepted;
            }
        }
    }

    /// `Some(false)` when every syntax `req` could use was proposed before and refused.
    pub fn known_refused(&self, req: &ContextRequest) -> bool {
        let map = self.lock();
        req.transfer_syntaxes
            .iter()
            .all(|ts| map.get(&(req.abstract_syntax.clone(), ts.clone())) == Some(&false))
    }
}

/// Creates and tends associations to one node.
#[derive(Debug)]
pub struct AssociationManager {
    params: AssociationParams,
    memory: Arc<NegotiationMemory>,
}

impl AssociationManager {
    pub fn new(params: AssociationParams) -> Self {
        AssociationManager {
            params,
            memory: Arc::new(NegotiationMemory::default()),
        }
    }

    pub fn params(&self) -> &AssociationParams {
        &self.params
    }

    pub fn memory(&self) -> &NegotiationMemory {
        &self.memory
    }
}

impl Manager for AssociationManager {
    type Resource = Association;
    type Request = ContextRequest;
    type Error = AssociationError;

    async fn create(&self, req: &ContextRequest) -> Result<Association, AssociationError> {
        let assoc = Association::establish(&self.params, &req.profile).await?;
        self.memory.record(&req.profile, &assoc);
        Ok(assoc)
    }

    fn fits(&self, res: &Association, req: &ContextRequest) -> bool {
        res.select(req).is_some()
    }

    fn is_alive(&self, res: &mut Association) -> bool {
        res.is_alive()
    }

    async fn validate(&self, res: &mut Association) -> Result<(), AssociationError> {
        // Only where Verification was accepted; otherwise the liveness check is all
        // we can do without side effects.
        if res.select(&ContextRequest::verification()).is_none() {
            return Ok(());
        }
        match dimse::echo(res).await {
            Ok(status) if status.is_success() => Ok(()),
            Ok(status) => Err(AssociationError::Protocol(format!(
                "validation C-ECHO answered {status}"
            ))),
            Err(dimse::DimseError::Association(e)) => Err(e),
            Err(e) => Err(AssociationError::Protocol(e.to_string())),
        }
    }

    fn is_reusable(&self, res: &Association) -> bool {
        res.is_reusable()
    }

    async fn close(&self, res: Association) {
        res.release().await
    }

    async fn abort(&self, res: Association) {
        res.abort().await
    }

    fn is_capacity_error(&self, err: &AssociationError) -> bool {
        err.is_capacity()
    }

    /// A stock `storescp` (no `--fork`) takes one association at a time: the next
    /// connection waits in its backlog, unanswered, until the ACSE timeout; others
    /// refuse, reset, close or reject the extra one.
    fn is_limit_symptom(&self, err: &AssociationError) -> bool {
        use std::io::ErrorKind;
        match err {
            AssociationError::Connect { source, .. } => matches!(
                source.kind(),
                ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
            ),
            AssociationError::Rejected { .. } => err.is_transient(),
            AssociationError::ConnectTimeout { .. }
            | AssociationError::AcseTimeout { .. }
            | AssociationError::Aborted(_)
            | AssociationError::PeerClosed
            | AssociationError::Io(_) => true,
            _ => false,
        }
    }
}
