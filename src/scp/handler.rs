//! One association accepted by the embedded SCP: negotiation (or a scripted
//! rejection), then DIMSE messages until release, abort, idle close or shutdown.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use dicom_encoding::TransferSyntaxIndex;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_ul::association::server::{AccessControl, Negotiation, ServerAssociationOptions};
use dicom_ul::association::{Association as _, AsyncServerAssociation};
use dicom_ul::pdu::{
    AbortRQSource, AssociationRJ, AssociationRJResult, AssociationRJServiceProviderPresentationReason,
    AssociationRJServiceUserReason, AssociationRJSource, PDataValueType, PresentationContextResultReason,
};
use dicom_ul::Pdu;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::association::{encode_pdata, uids, Pdv};
use crate::config::Limits;
use crate::dimse::command::{field, response, tag, Command};
use crate::dimse::dataset_check::decode_checked;
use crate::dimse::MessageReader;

use super::storage::{is_valid_uid, StoreRefusal};

use super::{RandomFaults, Shared};

const ACSE_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) type ServerAssoc<S> = AsyncServerAssociation<S>;

/// The streams the SCP serves over: plain TCP, or TLS (`scp --tls-cert`).
pub(crate) trait ScpStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {
    /// The TCP socket beneath (for its tuning).
    fn tcp(&self) -> &TcpStream;
}

impl ScpStream for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl ScpStream for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// Decrements the active count however the association ends.
struct ActiveGuard<'a>(&'a Shared);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.counters.active.fetch_sub(1, Ordering::SeqCst);
    }
}

pub(crate) async fn serve(
    mut socket: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let _ = socket.set_nodelay(true);
    let c = &shared.counters;
    let b = &shared.config.behavior;
    let n = c.association_requests.fetch_add(1, Ordering::SeqCst) + 1;
    let active = c.active.fetch_add(1, Ordering::SeqCst) + 1;
    let guard = ActiveGuard(&shared);

    // Fault injection (rejections) is spoken in plain DICOM only.
    let rejection = if shared.config.tls.is_some() {
        None
    } else if b.reject_permanent {
        Some((
            AssociationRJResult::Permanent,
            AssociationRJSource::ServiceUser(AssociationRJServiceUserReason::CallingAETitleNotRecognized),
        ))
    } else if n <= b.reject_transient_first || b.random_faults.is_some_and(|f| RandomFaults::roll(f.reject_per_mille)) {
        Some((
            AssociationRJResult::Transient,
            AssociationRJSource::ServiceProviderPresentation(
                AssociationRJServiceProviderPresentationReason::TemporaryCongestion,
            ),
        ))
    } else if b.max_associations.is_some_and(|max| active > max) {
        Some((
            AssociationRJResult::Transient,
            AssociationRJSource::ServiceProviderPresentation(
                AssociationRJServiceProviderPresentationReason::LocalLimitExceeded,
            ),
        ))
    } else {
        None
    };
    if let Some((result, source)) = rejection {
        drop(guard);
        c.rejected.fetch_add(1, Ordering::SeqCst);
        reject(&mut socket, result, source).await;
        return;
    }
    c.peak_active.fetch_max(active, Ordering::SeqCst);

    let max_pdu = b.max_pdu_length.unwrap_or(16384);
    let mut options = ServerAssociationOptions::new()
        .ae_title(shared.config.ae_title.clone())
        // Promiscuous would accept the C-GET models too.
        .promiscuous(!b.no_get)
        .strict(false)
        .max_pdu_length(max_pdu)
        .with_abstract_syntax(uids::VERIFICATION)
        .with_abstract_syntax(uids::STUDY_ROOT_FIND)
        .with_abstract_syntax(uids::PATIENT_ROOT_FIND)
        .with_abstract_syntax(crate::dimse::commitment::STORAGE_COMMITMENT_PUSH);
    if shared.config.worklist.is_some() {
        options = options.with_abstract_syntax(uids::MODALITY_WORKLIST_FIND);
    }
    if !b.no_get {
        options = options
            .with_abstract_syntax(uids::STUDY_ROOT_GET)
            .with_abstract_syntax(uids::PATIENT_ROOT_GET)
            .with_abstract_syntax(uids::STUDY_ROOT_MOVE)
            .with_abstract_syntax(uids::PATIENT_ROOT_MOVE);
    }
    for sop in uids::DEFAULT_STORAGE_SOP_CLASSES {
        options = options.with_abstract_syntax(*sop);
    }
    for ts in b.transfer_syntaxes.iter().flatten() {
        options = options.with_transfer_syntax(ts.clone());
    }
    let options = options.with_negotiation(RoleNegotiation {
        omit: b.omit_role_selection,
    });
    if b.require_called_ae {
        establish(options.accept_called_ae_title(), socket, peer, &shared, &mut stop).await;
    } else {
        establish(options, socket, peer, &shared, &mut stop).await;
    }
    drop(guard);
}

