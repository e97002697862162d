//! The pool's DICOM side: how associations to one node are created, checked,
//! validated, recycled and ended.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::association::{
    AcceptedContext, Association, AssociationError, AssociationParams, ContextRequest, RefusedContext,
};
use crate::dimse;
use crate::pool::Manager;

/// Which (abstract syntax, transfer syntax) pairs the remote refused on earlier
/// associations because it does not support them (A-ASSOCIATE-AC results 3 and 4):
/// an operation it will certainly refuse fails at once, without negotiating a new
/// association every time. A refusal of the moment (results 1 and 2) is not
/// remembered, and nothing is remembered for longer than the TTL, so a PACS that
/// is reconfigured is tried again.
#[derive(Debug)]
pub struct NegotiationMemory {
    ttl: Duration,
    refused: Mutex<HashMap<(String, String), Instant>>,
}

impl NegotiationMemory {
    /// Remember refusals for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        NegotiationMemory {
            ttl,
            refused: Mutex::default(),
        }
    }

    fn record(&self, accepted: &[AcceptedContext], refused: &[RefusedContext]) {
        let now = Instant::now();
        let mut map = self.refused.lock();
        for ctx in accepted {
            map.remove(&(ctx.abstract_syntax.clone(), ctx.transfer_syntax.clone()));
        }
        for ctx in refused {
            if !ctx.reason.is_capability() {
                continue;
            }
            for ts in &ctx.transfer_syntaxes {
                // Accepted in another context of the same association: not refused.
                if accepted
                    .iter()
                    .any(|a| a.abstract_syntax == ctx.abstract_syntax && a.transfer_syntax == *ts)
                {
                    continue;
                }
                map.insert((ctx.abstract_syntax.clone(), ts.clone()), now);
            }
        }
    }

    /// This pair was refused as unsupported within the TTL.
    pub fn is_refused(&self, abstract_syntax: &str, ts: &str) -> bool {
        let map = self.refused.lock();
        map.get(&(abstract_syntax.to_string(), ts.to_string()))
            .is_some_and(|at| at.elapsed() < self.ttl)
    }

    /// Every syntax `req` could use was refused as unsupported within the TTL.
    pub fn known_refused(&self, req: &ContextRequest) -> bool {
        let now = Instant::now();
        let mut map = self.refused.lock();
        if map.is_empty() {
            return false;
        }
        map.retain(|_, at| now.saturating_duration_since(*at) < self.ttl);
        req.transfer_syntaxes
            .iter()
            .all(|ts| map.contains_key(&(req.abstract_syntax.clone(), ts.clone())))
    }
}

/// Creates and tends associations to one node.
#[derive(Debug)]
pub struct AssociationManager {
    params: AssociationParams,
    memory: Arc<NegotiationMemory>,
    /// The node's fleet-wide cap (`max_shared_associations`): a lease is taken
    /// before each association is opened and lives as long as it.
    #[cfg(feature = "redis")]
    limiter: Option<super::shared::NodeLimiter>,
}

impl AssociationManager {
    /// A manager for `params`, with the default refused-context TTL.
    pub fn new(params: AssociationParams) -> Self {
        Self::with_refusal_ttl(params, crate::config::DEFAULT_REFUSED_CONTEXT_TTL)
    }

    /// `refusal_ttl`: how long a context refused as unsupported is not proposed again.
    pub fn with_refusal_ttl(params: AssociationParams, refusal_ttl: Duration) -> Self {
        AssociationManager {
            params,
            memory: Arc::new(NegotiationMemory::new(refusal_ttl)),
            #[cfg(feature = "redis")]
            limiter: None,
        }
    }

    /// Take a lease of `limiter` for every association opened from now on.
    #[cfg(feature = "redis")]
    pub fn with_limiter(mut self, limiter: Option<super::shared::NodeLimiter>) -> Self {
        self.limiter = limiter;
        self
    }

    /// The node's fleet-wide cap, if it has one.
    #[cfg(feature = "redis")]
    pub fn limiter(&self) -> Option<&super::shared::NodeLimiter> {
        self.limiter.as_ref()
    }

    /// Who we are and whom we talk to.
    pub fn params(&self) -> &AssociationParams {
        &self.params
    }

    /// The presentation contexts the node refused as unsupported, and when.
    pub fn memory(&self) -> &NegotiationMemory {
        &self.memory
    }
}

impl Manager for AssociationManager {
    type Resource = Association;
    type Request = ContextRequest;
    type Error = AssociationError;

    async fn create(&self, req: &ContextRequest) -> Result<Association, AssociationError> {
        // The lease first: nothing is sent to the node beyond the fleet's cap. If
        // the association cannot be opened, the lease is given back as it drops.
        #[cfg(feature = "redis")]
        let lease = match &self.limiter {
            Some(limiter) => Some(limiter.acquire().await?),
            None => None,
        };
        #[allow(unused_mut)]
        let mut assoc = Association::establish(&self.params, &req.profile).await?;
        #[cfg(feature = "redis")]
        if let Some(lease) = lease {
            assoc.attach(Box::new(lease));
        }
        self.memory.record(assoc.accepted_contexts(), assoc.refused_contexts());
        Ok(assoc)
    }

