//! DICOM associations as the requestor: establishing one (socket, negotiation,
//! timeouts), sending and receiving PDUs on it, and ending it (A-RELEASE, or
//! A-ABORT), over dicom-ul's PDU codec.
//!
//! An [`Association`] tracks whether it is in a known state: a timeout or protocol
//! error mid-message, or an operation dropped half-way, *poisons* it, and a poisoned
//! association is aborted, never reused.

mod contexts;
mod error;
mod identity;
mod negotiate;
mod socket;
mod tls;
mod transport;
pub mod uids;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use dicom_ul::pdu::{AbortRQSource, PDataValueType};
use dicom_ul::Pdu;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

pub use contexts::{AcceptedContext, ContextRequest, Profile, ProposedContext, MAX_PRESENTATION_CONTEXTS};
pub use error::{AssociationError, TlsFailure};
pub use negotiate::{uid_name, ContextRefusal, RefusedContext};
pub use tls::{server_config as tls_server_config, ClientTlsStream, TlsClient};
pub use transport::{Idle, Stream, Transport};

use crate::config::Timeouts;

/// Largest PDU we announce we can receive when the config says 0 ("unlimited").
const MAX_RECEIVE_PDU: u32 = 1 << 20;
/// Largest PDU we send when the config does not say: peers that announce no limit
/// (0) or a huge one still get PDUs of this size, so a data set is written in
/// pieces, each under the DIMSE timeout, and never buffered whole. 256 KiB is
/// where larger PDUs stopped paying on loopback (BENCHMARKS.md, "send cap").
pub const DEFAULT_MAX_SEND_PDU: u32 = 256 * 1024;
/// The negotiation PDUs (A-ASSOCIATE-AC/RJ) are not bound by the max PDU length;
/// 128 contexts and user items fit well within this.
const MAX_NEGOTIATION_PDU: u32 = 256 * 1024;
/// A-ABORT is best effort: never wait long for the socket to take it.
const ABORT_WRITE_TIMEOUT: Duration = Duration::from_millis(500);

static NEXT_ASSOCIATION_ID: AtomicU64 = AtomicU64::new(1);

/// Who we are and whom we talk to.
#[derive(Debug, Clone)]
pub struct AssociationParams {
    /// Our AE title (Calling AE Title).
    pub calling_ae: String,
    /// The remote's AE title (Called AE Title).
    pub called_ae: String,
    /// Host name or IP address of the remote.
    pub host: String,
    /// TCP port of the remote.
    pub port: u16,
    /// The largest PDU we accept (announced to the remote, and enforced); 0 = 1 MiB.
    pub max_pdu_length: u32,
    /// The largest PDU we send, whatever the remote announces; 0 = [`DEFAULT_MAX_SEND_PDU`].
    pub max_send_pdu_length: u32,
    /// Connect, ACSE and DIMSE timeouts.
    pub timeouts: Timeouts,
    /// TLS and user identity; [`Security::default`]: plain TCP, no identity.
    pub security: Security,
}

/// How an association proves who it talks to and who we are: TLS, and user
/// identity negotiation.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// TLS with this client configuration; `None`: plain TCP.
    pub tls: Option<Arc<TlsClient>>,
    /// User identity sent in the A-ASSOCIATE-RQ.
    pub user_identity: Option<crate::config::UserIdentitySettings>,
}

impl Security {
    /// A node's TLS client (its files read now) and user identity settings.
    pub fn for_node(config: &crate::config::NodeConfig) -> Security {
        Security {
            tls: config
                .tls
                .as_ref()
                .map(|t| Arc::new(TlsClient::new(t, &config.host, &config.name))),
            user_identity: config.user_identity.clone(),
        }
    }
}

impl AssociationParams {
    /// `HOST:PORT` (IPv6 hosts in brackets).
    pub fn address(&self) -> String {
        crate::config::host_port(&self.host, self.port)
    }

    /// The max PDU length we announce: the configured one within what we can take.
    fn receive_limit(&self) -> u32 {
        match self.max_pdu_length {
            0 => MAX_RECEIVE_PDU,
            n => n.clamp(dicom_ul::pdu::MINIMUM_PDU_SIZE, MAX_RECEIVE_PDU),
        }
    }