/// Negotiate (after the TLS handshake, when serving TLS) and serve the association.
async fn establish<A: AccessControl, N: Negotiation>(
    options: ServerAssociationOptions<'_, A, N>,
    socket: TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    stop: &mut watch::Receiver<bool>,
) {
    match shared.config.tls.clone() {
        None => {
            let established = tokio::time::timeout(ACSE_TIMEOUT, options.establish_async(socket)).await;
            run_established(established, peer, shared, stop).await;
        }
        Some(tls) => {
            // The TLS handshake counts against the ACSE timeout too.
            let options = options.tls_config(tls);
            let established = tokio::time::timeout(ACSE_TIMEOUT, options.establish_tls_async(socket)).await;
            run_established(established, peer, shared, stop).await;
        }
    }
}

async fn run_established<S: ScpStream>(
    established: Result<Result<ServerAssoc<S>, dicom_ul::association::Error>, tokio::time::error::Elapsed>,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    stop: &mut watch::Receiver<bool>,
) {
    let c = &shared.counters;
    let mut assoc = match established {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => {
            c.rejected.fetch_add(1, Ordering::SeqCst);
            tracing::debug!(%peer, error = %e, "association not established");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "association negotiation timed out");
            return;
        }
    };
    c.accepted.fetch_add(1, Ordering::SeqCst);
    shared.record_calling_ae(assoc.peer_ae_title());
    tracing::debug!(%peer, calling_ae = %assoc.peer_ae_title(), contexts = assoc.presentation_contexts().len(), "association accepted");
    let mut conn = Conn {
        shared,
        owned: shared.clone(),
        calling_ae: assoc.peer_ae_title().to_string(),
        peer,
        incoming: None,
    };
    conn.run(&mut assoc, stop).await;
}

/// SCP/SCU Role Selection (PS3.7 D.3.3.4): the requestor gets the roles it asks
/// for (a C-GET requestor, the SCP role for storage); with `omit`, no answer at all.
struct RoleNegotiation {
    omit: bool,
}

impl dicom_ul::association::server::Negotiation for RoleNegotiation {
    fn negotiate_roles(
        &self,
        _sop_class_uid: &str,
        scu_role: bool,
        scp_role: bool,
    ) -> Option<dicom_ul::pdu::RequestorRoles> {
        (!self.omit).then_some(dicom_ul::pdu::RequestorRoles {
            scu: scu_role,
            scp: scp_role,
        })
    }
}

async fn reject(socket: &mut TcpStream, result: AssociationRJResult, source: AssociationRJSource) {
    let mut buf = BytesMut::with_capacity(1024);
    // Read the A-ASSOCIATE-RQ first so the requestor sees an answer, not a reset.
    let _ = tokio::time::timeout(
        ACSE_TIMEOUT,
        dicom_ul::association::read_pdu_from_wire_async(socket, &mut buf, 65536, false),
    )
    .await;
    let mut out = Vec::new();
    if dicom_ul::pdu::write_pdu(&mut out, &Pdu::AssociationRJ(AssociationRJ { result, source })).is_ok() {
        let _ = socket.write_all(&out).await;
    }
    let _ = socket.shutdown().await;
}

pub(super) struct Conn<'a> {
    pub(super) shared: &'a Shared,
    /// The same, for work moved to the blocking pool.
    owned: Arc<Shared>,
    pub(super) calling_ae: String,
    peer: SocketAddr,
    /// A C-STORE whose data set is being streamed to disk (the listener).
    pub(super) incoming: Option<super::incoming::Incoming>,
}

