//! `pacs-net get` and `pacs-net move`: C-GET / C-MOVE through the node's pool.
//! A C-GET's instances are written under `--out DIR` as they arrive; a C-MOVE to
//! our own AE title runs a storage listener for its length, which writes them
//! there (matched to the move by Move Originator AE / Message ID); a C-MOVE to a
//! third AE is followed through its counts. A progress bar (instances and bytes)
//! on a terminal, one summary line (completed / warning / failed / remaining
//! sub-operations, bytes, seconds), `--report` JSON. Ctrl-C sends C-CANCEL, waits
//! for the PACS to end the retrieve, prints the summary, writes the report, exits
//! 130.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;

use crate::association::AssociationError;
use crate::client::{Client, OpError, OpOptions, OperationError, RetrievalItem, RetrieveReport, RetrieveRequest};
use crate::dimse::{FindQuery, ReceivedInstance, RetrieveEvent, RetrieveKind, Status, SubOperations};
use crate::resilience::ExecError;
use crate::scp::{belongs_to_move, StorageListener};

use super::failure;
use super::{error_line, exit, Interrupt};

pub(super) struct RetrieveOpts {
    pub target: String,
    /// C-GET, or C-MOVE to `destination` (already defaulted to our AE title).
    pub kind: RetrieveKind,
    /// Where instances are written (C-GET; C-MOVE to ourselves).
    pub out: Option<PathBuf>,
    /// C-MOVE to ourselves: where the storage listener listens.
    pub listen: Option<SocketAddr>,
    /// Associations the retrieve is spread over.
    pub concurrency: usize,
    pub report: Option<PathBuf>,
    pub progress: bool,
}

/// `--report` JSON (spec: "get / move / commit report").
#[derive(Debug, Serialize)]
struct Report {
    target: String,
    operation: &'static str,
    destination: String,
    final_status: Option<String>,
    completed: u32,
    warning: u32,
    failed: u32,
    remaining: u32,
    bytes: u64,
    elapsed_ms: u128,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cancelled: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    interrupted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    instances: Vec<InstanceLine>,
    failed_sop_instance_uids: Vec<String>,
}