    fn send_cap(&self) -> u32 {
        match self.max_send_pdu_length {
            0 => DEFAULT_MAX_SEND_PDU,
            n => n.max(dicom_ul::pdu::MINIMUM_PDU_SIZE),
        }
    }
}

/// One fragment of a P-DATA-TF message, as received.
#[derive(Debug)]
pub struct Pdv {
    /// The Presentation Context ID of the PDV.
    pub context_id: u8,
    /// Whether it carries a command set (else a data set).
    pub is_command: bool,
    /// Whether it is the last fragment of its command or data set.
    pub is_last: bool,
    /// The fragment's bytes.
    pub data: Vec<u8>,
}

/// An established association (we are the requestor), over a [`Transport`]:
/// [`Stream`] (plain TCP or TLS) unless said otherwise.
#[derive(Debug)]
pub struct Association<S: Transport = Stream> {
    id: u64,
    stream: S,
    /// Bytes read from the socket and not yet parsed into a PDU.
    read_buffer: BytesMut,
    /// The max PDU length we announced: a larger PDU from the remote is an error.
    receive_limit: u32,
    /// The largest PDU we send (the remote's maximum within our cap).
    send_limit: u32,
    /// What the remote announced (0 = no limit).
    peer_announced_max_pdu: u32,
    accepted: Vec<AcceptedContext>,
    refused: Vec<RefusedContext>,
    peer_implementation: (Option<String>, Option<String>),
    /// SCP/SCU Role Selection items of the A-ASSOCIATE-AC.
    roles: Vec<(String, dicom_ul::pdu::RequestorRoles)>,
    profile: Profile,
    timeouts: Timeouts,
    called_ae: String,
    /// Set when the association may be mid-message (timeout, protocol error, an
    /// operation dropped half-way): it must be aborted, never reused.
    poisoned: bool,
    /// Set while an operation is under way; still set on drop = cancelled mid-way.
    in_flight: bool,
    /// Whether a P-DATA arrived for the current operation (for telling a stale
    /// reused association from a failure of the operation itself: an A-RELEASE-RQ
    /// or A-ABORT on a just-reused association is the remote ending it while idle).
    responded: bool,
    /// The remote asked to release: it is answered with A-RELEASE-RP when the
    /// association is retired, not with an A-ABORT.
    peer_release: PeerRelease,
    next_message_id: u16,
    /// PDVs received in a PDU together with the one last returned.
    pending: VecDeque<Pdv>,
    created_at: Instant,
    write_buf: Vec<u8>,
    /// What lives exactly as long as the association (a fleet-wide lease of the
    /// client's shared limits): dropped with it, however it ends.
    companion: Option<Companion>,
}

/// Something kept exactly as long as an association (see [`Association::attach`]).
pub struct Companion(Box<dyn std::any::Any + Send + Sync>);

impl std::fmt::Debug for Companion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Companion")
    }
}

impl Association<Stream> {
    /// Connect, tune the socket, and negotiate `profile`'s presentation contexts.
    pub async fn establish(params: &AssociationParams, profile: &Profile) -> Result<Self, AssociationError> {
        // Checked before connecting: nothing is opened for a profile that cannot be sent.
        profile.contexts()?;
        let addr = params.address();
        let tcp = connect(&addr, params.timeouts.connect).await?;
        tcp.tune();
        let stream = match &params.security.tls {
            None => Stream::Tcp(tcp),
            // The handshake is part of connecting: bounded by the connect timeout.
            Some(tls) => Stream::Tls(Box::new(tls.handshake(tcp, &addr, params.timeouts.connect).await?)),
        };
        Association::negotiate(stream, params, profile).await
    }
}

