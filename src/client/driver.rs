//! The one operation driver: breaker -> acquire -> run -> classify -> record ->
//! telemetry, for every [`Operation`]. Retries, the deadline, the redo on a stale
//! pooled association and the borrow map of leak reports are written here once.

use parking_lot::Mutex;
use std::sync::Arc;

use tokio::time::Instant;
use tracing::Instrument;

use crate::association::{Association, AssociationError};
use crate::dimse::{DimseError, Status};
use crate::pool::{AcquirePhase, AcquireProgress, PoolError, Pooled};
use crate::resilience::ExecError;

use super::error::OpError;
use super::health::Borrows;
use super::manager::AssociationManager;
use super::node::Node;
use super::operation::Operation;
use super::outcome::{OpOptions, OperationError, Outcome};
use super::telemetry::OpOutcome;

impl Node {
    /// Run `op` through the node: the breaker's permission, a pooled association
    /// fitting its context (within the deadline and at the priority of `opts`),
    /// the attempt, its classification, retries by the node's policy, and the
    /// span, log line and metrics of the whole operation.
    pub async fn run<O: Operation>(&self, op: &O, opts: &OpOptions) -> Outcome<O::Output> {
        let span = op.span(&self.config().name, &self.config().ae_title);
        let started = Instant::now();
        if self.pool().manager().memory().known_refused(op.context()) {
            let req = op.context();
            let err = OpError::Dimse(DimseError::NoContext(format!(
                "{} refused SOP class {} in {} on an earlier association",
                self.config().ae_title,
                req.abstract_syntax,
                req.transfer_syntaxes
                    .iter()
                    .map(|ts| crate::association::uids::transfer_syntax_name(ts))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
            return self.finish(op.name(), &span, started, Err(ExecError::Operation(err)), 0, None);
        }
        #[cfg(feature = "redis")]
        let probe = match self.fleet_admission() {
            Some(fleet) => match fleet.admit().await {
                super::shared::Admission::Refused(left) => {
                    let err = OpError::Association(AssociationError::SharedLimit {
                        message: format!(
                            "circuit open for node {} across the fleet (shared_breaker: a pacs-net instance \
                             sharing its Redis found it failing); next probe in {:.1}s",
                            self.config().name,
                            left.as_secs_f64()
                        ),
                        transient: false,
                    });
                    return self.finish(op.name(), &span, started, Err(ExecError::Operation(err)), 0, None);
                }
                super::shared::Admission::Probe => Some(fleet),
                super::shared::Admission::Pass => None,
            },
            None => None,
        };
        let last_status = Mutex::new(None);
        let deadline = opts.deadline.and_then(|d| Instant::now().checked_add(d));
        let out = self
            .executor()
            .run(deadline, |attempt| {
                let last_status = &last_status;
                bounded(deadline, async move {
                    tracing::debug!(attempt, "{} attempt", op.name());
                    match self.on_association(op, opts).await {
                        Ok(output) => {
                            *last_status.lock() = Some(O::status(&output));
                            op.judge(output)
                        }
                        Err(e) => Err(op.failed(e)),
                    }
                })
            })
            .instrument(span.clone())
            .await;
        let last = last_status.into_inner();
        // The fleet learns before this operation returns (a one-shot command may exit
        // right after): this process's breaker opened, or the fleet's probe's outcome.
        #[cfg(feature = "redis")]
        if let Some(fleet) = self.fleet_admission() {
            use crate::resilience::{BreakerState, Classify};
            let local_open = self.executor().breaker().state() == BreakerState::Open;
            match &out.result {
                _ if local_open && !fleet.is_open() => fleet.publish_open().await,
                Ok(_) if probe.is_some() => fleet.publish_closed().await,
                Err(ExecError::Operation(e)) if probe.is_some() && e.counts_for_breaker() => fleet.publish_open().await,
                _ => {}
            }
        }
        self.finish(op.name(), &span, started, out.result, out.attempts, last)
    }

    #[cfg(feature = "redis")]
    fn fleet_admission(&self) -> Option<Arc<super::shared::SharedBreaker>> {
        self.shared_breaker().cloned()
    }

    /// Borrow an association fitting `op` and run it there, inside a span of the
    /// association. A reused association that turns out to have been closed by the
    /// remote while idle (no response at all) is replaced by a fresh one and the
    /// operation redone, once: that is the pool's business, not a failed attempt.
    async fn on_association<O: Operation>(&self, op: &O, opts: &OpOptions) -> Result<O::Output, OpError> {
        let (mut guard, record) = self.borrow(op, opts, false).await?;
        let reused = guard.is_reused();
        let span = association_span(&guard);
        match op.run(&mut guard).instrument(span).await {
            Ok(v) => Ok(v),
            Err(DimseError::Association(e)) if reused && !guard.has_responded() && is_stale_symptom(&e) => {
                tracing::debug!(node = %self.config().name, association = guard.id(), error = %e, "stale pooled association; redoing on a fresh one");
                drop(record);
                drop(guard);
                self.pool().record_stale_redo();
                let (mut fresh, _record) = self.borrow(op, opts, true).await?;
                let span = association_span(&fresh);
                op.run(&mut fresh).instrument(span).await.map_err(OpError::from)
            }
            Err(e) => Err(OpError::from(e)),
        }
    }

    /// Borrow an association, recording which operation holds it (for leak
    /// reports) until the returned record drops, however the borrow ends.
    async fn borrow<O: Operation>(
        &self,
        op: &O,
        opts: &OpOptions,
        fresh: bool,
    ) -> Result<(Pooled<AssociationManager>, BorrowRecord), OpError> {
        let started = Instant::now();
        // Shared with `bounded`, which reads what the acquisition was doing if the
        // deadline cuts it.
        let progress = ACQUIRE_PROGRESS
            .try_with(Arc::clone)
            .unwrap_or_else(|_| Arc::new(AcquireProgress::default()));
        let res = self
            .pool()
            .acquire_tracked(op.context(), opts.priority, fresh, &progress)
            .await;
        self.metrics().observe_acquire_wait(started.elapsed().as_secs_f64());
        match res {
            Ok(g) => {
                let record = BorrowRecord::new(self.borrows(), g.id(), op.name());
                Ok((g, record))
            }
            Err(e) => {
                if let PoolError::Create(AssociationError::Rejected { transient, reason, .. }) = &e {
                    self.metrics().rejection(*transient, reason);
                }
                Err(e.into())
            }
        }
    }

    /// End an operation: its span fields, log line and metrics, and the caller's
    /// outcome.
    fn finish<T>(
        &self,
        operation: &'static str,
        span: &tracing::Span,
        started: Instant,
        result: Result<T, OperationError>,
        attempts: u32,
        last: Option<Status>,
    ) -> Outcome<T> {
        let elapsed = started.elapsed();
        if !span.is_disabled() {
            // Rounded to the microsecond: logs are read by people too.
            let ms = (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0;
            span.record("attempts", attempts);
            span.record("duration_ms", ms);
            if let Some(s) = last {
                span.record("status", s.hex().as_str());
            }
            span.in_scope(|| match &result {
                Ok(_) => tracing::debug!(attempts, duration_ms = ms, "operation succeeded"),
                Err(e) => tracing::debug!(attempts, duration_ms = ms, error = %e, "operation failed"),
            });
        }
        let outcome = match (&result, last) {
            (Ok(_), Some(s)) if s.is_warning() => OpOutcome::Warning,
            (Ok(_), _) => OpOutcome::Success,
            (Err(_), _) => OpOutcome::Failure,
        };
        self.metrics()
            .record_operation(operation, outcome, last.map(|s| s.class()), elapsed.as_secs_f64());
        Outcome {
            result,
            attempts,
            last_status: last,
        }
    }
}

/// An entry of the node's borrow map (operation by association), removed on drop:
/// an operation cut by its deadline or dropped by its caller leaves nothing behind.
struct BorrowRecord {
    borrows: Borrows,
    id: u64,
}

impl BorrowRecord {
    fn new(borrows: &Borrows, id: u64, operation: &'static str) -> Self {
        borrows.lock().insert(id, operation);
        BorrowRecord {
            borrows: borrows.clone(),
            id,
        }
    }
}

impl Drop for BorrowRecord {
    fn drop(&mut self) {
        self.borrows.lock().remove(&self.id);
    }
}

fn association_span(a: &Association) -> tracing::Span {
    tracing::debug_span!(
        "association",
        id = a.id(),
        contexts = a.accepted_contexts().len(),
        max_pdu = a.peer_max_pdu()
    )
}

tokio::task_local! {
    /// What the current attempt's pool acquisition is doing (see [`bounded`]).
    static ACQUIRE_PROGRESS: Arc<AcquireProgress>;
}

/// One attempt, cut off at the operation's deadline (the association it held is
/// then in an unknown state, and is aborted by its guard). Cut while queued for a
/// pooled association, the deadline says nothing about the node; cut while
/// connecting, validating or on the association, it is a timeout of the node's,
/// and counts for its breaker like one.
async fn bounded<T>(
    deadline: Option<Instant>,
    attempt: impl std::future::Future<Output = Result<T, OpError>>,
) -> Result<T, OpError> {
    match deadline {
        Some(at) => {
            let progress = Arc::new(AcquireProgress::default());
            let attempt = ACQUIRE_PROGRESS.scope(progress.clone(), attempt);
            match tokio::time::timeout_at(at, attempt).await {
                Ok(r) => r,
                Err(_) => Err(OpError::Deadline {
                    waiting_for_pool: progress.phase() == AcquirePhase::Waiting,
                }),
            }
        }
        None => attempt.await,
    }
}

fn is_stale_symptom(e: &AssociationError) -> bool {
    matches!(
        e,
        AssociationError::PeerClosed
            | AssociationError::PeerReleased
            | AssociationError::Aborted(_)
            | AssociationError::Io(_)
    )
}