    /// An association fits when it has the request's first choice (a file's own
    /// transfer syntax), or when a second choice is all this remote will give: it
    /// refused the first as unsupported, or this very association was negotiated
    /// for the request and still did not get it. Otherwise an idle association that
    /// could only convert is passed over and one is negotiated that sends the file
    /// as it is.
    fn fits(&self, res: &Association, req: &ContextRequest) -> bool {
        let Some(ctx) = res.select(req) else {
            return false;
        };
        // An association where we took the SCP role (C-GET) serves that profile only.
        let roles = |p: &crate::association::Profile| !p.scp_role_classes().is_empty();
        if (roles(res.profile()) || roles(&req.profile)) && res.profile() != &req.profile {
            return false;
        }
        req.transfer_syntaxes.first() == Some(&ctx.transfer_syntax)
            || res.profile() == &req.profile
            || req
                .transfer_syntaxes
                .first()
                .is_some_and(|ts| self.memory.is_refused(&req.abstract_syntax, ts))
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

    #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
    async fn close(&self, mut res: Association) {
        #[cfg(feature = "redis")]
        let lease = take_lease(&mut res);
        res.release().await;
        #[cfg(feature = "redis")]
        if let Some(lease) = lease {
            lease.release().await;
        }
    }

    #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
    async fn abort(&self, mut res: Association) {
        #[cfg(feature = "redis")]
        let lease = take_lease(&mut res);
        res.abort().await;
        #[cfg(feature = "redis")]
        if let Some(lease) = lease {
            lease.release().await;
        }
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
            // The fleet's cap is full while this process holds some of it: queue on
            // the open associations (an idle one that does not fit is closed to
            // make room, which frees its lease).
            AssociationError::SharedLimit { transient, .. } => *transient,
            AssociationError::ConnectTimeout { .. }
            | AssociationError::AcseTimeout { .. }
            | AssociationError::Aborted(_)
            | AssociationError::PeerClosed
            | AssociationError::Io(_) => true,
            _ => false,
        }
    }
}

/// The association's fleet-wide lease, to give back once the association has
/// ended (awaited, so a closing pool returns its leases before the process exits).
#[cfg(feature = "redis")]
fn take_lease(res: &mut Association) -> Option<super::shared::Lease> {
    let companion = res.detach()?;
    match companion.downcast::<super::shared::Lease>() {
        Ok(lease) => Some(*lease),
        Err(other) => {
            res.attach(other);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::association::{uids, ContextRefusal};

    fn refused(ts: &str, reason: ContextRefusal) -> RefusedContext {
        RefusedContext {
            id: 1,
            abstract_syntax: "1.2.840.10008.5.1.4.1.1.2".into(),
            transfer_syntaxes: vec![ts.into()],
            reason,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn only_unsupported_is_remembered_and_only_for_the_ttl() {
        let memory = NegotiationMemory::new(Duration::from_secs(300));
        let rle = ContextRequest::store("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.5");
        // Result 2 (no reason): a decision of the moment, not remembered.
        memory.record(&[], &[refused("1.2.840.10008.1.2.5", ContextRefusal::NoReason)]);
        assert!(!memory.known_refused(&rle));
        // Result 4: remembered...
        memory.record(
            &[],
            &[refused(
                "1.2.840.10008.1.2.5",
                ContextRefusal::TransferSyntaxesNotSupported,
            )],
        );
        assert!(memory.known_refused(&rle));
        tokio::time::advance(Duration::from_secs(299)).await;
        assert!(memory.known_refused(&rle));
        // ...until the TTL has passed: a reconfigured PACS is tried again.
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!memory.known_refused(&rle));
        assert!(!memory.is_refused("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.5"));
    }

    #[tokio::test(start_paused = true)]
    async fn an_acceptance_clears_a_refusal() {
        let memory = NegotiationMemory::new(Duration::from_secs(300));
        memory.record(
            &[],
            &[refused(
                uids::IMPLICIT_VR_LE,
                ContextRefusal::AbstractSyntaxNotSupported,
            )],
        );
        assert!(memory.is_refused("1.2.840.10008.5.1.4.1.1.2", uids::IMPLICIT_VR_LE));
        memory.record(
            &[AcceptedContext {
                id: 3,
                abstract_syntax: "1.2.840.10008.5.1.4.1.1.2".into(),
                transfer_syntax: uids::IMPLICIT_VR_LE.into(),
            }],
            &[],
        );
        assert!(!memory.is_refused("1.2.840.10008.5.1.4.1.1.2", uids::IMPLICIT_VR_LE));
    }
}
