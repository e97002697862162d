//! DICOM associations on dicom-ul: establishing one (sockets, contexts, timeouts),
//! sending and receiving PDUs on it, and ending it (A-RELEASE, or A-ABORT).
//!
//! An [`Association`] tracks whether it is in a known state: a timeout or protocol
//! error mid-message, or an operation dropped half-way, *poisons* it, and a poisoned
//! association is aborted, never reused.

mod contexts;
mod error;
mod socket;
pub mod uids;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use dicom_ul::association::client::ClientAssociationOptions;
use dicom_ul::association::{AsyncAssociation, AsyncClientAssociation};
use dicom_ul::pdu::{AbortRQSource, PDataValueType};
use dicom_ul::Pdu;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

pub use contexts::{AcceptedContext, ContextRequest, Profile, ProposedContext, MAX_PRESENTATION_CONTEXTS};
pub use error::AssociationError;

use crate::config::Timeouts;

/// Largest PDU we announce we can receive when the config says 0 ("unlimited").
const MAX_RECEIVE_PDU: u32 = 1 << 20;
/// A-ABORT is best effort: never wait long for the socket to take it.
const ABORT_WRITE_TIMEOUT: Duration = Duration::from_millis(500);

static NEXT_ASSOCIATION_ID: AtomicU64 = AtomicU64::new(1);

/// Who we are and whom we talk to.
#[derive(Debug, Clone)]
pub struct AssociationParams {
    pub calling_ae: String,
    pub called_ae: String,
    pub host: String,
    pub port: u16,
    /// The largest PDU we accept (announced to the remote).
    pub max_pdu_length: u32,
    pub timeouts: Timeouts,
}

