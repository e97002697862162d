//! Errors of the association layer, each said in words a PACS engineer recognises,
//! and classified: transient (worth another try) or permanent.

use std::time::Duration;

/// Why an association could not be opened, or broke.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssociationError {
    #[error("cannot connect to {addr}: {source}")]
    /// The TCP connection failed.
    Connect {
        /// HOST:PORT.
        addr: String,
        #[source]
        /// The socket error.
        source: std::io::Error,
    },
    #[error("connecting to {addr} timed out after {after:?}")]
    /// The TCP connection did not open within the connect timeout.
    ConnectTimeout {
        /// HOST:PORT.
        addr: String,
        /// The connect timeout.
        after: Duration,
    },
    #[error("association negotiation with {addr} timed out after {after:?}")]
    /// No A-ASSOCIATE-AC/RJ within the ACSE timeout.
    AcseTimeout {
        /// HOST:PORT.
        addr: String,
        /// The ACSE timeout.
        after: Duration,
    },
    #[error(
        "association rejected by {called_ae} ({result}): {source_name}: {reason}{hint}",
        result = if *transient && identity.is_none() { "transient" } else { "permanent" },
        hint = identity_hint(*identity)
    )]
    /// The remote answered A-ASSOCIATE-RJ.
    Rejected {
        /// The called AE title.
        called_ae: String,
        /// Result 2 (rejected-transient) rather than 1 (rejected-permanent).
        transient: bool,
        /// PS3.8 source 1, 2 or 3.
        source_code: u8,
        /// The source in words (service-user, ACSE or presentation provider).
        source_name: &'static str,
        /// The reason/diagnostic in words.
        reason: String,
        /// Source 3 reasons 1 and 2: the remote is at capacity.
        capacity: bool,
        /// The user identity type our A-ASSOCIATE-RQ carried, if any: PS3.8 has no
        /// reason code for a refused identity, so it may be the reason.
        identity: Option<&'static str>,
    },
    #[error("association with {called_ae}: the remote accepted none of the {proposed} proposed presentation contexts ({refusals})")]
    /// The remote accepted the association but none of its presentation contexts.
    NoAcceptedContexts {
        /// The called AE title.
        called_ae: String,
        /// How many contexts we proposed.
        proposed: usize,
        /// The remote's reasons, counted ("2 abstract syntax not supported").
        refusals: String,
    },
    #[error("{0} presentation contexts proposed: an association carries at most 128")]
    /// More than 128 presentation contexts would be proposed (the count).
    TooManyContexts(usize),
    #[error("association aborted by the remote ({0})")]
    /// The remote sent A-ABORT (its source, in words).
    Aborted(String),
    #[error("connection closed by the remote")]
    /// The remote closed the TCP connection.
    PeerClosed,
    #[error("the remote asked to release the association")]
    /// The remote asked to release the association (A-RELEASE-RQ).
    PeerReleased,
    #[error("no response within {0:?} (DIMSE timeout); association aborted")]
    /// No response within the DIMSE timeout (the timeout); the association was aborted.
    DimseTimeout(Duration),
    #[error("protocol error: {0}")]
    /// The remote broke the upper layer protocol.
    Protocol(String),
    #[error("network I/O error: {0}")]
    /// A socket read or write failed.
    Io(#[from] std::io::Error),
    /// The TLS handshake failed; `message` says which check (never a secret).
    #[error("TLS with {addr}: {message}")]
    Tls {
        /// HOST:PORT, or "the remote" for an alert after the handshake.
        addr: String,
        /// Which check failed.
        kind: TlsFailure,
        /// What failed and what to do, in words.
        message: String,
    },
    /// A TLS file (CA bundle, certificate, key) could not be used.
    #[error("TLS setup: {0}")]
    TlsSetup(String),
    /// A secret for user identity negotiation could not be read (the error names
    /// where it was looked for, never its value).
    #[error("user identity: {0}")]
    IdentitySetup(String),
    /// We asked for a positive response to our user identity and got none.
    #[error("association with {called_ae}: user identity {kind} not confirmed: the remote accepted the association without the positive response we requested")]
    IdentityNotConfirmed {
        /// The called AE title.
        called_ae: String,
        /// The identity type sent.
        kind: &'static str,
    },
    /// No association was opened: the node's fleet-wide cap
    /// (`max_shared_associations`, kept in Redis) gave no lease in time
    /// (`transient`), or Redis could not be reached and `on_unavailable` is `fail`.
    #[error("{message}")]
    SharedLimit {
        /// What happened, naming the node, the cap and Redis (without credentials).
        message: String,
        /// Worth another try (a lease may free up).
        transient: bool,
    },
}

/// Which TLS check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The server's certificate is not signed by a trusted CA.
    UnknownCa,
    /// The certificate does not carry the expected name.
    NameMismatch,
    /// The certificate has expired (or is not valid yet).
    Expired,
    /// Another certificate problem.
    BadCertificate,
    /// No TLS version in common (we offer 1.2 and 1.3 only).
    ProtocolVersion,
    /// The remote does not speak TLS on that port.
    NotTls,
    /// We spoke plain DICOM to a port that expects TLS.
    ServerExpectsTls,
    /// The remote requires, or refused, our client certificate.
    ClientCertificate,
    /// The handshake did not complete in time.
    Timeout,
    /// Any other handshake failure.
    Handshake,
}

impl AssociationError {
    /// Worth another try later (on another association): network trouble, timeouts,
    /// aborts, transient rejections.
    pub fn is_transient(&self) -> bool {
        match self {
            // With user identity sent, a rejection may be the identity refused: not
            // retried (unless the remote said it is congested, source 3).
            AssociationError::Rejected {
                transient,
                source_code,
                identity,
                ..
            } => (*transient && identity.is_none()) || *source_code == 3,
            AssociationError::NoAcceptedContexts { .. } | AssociationError::TooManyContexts(_) => false,
            // A certificate, a version or a port that does not speak TLS will not
            // change on the next try; only a handshake cut short might.
            AssociationError::Tls { kind, .. } => matches!(kind, TlsFailure::Timeout | TlsFailure::Handshake),
            AssociationError::TlsSetup(_)
            | AssociationError::IdentitySetup(_)
            | AssociationError::IdentityNotConfirmed { .. } => false,
            AssociationError::SharedLimit { transient, .. } => *transient,
            _ => true,
        }
    }

    /// The remote said it is at its association limit.
    pub fn is_capacity(&self) -> bool {
        matches!(self, AssociationError::Rejected { capacity: true, .. })
    }
}

fn identity_hint(identity: Option<&'static str>) -> String {
    match identity {
        Some(kind) => format!(
            " (the association carried user identity ({kind}): the remote may have refused the identity; \
             check the username and secret, PS3.8 has no reason code for it)"
        ),
        None => String::new(),
    }
}

/// A PDU read error: a closed socket is the common case, said plainly; a PDU
/// larger than we announced, or one that does not parse, is a protocol error that
/// names the problem.
pub(crate) fn receive_error(err: dicom_ul::pdu::ReadError, limit: u32) -> AssociationError {
    use dicom_ul::pdu::ReadError;
    if let ReadError::ReadPdu { source, .. } = &err {
        if let Some(tls) = super::tls::after_handshake(source) {
            return tls;
        }
    }
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
