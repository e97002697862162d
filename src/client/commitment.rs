//! Storage Commitment (Push Model, PS3.4 J) through a node's pool, breaker and
//! retry policy: the instances are split into batches of at most
//! [`COMMIT_BATCH_SIZE`], one N-ACTION (with its own Transaction UID) per batch;
//! each batch's association is kept after the N-ACTION-RSP to take the
//! N-EVENT-REPORT there, while a report arriving on an association the PACS opens
//! to our listener reaches the batch through the [`CommitmentRouter`]. Whatever no
//! report named when the timeout passes is [`Commitment::Unknown`], never committed.
//!
//! Retry: only the N-ACTION is retried (the node's policy, same Transaction UID:
//! a PACS that saw the first request reports once for it). Once the N-ACTION-RSP
//! came, a broken association ends nothing: the report may still come to the
//! listener until the timeout.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;

use crate::association::{Association, ContextRequest};
use crate::config::Limits;
use crate::dimse::commitment::{self, answer_report, receive_report_rq, CommitmentReport, Registration};
use crate::dimse::{CommitmentRequest, CommitmentRouter, DimseError, MessageReader, SopRef, Status};

use super::error::OpError;
use super::node::Node;
use super::operation::Operation;
use super::outcome::{OpOptions, Outcome};

/// Instances named in one N-ACTION at most: a Referenced SOP Sequence item is
/// about 130 bytes, so a batch is a data set of about 65 KB, one round trip, and a
/// report a PACS builds in one go; the 1,000-file workload is two batches.
pub const COMMIT_BATCH_SIZE: usize = 500;

/// How long a batch waits for its report after the N-ACTION-RSP, by default.
pub const DEFAULT_COMMIT_TIMEOUT: Duration = Duration::from_secs(60);

/// N-ACTIONs in flight at once, by default (each holds a pooled association while
/// it waits for its report).
pub const DEFAULT_COMMIT_CONCURRENCY: usize = 4;

/// How to run a commitment request.
#[derive(Debug, Clone)]
pub struct CommitOptions {
    /// How long each batch waits for its N-EVENT-REPORT after its N-ACTION-RSP.
    pub timeout: Duration,
    /// Instances per N-ACTION (at least 1).
    pub batch_size: usize,
    /// Batches in flight at once (at least 1).
    pub concurrency: usize,
    /// Where reports arriving on other associations (our listener) are delivered;
    /// `None`: only reports on the request's own association count.
    pub router: Option<CommitmentRouter>,
    /// Deadline and pool priority of each N-ACTION.
    pub op: OpOptions,
}

impl Default for CommitOptions {
    fn default() -> Self {
        CommitOptions {
            timeout: DEFAULT_COMMIT_TIMEOUT,
            batch_size: COMMIT_BATCH_SIZE,
            concurrency: DEFAULT_COMMIT_CONCURRENCY,
            router: None,
            op: OpOptions::default(),
        }
    }
}

/// What the PACS said of one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commitment {
    /// Named in a report's Referenced SOP Sequence: the PACS keeps it.
    Committed,
    /// Named in a report's Failed SOP Sequence, with its Failure Reason (PS3.4 J.3.3.1).
    Failed {
        /// Failure Reason (0008,1197).
        reason: u16,
    },
    /// No report named it before the timeout (or the N-ACTION failed).
    Unknown,
}

impl Commitment {
    /// `committed`, `failed` or `unknown` (the report's `commitment`).
    pub fn as_str(self) -> &'static str {
        match self {
            Commitment::Committed => "committed",
            Commitment::Failed { .. } => "failed",
            Commitment::Unknown => "unknown",
        }
    }

    /// The Failure Reason as four uppercase hex digits, where failed.
    pub fn failure_reason(self) -> Option<String> {
        match self {
            Commitment::Failed { reason } => Some(format!("{reason:04X}")),
            _ => None,
        }
    }
}

/// Where a batch's report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportVia {
    /// On the association that carried the N-ACTION.
    SameAssociation,
    /// On another association (the PACS's, to our listener).
    OtherAssociation,
}

impl ReportVia {
    /// `same_association` or `new_association`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportVia::SameAssociation => "same_association",
            ReportVia::OtherAssociation => "new_association",
        }
    }
}