impl AssociationParams {
    pub fn address(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// One fragment of a P-DATA-TF message, as received.
#[derive(Debug)]
pub struct Pdv {
    pub context_id: u8,
    pub is_command: bool,
    pub is_last: bool,
    pub data: Vec<u8>,
}

/// An established association (we are the requestor).
#[derive(Debug)]
pub struct Association {
    id: u64,
    inner: AsyncClientAssociation<TcpStream>,
    accepted: Vec<AcceptedContext>,
    profile: Profile,
    timeouts: Timeouts,
    called_ae: String,
    /// Set when the association may be mid-message (timeout, protocol error, an
    /// operation dropped half-way): it must be aborted, never reused.
    poisoned: bool,
    /// Set while an operation is under way; still set on drop = cancelled mid-way.
    in_flight: bool,
    /// Whether any response has arrived for the current operation (for telling a
    /// stale reused association from a failure of the operation itself).
    responded: bool,
    next_message_id: u16,
    /// PDVs received in a PDU together with the one last returned.
    pending: VecDeque<Pdv>,
    created_at: Instant,
    write_buf: Vec<u8>,
}

impl Association {
    /// Connect, negotiate `profile`'s presentation contexts, and tune the socket.
    pub async fn establish(params: &AssociationParams, profile: &Profile) -> Result<Self, AssociationError> {
        let addr = params.address();
        let proposed = profile.contexts();
        let max_pdu = match params.max_pdu_length {
            0 => MAX_RECEIVE_PDU,
            n => n.clamp(4096, MAX_RECEIVE_PDU),
        };
        let mut options = ClientAssociationOptions::new()
            .calling_ae_title(params.calling_ae.clone())
            .called_ae_title(params.called_ae.clone())
            .max_pdu_length(max_pdu)
            .strict(false)
            .connection_timeout(params.timeouts.connect);
        for ctx in &proposed {
            options = options.with_presentation_context(ctx.abstract_syntax.clone(), ctx.transfer_syntaxes.clone());
        }
        // dicom-ul bounds the connect itself (its timeout surfaces as `Timeout`, the
        // only one it can raise here since no read timeout is set); the outer bound
        // is the ACSE round trip.
        let total = params.timeouts.connect + params.timeouts.acse;
        let inner = match timeout(total, options.establish_async(addr.as_str())).await {
            Err(_) => {
                return Err(AssociationError::AcseTimeout {
                    addr,
                    after: params.timeouts.acse,
                })
            }
            Ok(Err(dicom_ul::association::Error::Timeout { .. })) => {
                return Err(AssociationError::ConnectTimeout {
                    addr,
                    after: params.timeouts.connect,
                })
            }
            Ok(Err(e)) => {
                let mut err = error::from_ul(e, &addr, &params.called_ae);
                if let AssociationError::NoAcceptedContexts { proposed: p, .. } = &mut err {
                    *p = proposed.len();
                }
                return Err(err);
            }
            Ok(Ok(inner)) => inner,
        };
        let accepted = inner
            .presentation_contexts()
            .iter()
            .map(|pc| AcceptedContext {
                id: pc.id,
                abstract_syntax: trim_uid(&pc.abstract_syntax),
                transfer_syntax: trim_uid(&pc.transfer_syntax),
            })
            .collect::<Vec<_>>();
        let mut assoc = Association {
            id: NEXT_ASSOCIATION_ID.fetch_add(1, Ordering::Relaxed),
            inner,
            accepted,
            profile: profile.clone(),
            timeouts: params.timeouts,
            called_ae: params.called_ae.clone(),
            poisoned: false,
            in_flight: false,
            responded: false,
            next_message_id: 1,
            pending: VecDeque::new(),
            created_at: Instant::now(),
            write_buf: Vec::new(),
        };
        socket::tune(assoc.inner.inner_stream());
        tracing::debug!(
            association = assoc.id,
            called_ae = %assoc.called_ae,
            %addr,
            proposed = proposed.len(),
            accepted = assoc.accepted.len(),
            max_pdu = assoc.peer_max_pdu(),
            "association established"
        );
        Ok(assoc)
    }

    /// Process-unique id, for logs and stats.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn called_ae(&self) -> &str {
        &self.called_ae
    }

    /// The presentation contexts the remote accepted.
    pub fn accepted_contexts(&self) -> &[AcceptedContext] {
        &self.accepted
    }

    /// The profile this association was negotiated with.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The largest PDU the remote accepts (its variable field length).
    pub fn peer_max_pdu(&self) -> u32 {
        self.inner.acceptor_max_pdu_length()
    }

    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

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

    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Mark it as being in an unknown state: it will be aborted, not reused.
    pub fn poison(&mut self) {
        self.poisoned = true;
    }

    /// Start of an operation: if the returned future is dropped before
    /// [`Association::end_operation`], the association counts as mid-message.
    pub fn begin_operation(&mut self) {
        self.in_flight = true;
        self.responded = false;
        self.pending.clear();
    }

    pub fn end_operation(&mut self) {
        self.in_flight = false;
    }

    /// Whether any PDU arrived since the current operation began.
    pub fn has_responded(&self) -> bool {
        self.responded
    }

    /// Cheap, no-round-trip check that the remote has not closed the socket or sent
    /// anything unsolicited (A-RELEASE-RQ, A-ABORT) while idle.
    pub fn is_alive(&mut self) -> bool {
        !self.poisoned && socket::idle_socket_is_alive(self.inner.inner_stream())
    }

    /// Write P-DATA-TF PDUs carrying `bytes` as one message part (command or data
    /// set), fragmented to the remote's max PDU. Several PDUs are written per system
    /// call, so neither Nagle nor syscall overhead costs per fragment.
    pub async fn send_pdata(
        &mut self,
        context_id: u8,
        is_command: bool,
        bytes: &[u8],
        last: bool,
    ) -> Result<(), AssociationError> {
        let peer_max = self.peer_max_pdu();
        let mut buf = std::mem::take(&mut self.write_buf);
        buf.clear();
        encode_pdata(&mut buf, context_id, is_command, bytes, last, peer_max);
        let res = self.write_all(&buf).await;
        self.write_buf = buf;
        res
    }

    /// Write already-encoded bytes (PDUs) to the socket, within the DIMSE timeout.
    pub async fn write_all(&mut self, bytes: &[u8]) -> Result<(), AssociationError> {
        let limit = self.timeouts.dimse;
        let stream = self.inner.inner_stream();
        match timeout(limit, stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
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
        if let Some(pdv) = self.pending.pop_front() {
            return Ok(pdv);
        }
        let limit = self.timeouts.dimse;
        let pdu = match timeout(limit, self.receive_pdu()).await {
            Ok(r) => r?,
            Err(_) => {
                self.poisoned = true;
                return Err(AssociationError::DimseTimeout(limit));
            }
        };
        self.responded = true;
        match pdu {
            Pdu::PData { data } => {
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
                // Answer politely; the association is over either way.
                self.poisoned = true;
                let _ = self.send_pdu(&Pdu::ReleaseRP).await;
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

    async fn receive_pdu(&mut self) -> Result<Pdu, AssociationError> {
        let max = self.inner.requestor_max_pdu_length();
        let (stream, read_buffer): (&mut TcpStream, &mut BytesMut) = AsyncAssociation::get_mut(&mut self.inner);
        socket::quickack(stream);
        let mut reader = socket::QuickAckReader::new(stream, &read_buffer[..]);
        match dicom_ul::association::read_pdu_from_wire_async(&mut reader, read_buffer, max, false).await {
            Ok(pdu) => Ok(pdu),
            Err(e) => {
                self.poisoned = true;
                Err(match e {
                    dicom_ul::association::Error::ConnectionClosed { .. } => AssociationError::PeerClosed,
                    dicom_ul::association::Error::ReceivePdu { source, .. } => error::receive_error(source),
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
        if self.poisoned || self.in_flight {
            return self.abort().await;
        }
        let id = self.id;
        let limit = self.timeouts.acse;
        let outcome = timeout(limit, async {
            self.send_pdu(&Pdu::ReleaseRQ).await?;
            loop {
                match self.receive_pdu().await? {
                    Pdu::ReleaseRP => return Ok(()),
                    // Release collision (PS3.8 9.2.8 case): answer and finish.
                    Pdu::ReleaseRQ => {
                        self.send_pdu(&Pdu::ReleaseRP).await?;
                        return Ok(());
                    }
                    // Late data of an earlier message: ignore and keep waiting.
                    Pdu::PData { .. } => continue,
                    Pdu::AbortRQ { .. } => return Err(AssociationError::Aborted("during release".into())),
                    other => {
                        return Err(AssociationError::Protocol(format!(
                            "unexpected PDU during release: {}",
                            other.short_description()
                        )))
                    }
                }
            }
        })
        .await;
        match outcome {
            Ok(Ok(())) => {
                let _ = self.inner.inner_stream().shutdown().await;
                tracing::debug!(association = id, "association released");
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

    /// A-ABORT (best effort) and close the socket.
    pub async fn abort(mut self) {
        let mut buf = Vec::with_capacity(16);
        if dicom_ul::pdu::write_pdu(
            &mut buf,
            &Pdu::AbortRQ {
                source: AbortRQSource::ServiceUser,
            },
        )
        .is_ok()
        {
            let stream = self.inner.inner_stream();
            let _ = timeout(ABORT_WRITE_TIMEOUT, stream.write_all(&buf)).await;
            let _ = timeout(ABORT_WRITE_TIMEOUT, stream.shutdown()).await;
        }
        tracing::debug!(association = self.id, "association aborted");
    }
}

/// Encode `bytes` as P-DATA-TF PDUs of at most `peer_max_pdu` variable-field bytes,
/// one PDV each; the last fragment carries the "last" bit when `last` is set.
pub fn encode_pdata(out: &mut Vec<u8>, context_id: u8, is_command: bool, bytes: &[u8], last: bool, peer_max_pdu: u32) {
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
    match e.kind() {
        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof => {
            AssociationError::PeerClosed
        }
        _ => AssociationError::Io(e),
    }
}

fn trim_uid(uid: &str) -> String {
    uid.trim_end_matches(|c: char| c == '\0' || c.is_whitespace())
        .to_string()
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
