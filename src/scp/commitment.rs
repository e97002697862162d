//! Storage Commitment Push Model (PS3.4 J) in the embedded SCP, both ways:
//! as the performer, it answers an N-ACTION "Request Storage Commitment" by
//! committing the instances it holds and failing the others (0112 no such object
//! instance; 0119 when held under another SOP class), and reports on the same
//! association or on a new one to the requester ([`CommitReportMode`]); as a
//! listener, it takes the N-EVENT-REPORTs a PACS sends us and hands them to the
//! waiting request through a [`CommitmentRouter`] ([`CommitmentListener`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use crate::association::{uids, Association, AssociationParams, Profile, ProposedContext};
use crate::dimse::command::{field, tag, Command};
use crate::dimse::commitment::{
    decode_report, encode_data_set, n_action_rsp, n_event_report_rq, reason, CommitmentReport, CommitmentRequest,
    ACTION_REQUEST_COMMITMENT, EVENT_ALL_COMMITTED, EVENT_FAILURES_EXIST, STORAGE_COMMITMENT_INSTANCE,
    STORAGE_COMMITMENT_PUSH,
};
use crate::dimse::dataset_check::decode_checked;
use crate::dimse::CommitmentRouter;

use super::handler::{send, Next, ScpStream, ServerAssoc};
use super::{Scp, ScpConfig, Shared};

/// Where the SCP sends the report of a commitment request (PS3.4 J.3.3 lets the
/// performer choose).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CommitReportMode {
    /// On the association that carried the N-ACTION, right after its response.
    #[default]
    SameAssociation,
    /// On a new association to the requester (its AE title as Called AE, the SCP
    /// role for Storage Commitment requested): at the address of
    /// [`ScpConfig::move_destinations`] for that AE title if listed, else at the
    /// requester's IP address and `port`.
    NewAssociation {
        /// The requester's listening port (when its AE title is not in `move_destinations`).
        port: Option<u16>,
    },
}

/// Message IDs of the N-EVENT-REPORT-RQs the SCP sends.
static NEXT_REPORT_ID: AtomicU16 = AtomicU16::new(1);

fn next_report_id() -> u16 {
    match NEXT_REPORT_ID.fetch_add(1, Ordering::Relaxed) {
        0 => NEXT_REPORT_ID.fetch_add(1, Ordering::Relaxed),
        n => n,
    }
}

/// The report of `request` over what `shared` holds.
fn judge(shared: &Shared, request: &CommitmentRequest) -> CommitmentReport {
    let held: HashMap<String, String> = shared
        .storage
        .instances()
        .into_iter()
        .map(|i| (i.sop_instance_uid, i.sop_class_uid))
        .collect();
    let mut report = CommitmentReport {
        transaction_uid: request.transaction_uid.clone(),
        event_type: EVENT_ALL_COMMITTED,
        committed: Vec::new(),
        failed: Vec::new(),
    };
    for r in &request.instances {
        match held.get(&r.sop_instance_uid) {
            Some(class) if *class == r.sop_class_uid => report.committed.push(r.clone()),
            Some(_) => report.failed.push((r.clone(), reason::CLASS_INSTANCE_CONFLICT)),
            None => report.failed.push((r.clone(), reason::NO_SUCH_OBJECT_INSTANCE)),
        }
    }
    if !report.failed.is_empty() {
        report.event_type = EVENT_FAILURES_EXIST;
    }
    report
}

/// Serve one N-ACTION-RQ: answer it, then report as configured.
#[allow(clippy::too_many_arguments)]
pub(super) async fn serve_action<S: ScpStream>(
    assoc: &mut ServerAssoc<S>,
    shared: &Arc<Shared>,
    ctx: u8,
    cmd: &Command,
    data: Option<Vec<u8>>,
    ts: &str,
    calling_ae: &str,
    peer: SocketAddr,
) -> Next {
    let id = cmd.message_id().unwrap_or(0);
    let action = cmd.u16(tag::ACTION_TYPE_ID);
    if cmd.text(tag::REQUESTED_SOP_CLASS_UID).as_deref() != Some(STORAGE_COMMITMENT_PUSH) {
        return send(assoc, ctx, &n_action_rsp(id, 0x0118, action), None).await;
    }
    if cmd.text(tag::REQUESTED_SOP_INSTANCE_UID).as_deref() != Some(STORAGE_COMMITMENT_INSTANCE) {
        return send(assoc, ctx, &n_action_rsp(id, 0x0117, action), None).await;
    }
    if action != Some(ACTION_REQUEST_COMMITMENT) {
        return send(assoc, ctx, &n_action_rsp(id, 0x0123, action), None).await;
    }
    let limit = shared
        .config
        .limits
        .max_data_set_bytes
        .min(crate::config::Limits::DEFAULT_MAX_DATA_SET_BYTES);
    let request = data
        .ok_or_else(|| "no data set".to_string())
        .and_then(|d| decode_checked(&d, ts, limit).map_err(|e| e.to_string()))
        .and_then(|obj| CommitmentRequest::from_data_set(&obj));
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(error = %e, "storage commitment request refused: 0110");
            return send(assoc, ctx, &n_action_rsp(id, 0x0110, action), None).await;
        }
    };
    if let Next::Stop = send(assoc, ctx, &n_action_rsp(id, 0x0000, action), None).await {
        return Next::Stop;
    }
    let report = judge(shared, &request);
    tracing::info!(
        transaction_uid = %report.transaction_uid,
        committed = report.committed.len(),
        failed = report.failed.len(),
        calling_ae,
        "storage commitment request answered"
    );
    match &shared.config.commit_report {
        CommitReportMode::SameAssociation => match encode_data_set(&report.to_data_set(), ts, "the report") {
            Ok(bytes) => {
                let rq = n_event_report_rq(next_report_id(), report.event_type);
                send(assoc, ctx, &rq, Some(&bytes)).await
            }
            Err(e) => {
                tracing::warn!(error = %e, "storage commitment report not sent");
                Next::Continue
            }
        },
        CommitReportMode::NewAssociation { port } => {
            let destination = shared
                .config
                .move_destinations
                .get(calling_ae.trim())
                .cloned()
                .or_else(|| port.map(|p| (peer.ip().to_string(), p)));
            match destination {
                Some((host, port)) => {
                    let (ae, called) = (shared.config.ae_title.clone(), calling_ae.trim().to_string());
                    tokio::spawn(async move {
                        if let Err(e) = report_on_new_association(&ae, &called, host, port, &report).await {
                            tracing::warn!(called_ae = %called, error = %e, "storage commitment report not delivered");
                        }
                    });
                }
                None => tracing::warn!(
                    calling_ae,
                    "storage commitment report not sent: no address for the requester (commit-report-port)"
                ),
            }
            Next::Continue
        }
    }
}

