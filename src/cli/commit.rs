//! `pacs-net commit` and `pacs-net store --commit`: Storage Commitment (Push
//! Model) for the instances in files (read for their UIDs, never sent) or just
//! stored. A listener takes reports the PACS sends on an association of its own
//! (`--port`, else the config's `listener`); reports on the request's own
//! association are taken there. One line on stdout (committed / failed / unknown),
//! every instance not committed on stderr, `--report` JSON; exit 0 only when every
//! instance is committed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;

use crate::client::{open_instance, Client, CommitOptions, CommitReport, Commitment, Node};
use crate::dimse::commitment::failure_reason_meaning;
use crate::dimse::{FileError, SopRef};
use crate::scp::CommitmentListener;

use super::failure::{self, plural};
use super::{error_line, exit};

/// The commitment options of `commit` and `store --commit`.
#[derive(Debug, Clone)]
pub(super) struct CommitArgs {
    /// How long each batch waits for its report.
    pub timeout: Duration,
    /// Where to listen for reports on a new association (else `listener.port`).
    pub port: Option<u16>,
}

/// `commit`'s options.
pub(super) struct CommitOpts {
    pub target: String,
    pub paths: Vec<PathBuf>,
    pub commit: CommitArgs,
    pub report: Option<PathBuf>,
}

/// A commitment ready to run: its listener (when a port is known) and options.
pub(super) struct Committer {
    listener: Option<CommitmentListener>,
    opts: CommitOptions,
}

impl Committer {
    /// Start the listener (`--port`, else the config's `listener`) before anything
    /// is sent; without a port, only reports on the request's own association count.
    pub(super) async fn start(client: &Client, args: &CommitArgs) -> Result<Committer, u8> {
        let listener_config = client.config().listener.clone();
        let port = args.port.or(listener_config.as_ref().map(|l| l.port));
        let listener = match port {
            Some(port) => {
                let bind = listener_config.as_ref().map_or("127.0.0.1", |l| l.bind.as_str());
                let addr: SocketAddr = match crate::config::host_port(bind, port).parse() {
                    Ok(a) => a,
                    Err(e) => {
                        error_line!("listener.bind {bind}: {e}");
                        return Err(exit::USAGE);
                    }
                };
                match CommitmentListener::start(client.calling_ae(), addr).await {
                    Ok(l) => Some(l),
                    Err(e) => {
                        error_line!("cannot listen on {addr} for storage commitment reports: {e}");
                        return Err(exit::FAILED);
                    }
                }
            }
            None => {
                tracing::info!("no --port and no listener in the config: storage commitment reports are taken on the request's own association only");
                None
            }
        };
        let opts = CommitOptions {
            timeout: args.timeout,
            router: listener.as_ref().map(|l| l.router().clone()),
            ..CommitOptions::default()
        };
        Ok(Committer { listener, opts })
    }

    /// Ask `node` to commit `instances`; every batch that failed is said on stderr.
    pub(super) async fn run(&self, node: &Node, instances: Vec<SopRef>) -> CommitReport {
        let started = Instant::now();
        let report = node.commit(instances, &self.opts).await;
        for b in &report.batches {
            if let Err(e) = &b.outcome.result {
                error_line!(
                    "storage commitment request {} ({}) failed: {}",
                    b.transaction_uid,
                    plural(b.instances, "instance", "instances"),
                    failure::describe(e, b.outcome.attempts, started.elapsed())
                );
            }
        }
        report
    }

    /// The timeout each batch waited.
    pub(super) fn timeout(&self) -> Duration {
        self.opts.timeout
    }

    /// Stop the listener.
    pub(super) async fn shutdown(self) {
        if let Some(l) = self.listener {
            l.shutdown().await;
        }
    }
}

