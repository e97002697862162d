//! What the driver needs to know of a DIMSE service: its name, the presentation
//! context it asks the pool for, how it runs on one association, and how its result
//! is judged. C-ECHO, C-STORE and C-FIND are the three impls here; a new service is
//! one more impl, and gets the pool, breaker, retry, deadline, stale-association
//! redo, leak tracking and telemetry of [`Node::run`](super::Node::run) for free.

use std::future::Future;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};

use dicom_object::InMemDicomObject;

use crate::association::{Association, ContextRequest};
use crate::config::Limits;
use crate::dimse::{
    self, DimseError, FindOutcome, FindQuery, FindRequest, InstanceFile, MatchSink, Status, StoreResponse,
};

use super::error::OpError;
use super::outcome::{OpOptions, Outcome, StoreOutcome};
use super::Node;
use crate::resilience::ExecError;
use std::path::Path;

/// One DIMSE operation, run by [`Node::run`](super::Node::run) on pooled
/// associations, once per attempt.
pub trait Operation: Sync {
    /// What a successful attempt gives.
    type Output: Send;

    /// The DIMSE name, for spans, logs and the `operation` metric label.
    fn name(&self) -> &'static str;

    /// The presentation context an association must have accepted to run it.
    fn context(&self) -> &ContextRequest;

    /// The operation's span; the driver records `attempts`, `status` and
    /// `duration_ms` into it.
    fn span(&self, node: &str, ae_title: &str) -> tracing::Span {
        tracing::debug_span!(
            "operation",
            node = %node,
            ae = %ae_title,
            op = self.name(),
            attempts = tracing::field::Empty,
            status = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        )
    }

    /// One attempt on `association`. Run again on a fresh association when a
    /// reused one proves to have been closed by the remote before answering.
    fn run<'a>(
        &'a self,
        association: &'a mut Association,
    ) -> impl Future<Output = Result<Self::Output, DimseError>> + Send + 'a;

    /// The DIMSE status the output carries (the operation's `last_status`).
    fn status(output: &Self::Output) -> Status;

    /// Success or failure of an attempt that got an answer.
    fn judge(&self, output: Self::Output) -> Result<Self::Output, OpError> {
        let status = Self::status(&output);
        if status.is_success() {
            Ok(output)
        } else {
            Err(OpError::Status { status, comment: None })
        }
    }

    /// A failed attempt, as the operation wants it classified.
    fn failed(&self, error: OpError) -> OpError {
        error
    }
}

/// An operation something else can do without (the C-FINDs that plan a
/// retrieve): tried once, its failure [`OpError::Advisory`], which neither
/// retries nor counts against the node's breaker.
pub(crate) struct Advisory<O>(pub(crate) O);

impl<O: Operation> Operation for Advisory<O> {
    type Output = O::Output;

    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn context(&self) -> &ContextRequest {
        self.0.context()
    }

    fn span(&self, node: &str, ae_title: &str) -> tracing::Span {
        self.0.span(node, ae_title)
    }

    fn run<'a>(
        &'a self,
        association: &'a mut Association,
    ) -> impl Future<Output = Result<Self::Output, DimseError>> + Send + 'a {
        self.0.run(association)
    }

    fn status(output: &Self::Output) -> Status {
        O::status(output)
    }

    fn judge(&self, output: Self::Output) -> Result<Self::Output, OpError> {
        self.0.judge(output).map_err(|e| OpError::Advisory(Box::new(e)))
    }

    fn failed(&self, error: OpError) -> OpError {
        OpError::Advisory(Box::new(self.0.failed(error)))
    }
}

/// C-ECHO (Verification).
#[derive(Debug)]
pub(crate) struct Echo {
    context: ContextRequest,
}

impl Echo {
    pub(crate) fn new() -> Self {
        Echo {
            context: ContextRequest::verification(),
        }
    }
}

impl Operation for Echo {
    type Output = Status;

    fn name(&self) -> &'static str {
        "C-ECHO"
    }

    fn context(&self) -> &ContextRequest {
        &self.context
    }

    fn run<'a>(&'a self, a: &'a mut Association) -> impl Future<Output = Result<Status, DimseError>> + Send + 'a {
        dimse::echo(a)
    }

    fn status(output: &Status) -> Status {
        *output
    }
}

/// C-STORE of one instance.
#[derive(Debug)]
pub(crate) struct Store<'f> {
    file: &'f InstanceFile,
    context: ContextRequest,
}

impl<'f> Store<'f> {
    pub(crate) fn new(file: &'f InstanceFile) -> Self {
        Store {
            file,
            context: ContextRequest::store(&file.sop_class_uid, &file.transfer_syntax),
        }
    }
}

impl Operation for Store<'_> {
    type Output = StoreResponse;

    fn name(&self) -> &'static str {
        "C-STORE"
    }

    fn context(&self) -> &ContextRequest {
        &self.context
    }

    fn span(&self, node: &str, ae_title: &str) -> tracing::Span {
        tracing::debug_span!(
            "operation",
            node = %node,
            ae = %ae_title,
            op = "C-STORE",
            sop_class_uid = %self.file.sop_class_uid,
            sop_instance_uid = %self.file.sop_instance_uid,
            attempts = tracing::field::Empty,
            status = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        )
    }

    fn run<'a>(
        &'a self,
        a: &'a mut Association,
    ) -> impl Future<Output = Result<StoreResponse, DimseError>> + Send + 'a {
        dimse::store(a, self.file, dimse::DimsePriority::Medium)
    }

    fn status(output: &StoreResponse) -> Status {
        output.status
    }

    fn judge(&self, rsp: StoreResponse) -> Result<StoreResponse, OpError> {
        if rsp.status.is_success() {
            Ok(rsp)
        } else {
            Err(OpError::Status {
                status: rsp.status,
                comment: rsp.error_comment,
            })
        }
    }
}