#[derive(Debug, Serialize)]
struct InstanceLine {
    sop_class_uid: String,
    sop_instance_uid: String,
    path: Option<String>,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `move`'s options, before the config resolves them.
pub(super) struct MoveArgs {
    pub target: String,
    pub dest: Option<String>,
    pub out: Option<PathBuf>,
    pub port: Option<u16>,
    pub concurrency: usize,
    pub report: Option<PathBuf>,
    pub progress: bool,
}

/// `move`: the destination (default our AE title), and for our own AE the
/// listener's address and folder (`--port`/`--out`, else the config's `listener`).
pub(super) async fn run_move(client: Arc<Client>, args: MoveArgs, query: FindQuery, interrupt: Interrupt) -> u8 {
    let ours = client.calling_ae().to_string();
    let destination = args.dest.clone().unwrap_or_else(|| ours.clone());
    if let Err(reason) = crate::config::validate_ae_title(&destination) {
        error_line!("--dest {destination:?}: {reason}");
        return exit::USAGE;
    }
    let listener_config = client.config().listener.clone();
    let (listen, out) = if destination.trim() == ours.trim() {
        let Some(port) = args.port.or(listener_config.as_ref().map(|l| l.port)) else {
            error_line!(
                "a C-MOVE to our own AE title {ours} needs a port to receive on: --port P, or listener.port in the config"
            );
            return exit::USAGE;
        };
        let Some(out) = args
            .out
            .clone()
            .or(listener_config.as_ref().and_then(|l| l.storage_dir.clone()))
        else {
            error_line!("a C-MOVE to our own AE title {ours} needs --out DIR (or listener.storage_dir in the config)");
            return exit::USAGE;
        };
        if let Err(e) = check_out_dir(&out) {
            error_line!("--out {}: {e}", out.display());
            return exit::USAGE;
        }
        let bind = listener_config.as_ref().map_or("127.0.0.1", |l| l.bind.as_str());
        let addr: SocketAddr = match crate::config::host_port(bind, port).parse() {
            Ok(a) => a,
            Err(e) => {
                error_line!("listener.bind {bind}: {e}");
                return exit::USAGE;
            }
        };
        (Some(addr), Some(out))
    } else {
        (None, None)
    };
    let opts = RetrieveOpts {
        target: args.target,
        kind: RetrieveKind::Move { destination },
        out,
        listen,
        concurrency: args.concurrency,
        report: args.report,
        progress: args.progress,
    };
    retrieve(client, opts, query, interrupt).await
}

/// `--out DIR`: created (and checked writable) before anything is sent.
pub(super) fn check_out_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot be created: {e}"))?;
    let probe = dir.join(format!(".pacs-net-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| format!("cannot be written: {e}"))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// A retrieve needs at least one key with a value (its identifier).
pub(super) fn check_keys(query: &FindQuery) -> Result<(), String> {
    if query.keys.iter().any(|k| !k.value.is_empty()) {
        Ok(())
    } else {
        Err(
            "a retrieve needs at least one -k KEY=VALUE naming what to retrieve (e.g. -k StudyInstanceUID=1.2.3)"
                .into(),
        )
    }
}

pub(super) async fn retrieve(client: Arc<Client>, opts: RetrieveOpts, query: FindQuery, interrupt: Interrupt) -> u8 {
    let node = match client.node(&opts.target) {
        Ok(n) => n,
        Err(e) => return super::target_error(e),
    };
    let op = opts.kind.name();
    let destination = match &opts.kind {
        RetrieveKind::Get => client.calling_ae().to_string(),
        RetrieveKind::Move { destination } => destination.clone(),
    };
    // C-MOVE to ourselves: listen for the PACS's C-STOREs while the move runs.
    let mut listener = match (&opts.kind, opts.listen, &opts.out) {
        (RetrieveKind::Move { .. }, Some(addr), Some(dir)) => {
            match StorageListener::start(client.calling_ae(), addr, dir).await {
                Ok(l) => Some(l),
                Err(e) => {
                    error_line!("cannot listen on {addr} for the C-MOVE's instances: {e}");
                    return exit::FAILED;
                }
            }
        }
        _ => None,
    };
    let retrieve_timeout = node.config().timeouts.retrieve;
    let bar = progress_bar(opts.progress);
    let started = Instant::now();
    let request = match &opts.kind {
        RetrieveKind::Get => RetrieveRequest::get(query, opts.out.as_deref().unwrap_or(Path::new("."))),
        RetrieveKind::Move { destination } => RetrieveRequest::move_to(query, destination),
    };
    let mut stream = node.retrieval(request.with_concurrency(opts.concurrency), OpOptions::default());
    let mut instances: Vec<ReceivedInstance> = Vec::new();
    let mut bytes = 0u64;
    let mut last_progress = SubOperations::default();
    let mut cancel_sent = false;
    let mut message_ids: Vec<u16> = Vec::new();
    // Instances naming a Message ID not (yet) ours: a part's request event may reach
    // us after its first instance. Judged again once every request is known, with
    // what is still queued at the end.
    let mut unmatched = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let report = loop {
        let item = tokio::select! {
            item = stream.next() => item,
            Some(stored) = next_stored(&mut listener) => {
                if let Some(other) = take_stored(stored, client.calling_ae(), &message_ids, &mut instances, &mut bytes, bar.as_ref()) {
                    unmatched.push(other);
                }
                continue;
            }
            _ = tick.tick() => {
                if interrupt.is_set() && !cancel_sent {
                    cancel_sent = true;
                    stream.cancel();
                }
                continue;
            }
        };
        match item {
            Some(RetrievalItem::Event(RetrieveEvent::Instance(i))) => {
                if i.path.is_some() {
                    bytes += i.bytes;
                } else {
                    let line = format!(
                        "failed {}: {}",
                        i.sop_instance_uid,
                        i.error.as_deref().unwrap_or("not written")
                    );
                    match &bar {
                        Some(b) => b.suspend(|| eprintln!("{line}")),
                        None => eprintln!("{line}"),
                    }
                }
                if let Some(b) = &bar {
                    b.inc(1);
                    b.set_message(human_bytes(bytes));
                }
                instances.push(i);
            }
            Some(RetrievalItem::Event(RetrieveEvent::Progress(c))) => {
                last_progress = c;
                if let (Some(b), Some(remaining)) = (&bar, c.remaining) {
                    let done = u64::from(c.completed) + u64::from(c.failed) + u64::from(c.warning);
                    b.set_length(done + u64::from(remaining));
                    if listener.is_none() && opts.kind != RetrieveKind::Get {
                        b.set_position(done);
                    }
                }
            }
            Some(RetrievalItem::Event(RetrieveEvent::Requested { message_id: id })) => message_ids.push(id),
            Some(RetrievalItem::Finished(report)) => break *report,
            None => {
                error_line!("{op} on {}: the retrieve ended without an outcome", opts.target);
                return exit::FAILED;
            }
        }
    };
    // The PACS had each C-STORE answered before it counted it: what it counted has
    // arrived; take what is still queued, then stop listening.
    if let Some(mut l) = listener.take() {
        while let Some(stored) = l.try_next() {
            unmatched.push(stored);
        }
        l.shutdown().await;
    }
    for stored in unmatched {
        if let Some(other) = take_stored(
            stored,
            client.calling_ae(),
            &message_ids,
            &mut instances,
            &mut bytes,
            bar.as_ref(),
        ) {
            tracing::info!(sop_instance_uid = %other.sop_instance_uid, "received an instance of another C-MOVE; written, not counted");
        }
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let elapsed = started.elapsed();
    let RetrieveReport { outcome, last_response } = report;
    let final_counts = last_response
        .as_ref()
        .map(|r| r.sub_operations)
        .unwrap_or(last_progress);
    let final_status = last_response.as_ref().map(|r| r.status);
    let cancelled = last_response.as_ref().is_some_and(|r| r.cancelled) || cancel_sent;
    let failed_uids = last_response
        .as_ref()
        .map(|r| r.failed_sop_instance_uids.clone())
        .unwrap_or_default();
    let error = outcome
        .result
        .as_ref()
        .err()
        .map(|e| describe(e, outcome.attempts, elapsed, retrieve_timeout));
    if let Some(e) = &error {
        match &opts.kind {
            RetrieveKind::Get => error_line!("C-GET on {} failed: {e}", opts.target),
            RetrieveKind::Move { destination } => {
                error_line!("C-MOVE on {} to destination {destination} failed: {e}", opts.target)
            }
        }
    }
    if let Some(s) = final_status.filter(|s| s.is_warning()) {
        eprintln!("warning {} {}: {}", s.hex(), opts.target, s.retrieve_meaning());
    }
    for uid in &failed_uids {
        eprintln!("failed sub-operation {uid}");
    }
    let remaining = u32::from(final_counts.remaining.unwrap_or(0));
    // A failed retrieve that moved nothing has no result on stdout.
    let got_any = error.is_none()
        || !instances.is_empty()
        || final_counts.completed + final_counts.warning + final_counts.failed > 0;
    if got_any {
        println!(
            "{} completed, {} warning, {} failed, {} remaining, {} bytes in {:.2} s",
            final_counts.completed,
            final_counts.warning,
            final_counts.failed,
            remaining,
            bytes,
            elapsed.as_secs_f64()
        );
    }
    if let Some(path) = &opts.report {
        let report = Report {
            target: opts.target.clone(),
            operation: if opts.kind == RetrieveKind::Get { "get" } else { "move" },
            destination,
            final_status: final_status.map(|s| s.hex()),
            completed: final_counts.completed.into(),
            warning: final_counts.warning.into(),
            failed: final_counts.failed.into(),
            remaining,
            bytes,
            elapsed_ms: elapsed.as_millis(),
            cancelled,
            interrupted: interrupt.is_set(),
            error: error.clone(),
            instances: instances
                .iter()
                .map(|i| InstanceLine {
                    sop_class_uid: i.sop_class_uid.clone(),
                    sop_instance_uid: i.sop_instance_uid.clone(),
                    path: i.path.as_ref().map(|p| p.display().to_string()),
                    status: i.status.hex(),
                    error: i.error.clone(),
                })
                .collect(),
            failed_sop_instance_uids: failed_uids.clone(),
        };
        let written = serde_json::to_vec_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|e| e.to_string()));
        if let Err(e) = written {
            error_line!("cannot write the report {}: {e}", path.display());
            return exit::FAILED;
        }
    }
    if interrupt.is_set() {
        return exit::INTERRUPTED;
    }
    let refused_here = instances.iter().any(|i| i.path.is_none());
    if error.is_some() || final_counts.failed > 0 || !failed_uids.is_empty() || refused_here || cancelled {
        exit::FAILED
    } else if final_status.is_some_and(|s| s.is_success()) {
        exit::OK
    } else {
        exit::FAILED
    }
}

/// The next instance the listener received, if there is a listener.
async fn next_stored(listener: &mut Option<StorageListener>) -> Option<crate::scp::StoredInstance> {
    match listener {
        Some(l) => l.next().await,
        None => std::future::pending().await,
    }
}

/// An instance the listener received: counted when it belongs to our move(s), else
/// handed back.
fn take_stored(
    stored: crate::scp::StoredInstance,
    our_ae: &str,
    message_ids: &[u16],
    instances: &mut Vec<ReceivedInstance>,
    bytes: &mut u64,
    bar: Option<&indicatif::ProgressBar>,
) -> Option<crate::scp::StoredInstance> {
    if !belongs_to_move(&stored, our_ae, message_ids) {
        return Some(stored);
    }
    *bytes += stored.size as u64;
    if let Some(b) = bar {
        b.inc(1);
        b.set_message(human_bytes(*bytes));
    }
    instances.push(ReceivedInstance {
        sop_class_uid: stored.sop_class_uid,
        sop_instance_uid: stored.sop_instance_uid,
        transfer_syntax: stored.transfer_syntax,
        path: stored.path,
        bytes: stored.size as u64,
        status: Status::SUCCESS,
        error: None,
    });
    None
}

/// The error for people: a retrieve timeout named as such, and instances rather
/// than matches.
fn describe(e: &OperationError, attempts: u32, elapsed: Duration, retrieve_timeout: Duration) -> String {
    let last = match e {
        ExecError::Operation(last) => Some(last),
        _ => None,
    };
    match last {
        Some(OpError::Association(AssociationError::DimseTimeout(after))) if *after == retrieve_timeout => format!(
            "retrieve timeout ({}, timeouts.retrieve_ms) expired waiting for the PACS; association aborted",
            failure::secs(*after)
        ),
        Some(OpError::Interrupted { matches, source }) => format!(
            "interrupted after {matches} instances (not retried: they were already received): {}",
            failure::op_error(source)
        ),
        Some(OpError::Status { status, comment }) => format!(
            "{} ({}){}",
            status.hex(),
            status.retrieve_meaning(),
            comment.as_ref().map(|c| format!(": {c}")).unwrap_or_default()
        ),
        _ => failure::describe(e, attempts, elapsed),
    }
}

fn progress_bar(enabled: bool) -> Option<indicatif::ProgressBar> {
    if !enabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} instances {msg}")
    {
        bar.set_style(style);
    }
    Some(bar)
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}