/// One instance of the `commit` report.
#[derive(Debug, Serialize)]
struct InstanceLine {
    path: String,
    sop_class_uid: Option<String>,
    sop_instance_uid: Option<String>,
    commitment: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    commitment_failure_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction_uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// One N-ACTION of the `commit` report.
#[derive(Debug, Serialize)]
struct BatchLine {
    transaction_uid: String,
    instances: usize,
    /// The N-ACTION-RSP status, or null where none came.
    action_status: Option<String>,
    /// `same_association`, `new_association`, or null where no report came.
    report: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `commit --report` JSON.
#[derive(Debug, Serialize)]
struct Report {
    target: String,
    operation: &'static str,
    instances_total: usize,
    committed: usize,
    failed: usize,
    unknown: usize,
    elapsed_ms: u128,
    batches: Vec<BatchLine>,
    instances: Vec<InstanceLine>,
}

/// The batches whose N-ACTION failed, by Transaction UID, with why.
fn failed_requests(report: &CommitReport) -> std::collections::HashMap<&str, String> {
    report
        .batches
        .iter()
        .filter_map(|b| {
            b.outcome
                .result
                .as_ref()
                .err()
                .map(|e| (b.transaction_uid.as_str(), e.to_string()))
        })
        .collect()
}

/// The words of one instance's commitment, for stderr.
pub(super) fn describe(c: Commitment, timeout: Duration) -> String {
    match c {
        Commitment::Committed => "committed".into(),
        Commitment::Failed { reason } => {
            format!("commitment failed: {reason:04X} {}", failure_reason_meaning(reason))
        }
        Commitment::Unknown => format!(
            "commitment unknown: no storage commitment report named it within {}",
            failure::secs(timeout)
        ),
    }
}

/// The stdout line of a commitment.
pub(super) fn summary_line(report: &CommitReport, elapsed: Duration) -> String {
    let (committed, failed, unknown) = report.counts();
    format!(
        "storage commitment of {}: {committed} committed, {failed} failed, {unknown} unknown ({}) in {:.3} s",
        plural(report.instances.len(), "instance", "instances"),
        plural(report.batches.len(), "request", "requests"),
        elapsed.as_secs_f64()
    )
}

pub(super) async fn commit(client: Arc<Client>, opts: CommitOpts) -> u8 {
    let node = match client.node(&opts.target) {
        Ok(n) => n,
        Err(e) => return super::target_error(e),
    };
    let files = super::store::collect(&opts.paths);
    if files.is_empty() {
        error_line!("no input files");
        return exit::FAILED;
    }
    let committer = match Committer::start(&client, &opts.commit).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let started = Instant::now();
    // Read for their UIDs only (never sent), a few files at a time.
    let opened: Vec<(PathBuf, Result<SopRef, String>)> = futures::stream::iter(files)
        .map(|(path, read_error)| async move {
            let r = match read_error {
                Some(e) => Err(e),
                None => match open_instance(&path).await {
                    Ok(f) => Ok(SopRef {
                        sop_class_uid: f.sop_class_uid,
                        sop_instance_uid: f.sop_instance_uid,
                    }),
                    Err(FileError::MediaDirectory) => Err(String::new()),
                    Err(e) => Err(e.to_string()),
                },
            };
            (path, r)
        })
        .buffered(8)
        .collect()
        .await;
    let mut lines = Vec::new();
    let mut refs = Vec::new();
    let mut positions = Vec::new();
    for (path, r) in opened {
        match r {
            Ok(sop) => {
                positions.push(lines.len());
                lines.push(InstanceLine {
                    path: path.display().to_string(),
                    sop_class_uid: Some(sop.sop_class_uid.clone()),
                    sop_instance_uid: Some(sop.sop_instance_uid.clone()),
                    commitment: Commitment::Unknown.as_str(),
                    commitment_failure_reason: None,
                    transaction_uid: None,
                    error: None,
                });
                refs.push(sop);
            }
            // A DICOMDIR is not an instance: skipped, not counted.
            Err(e) if e.is_empty() => eprintln!(
                "skipped {}: a DICOMDIR (Media Storage Directory), not an instance",
                path.display()
            ),
            Err(e) => {
                error_line!("{}: {e}", path.display());
                lines.push(InstanceLine {
                    path: path.display().to_string(),
                    sop_class_uid: None,
                    sop_instance_uid: None,
                    commitment: Commitment::Unknown.as_str(),
                    commitment_failure_reason: None,
                    transaction_uid: None,
                    error: Some(e),
                });
            }
        }
    }
    if lines.is_empty() {
        error_line!("no input files: only DICOMDIR found");
        committer.shutdown().await;
        return exit::FAILED;
    }
    let report = if refs.is_empty() {
        None
    } else {
        Some(committer.run(&node, refs).await)
    };
    let timeout = committer.timeout();
    committer.shutdown().await;
    let elapsed = started.elapsed();
    let mut batches = Vec::new();
    if let Some(report) = &report {
        for (pos, c) in positions.iter().zip(&report.instances) {
            let line = &mut lines[*pos];
            line.commitment = c.commitment.as_str();
            line.commitment_failure_reason = c.commitment.failure_reason();
            line.transaction_uid = Some(c.transaction_uid.clone());
            if let Some(e) = failed_requests(report).get(c.transaction_uid.as_str()) {
                // Said once for its whole batch, above.
                line.error = Some(format!("the storage commitment request failed: {e}"));
            } else if c.commitment != Commitment::Committed {
                eprintln!(
                    "{}{} ({}): {}",
                    super::style::error_label(),
                    line.sop_instance_uid.as_deref().unwrap_or("?"),
                    line.path,
                    describe(c.commitment, timeout)
                );
            }
        }
        for b in &report.batches {
            let (report_via, error) = match &b.outcome.result {
                Ok(a) => (a.report.as_ref().map(|(_, via)| via.as_str()), None),
                Err(e) => (None, Some(failure::describe(e, b.outcome.attempts, elapsed))),
            };
            batches.push(BatchLine {
                transaction_uid: b.transaction_uid.clone(),
                instances: b.instances,
                action_status: b.outcome.last_status.map(|s| s.hex()),
                report: report_via,
                error,
            });
        }
    }
    let count = |c: &str| lines.iter().filter(|l| l.commitment == c).count();
    let out = Report {
        target: opts.target.clone(),
        operation: "commit",
        instances_total: lines.len(),
        committed: count("committed"),
        failed: count("failed"),
        unknown: count("unknown"),
        elapsed_ms: elapsed.as_millis(),
        batches,
        instances: lines,
    };
    println!(
        "storage commitment of {}: {} committed, {} failed, {} unknown ({}) in {:.3} s",
        plural(out.instances_total, "instance", "instances"),
        out.committed,
        out.failed,
        out.unknown,
        plural(out.batches.len(), "request", "requests"),
        elapsed.as_secs_f64()
    );
    let mut code = if out.committed == out.instances_total {
        exit::OK
    } else {
        exit::FAILED
    };
    if let Some(path) = &opts.report {
        let written = serde_json::to_vec_pretty(&out)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|e| e.to_string()));
        if let Err(e) = written {
            error_line!("cannot write report {}: {e}", path.display());
            code = exit::FAILED;
        }
    }
    code
}