/// One attempt of a batch that got its N-ACTION-RSP.
#[derive(Debug, Clone)]
pub struct CommitAttempt {
    /// The N-ACTION-RSP status.
    pub action_status: Status,
    /// Its Error Comment, if any.
    pub error_comment: Option<String>,
    /// The batch's report and where it came from; `None` when none came in time.
    pub report: Option<(CommitmentReport, ReportVia)>,
}

/// One batch: its Transaction UID, its instances, and how its N-ACTION ended.
#[derive(Debug)]
pub struct BatchOutcome {
    /// Transaction UID (0008,1195) of its N-ACTION.
    pub transaction_uid: String,
    /// Instances it named.
    pub instances: usize,
    /// The N-ACTION (and the wait for the report that followed it).
    pub outcome: Outcome<CommitAttempt>,
}

/// One instance's commitment.
#[derive(Debug, Clone)]
pub struct InstanceCommitment {
    /// The instance.
    pub instance: SopRef,
    /// What the PACS said of it.
    pub commitment: Commitment,
    /// The Transaction UID of the batch that named it.
    pub transaction_uid: String,
}

/// The result of [`Node::commit`]: every instance asked about, in order, and the batches.
#[derive(Debug)]
pub struct CommitReport {
    /// Every instance, in the order given.
    pub instances: Vec<InstanceCommitment>,
    /// The batches, in order.
    pub batches: Vec<BatchOutcome>,
}

impl CommitReport {
    /// Whether every instance was committed (and there was at least one).
    pub fn all_committed(&self) -> bool {
        !self.instances.is_empty() && self.instances.iter().all(|i| i.commitment == Commitment::Committed)
    }

    /// Instances committed, failed and unknown.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for i in &self.instances {
            match i.commitment {
                Commitment::Committed => c.0 += 1,
                Commitment::Failed { .. } => c.1 += 1,
                Commitment::Unknown => c.2 += 1,
            }
        }
        c
    }
}

/// One batch as the driver runs it. Attempts run one after the other; the async
/// mutex only lends them the registration.
struct CommitBatch {
    request: CommitmentRequest,
    context: ContextRequest,
    limits: Limits,
    timeout: Duration,
    router: CommitmentRouter,
    registration: tokio::sync::Mutex<Registration>,
}

impl Operation for CommitBatch {
    type Output = CommitAttempt;

    fn name(&self) -> &'static str {
        "N-ACTION"
    }

    fn context(&self) -> &ContextRequest {
        &self.context
    }

    fn span(&self, node: &str, ae_title: &str) -> tracing::Span {
        tracing::debug_span!(
            "operation",
            node = %node,
            ae = %ae_title,
            op = "N-ACTION",
            transaction_uid = %self.request.transaction_uid,
            instances = self.request.instances.len(),
            attempts = tracing::field::Empty,
            status = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        )
    }

    async fn run(&self, a: &mut Association) -> Result<CommitAttempt, DimseError> {
        let mut registration = self.registration.lock().await;
        a.begin_operation();
        let rsp = commitment::request_commitment(a, &self.request, &self.limits).await?;
        let mut attempt = CommitAttempt {
            action_status: rsp.status,
            error_comment: rsp.error_comment,
            report: None,
        };
        for r in rsp.early_reports {
            self.take(&mut attempt, r, ReportVia::SameAssociation);
        }
        if !rsp.status.is_success() || attempt.report.is_some() {
            a.end_operation();
            return Ok(attempt);
        }
        let deadline = Instant::now() + self.timeout;
        let mut reader = MessageReader::new(self.limits);
        let mut on_association = true;
        let mut timed_out = false;
        while attempt.report.is_none() {
            // Only receiving happens inside the select (cancel-safe); the answer
            // is written outside it.
            let received = tokio::select! {
                biased;
                r = registration.reports.recv() => match r {
                    Some(report) => {
                        self.take(&mut attempt, report, ReportVia::OtherAssociation);
                        continue;
                    }
                    None => break,
                },
                m = receive_report_rq(a, &mut reader, self.timeout + Duration::from_secs(1)), if on_association => m,
                _ = tokio::time::sleep_until(deadline) => {
                    timed_out = true;
                    break;
                }
            };
            match received {
                Ok(msg) => match answer_report(a, msg, &self.limits).await {
                    Ok(Some(report)) => self.take(&mut attempt, report, ReportVia::SameAssociation),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "association lost while answering a commitment report");
                        on_association = false;
                    }
                },
                Err(e) => {
                    tracing::debug!(error = %e, "association lost while waiting for the commitment report; waiting for it on the listener");
                    a.poison();
                    on_association = false;
                }
            }
        }
        if timed_out {
            tracing::warn!(
                transaction_uid = %self.request.transaction_uid,
                timeout_s = self.timeout.as_secs_f64(),
                "no storage commitment report before the timeout: its instances are unknown"
            );
        }
        if on_association && !timed_out && reader.is_idle() {
            a.end_operation();
        } else {
            // A report may still come on it, or it is mid-message: never reused.
            a.poison();
        }
        Ok(attempt)
    }

    fn status(output: &CommitAttempt) -> Status {
        output.action_status
    }

    fn judge(&self, attempt: CommitAttempt) -> Result<CommitAttempt, OpError> {
        if attempt.action_status.is_success() {
            Ok(attempt)
        } else {
            Err(OpError::Status {
                status: attempt.action_status,
                comment: attempt.error_comment,
            })
        }
    }
}

