//! Why an operation failed, and the one classification table the retry policy and
//! the circuit breaker follow (documented in the README).

use crate::association::AssociationError;
use crate::dimse::{DimseError, FileError, Status};
use crate::pool::PoolError;
use crate::resilience::Classify;

/// The failure of one attempt of an operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    #[error(transparent)]
    /// The association could not be opened, or broke.
    Association(#[from] AssociationError),
    /// No association could be borrowed: the pool timed out, had too many
    /// waiters, or is closed (never `Create`/`Validation`: those are
    /// [`OpError::Association`]).
    #[error(transparent)]
    Pool(PoolError<AssociationError>),
    #[error(transparent)]
    /// The DIMSE exchange failed on the association.
    Dimse(DimseError),
    #[error(transparent)]
    /// The file to send cannot be sent.
    File(#[from] FileError),
    #[error("the operation did not finish within its deadline ({})", if *waiting_for_pool { "queued for a pooled association" } else { "waiting for the remote" })]
    /// The operation's deadline passed.
    Deadline {
        /// Cut while queued in the pool (our own load), not while talking to the node.
        waiting_for_pool: bool,
    },
    #[error("the remote ended the C-FIND early (status FE00, without our C-CANCEL): the results are incomplete ({matches} matches received)")]
    /// The remote ended the C-FIND with Cancel (FE00) though we sent no C-CANCEL.
    Incomplete {
        /// Matches received before the remote ended it.
        matches: usize,
    },
    #[error(transparent)]
    /// A query an operation can do without failed (the C-FINDs that plan a
    /// retrieve: its series, its SOP classes). Tried once and never held against
    /// the node: a PACS that refuses C-FIND may still serve the C-GET it plans.
    Advisory(Box<OpError>),
    #[error("interrupted after {matches} matches: {source}")]
    /// The operation failed after results had been delivered to the caller.
    Interrupted {
        /// Results (matches, instances) delivered before.
        matches: usize,
        /// The error that ended it.
        source: Box<OpError>,
    },
    #[error("DIMSE failure status {status}{}", comment.as_ref().map(|c| format!(": {c}")).unwrap_or_default())]
    /// The remote answered with a failure status.
    Status {
        /// The failure status (0000,0900).
        status: Status,
        /// Its Error Comment (0000,0902), if any.
        comment: Option<String>,
    },
}

impl From<DimseError> for OpError {
    fn from(e: DimseError) -> Self {
        match e {
            DimseError::Association(a) => OpError::Association(a),
            DimseError::File(f) => OpError::File(f),
            other => OpError::Dimse(other),
        }
    }
}

impl From<PoolError<AssociationError>> for OpError {
    fn from(e: PoolError<AssociationError>) -> Self {
        match e {
            PoolError::Create(a) | PoolError::Validation(a) => OpError::Association(a),
            other => OpError::Pool(other),
        }
    }
}

impl OpError {
    /// The last DIMSE status, where the failure is one.
    pub fn status(&self) -> Option<Status> {
        match self {
            OpError::Status { status, .. } => Some(*status),
            OpError::Interrupted { source, .. } => source.status(),
            _ => None,
        }
    }
}

impl Classify for OpError {
    /// | what happened | retry? |
    /// |---|---|
    /// | connect refused/reset, connect/ACSE/DIMSE timeout, A-ABORT, peer closed | yes |
    /// | A-ASSOCIATE-RJ transient, or source 3 | yes |
    /// | A-ASSOCIATE-RJ permanent | no |
    /// | no acceptable presentation context, unreadable file | no |
    /// | DIMSE A7xx | yes |
    /// | any other DIMSE failure status | no |
    /// | pool exhausted (acquire timeout) | yes |
    /// | malformed or oversized DIMSE message or data set from the remote | no (counts) |
    /// | caller's deadline (counts unless queued for the pool) | no |
    /// | C-FIND cut short by the remote (FE00 without our C-CANCEL) | no |
    fn is_retryable(&self) -> bool {
        match self {
            OpError::Association(e) => e.is_transient(),
            OpError::Pool(PoolError::Closed { .. }) => false,
            OpError::Pool(_) => true,
            OpError::Dimse(e) => e.is_transient(),
            OpError::File(_) => false,
            OpError::Interrupted { .. } => false,
            OpError::Deadline { .. } => false,
            OpError::Incomplete { .. } => false,
            OpError::Advisory(_) => false,
            OpError::Status { status, .. } => status.is_out_of_resources(),
        }
    }

    /// Whether it says something about the node's health: network and association
    /// trouble (permanent rejections included: the node is not usable as
    /// configured) and A7xx do; problems of one data set, and local limits, do not.
    fn counts_for_breaker(&self) -> bool {
        match self {
            OpError::Association(AssociationError::NoAcceptedContexts { .. }) => false,
            // Our own fleet's cap or Redis: nothing was asked of the node.
            OpError::Association(AssociationError::SharedLimit { .. }) => false,
            OpError::Association(_) => true,
            OpError::Pool(_) => false,
            OpError::Dimse(e) => e.is_transient() || e.is_protocol_violation(),
            OpError::File(_) => false,
            OpError::Interrupted { source, .. } => source.counts_for_breaker(),
            // A node that does not answer before callers give up is failing them,
            // whichever timeout is shorter; queueing for our own pool is not its fault.
            OpError::Deadline { waiting_for_pool } => !waiting_for_pool,
            OpError::Incomplete { .. } => false,
            OpError::Advisory(_) => false,
            OpError::Status { status, .. } => status.is_out_of_resources(),
        }
    }

    /// Connection refused, or a host name that does not resolve.
    fn is_unreachable(&self) -> bool {
        match self {
            OpError::Association(AssociationError::Connect { source, .. }) => {
                source.kind() == std::io::ErrorKind::ConnectionRefused || is_unknown_host(source)
            }
            _ => false,
        }
    }
}

/// Whether a connect error says the host name did not resolve (the resolver's
/// words differ by platform; the kind is not specific).
pub fn is_unknown_host(e: &std::io::Error) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    text.contains("lookup address")
        || text.contains("name or service not known")
        || text.contains("no such host")
        || text.contains("nodename nor servname")
        || text.contains("temporary failure in name resolution")
        || text.contains("no address associated")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::Classify;

    #[test]
    fn an_advisory_failure_is_neither_retried_nor_held_against_the_node() {
        let abort = OpError::Association(AssociationError::Aborted("A-ABORT from the service user".into()));
        assert!(abort.is_retryable() && abort.counts_for_breaker(), "the premise");
        let advisory = OpError::Advisory(Box::new(abort));
        assert!(!advisory.is_retryable());
        assert!(!advisory.counts_for_breaker());
        assert!(advisory.to_string().contains("abort"), "{advisory}");
    }
}