impl<S: Transport> Association<S> {
    /// Negotiate `profile`'s presentation contexts over an open, tuned transport.
    pub async fn negotiate(stream: S, params: &AssociationParams, profile: &Profile) -> Result<Self, AssociationError> {
        let addr = params.address();
        let proposed = profile.contexts()?;
        let receive_limit = params.receive_limit();
        let mut assoc = Association {
            id: NEXT_ASSOCIATION_ID.fetch_add(1, Ordering::Relaxed),
            stream,
            read_buffer: BytesMut::with_capacity(16 * 1024),
            receive_limit,
            send_limit: params.send_cap(),
            peer_announced_max_pdu: 0,
            accepted: Vec::new(),
            refused: Vec::new(),
            peer_implementation: (None, None),
            roles: Vec::new(),
            profile: profile.clone(),
            timeouts: params.timeouts,
            called_ae: params.called_ae.clone(),
            poisoned: false,
            in_flight: false,
            responded: false,
            peer_release: PeerRelease::None,
            next_message_id: 1,
            pending: VecDeque::new(),
            created_at: Instant::now(),
            write_buf: Vec::new(),
            companion: None,
        };
        let identity_item = match &params.security.user_identity {
            Some(settings) => Some(identity::request_item(settings)?),
            None => None,
        };
        let rq = negotiate::request(
            &params.calling_ae,
            &params.called_ae,
            &proposed,
            receive_limit,
            profile.scp_role_classes(),
            identity_item,
        );
        let acse = params.timeouts.acse;
        let exchange = async {
            assoc.send_pdu(&rq).await?;
            assoc.read_pdu(MAX_NEGOTIATION_PDU).await
        };
        let answer = match timeout(acse, exchange).await {
            // A TLS record (alert 15H, handshake 16H; version 03H) where a PDU should be:
            // we spoke plain DICOM to a TLS port.
            Ok(Err(_)) if matches!(assoc.read_buffer.get(..2), Some([0x15 | 0x16, 0x03])) => {
                Err(AssociationError::Tls {
                    addr: addr.clone(),
                    kind: TlsFailure::ServerExpectsTls,
                    message: "the remote answered our A-ASSOCIATE-RQ with a TLS record: this port expects DICOM TLS; \
                              enable the node's tls (or --tls / --tls-ca)"
                        .into(),
                })
            }
            // A TLS server (DCMTK's) may reset a plain connection without a word.
            Ok(Err(AssociationError::Io(e)))
                if e.kind() == std::io::ErrorKind::ConnectionReset && !assoc.stream.is_tls() =>
            {
                Err(AssociationError::Io(std::io::Error::new(
                    e.kind(),
                    format!(
                        "{e} during association negotiation (if this port expects DICOM TLS, enable tls / --tls-ca)"
                    ),
                )))
            }
            Ok(r) => r,
            Err(_) => Err(AssociationError::AcseTimeout {
                addr: addr.clone(),
                after: acse,
            }),
        };
        let identity = params.security.user_identity.as_ref();
        let negotiated = match answer.and_then(|pdu| negotiate::answer(pdu, &proposed, &params.called_ae, identity)) {
            Ok(n) => n,
            Err(e) => {
                // A negotiation that failed on our side (not a reject or abort from the
                // remote) still owes the remote an A-ABORT.
                if !matches!(e, AssociationError::Rejected { .. } | AssociationError::Aborted(_)) {
                    assoc.abort().await;
                }
                return Err(e);
            }
        };
        assoc.peer_announced_max_pdu = negotiated.peer_max_pdu;
        let peer_limit = match negotiated.peer_max_pdu {
            0 => u32::MAX,
            n => n,
        };
        assoc.send_limit = assoc.send_limit.min(peer_limit);
        assoc.accepted = negotiated.accepted;
        assoc.refused = negotiated.refused;
        assoc.roles = negotiated.roles;
        assoc.peer_implementation = (
            negotiated.peer_implementation_class,
            negotiated.peer_implementation_version,
        );
        assoc.log_negotiation(&addr, &proposed);
        Ok(assoc)
    }