impl CommitBatch {
    /// Keep `report` when it answers this batch; hand it on to the batch it
    /// answers otherwise (a PACS may report an earlier transaction on whichever
    /// association is open).
    fn take(&self, attempt: &mut CommitAttempt, report: CommitmentReport, via: ReportVia) {
        if report.transaction_uid == self.request.transaction_uid {
            attempt.report = Some((report, via));
        } else if !self.router.deliver(report) {
            tracing::warn!("storage commitment report for a transaction nobody waits for (late, or not ours): ignored");
        }
    }
}

impl Node {
    /// Storage Commitment for `instances` (PS3.4 J): one N-ACTION per batch of
    /// [`CommitOptions::batch_size`], each waiting up to [`CommitOptions::timeout`]
    /// for its report, on its own association or through
    /// [`CommitOptions::router`]. Every instance comes back committed, failed
    /// (with its reason) or unknown.
    pub async fn commit(&self, instances: Vec<SopRef>, opts: &CommitOptions) -> CommitReport {
        let router = opts.router.clone().unwrap_or_default();
        let batch_size = opts.batch_size.max(1);
        let batches: Vec<CommitmentRequest> = instances
            .chunks(batch_size)
            .map(|c| CommitmentRequest::new(c.to_vec()))
            .collect();
        let outcomes: Vec<(CommitmentRequest, Outcome<CommitAttempt>)> = futures::stream::iter(batches)
            .map(|request| {
                let router = router.clone();
                async move {
                    let op = CommitBatch {
                        registration: tokio::sync::Mutex::new(router.register(&request.transaction_uid)),
                        request,
                        context: commitment::context_request(),
                        limits: self.config().limits,
                        timeout: opts.timeout,
                        router,
                    };
                    let outcome = self.run(&op, &opts.op).await;
                    (op.request, outcome)
                }
            })
            .buffered(opts.concurrency.max(1))
            .collect()
            .await;
        let mut report = CommitReport {
            instances: Vec::with_capacity(instances.len()),
            batches: Vec::with_capacity(outcomes.len()),
        };
        for (request, outcome) in outcomes {
            let mut said: HashMap<&str, Commitment> = HashMap::new();
            if let Ok(CommitAttempt {
                report: Some((r, _)), ..
            }) = &outcome.result
            {
                for c in &r.committed {
                    said.insert(c.sop_instance_uid.as_str(), Commitment::Committed);
                }
                // A failure wins over a contradicting success in the same report.
                for (f, reason) in &r.failed {
                    said.insert(f.sop_instance_uid.as_str(), Commitment::Failed { reason: *reason });
                }
            }
            for i in &request.instances {
                report.instances.push(InstanceCommitment {
                    instance: i.clone(),
                    commitment: said
                        .get(i.sop_instance_uid.as_str())
                        .copied()
                        .unwrap_or(Commitment::Unknown),
                    transaction_uid: request.transaction_uid.clone(),
                });
            }
            report.batches.push(BatchOutcome {
                transaction_uid: request.transaction_uid.clone(),
                instances: request.instances.len(),
                outcome,
            });
        }
        report
    }
}