/// Open an association to the requester (SCP role for Storage Commitment), send
/// the report, read its response, release.
async fn report_on_new_association(
    our_ae: &str,
    called_ae: &str,
    host: String,
    port: u16,
    report: &CommitmentReport,
) -> Result<(), String> {
    let params = AssociationParams {
        calling_ae: our_ae.to_string(),
        called_ae: called_ae.to_string(),
        host,
        port,
        max_pdu_length: 0,
        max_send_pdu_length: 0,
        timeouts: crate::config::Timeouts::default(),
        security: Default::default(),
    };
    let profile = Profile::WithScpRole {
        contexts: vec![ProposedContext::new(STORAGE_COMMITMENT_PUSH, &uids::UNCOMPRESSED_LE)],
        scp_role: vec![STORAGE_COMMITMENT_PUSH.to_string()],
    };
    let mut assoc = Association::establish(&params, &profile)
        .await
        .map_err(|e| e.to_string())?;
    let result = send_report(&mut assoc, report).await;
    assoc.release().await;
    result
}

async fn send_report(assoc: &mut Association, report: &CommitmentReport) -> Result<(), String> {
    let ctx = assoc
        .select(&crate::dimse::commitment::context_request())
        .cloned()
        .ok_or_else(|| "the requester did not accept Storage Commitment".to_string())?;
    let bytes =
        encode_data_set(&report.to_data_set(), &ctx.transfer_syntax, "the report").map_err(|e| e.to_string())?;
    let id = assoc.next_message_id();
    assoc.begin_operation();
    crate::dimse::send_command(assoc, ctx.id, &n_event_report_rq(id, report.event_type), Some(&bytes))
        .await
        .map_err(|e| e.to_string())?;
    let rsp = crate::dimse::receive_message(assoc).await.map_err(|e| e.to_string())?;
    assoc.end_operation();
    match (rsp.command.command_field(), rsp.command.status()) {
        (Some(field::N_EVENT_REPORT_RSP), Some(0x0000)) => Ok(()),
        (Some(field::N_EVENT_REPORT_RSP), Some(s)) => Err(format!("the requester answered the report with {s:04X}")),
        _ => Err("no N-EVENT-REPORT-RSP".into()),
    }
}

/// Take an N-EVENT-REPORT-RQ a PACS sends us: deliver its report to the request
/// waiting for it (0000), or answer 0110 when no request waits for it (late,
/// after our timeout, or not ours) or it does not decode.
pub(super) async fn serve_event_report<S: ScpStream>(
    assoc: &mut ServerAssoc<S>,
    shared: &Arc<Shared>,
    ctx: u8,
    cmd: &Command,
    data: Option<Vec<u8>>,
    ts: &str,
) -> Next {
    let id = cmd.message_id().unwrap_or(0);
    let event_type = cmd.u16(tag::EVENT_TYPE_ID);
    let (mut status, report) = decode_report(cmd, data.as_deref(), ts, &shared.config.limits);
    if let Some(report) = report {
        let uid = report.transaction_uid.clone();
        let delivered = shared.config.commit_router.as_ref().is_some_and(|r| r.deliver(report));
        if delivered {
            tracing::debug!(transaction_uid = %uid, "storage commitment report received");
        } else {
            tracing::warn!(transaction_uid = %uid, "storage commitment report for a transaction nobody waits for: answered 0110");
            status = 0x0110;
        }
    }
    let rsp = crate::dimse::commitment::n_event_report_rsp(id, status, event_type);
    send(assoc, ctx, &rsp, None).await
}

/// A listener for the N-EVENT-REPORTs a PACS sends on associations of its own
/// (the `listener` config / `--port`): reports go to the router.
#[derive(Debug)]
pub struct CommitmentListener {
    scp: Scp,
    router: CommitmentRouter,
}

impl CommitmentListener {
    /// Listen on `bind` as `ae_title`.
    pub async fn start(ae_title: &str, bind: SocketAddr) -> std::io::Result<CommitmentListener> {
        let router = CommitmentRouter::new();
        let config = ScpConfig {
            ae_title: ae_title.to_string(),
            commit_router: Some(router.clone()),
            ..ScpConfig::default()
        };
        let scp = Scp::start(config, bind).await?;
        Ok(CommitmentListener { scp, router })
    }

    /// Where its reports go (give it to [`crate::client::CommitOptions::router`]).
    pub fn router(&self) -> &CommitmentRouter {
        &self.router
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.scp.local_addr()
    }

    /// Stop accepting and end the associations.
    pub async fn shutdown(self) {
        self.scp.shutdown().await;
    }
}