/// `store --commit`: commit the instances stored (`None` entries were not), say
/// each one not committed on stderr, stop the listener; the stdout line, whether
/// every instance was committed, and each entry's commitment.
pub(super) async fn commit_stored(
    committer: Committer,
    node: &Node,
    stored: Vec<Option<(SopRef, String)>>,
) -> (String, bool, Vec<Option<Commitment>>) {
    let started = Instant::now();
    let refs: Vec<SopRef> = stored.iter().flatten().map(|(r, _)| r.clone()).collect();
    if refs.is_empty() {
        committer.shutdown().await;
        return (
            "storage commitment: no instance stored, none requested".into(),
            false,
            vec![None; stored.len()],
        );
    }
    let report = committer.run(node, refs).await;
    let timeout = committer.timeout();
    committer.shutdown().await;
    let failed = failed_requests(&report);
    let mut said = report.instances.iter();
    let mut out = Vec::with_capacity(stored.len());
    for entry in &stored {
        match entry {
            Some((sop, path)) => {
                let (c, request_failed) = said.next().map_or((Commitment::Unknown, false), |c| {
                    (c.commitment, failed.contains_key(c.transaction_uid.as_str()))
                });
                // A failed request was said once for its whole batch.
                if c != Commitment::Committed && !request_failed {
                    eprintln!(
                        "{}{} ({path}): {}",
                        super::style::error_label(),
                        sop.sop_instance_uid,
                        describe(c, timeout)
                    );
                }
                out.push(Some(c));
            }
            None => out.push(None),
        }
    }
    (summary_line(&report, started.elapsed()), report.all_committed(), out)
}

/// `demo`: commit the stored fixtures and one instance the SCP never received;
/// whether the fixtures came back committed and the stranger failed with 0112.
pub(super) async fn demo_commit(node: &Node, files: &[PathBuf]) -> bool {
    let mut refs: Vec<SopRef> = Vec::new();
    for path in files {
        if let Ok(f) = open_instance(path).await {
            refs.push(SopRef {
                sop_class_uid: f.sop_class_uid,
                sop_instance_uid: f.sop_instance_uid,
            });
        }
    }
    let held = refs.len();
    refs.push(SopRef {
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
        sop_instance_uid: "1.2.826.0.1.3680043.10.1234.99.99".into(),
    });
    let started = Instant::now();
    let report = node
        .commit(
            refs,
            &CommitOptions {
                timeout: Duration::from_secs(10),
                ..CommitOptions::default()
            },
        )
        .await;
    for b in &report.batches {
        match &b.outcome.result {
            Ok(a) => println!(
                "   transaction {}: N-ACTION-RSP {}, report {}",
                b.transaction_uid,
                a.action_status.hex(),
                a.report.as_ref().map_or("never came", |(_, via)| via.as_str())
            ),
            Err(e) => eprintln!("error: N-ACTION: {e}"),
        }
    }
    for i in report
        .instances
        .iter()
        .filter(|i| i.commitment != Commitment::Committed)
    {
        println!(
            "   {} {}",
            i.instance.sop_instance_uid,
            describe(i.commitment, Duration::from_secs(10))
        );
    }
    println!("   {}", summary_line(&report, started.elapsed()));
    let (committed, failed, _) = report.counts();
    committed == held && failed == 1
}