    /// `-v`: the negotiation as DCMTK's `-v` shows it, by name. UIDs and AE titles
    /// only; no patient data exists at this point.
    fn log_negotiation(&self, addr: &str, proposed: &[ProposedContext]) {
        const TARGET: &str = "pacs_net::negotiation";
        if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
            return;
        }
        let peer_max = match self.peer_announced_max_pdu {
            0 => "unlimited".to_string(),
            n => n.to_string(),
        };
        tracing::info!(
            target: TARGET,
            association = self.id,
            called_ae = %self.called_ae,
            %addr,
            proposed = proposed.len(),
            accepted = self.accepted.len(),
            peer_max_pdu = %peer_max,
            send_max_pdu = self.send_limit,
            our_max_pdu = self.receive_limit,
            peer_implementation_class = self.peer_implementation.0.as_deref().unwrap_or("-"),
            peer_implementation_version = self.peer_implementation.1.as_deref().unwrap_or("-"),
            "association accepted"
        );
        for c in &self.accepted {
            tracing::info!(
                target: TARGET,
                association = self.id,
                id = c.id,
                abstract_syntax = %uid_name(&c.abstract_syntax),
                transfer_syntax = %uid_name(&c.transfer_syntax),
                "  accepted context"
            );
        }
        for c in &self.refused {
            tracing::info!(
                target: TARGET,
                association = self.id,
                id = c.id,
                abstract_syntax = %uid_name(&c.abstract_syntax),
                transfer_syntaxes = %c.transfer_syntaxes.iter().map(|t| uid_name(t)).collect::<Vec<_>>().join(", "),
                reason = c.reason.as_str(),
                "  refused context"
            );
        }
    }

    /// Keeps `companion` until the association is dropped (released, aborted or
    /// simply dropped): how a fleet-wide lease is tied to the association it counts.
    pub fn attach(&mut self, companion: Box<dyn std::any::Any + Send + Sync>) {
        self.companion = Some(Companion(companion));
    }

    /// Takes back what was [attached](Self::attach), to end it after the association
    /// (a lease given back once the transport is closed).
    pub fn detach(&mut self) -> Option<Box<dyn std::any::Any + Send + Sync>> {
        self.companion.take().map(|c| c.0)
    }

    /// Process-unique id, for logs and stats.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The remote's AE title (Called AE Title).
    pub fn called_ae(&self) -> &str {
        &self.called_ae
    }

    /// The presentation contexts the remote accepted.
    pub fn accepted_contexts(&self) -> &[AcceptedContext] {
        &self.accepted
    }

    /// The proposed presentation contexts the remote did not accept, with its reasons.
    pub fn refused_contexts(&self) -> &[RefusedContext] {
        &self.refused
    }

    /// The remote's Implementation Class UID and Version Name, as announced.
    pub fn peer_implementation(&self) -> (Option<&str>, Option<&str>) {
        (
            self.peer_implementation.0.as_deref(),
            self.peer_implementation.1.as_deref(),
        )
    }

    /// Whether the remote granted us the SCP role for `sop_class`: `Some(true)` or
    /// `Some(false)` as its A-ASSOCIATE-AC said, `None` when it said nothing (PS3.7
    /// D.3.3.4: the default roles then apply; some PACS, Conquest among them,
    /// answer nothing and send the C-STOREs all the same).
    pub fn scp_role_granted(&self, sop_class: &str) -> Option<bool> {
        self.roles.iter().find(|(s, _)| s == sop_class).map(|(_, r)| r.scp)
    }

    /// The profile this association was negotiated with.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The largest PDU we send: the remote's maximum (0 = none) within our send cap.
    pub fn peer_max_pdu(&self) -> u32 {
        self.send_limit
    }

    /// The maximum PDU length the remote announced (0 = no limit).
    pub fn peer_announced_max_pdu(&self) -> u32 {
        self.peer_announced_max_pdu
    }

    /// The timeouts this association applies.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Time since the association was opened.
    pub fn age(&self) -> Duration {
        self.created_at.elapsed()
    }

    /// The best accepted context for `req`, if this association has one.
    pub fn select(&self, req: &ContextRequest) -> Option<&AcceptedContext> {
        req.select(&self.accepted)
    }

    /// Next DIMSE message id (never 0, wraps).
    pub fn next_message_id(&mut self) -> u16 {
        let id = self.next_message_id;
        self.next_message_id = self.next_message_id.checked_add(1).unwrap_or(1);
        id
    }

    /// May it go back to a pool?
    pub fn is_reusable(&self) -> bool {
        !self.poisoned && !self.in_flight
    }

    /// Mark it as being in an unknown state: it will be aborted, not reused.
    pub(crate) fn poison(&mut self) {
        self.poisoned = true;
    }

    /// Start of an operation: if the returned future is dropped before
    /// [`Association::end_operation`], the association counts as mid-message.
    pub fn begin_operation(&mut self) {
        self.in_flight = true;
        self.responded = false;
        self.pending.clear();
    }

    /// End of an operation: the association is no longer mid-message.
    pub fn end_operation(&mut self) {
        self.in_flight = false;
    }

    /// Whether a P-DATA arrived since the current operation began.
    pub fn has_responded(&self) -> bool {
        self.responded
    }

    /// Cheap, no-round-trip check that the remote has not closed the socket or sent
    /// anything unsolicited (A-RELEASE-RQ, A-ABORT) while idle, whether those bytes
    /// are still in the socket or already in our read buffer.
    pub fn is_alive(&mut self) -> bool {
        if self.poisoned {
            return false;
        }
        let waiting = if self.read_buffer.is_empty() {
            match self.stream.check_idle(&mut self.read_buffer) {
                Idle::Quiet => return true,
                Idle::Closed => return false,
                Idle::Data(first) => first,
            }
        } else {
            self.read_buffer[0]
        };
        // 0x05: A-RELEASE-RQ. Anything else (A-ABORT, stray data) ends it too.
        if waiting == 0x05 {
            self.peer_release = PeerRelease::Unread;
        }
        false
    }

    /// Write P-DATA-TF PDUs carrying `bytes` as one message part (command or data
    /// set), fragmented to the PDU size we send. Several PDUs are written per system
    /// call, so neither Nagle nor syscall overhead costs per fragment.
    pub async fn send_pdata(
        &mut self,
        context_id: u8,
        is_command: bool,
        bytes: &[u8],
        last: bool,
    ) -> Result<(), AssociationError> {
        let max = self.peer_max_pdu();
        let mut buf = std::mem::take(&mut self.write_buf);
        buf.clear();
        encode_pdata(&mut buf, context_id, is_command, bytes, last, max);
        let res = self.write_all(&buf).await;
        self.write_buf = buf;
        res
    }

    /// Write already-encoded bytes (PDUs) to the socket, within the DIMSE timeout.
    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> Result<(), AssociationError> {
        let limit = self.timeouts.dimse;
        // The flush matters over TLS only: rustls may still hold the last records.
        let writing = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match timeout(limit, writing).await {
            Ok(Ok(())) => {
                tracing::debug!(
                    target: "pacs_net::dimse_trace",
                    association = self.id,
                    bytes = bytes.len(),
                    max_pdu = self.send_limit,
                    "sent PDUs"
                );
                Ok(())
            }
            Ok(Err(e)) => {
                self.poisoned = true;
                Err(io_error(e))
            }
            Err(_) => {
                self.poisoned = true;
                Err(AssociationError::DimseTimeout(limit))
            }
        }
    }

    /// Receive the next PDV (one fragment), within the DIMSE timeout. A-ABORT,
    /// A-RELEASE-RQ and a closed socket become errors, and poison the association.
    pub async fn receive_pdv(&mut self) -> Result<Pdv, AssociationError> {
        self.receive_pdv_within(self.timeouts.dimse).await
    }

    /// [`Association::receive_pdv`] within `limit` rather than the DIMSE timeout
    /// (a retrieve waits for its PACS under the longer retrieve timeout).
    pub async fn receive_pdv_within(&mut self, limit: Duration) -> Result<Pdv, AssociationError> {
        if let Some(pdv) = self.pending.pop_front() {
            return Ok(pdv);
        }
        let pdu = match timeout(limit, self.read_pdu(self.receive_limit)).await {
            Ok(r) => r?,
            Err(_) => {
                self.poisoned = true;
                return Err(AssociationError::DimseTimeout(limit));
            }
        };
        match pdu {
            Pdu::PData { data } => {
                self.responded = true;
                let mut iter = data.into_iter().map(|v| Pdv {
                    context_id: v.presentation_context_id,
                    is_command: v.value_type == PDataValueType::Command,
                    is_last: v.is_last,
                    data: v.data,
                });
                let first = iter.next();
                self.pending.extend(iter);
                first.ok_or_else(|| {
                    self.poisoned = true;
                    AssociationError::Protocol("empty P-DATA-TF PDU".into())
                })
            }
            Pdu::AbortRQ { source } => {
                self.poisoned = true;
                Err(AssociationError::Aborted(error::abort_source_words(&source)))
            }
            Pdu::ReleaseRQ => {
                // The remote ends the association; it is owed an A-RELEASE-RP, which
                // the teardown sends instead of an A-ABORT.
                self.poisoned = true;
                self.peer_release = PeerRelease::Read;
                Err(AssociationError::PeerReleased)
            }
            other => {
                self.poisoned = true;
                Err(AssociationError::Protocol(format!(
                    "unexpected PDU: {}",
                    other.short_description()
                )))
            }
        }
    }

    /// Read one whole PDU, refusing one longer than `limit` before buffering it. A
    /// connection that closes inside a PDU is a truncated PDU, said as such.
    async fn read_pdu(&mut self, limit: u32) -> Result<Pdu, AssociationError> {
        self.stream.quickack();
        let mut reader = socket::QuickAckReader::new(&mut self.stream, &self.read_buffer[..]);
        match dicom_ul::association::read_pdu_from_wire_async(&mut reader, &mut self.read_buffer, limit, true).await {
            Ok(pdu) => {
                tracing::debug!(
                    target: "pacs_net::dimse_trace",
                    association = self.id,
                    pdu = %pdu_words(&pdu),
                    "received PDU"
                );
                Ok(pdu)
            }
            Err(e) => {
                self.poisoned = true;
                Err(match e {
                    dicom_ul::association::Error::ConnectionClosed { .. } if self.read_buffer.is_empty() => {
                        AssociationError::PeerClosed
                    }
                    dicom_ul::association::Error::ConnectionClosed { .. } => {
                        AssociationError::Protocol(truncated_pdu(&self.read_buffer))
                    }
                    dicom_ul::association::Error::ReceivePdu { source, .. } => error::receive_error(source, limit),
                    other => AssociationError::Protocol(other.to_string()),
                })
            }
        }
    }

    async fn send_pdu(&mut self, pdu: &Pdu) -> Result<(), AssociationError> {
        let mut buf = Vec::with_capacity(64);
        dicom_ul::pdu::write_pdu(&mut buf, pdu).map_err(|e| AssociationError::Protocol(e.to_string()))?;
        self.write_all(&buf).await
    }

    /// Graceful end: A-RELEASE-RQ, wait (bounded by the ACSE timeout) for
    /// A-RELEASE-RP, then close the socket. Falls back to A-ABORT, so the socket is
    /// closed whatever happens.
    pub async fn release(mut self) {
        if self.peer_release != PeerRelease::None {
            return self.answer_peer_release().await;
        }
        if self.poisoned || self.in_flight {
            return self.abort().await;
        }
        let id = self.id;
        let limit = self.timeouts.acse;
        let outcome = timeout(limit, async {
            self.send_pdu(&Pdu::ReleaseRQ).await?;
            loop {
                match self.read_pdu(self.receive_limit).await? {
                    Pdu::ReleaseRP => return Ok(()),
                    // Release collision (PS3.8 9.2.8, Sta7 -> Sta9 -> Sta11): as the
                    // requestor we answer first, then wait for the acceptor's RP.
                    Pdu::ReleaseRQ => {
                        self.send_pdu(&Pdu::ReleaseRP).await?;
                        loop {
                            match self.read_pdu(self.receive_limit).await? {
                                Pdu::ReleaseRP => return Ok(()),
                                Pdu::PData { .. } => continue,
                                other => return Err(unexpected_in_release(&other)),
                            }
                        }
                    }
                    // Late data of an earlier message: ignore and keep waiting.
                    Pdu::PData { .. } => continue,
                    other => return Err(unexpected_in_release(&other)),
                }
            }
        })
        .await;
        match outcome {
            Ok(Ok(())) => {
                let _ = self.stream.shutdown().await;
                tracing::debug!(association = id, "association released");
            }
            Ok(Err(AssociationError::Aborted(_))) => {
                tracing::debug!(association = id, "the remote aborted during release");
            }
            Ok(Err(e)) => {
                tracing::debug!(association = id, error = %e, "release failed; aborting");
                self.abort().await;
            }
            Err(_) => {
                tracing::debug!(association = id, "release timed out; aborting");
                self.abort().await;
            }
        }
    }

    /// The remote asked to release (PS3.8 Sta8): answer A-RELEASE-RP and let it
    /// close the connection (bounded by the ACSE timeout).
    async fn answer_peer_release(mut self) {
        let id = self.id;
        let answered = timeout(self.timeouts.acse, async {
            // Seen by the idle peek: the RQ itself is still to be read.
            if self.peer_release == PeerRelease::Unread {
                match self.read_pdu(self.receive_limit).await? {
                    Pdu::ReleaseRQ => {}
                    other => return Err(unexpected_in_release(&other)),
                }
            }
            self.send_pdu(&Pdu::ReleaseRP).await?;
            let _ = self.stream.shutdown().await;
            Ok::<_, AssociationError>(())
        })
        .await;
        match answered {
            Ok(Ok(())) => tracing::debug!(association = id, "the remote released the association"),
            _ => self.send_abort().await,
        }
    }

    /// A-ABORT (best effort) and close the socket. A remote that asked to release
    /// (while idle, or instead of answering) gets the A-RELEASE-RP PS3.8 expects.
    pub async fn abort(self) {
        if self.peer_release != PeerRelease::None {
            return self.answer_peer_release().await;
        }
        self.send_abort().await
    }

    async fn send_abort(mut self) {
        let mut buf = Vec::with_capacity(16);
        if dicom_ul::pdu::write_pdu(
            &mut buf,
            &Pdu::AbortRQ {
                source: AbortRQSource::ServiceUser,
            },
        )
        .is_ok()
        {
            let _ = timeout(ABORT_WRITE_TIMEOUT, async {
                self.stream.write_all(&buf).await?;
                self.stream.flush().await
            })
            .await;
            let _ = timeout(ABORT_WRITE_TIMEOUT, self.stream.shutdown()).await;
        }
        tracing::debug!(association = self.id, "association aborted");
    }
}