pub(super) enum Next {
    Continue,
    Stop,
}

impl Conn<'_> {
    async fn run<S: ScpStream>(&mut self, assoc: &mut ServerAssoc<S>, stop: &mut watch::Receiver<bool>) {
        let c = &self.shared.counters;
        let idle = self.shared.config.behavior.close_idle_after;
        let mut reader = MessageReader::new(self.shared.config.limits);
        loop {
            let at_boundary = reader.is_idle() && self.incoming.is_none();
            let pdu = tokio::select! {
                _ = stop.changed() => {
                    let _ = send_pdu(assoc, &Pdu::AbortRQ { source: AbortRQSource::ServiceUser }).await;
                    return;
                }
                r = receive(assoc, if at_boundary { idle } else { None }) => r,
            };
            let pdu = match pdu {
                Ok(Some(pdu)) => pdu,
                Ok(None) => {
                    c.closed_idle.fetch_add(1, Ordering::SeqCst);
                    let _ = assoc.inner_stream().shutdown().await;
                    return;
                }
                Err(_) => return,
            };
            match pdu {
                Pdu::PData { data } => {
                    for pdv in data {
                        match self.on_pdv(assoc, &mut reader, pdv).await {
                            Next::Continue => {}
                            Next::Stop => return,
                        }
                    }
                }
                Pdu::ReleaseRQ => {
                    c.released.fetch_add(1, Ordering::SeqCst);
                    let _ = send_pdu(assoc, &Pdu::ReleaseRP).await;
                    let _ = assoc.inner_stream().shutdown().await;
                    return;
                }
                Pdu::AbortRQ { .. } => {
                    c.aborted_by_peer.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                _ => {
                    let _ = send_pdu(
                        assoc,
                        &Pdu::AbortRQ {
                            source: AbortRQSource::ServiceUser,
                        },
                    )
                    .await;
                    return;
                }
            }
        }
    }

    /// One fragment: on a context we accepted, within the limits, of the kind the
    /// message needs next; anything else aborts the association (PS3.8 7.1.1.13
    /// leaves no other way to tell the requestor its message was not understood).
    async fn on_pdv<S: ScpStream>(
        &mut self,
        assoc: &mut ServerAssoc<S>,
        reader: &mut MessageReader,
        pdv: dicom_ul::pdu::PDataValue,
    ) -> Next {
        let ctx = pdv.presentation_context_id;
        let accepted = assoc
            .presentation_contexts()
            .iter()
            .any(|pc| pc.id == ctx && pc.reason == PresentationContextResultReason::Acceptance);
        if !accepted {
            tracing::debug!(
                context = ctx,
                "P-DATA on a presentation context that was not accepted: aborting"
            );
            return self.abort(assoc).await;
        }
        let pdv = Pdv {
            context_id: ctx,
            is_command: pdv.value_type == PDataValueType::Command,
            is_last: pdv.is_last,
            data: pdv.data,
        };
        if self.incoming.is_some() {
            return self.on_incoming(assoc, pdv).await;
        }
        match reader.push(pdv) {
            Ok(None) => {
                if let Some(dir) = self.shared.storage.streaming_dir().map(|d| d.to_path_buf()) {
                    let store = |c: &Command| c.command_field() == Some(field::C_STORE_RQ);
                    if let Some((ctx, command)) = reader.take_awaiting_data(store) {
                        let ts = transfer_syntax_of(assoc, ctx).unwrap_or_default();
                        self.begin_incoming(ctx, command, ts, dir);
                    }
                }
                Next::Continue
            }
            Ok(Some(msg)) => self.on_message(assoc, msg.context_id, msg.command, msg.data_set).await,
            Err(e) => {
                tracing::debug!(error = %e, "aborting the association");
                self.abort(assoc).await
            }
        }
    }

    pub(super) async fn abort<S: ScpStream>(&self, assoc: &mut ServerAssoc<S>) -> Next {
        self.shared.counters.aborted_by_us.fetch_add(1, Ordering::SeqCst);
        let _ = send_pdu(
            assoc,
            &Pdu::AbortRQ {
                source: AbortRQSource::ServiceUser,
            },
        )
        .await;
        let _ = assoc.inner_stream().shutdown().await;
        Next::Stop
    }

    async fn on_message<S: ScpStream>(
        &mut self,
        assoc: &mut ServerAssoc<S>,
        ctx: u8,
        cmd: Command,
        data: Option<Vec<u8>>,
    ) -> Next {
        let c = &self.shared.counters;
        let b = &self.shared.config.behavior;
        if let Some(f) = b.random_faults {
            if RandomFaults::roll(f.abort_per_mille) {
                return self.abort(assoc).await;
            }
            if RandomFaults::roll(f.close_per_mille) {
                let _ = assoc.inner_stream().shutdown().await;
                return Next::Stop;
            }
            if RandomFaults::roll(f.delay_per_mille) && !f.max_delay.is_zero() {
                tokio::time::sleep(f.max_delay.mul_f64(rand::random::<f64>())).await;
            }
        }
        let id = cmd.message_id().unwrap_or(0);
        let sop_class = cmd.text(tag::AFFECTED_SOP_CLASS_UID).unwrap_or_default();
        // `on_pdv` only lets messages on accepted contexts through.
        let Some(ts) = transfer_syntax_of(assoc, ctx) else {
            return self.abort(assoc).await;
        };
        match cmd.command_field() {
            Some(field::C_ECHO_RQ) => {
                c.echoes.fetch_add(1, Ordering::SeqCst);
                self.delay().await;
                let rsp = response(field::C_ECHO_RSP, Some(&sop_class), id, 0x0000, false, None);
                self.send(assoc, ctx, &rsp, None).await
            }
            Some(field::C_STORE_RQ) => {
                let n = c.store_requests.fetch_add(1, Ordering::SeqCst) + 1;
                let instance = cmd.text(tag::AFFECTED_SOP_INSTANCE_UID).unwrap_or_default();
                if b.abort_on_store == Some(n) {
                    c.aborted_by_us.fetch_add(1, Ordering::SeqCst);
                    let _ = send_pdu(
                        assoc,
                        &Pdu::AbortRQ {
                            source: AbortRQSource::ServiceUser,
                        },
                    )
                    .await;
                    let _ = assoc.inner_stream().shutdown().await;
                    return Next::Stop;
                }
                let scripted = b.store_status.as_ref().and_then(|hook| hook(n, &instance));
                let status = match scripted {
                    Some(s) if s != 0x0000 && !(0xB000..=0xBFFF).contains(&s) && s != 0x0001 => s,
                    other => {
                        let data = data.unwrap_or_default();
                        // Parsing and writing block: off the runtime's threads.
                        let shared = self.owned.clone();
                        let (class, inst, calling) = (sop_class.clone(), instance.clone(), self.calling_ae.clone());
                        let origin = cmd
                            .text(tag::MOVE_ORIGINATOR_AE)
                            .filter(|ae| !ae.is_empty())
                            .map(|ae| (ae, cmd.u16(tag::MOVE_ORIGINATOR_MESSAGE_ID).unwrap_or(0)));
                        let stored = tokio::task::spawn_blocking(move || {
                            shared.storage.store_from(&class, &inst, &ts, &calling, origin, data)
                        })
                        .await
                        .unwrap_or_else(|e| {
                            Err(StoreRefusal {
                                status: 0xA700,
                                reason: format!("storage task failed: {e}"),
                            })
                        });
                        match stored {
                            Ok(()) => other.unwrap_or(0x0000),
                            Err(refusal) => {
                                // The UID only if it is one (it may be the reason).
                                let uid = if is_valid_uid(&instance) {
                                    instance.as_str()
                                } else {
                                    "(invalid)"
                                };
                                tracing::warn!(sop_instance_uid = %uid, reason = %refusal.reason, status = format!("{:04X}", refusal.status), "instance not stored");
                                refusal.status
                            }
                        }
                    }
                };
                self.delay().await;
                let rsp = response(field::C_STORE_RSP, Some(&sop_class), id, status, false, Some(&instance));
                self.send(assoc, ctx, &rsp, None).await
            }
            Some(field::C_FIND_RQ) => {
                c.find_requests.fetch_add(1, Ordering::SeqCst);
                self.find(assoc, ctx, id, &sop_class, &ts, data).await
            }
            Some(field::C_GET_RQ) => {
                super::retrieve::serve_get(assoc, &self.owned, ctx, id, &sop_class, &ts, data).await
            }
            Some(field::C_MOVE_RQ) => {
                let destination = cmd.text(tag::MOVE_DESTINATION).unwrap_or_default();
                let calling = self.calling_ae.clone();
                super::retrieve::serve_move(
                    assoc,
                    &self.owned,
                    ctx,
                    id,
                    &sop_class,
                    &ts,
                    data,
                    &destination,
                    &calling,
                )
                .await
            }
            Some(field::N_ACTION_RQ) => {
                let (calling, peer) = (self.calling_ae.clone(), self.peer);
                super::commitment::serve_action(assoc, &self.owned, ctx, &cmd, data, &ts, &calling, peer).await
            }
            Some(field::N_EVENT_REPORT_RQ) => {
                super::commitment::serve_event_report(assoc, &self.owned, ctx, &cmd, data, &ts).await
            }
            // The answer to a commitment report we sent on this association.
            Some(field::N_EVENT_REPORT_RSP) => Next::Continue,
            Some(field::C_CANCEL_RQ) => {
                // A cancel for a find that already finished: nothing to do (PS3.7 9.3.2.3).
                c.cancels.fetch_add(1, Ordering::SeqCst);
                Next::Continue
            }
            Some(f) if f & 0x8000 == 0 => {
                let rsp = response(f | 0x8000, Some(&sop_class), id, 0x0211, false, None);
                self.send(assoc, ctx, &rsp, None).await
            }
            _ => {
                let _ = send_pdu(
                    assoc,
                    &Pdu::AbortRQ {
                        source: AbortRQSource::ServiceUser,
                    },
                )
                .await;
                Next::Stop
            }
        }
    }

    async fn find<S: ScpStream>(
        &mut self,
        assoc: &mut ServerAssoc<S>,
        ctx: u8,
        id: u16,
        sop_class: &str,
        ts_uid: &str,
        data: Option<Vec<u8>>,
    ) -> Next {
        let c = &self.shared.counters;
        let final_status = |status: u16| response(field::C_FIND_RSP, Some(sop_class), id, status, false, None);
        let Some(ts) = TransferSyntaxRegistry.get(ts_uid) else {
            return self.send(assoc, ctx, &final_status(0xA900), None).await;
        };
        let limit = self
            .shared
            .config
            .limits
            .max_data_set_bytes
            .min(Limits::DEFAULT_MAX_DATA_SET_BYTES);
        let Some(data) = data else {
            return self.send(assoc, ctx, &final_status(0xA900), None).await;
        };
        let patient_root = sop_class == uids::PATIENT_ROOT_FIND;
        let worklist = super::worklist::is_worklist(sop_class);
        // Decoding the identifier and searching the index block: off the runtime.
        let shared = self.owned.clone();
        let ts_uid = ts_uid.to_string();
        let searched = tokio::task::spawn_blocking(move || {
            let query = decode_checked(&data, &ts_uid, limit).map_err(|e| {
                tracing::debug!(error = %e, "C-FIND identifier refused");
                0xA900u16
            })?;
            if worklist {
                return shared.config.worklist.as_ref().ok_or(0xC000u16)?.find(&query);
            }
            shared.storage.find(&query, patient_root)
        })
        .await
        .unwrap_or(Err(0xA700));
        let matches = match searched {
            Ok(m) => m,
            Err(status) => return self.send(assoc, ctx, &final_status(status), None).await,
        };
        for m in matches {
            // A C-CANCEL may be waiting: look without blocking (dicom-ul keeps partial
            // reads in its buffer, so a cancelled receive loses nothing).
            if let Ok(Ok(pdu)) = tokio::time::timeout(Duration::ZERO, assoc.receive()).await {
                if let Pdu::PData { data } = &pdu {
                    let cancel = data.iter().any(|v| {
                        v.value_type == PDataValueType::Command
                            && Command::decode(&v.data).ok().and_then(|c| c.command_field()) == Some(field::C_CANCEL_RQ)
                    });
                    if cancel {
                        c.cancels.fetch_add(1, Ordering::SeqCst);
                        return self.send(assoc, ctx, &final_status(0xFE00), None).await;
                    }
                }
                if matches!(pdu, Pdu::AbortRQ { .. }) {
                    c.aborted_by_peer.fetch_add(1, Ordering::SeqCst);
                    return Next::Stop;
                }
            }
            let mut bytes = Vec::new();
            if m.write_dataset_with_ts(&mut bytes, ts).is_err() {
                continue;
            }
            self.delay().await;
            let pending = response(field::C_FIND_RSP, Some(sop_class), id, 0xFF00, true, None);
            if let Next::Stop = self.send(assoc, ctx, &pending, Some(&bytes)).await {
                return Next::Stop;
            }
        }
        self.delay().await;
        self.send(assoc, ctx, &final_status(0x0000), None).await
    }

    pub(super) async fn delay(&self) {
        if let Some(d) = self.shared.config.behavior.response_delay {
            tokio::time::sleep(d).await;
        }
    }

    pub(super) async fn send<S: ScpStream>(
        &self,
        assoc: &mut ServerAssoc<S>,
        ctx: u8,
        cmd: &Command,
        data: Option<&[u8]>,
    ) -> Next {
        send(assoc, ctx, cmd, data).await
    }
}

