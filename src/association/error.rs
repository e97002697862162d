//! Errors of the association layer, each said in words a PACS engineer recognises,
//! and classified: transient (worth another try) or permanent.

use std::time::Duration;

/// Why an association could not be opened, or broke.
#[derive(Debug, thiserror::Error)]
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
    #[error("association with {called_ae}: the remote accepted none of the {proposed} proposed presentation contexts")]
    NoAcceptedContexts { called_ae: String, proposed: usize },
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
            AssociationError::NoAcceptedContexts { .. } => false,
            _ => true,
        }
    }

    /// The remote said it is at its association limit.
    pub fn is_capacity(&self) -> bool {
        matches!(self, AssociationError::Rejected { capacity: true, .. })
    }
}

/// Translate dicom-ul's establishment error into ours, in words.
pub(crate) fn from_ul(err: dicom_ul::association::Error, addr: &str, called_ae: &str) -> AssociationError {
    use dicom_ul::association::Error as E;
    use dicom_ul::pdu::{
        AssociationRJResult, AssociationRJServiceProviderPresentationReason as P, AssociationRJSource,
    };
    match err {
        E::Connect { source, .. } => AssociationError::Connect {
            addr: addr.to_string(),
            source,
        },
        E::ToAddress { source, .. } => AssociationError::Connect {
            addr: addr.to_string(),
            source,
        },
        E::Rejected { association_rj, .. } => {
            let transient = association_rj.result == AssociationRJResult::Transient;
            let (source_code, source_name, capacity) = match &association_rj.source {
                AssociationRJSource::ServiceUser(_) => (1, "service user", false),
                AssociationRJSource::ServiceProviderASCE(_) => (2, "service provider (ACSE)", false),
                AssociationRJSource::ServiceProviderPresentation(r) => (
                    3,
                    "service provider (presentation)",
                    matches!(r, P::TemporaryCongestion | P::LocalLimitExceeded),
                ),
            };
            AssociationError::Rejected {
                called_ae: called_ae.to_string(),
                transient,
                source_code,
                source_name,
                reason: association_rj.source.to_string(),
                capacity,
            }
        }
        E::NoAcceptedPresentationContexts { .. } => AssociationError::NoAcceptedContexts {
            called_ae: called_ae.to_string(),
            proposed: 0,
        },
        E::Aborted { .. } => AssociationError::Aborted("during negotiation".into()),
        E::ConnectionClosed { .. } => AssociationError::PeerClosed,
        E::WireSend { source, .. } | E::WireRead { source, .. } => AssociationError::Io(source),
        E::UnexpectedPdu { pdu, .. } => match *pdu {
            dicom_ul::Pdu::AbortRQ { source } => AssociationError::Aborted(abort_source_words(&source)),
            other => AssociationError::Protocol(format!(
                "unexpected PDU during negotiation: {}",
                other.short_description()
            )),
        },
        E::ReceivePdu { source, .. } => receive_error(source),
        other => AssociationError::Protocol(other.to_string()),
    }
}

/// A PDU read error: a closed socket is the common case, said plainly.
pub(crate) fn receive_error(err: dicom_ul::pdu::ReadError) -> AssociationError {
    let text = err.to_string();
    if let dicom_ul::pdu::ReadError::ReadPdu { source, .. } = &err {
        if source.kind() == std::io::ErrorKind::UnexpectedEof {
            return AssociationError::PeerClosed;
        }
        return AssociationError::Io(std::io::Error::new(source.kind(), source.to_string()));
    }
    AssociationError::Protocol(format!("malformed PDU from the remote: {text}"))
}

pub(crate) fn abort_source_words(source: &dicom_ul::pdu::AbortRQSource) -> String {
    use dicom_ul::pdu::AbortRQSource;
    match source {
        AbortRQSource::ServiceUser => "A-ABORT from the service user".into(),
        AbortRQSource::ServiceProvider(r) => format!("A-ABORT from the service provider: {r}"),
        AbortRQSource::Reserved => "A-ABORT".into(),
    }
}