/// Whether the remote asked to release the association, and whether its
/// A-RELEASE-RQ has been read yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeerRelease {
    None,
    /// Seen waiting by the idle check, not read.
    Unread,
    Read,
}

/// Resolve and connect within the connect timeout.
async fn connect(addr: &str, limit: Duration) -> Result<TcpStream, AssociationError> {
    let connecting = async {
        let mut last = None;
        for sa in tokio::net::lookup_host(addr).await? {
            match TcpStream::connect(sa).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address for the host")))
    };
    match timeout(limit, connecting).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(source)) => Err(AssociationError::Connect {
            addr: addr.to_string(),
            source,
        }),
        Err(_) => Err(AssociationError::ConnectTimeout {
            addr: addr.to_string(),
            after: limit,
        }),
    }
}

fn truncated_pdu(buffered: &[u8]) -> String {
    if buffered.len() >= 6 {
        let declared = u32::from_be_bytes([buffered[2], buffered[3], buffered[4], buffered[5]]);
        format!(
            "truncated PDU: the remote closed the connection after {} of the {} bytes its PDU (type {:02X}H) declared",
            buffered.len() - 6,
            declared,
            buffered[0]
        )
    } else {
        format!(
            "truncated PDU: the remote closed the connection inside a PDU header ({} bytes)",
            buffered.len()
        )
    }
}

