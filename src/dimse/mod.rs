//! DIMSE services on one association: C-ECHO, C-STORE, C-FIND, C-GET and C-MOVE as an SCU
//! (PS3.7), plus the message framing they share.
//!
//! Nothing here retries or pools: an operation runs on the association it is given,
//! and reports a DIMSE status, or an error that says what broke.

pub mod charset;
// Raw command sets: crate-private (the fuzzers and protocol tests reach them
// through `crate::testing`).
pub(crate) mod command;
pub mod commitment;
pub mod dataset_check;
mod echo;
mod find;
pub mod instance;
mod message;
pub(crate) mod part_file;
pub mod query;
mod retrieve;
pub mod status;
mod store;
pub mod transcode;
pub mod worklist;

pub use command::DimsePriority;
pub use commitment::{CommitmentReport, CommitmentRequest, CommitmentRouter, SopRef};
pub use dataset_check::DataSetError;
pub use echo::echo;
pub use find::{find, find_into, FindOutcome, FnSink, MatchSink};
pub use instance::{open_instance, FileError, InstanceFile};
pub use message::{receive_message, receive_message_limited, send_command, Message, MessageReader};
pub use query::{FindQuery, FindRequest, QueryError, QueryKey, QueryLevel, QueryModel};
pub use retrieve::{
    retrieve, FnRetrieveSink, ReceivedInstance, RetrieveEvent, RetrieveKind, RetrieveOutcome, RetrieveSink,
    SubOperations,
};
pub use status::{Status, StatusClass};
pub use store::{store, store_for_move, StoreResponse};
pub use worklist::WorklistQuery;

use crate::association::AssociationError;

/// A lower-level error kept as the source of a [`DimseError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong on an association while running a DIMSE operation. A DIMSE
/// failure *status* is not an error here: it is a response, and is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DimseError {
    #[error(transparent)]
    /// The association could not be used, or broke.
    Association(#[from] AssociationError),
    #[error("no acceptable presentation context: {0}")]
    /// No accepted presentation context fits the operation.
    NoContext(String),
    #[error(transparent)]
    /// The file to send cannot be sent.
    File(#[from] FileError),
    #[error("unexpected DIMSE response: {0}")]
    /// A response that does not answer our request.
    UnexpectedResponse(String),
    #[error("cannot encode the data set: {what}{}", source.as_ref().map(|s| format!(": {s}")).unwrap_or_default())]
    /// A data set could not be encoded.
    Encode {
        /// What could not be encoded.
        what: String,
        #[source]
        /// The underlying error, if any.
        source: Option<BoxError>,
    },
    #[error("cannot decode a data set from the remote: {what}: {source}")]
    /// A data set from the remote could not be decoded.
    Decode {
        /// What could not be decoded.
        what: String,
        #[source]
        /// The underlying error.
        source: BoxError,
    },
    /// The remote broke the DIMSE protocol (a malformed command set, fragments of
    /// the wrong kind): the association is aborted, and trying again would only
    /// meet the same bug.
    #[error("protocol error from the remote: {0}; association aborted")]
    Protocol(String),
    /// A command set that does not parse (a kind of [`DimseError::Protocol`]).
    #[error("protocol error from the remote: {0}; association aborted")]
    MalformedCommand(#[source] command::CommandError),
    /// The remote sent more than we accept (see `limits` in the config).
    #[error(
        "protocol error from the remote: a {what} larger than {limit} bytes (limits.{field}); association aborted"
    )]
    LimitExceeded {
        /// What was too large (command set, data set, ...).
        what: &'static str,
        /// The limit (bytes).
        limit: usize,
        /// The `limits` field of the config that sets it.
        field: &'static str,
    },
}

impl DimseError {
    /// Network-level trouble (worth a retry on another association).
    pub fn is_transient(&self) -> bool {
        match self {
            DimseError::Association(e) => e.is_transient(),
            DimseError::UnexpectedResponse(_) => true,
            DimseError::Decode { .. } | DimseError::Protocol(_) | DimseError::MalformedCommand(_) => false,
            DimseError::LimitExceeded { .. } => false,
            DimseError::NoContext(_) | DimseError::File(_) | DimseError::Encode { .. } => false,
        }
    }

    /// The remote misbehaved at the DIMSE level (malformed or oversized messages or
    /// data sets): not worth a retry, but evidence against the node.
    pub fn is_protocol_violation(&self) -> bool {
        matches!(
            self,
            DimseError::Decode { .. }
                | DimseError::Protocol(_)
                | DimseError::MalformedCommand(_)
                | DimseError::LimitExceeded { .. }
        )
    }
}
