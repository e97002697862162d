//! Errors of the association layer, each said in words a PACS engineer recognises,
//! and classified: transient (worth another try) or permanent.

use std::time::Duration;

/// Why an association could not be opened, or broke.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssociationError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connecting to {addr} timed out after {after:?}")]
    ConnectTimeout { addr: String, after: Duration },
    #[error("association negotiation with {addr} timed out after {after:?}")]
    AcseTimeout { addr: String, after: Duration },
    #[error(
        "association rejected by {called_ae} ({result}): {source_name}: {reason}",
        result = if *transient { "transient" } else { "permanent" }
    )]
    Rejected {
        called_ae: String,
        transient: bool,
        /// PS3.8 source 1, 2 or 3.
        source_code: u8,
        source_name: &'static str,
        reason: String,
        /// Source 3 reasons 1 and 2: the remote is at capacity.
        capacity: bool,
    },
    #[error("association with {called_ae}: the remote accepted none of the {proposed} proposed presentation contexts ({refusals})")]
    NoAcceptedContexts {
        called_ae: String,
        proposed: usize,
        /// The remote's reasons, counted ("2 abstract syntax not supported").
        refusals: String,
    },
    #[error("{0} presentation contexts proposed: an association carries at most 128")]
    TooManyContexts(usize),
    #[error("association aborted by the remote ({0})")]
    Aborted(String),
    #[error("connection closed by the remote")]
    PeerClosed,
    #[error("the remote asked to release the association")]
    PeerReleased,
    #[error("no response within {0:?} (DIMSE timeout); association aborted")]
    DimseTimeout(Duration),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("network I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl AssociationError {
    /// Worth another try later (on another association): network trouble, timeouts,
    /// aborts, transient rejections.
    pub fn is_transient(&self) -> bool {
        match self {
            AssociationError::Rejected {
                transient, source_code, ..
            } => *transient || *source_code == 3,
            AssociationError::NoAcceptedContexts { .. } | AssociationError::TooManyContexts(_) => false,
            _ => true,
        }
    }

    /// The remote said it is at its association limit.
    pub fn is_capacity(&self) -> bool {
        matches!(self, AssociationError::Rejected { capacity: true, .. })
    }
}

/// A PDU read error: a closed socket is the common case, said plainly; a PDU
/// larger than we announced, or one that does not parse, is a protocol error that
/// names the problem.
pub(crate) fn receive_error(err: dicom_ul::pdu::ReadError, limit: u32) -> AssociationError {
    use dicom_ul::pdu::ReadError;
    match &err {
        ReadError::ReadPdu { source, .. } if source.kind() == std::io::ErrorKind::UnexpectedEof => {
            AssociationError::PeerClosed
        }
        ReadError::ReadPdu { source, .. } => {
            AssociationError::Io(std::io::Error::new(source.kind(), source.to_string()))
        }
        ReadError::PduTooLarge { pdu_length, .. } => AssociationError::Protocol(format!(
            "malformed PDU from the remote: it declares {pdu_length} bytes, more than the maximum PDU length of {limit} we announced"
        )),
        _ => AssociationError::Protocol(format!("malformed PDU from the remote: {err}")),
    }
}

pub(crate) fn abort_source_words(source: &dicom_ul::pdu::AbortRQSource) -> String {
    use dicom_ul::pdu::AbortRQSource;
    match source {
        AbortRQSource::ServiceUser => "A-ABORT from the service user".into(),
        AbortRQSource::ServiceProvider(r) => format!("A-ABORT from the service provider: {r}"),
        AbortRQSource::Reserved => "A-ABORT".into(),
    }
}