/// Receive a PDU; `Ok(None)` when `idle` passed with nothing.
/// One DIMSE message (a command, and its data set if any) to the requestor, in
/// P-DATA PDUs within its maximum length; `Stop` when the association broke.
pub(super) async fn send<S: ScpStream>(
    assoc: &mut ServerAssoc<S>,
    ctx: u8,
    cmd: &Command,
    data: Option<&[u8]>,
) -> Next {
    let max = match assoc.requestor_max_pdu_length() {
        0 => 1 << 20,
        n => n,
    };
    let mut buf = Vec::new();
    encode_pdata(&mut buf, ctx, true, &cmd.encode(), true, max);
    if let Some(d) = data {
        encode_pdata(&mut buf, ctx, false, d, true, max);
    }
    match assoc.inner_stream().write_all(&buf).await {
        Ok(()) => Next::Continue,
        Err(_) => Next::Stop,
    }
}

/// The transfer syntax of presentation context `ctx`.
fn transfer_syntax_of<S: ScpStream>(assoc: &ServerAssoc<S>, ctx: u8) -> Option<String> {
    assoc
        .presentation_contexts()
        .iter()
        .find(|pc| pc.id == ctx)
        .map(|pc| pc.transfer_syntax.trim_end_matches('\0').to_string())
}