/// A PDU named for the `-vv` trace: its type and sizes, never its content.
fn pdu_words(pdu: &Pdu) -> String {
    match pdu {
        Pdu::PData { data } => format!(
            "P-DATA-TF ({} PDV{}, {} bytes)",
            data.len(),
            if data.len() == 1 { "" } else { "s" },
            data.iter().map(|v| v.data.len()).sum::<usize>()
        ),
        Pdu::AssociationAC(ac) => format!("A-ASSOCIATE-AC ({} context results)", ac.presentation_contexts.len()),
        Pdu::AssociationRJ(_) => "A-ASSOCIATE-RJ".into(),
        Pdu::ReleaseRQ => "A-RELEASE-RQ".into(),
        Pdu::ReleaseRP => "A-RELEASE-RP".into(),
        Pdu::AbortRQ { .. } => "A-ABORT".into(),
        _ => "other PDU".into(),
    }
}

fn unexpected_in_release(pdu: &Pdu) -> AssociationError {
    match pdu {
        Pdu::AbortRQ { .. } => AssociationError::Aborted("during release".into()),
        other => AssociationError::Protocol(format!("unexpected PDU during release: {}", other.short_description())),
    }
}

/// Encode `bytes` as P-DATA-TF PDUs of at most `peer_max_pdu` variable-field bytes,
/// one PDV each; the last fragment carries the "last" bit when `last` is set.
pub(crate) fn encode_pdata(
    out: &mut Vec<u8>,
    context_id: u8,
    is_command: bool,
    bytes: &[u8],
    last: bool,
    peer_max_pdu: u32,
) {
    // PDV item = 4 (length) + 1 (context id) + 1 (control header) + data.
    let max_data = (peer_max_pdu as usize).saturating_sub(6).max(1);
    let mut chunks = bytes.chunks(max_data).peekable();
    if bytes.is_empty() {
        push_pdv(out, context_id, is_command, &[], last);
        return;
    }
    while let Some(chunk) = chunks.next() {
        let is_last = last && chunks.peek().is_none();
        push_pdv(out, context_id, is_command, chunk, is_last);
    }
}