/// C-FIND into a [`MatchSink`], of any [`FindRequest`] (Query/Retrieve or
/// Modality Worklist). Attempts run one after the other; the async mutex only
/// lends them the sink.
pub(crate) struct Find<'q, S, Q: ?Sized = FindQuery> {
    query: &'q Q,
    limits: Limits,
    context: ContextRequest,
    sink: tokio::sync::Mutex<S>,
    /// Matches the current attempt delivered: one that fails after delivering is
    /// not retried (the caller would see matches twice).
    delivered: AtomicUsize,
}

impl<'q, S: MatchSink, Q: FindRequest + ?Sized> Find<'q, S, Q> {
    pub(crate) fn new(query: &'q Q, limits: Limits, sink: S) -> Self {
        Find {
            query,
            limits,
            context: query.context(),
            sink: tokio::sync::Mutex::new(sink),
            delivered: AtomicUsize::new(0),
        }
    }
}

impl<S: MatchSink, Q: FindRequest + ?Sized> Operation for Find<'_, S, Q> {
    type Output = FindOutcome;

    fn name(&self) -> &'static str {
        "C-FIND"
    }

    fn context(&self) -> &ContextRequest {
        &self.context
    }

    fn span(&self, node: &str, ae_title: &str) -> tracing::Span {
        tracing::debug_span!(
            "operation",
            node = %node,
            ae = %ae_title,
            op = "C-FIND",
            sop_class_uid = %self.query.sop_class(),
            level = %self.query.level_name(),
            attempts = tracing::field::Empty,
            status = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        )
    }

    async fn run(&self, a: &mut Association) -> Result<FindOutcome, DimseError> {
        let mut sink = self.sink.lock().await;
        self.delivered.store(0, Ordering::Relaxed);
        let mut counting = Counting {
            inner: &mut *sink,
            delivered: &self.delivered,
        };
        dimse::find_into(a, self.query, dimse::DimsePriority::Medium, &self.limits, &mut counting).await
    }

    fn status(output: &FindOutcome) -> Status {
        output.status
    }

    /// Complete results only: a C-FIND the remote cancelled on its own (FE00
    /// without our C-CANCEL) is [`OpError::Incomplete`].
    fn judge(&self, outcome: FindOutcome) -> Result<FindOutcome, OpError> {
        if outcome.status.is_success() || (outcome.status == Status::CANCEL && outcome.cancelled) {
            Ok(outcome)
        } else if outcome.status == Status::CANCEL {
            Err(OpError::Incomplete {
                matches: outcome.matches,
            })
        } else {
            Err(OpError::Status {
                status: outcome.status,
                comment: outcome.error_comment,
            })
        }
    }

    fn failed(&self, error: OpError) -> OpError {
        match self.delivered.load(Ordering::Relaxed) {
            0 => error,
            matches => OpError::Interrupted {
                matches,
                source: Box::new(error),
            },
        }
    }
}

/// Counts what reached the caller's sink in this attempt.
struct Counting<'s, S> {
    inner: &'s mut S,
    delivered: &'s AtomicUsize,
}

impl<S: MatchSink> MatchSink for Counting<'_, S> {
    fn deliver(&mut self, m: InMemDicomObject) -> impl Future<Output = ControlFlow<()>> + Send {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        self.inner.deliver(m)
    }

    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}

/// C-ECHO and C-STORE on a node: the two impls above through its driver.
impl Node {
    /// C-ECHO.
    pub async fn echo(&self) -> Outcome<Status> {
        self.echo_with(&OpOptions::default()).await
    }

    /// C-ECHO with a deadline and priority.
    pub async fn echo_with(&self, opts: &OpOptions) -> Outcome<Status> {
        self.run(&self.echo, opts).await
    }

    /// C-STORE of one file (read, checked, sent with the retry policy).
    pub async fn store_file(&self, path: &Path) -> StoreOutcome {
        self.store_file_with(path, &OpOptions::default()).await
    }

    /// C-STORE of one file with a deadline and priority.
    pub async fn store_file_with(&self, path: &Path, opts: &OpOptions) -> StoreOutcome {
        let opened = dimse::open_instance(path).await;
        self.store_opened(path, opened, opts).await
    }

    /// C-STORE of a file already opened with [`dimse::open_instance`] (which a batch can do
    /// ahead, while the previous file is on the wire); an open error is reported as
    /// a file that was never sent.
    pub async fn store_opened(
        &self,
        path: &Path,
        opened: Result<InstanceFile, dimse::FileError>,
        opts: &OpOptions,
    ) -> StoreOutcome {
        let file = match opened {
            Ok(f) => f,
            Err(e) => return not_sent(path, OpError::File(e)),
        };
        let outcome = self.store_with(&file, opts).await;
        StoreOutcome {
            path: path.to_path_buf(),
            file: Some(file),
            outcome,
        }
    }

    /// C-STORE of an instance already opened.
    pub async fn store(&self, file: &InstanceFile) -> Outcome<StoreResponse> {
        self.store_with(file, &OpOptions::default()).await
    }

    /// C-STORE of an instance already opened, with a deadline and priority.
    pub async fn store_with(&self, file: &InstanceFile, opts: &OpOptions) -> Outcome<StoreResponse> {
        self.run(&Store::new(file), opts).await
    }
}

fn not_sent(path: &Path, err: OpError) -> StoreOutcome {
    StoreOutcome {
        path: path.to_path_buf(),
        file: None,
        outcome: Outcome {
            result: Err(ExecError::Operation(err)),
            attempts: 0,
            last_status: None,
        },
    }
}