async fn receive<S: ScpStream>(assoc: &mut ServerAssoc<S>, idle: Option<Duration>) -> Result<Option<Pdu>, ()> {
    quickack(assoc);
    match idle {
        Some(d) => match tokio::time::timeout(d, assoc.receive()).await {
            Ok(r) => r.map(Some).map_err(|_| ()),
            Err(_) => Ok(None),
        },
        None => assoc.receive().await.map(Some).map_err(|_| ()),
    }
}

async fn send_pdu<S: ScpStream>(assoc: &mut ServerAssoc<S>, pdu: &Pdu) -> Result<(), ()> {
    let mut out = Vec::new();
    dicom_ul::pdu::write_pdu(&mut out, pdu).map_err(|_| ())?;
    assoc.inner_stream().write_all(&out).await.map_err(|_| ())
}

/// Re-arm TCP_QUICKACK (Linux) before reading: a requestor with Nagle on (stock
/// DCMTK, Orthanc) holds the tail of each data set until its start is acknowledged,
/// and a delayed ACK would stall every C-STORE by ~40 ms.
pub(super) fn quickack<S: ScpStream>(assoc: &mut ServerAssoc<S>) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let _ = socket2::SockRef::from(assoc.inner_stream().tcp()).set_tcp_quickack(true);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = assoc;
    }
}