fn push_pdv(out: &mut Vec<u8>, context_id: u8, is_command: bool, data: &[u8], last: bool) {
    let pdv_len = data.len() as u32 + 2;
    let pdu_len = pdv_len + 4;
    out.extend_from_slice(&[0x04, 0x00]);
    out.extend_from_slice(&pdu_len.to_be_bytes());
    out.extend_from_slice(&pdv_len.to_be_bytes());
    let control = (is_command as u8) | ((last as u8) << 1);
    out.extend_from_slice(&[context_id, control]);
    out.extend_from_slice(data);
}

fn io_error(e: std::io::Error) -> AssociationError {
    if let Some(tls) = tls::after_handshake(&e) {
        return tls;
    }
    match e.kind() {
        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof => {
            AssociationError::PeerClosed
        }
        _ => AssociationError::Io(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdata_fragments_respect_peer_max_pdu() {
        let data = vec![7u8; 100];
        let mut out = Vec::new();
        encode_pdata(&mut out, 3, false, &data, true, 46); // 40 data bytes per PDV
                                                           // 3 PDUs: 40 + 40 + 20 data bytes, each with 12 bytes of headers.
        assert_eq!(out.len(), 100 + 3 * 12);
        assert_eq!(&out[0..2], &[0x04, 0x00]);
        assert_eq!(u32::from_be_bytes([out[2], out[3], out[4], out[5]]), 46);
        assert_eq!(out[11], 0x00, "first fragment: data, not last");
        let last_hdr = 52 * 2 + 11;
        assert_eq!(out[last_hdr], 0x02, "last fragment: data, last");
    }

    #[test]
    fn command_fragment_control_header() {
        let mut out = Vec::new();
        encode_pdata(&mut out, 1, true, &[1, 2], true, 16384);
        assert_eq!(out[10], 1);
        assert_eq!(out[11], 0x03);
    }
}
