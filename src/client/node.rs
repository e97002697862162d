//! One remote node: its association pool, circuit breaker and retry policy, and the
//! resilient C-ECHO / C-STORE / C-FIND that run through them, with their telemetry
//! (spans, metrics), health and warnings.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dicom_object::InMemDicomObject;
use futures::Stream;
use tokio::time::Instant;
use tracing::Instrument;

use crate::association::{Association, AssociationError, AssociationParams, ContextRequest};
use crate::config::NodeConfig;
use crate::dimse::{self, DimseError, FindOutcome, FindQuery, FnSink, InstanceFile, MatchSink, Status, StoreResponse};
use crate::pool::{AcquirePhase, AcquireProgress, Pool, PoolError, PoolStats, Priority};
use crate::resilience::{BreakerState, ExecError, Executor, ExecutorStats};

use super::error::OpError;
use super::health::{self, LeakReport, NodeHealth, Watchdog};
use super::manager::AssociationManager;
use super::telemetry::{Labels, OpOutcome, Telemetry};

/// Borrow an association fitting `req` and run `body` on it (as `a`), inside a span
/// of the association. A reused association that turns out to have been closed by
/// the remote while idle (no response at all) is replaced by a fresh one and the
/// operation redone, once: that is the pool's business, not a failed attempt. (A
/// macro rather than a closure so that the futures stay `Send` for any lifetime.)
macro_rules! on_association {
    ($node:expr, $opts:expr, $op:expr, $req:expr, |$a:ident| $body:expr) => {{
        let (mut guard, record) = $node.borrow($req, $opts, $op, false).await?;
        let reused = guard.is_reused();
        let first = {
            let span = association_span(&guard);
            let $a: &mut Association = &mut guard;
            async { $body }.instrument(span).await
        };
        match first {
            Ok(v) => Ok(v),
            Err(DimseError::Association(e)) if reused && !guard.has_responded() && is_stale_symptom(&e) => {
                tracing::debug!(node = %$node.config.name, association = guard.id(), error = %e, "stale pooled association; redoing on a fresh one");
                drop(record);
                drop(guard);
                $node.pool.record_stale_redo();
                let (mut fresh, _record) = $node.borrow($req, $opts, $op, true).await?;
                let span = association_span(&fresh);
                let $a: &mut Association = &mut fresh;
                async { $body }.instrument(span).await.map_err(OpError::from)
            }
            Err(e) => Err(OpError::from(e)),
        }
    }};
}

/// The error of a whole operation (after retries).
pub type OperationError = ExecError<OpError>;

/// The result of an operation, with how many attempts it took.
#[derive(Debug)]
pub struct Outcome<T> {
    pub result: Result<T, OperationError>,
    pub attempts: u32,
    /// The last DIMSE status received, over all attempts.
    pub last_status: Option<Status>,
}

/// The outcome of storing one file.
#[derive(Debug)]
pub struct StoreOutcome {
    pub path: std::path::PathBuf,
    pub file: Option<InstanceFile>,
    pub outcome: Outcome<StoreResponse>,
}

/// How to run one operation.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpOptions {
    /// Overall deadline for the operation, retries included: no retry starts past it.
    pub deadline: Option<Duration>,
    /// Priority in the pool's wait queue.
    pub priority: Priority,
}

/// Pool, breaker and retry statistics of a node, and its health.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeStats {
    pub node: String,
    pub ae_title: String,
    pub address: String,
    pub pool: PoolStats,
    pub resilience: ExecutorStats,
    pub health: NodeHealth,
}

/// Operations currently holding a pooled association, by pool id (for leak reports).
type Borrows = Arc<Mutex<HashMap<u64, &'static str>>>;

/// A remote AE: one pool + breaker + retry policy.
pub struct Node {
    config: NodeConfig,
    pool: Pool<AssociationManager>,
    executor: Arc<Executor>,
    telemetry: Telemetry,
    labels: Labels,
    borrows: Borrows,
    /// Dropped with the node: stops the watchdog.
    _watchdog: Option<tokio::sync::watch::Sender<()>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("name", &self.config.name).finish()
    }
}

/// How often the watchdog looks at the node.
const WATCHDOG_TICK: Duration = Duration::from_secs(1);

impl Node {
    /// Build the node's pool (warm-up starts in the background), executor and
    /// watchdog, with telemetry of its own. Needs a tokio runtime.
    pub fn new(config: NodeConfig, calling_ae: &str) -> Node {
        Node::with_telemetry(config, calling_ae, Telemetry::default())
    }

    /// Like [`Node::new`], recording into a client's shared telemetry.
    pub fn with_telemetry(config: NodeConfig, calling_ae: &str, telemetry: Telemetry) -> Node {
        let params = AssociationParams {
            calling_ae: calling_ae.to_string(),
            called_ae: config.ae_title.clone(),
            host: config.host.clone(),
            port: config.port,
            max_pdu_length: config.max_pdu_length,
            max_send_pdu_length: config.max_send_pdu_length,
            timeouts: config.timeouts,
        };
        let manager = AssociationManager::with_refusal_ttl(params, config.refused_context_ttl);
        let pool = Pool::new(
            config.name.clone(),
            manager,
            config.pool.clone(),
            Some(ContextRequest::verification()),
        );
        let executor = Arc::new(Executor::new(
            &config.name,
            config.retry.clone(),
            config.breaker.clone(),
        ));
        {
            // Background warm-up (`min_size`) follows the breaker: no reconnecting
            // every few seconds to a node the breaker has declared down.
            let executor = Arc::downgrade(&executor);
            pool.set_replenish_gate(move || {
                executor
                    .upgrade()
                    .is_none_or(|e| e.breaker().state() == BreakerState::Closed)
            });
        }
        let labels: Labels = vec![
            ("node".into(), config.name.clone()),
            ("ae_title".into(), config.ae_title.clone()),
        ];
        {
            let telemetry = telemetry.clone();
            let labels = labels.clone();
            executor.breaker().on_state_change(move |name, from, to| {
                let to_s = BreakerState::as_str(to);
                telemetry.breaker_transitions.get_or_create(&Telemetry::with(&labels, "state", to_s)).inc();
                match to {
                    BreakerState::Open => tracing::warn!(node = %name, from = BreakerState::as_str(from), "circuit opened for {name}: operations fail fast until the next probe"),
                    BreakerState::HalfOpen => tracing::info!(node = %name, "circuit half-open: probing"),
                    BreakerState::Closed => tracing::info!(node = %name, from = BreakerState::as_str(from), "circuit closed"),
                }
            });
        }
        let borrows: Borrows = Arc::default();
        let watchdog = tokio::runtime::Handle::try_current().ok().map(|_| {
            let (tx, rx) = tokio::sync::watch::channel(());
            tokio::spawn(watchdog(
                config.name.clone(),
                pool.clone(),
                executor.clone(),
                borrows.clone(),
                telemetry.clone(),
                labels.clone(),
                rx,
            ));
            tx
        });
        Node {
            config,
            pool,
            executor,
            telemetry,
            labels,
            borrows,
            _watchdog: watchdog,
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    pub fn pool(&self) -> &Pool<AssociationManager> {
        &self.pool
    }

    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    /// Pool, breaker and retry statistics, and health.
    pub fn stats(&self) -> NodeStats {
        let pool = self.pool.stats();
        let resilience = self.executor.stats();
        let health = health::assess(&pool, &resilience.breaker, leak_reports(&self.pool, &self.borrows));
        NodeStats {
            node: self.config.name.clone(),
            ae_title: self.config.ae_title.clone(),
            address: crate::config::host_port(&self.config.host, self.config.port),
            pool,
            resilience,
            health,
        }
    }

    /// Health alone.
    pub fn health(&self) -> NodeHealth {
        self.stats().health
    }

    /// Release idle associations, wait for busy ones up to `timeout`, abort the rest.
    pub async fn close(&self, timeout: Duration) {
        self.pool.close(timeout).await;
    }

    /// Borrow an association, recording which operation holds it (for leak
    /// reports) until the returned record drops, however the borrow ends.
    async fn borrow(
        &self,
        req: &ContextRequest,
        opts: &OpOptions,
        operation: &'static str,
        fresh: bool,
    ) -> Result<(crate::pool::Pooled<AssociationManager>, BorrowRecord), OpError> {
        let started = Instant::now();
        // Shared with `bounded`, which reads what the acquisition was doing if the
        // deadline cuts it.
        let progress = ACQUIRE_PROGRESS
            .try_with(Arc::clone)
            .unwrap_or_else(|_| Arc::new(AcquireProgress::default()));
        let res = self.pool.acquire_tracked(req, opts.priority, fresh, &progress).await;
        self.telemetry
            .acquire_wait
            .get_or_create(&self.labels)
            .observe(started.elapsed().as_secs_f64());
        match res {
            Ok(g) => {
                let record = BorrowRecord::new(&self.borrows, g.id(), operation);
                Ok((g, record))
            }
            Err(e) => {
                if let PoolError::Create(AssociationError::Rejected { transient, reason, .. }) = &e {
                    let kind = if *transient { "transient" } else { "permanent" };
                    let l = Telemetry::with(&Telemetry::with(&self.labels, "result", kind), "reason", reason);
                    self.telemetry.rejections.get_or_create(&l).inc();
                }
                Err(e.into())
            }
        }
    }

    /// Operations holding an association now, by pool id (what leak reports name).
    pub fn borrowed_operations(&self) -> Vec<(u64, &'static str)> {
        let map = self.borrows.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = map.iter().map(|(id, op)| (*id, *op)).collect();
        v.sort_unstable();
        v
    }

    fn deadline(opts: &OpOptions) -> Option<Instant> {
        opts.deadline.and_then(|d| Instant::now().checked_add(d))
    }

    fn record<T>(&self, operation: &str, started: Instant, result: &Result<T, OperationError>, last: Option<Status>) {
        let outcome = match (result, last) {
            (Ok(_), Some(s)) if s.is_warning() => OpOutcome::Warning,
            (Ok(_), _) => OpOutcome::Success,
            (Err(_), _) => OpOutcome::Failure,
        };
        self.telemetry.record_operation(
            &self.labels,
            operation,
            outcome,
            last.map(|s| s.class()),
            started.elapsed().as_secs_f64(),
        );
    }

    /// C-ECHO.
    pub async fn echo(&self) -> Outcome<Status> {
        self.echo_with(&OpOptions::default()).await
    }

    /// C-ECHO with a deadline and priority.
    pub async fn echo_with(&self, opts: &OpOptions) -> Outcome<Status> {
        let span = tracing::debug_span!(
            "operation",
            node = %self.config.name,
            ae = %self.config.ae_title,
            op = "C-ECHO",
            attempts = tracing::field::Empty,
            status = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        let started = Instant::now();
        let req = ContextRequest::verification();
        let last_status = Mutex::new(None);
        let deadline = Self::deadline(opts);
        let out = self
            .executor
            .run(deadline, |attempt| {
                let req = &req;
                let last_status = &last_status;
                bounded(deadline, async move {
                    tracing::debug!(attempt, "C-ECHO attempt");
                    let status = on_association!(self, opts, "C-ECHO", req, |a| dimse::echo(a).await)?;
                    set(last_status, status);
                    if status.is_success() {
                        Ok(status)
                    } else {
                        Err(OpError::Status { status, comment: None })
                    }
                })
            })
            .instrument(span.clone())
            .await;
        self.finish(&span, "C-ECHO", started, out.result, out.attempts, last_status)
    }

    /// End an operation: record its span fields, log and metrics, and build the
    /// caller's outcome.
    fn finish<T>(
        &self,
        span: &tracing::Span,
        operation: &str,
        started: Instant,
        result: Result<T, OperationError>,
        attempts: u32,
        last: Mutex<Option<Status>>,
    ) -> Outcome<T> {
        let last = take(last);
        // Rounded to the microsecond: logs are read by people too.
        let ms = (started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0;
        span.record("attempts", attempts);
        span.record("duration_ms", ms);
        if let Some(s) = last {
            span.record("status", s.hex().as_str());
        }
        span.in_scope(|| match &result {
            Ok(_) => tracing::debug!(attempts, duration_ms = ms, "operation succeeded"),
            Err(e) => tracing::debug!(attempts, duration_ms = ms, error = %e, "operation failed"),
        });
        self.record(operation, started, &result, last);
        Outcome {
            result,
            attempts,
            last_status: last,
        }
    }

    /// C-STORE of one file (read, checked, sent with the retry policy).
    pub async fn store_file(&self, path: &Path) -> StoreOutcome {
        self.store_file_with(path, &OpOptions::default()).await
    }

    /// C-STORE of one file with a deadline and priority.
    pub async fn store_file_with(&self, path: &Path, opts: &OpOptions) -> StoreOutcome {
        let opened = open_instance(path).await;
        self.store_opened(path, opened, opts).await
    }

    /// C-STORE of a file already opened with [`open_instance`] (which a batch can do
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
        let span = tracing::debug_span!(
            "operation",
            node = %self.config.name,
            ae = %self.config.ae_title,
            op = "C-STORE",
            sop_class_uid = %file.sop_class_uid,
            sop_instance_uid = %file.sop_instance_uid,
            attempts = tracing::field::Empty,
            status = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        let started = Instant::now();
        let req = ContextRequest::store(&file.sop_class_uid, &file.transfer_syntax);
        if self.pool.manager().memory().known_refused(&req) {
            let err = OpError::Dimse(DimseError::NoContext(format!(
                "{} refused SOP class {} in {} on an earlier association",
                self.config.ae_title,
                file.sop_class_uid,
                crate::association::uids::transfer_syntax_name(&file.transfer_syntax)
            )));
            return self.finish(
                &span,
                "C-STORE",
                started,
                Err(ExecError::Operation(err)),
                0,
                Mutex::new(None),
            );
        }
        let last_status = Mutex::new(None);
        let deadline = Self::deadline(opts);
        let out = self
            .executor
            .run(deadline, |attempt| {
                let req = &req;
                let last_status = &last_status;
                bounded(deadline, async move {
                    tracing::debug!(attempt, "C-STORE attempt");
                    let rsp = on_association!(self, opts, "C-STORE", req, |a| dimse::store(
                        a,
                        file,
                        dimse::Priority::Medium
                    )
                    .await)?;
                    set(last_status, rsp.status);
                    if rsp.status.is_success() {
                        Ok(rsp)
                    } else {
                        Err(OpError::Status {
                            status: rsp.status,
                            comment: rsp.error_comment,
                        })
                    }
                })
            })
            .instrument(span.clone())
            .await;
        self.finish(&span, "C-STORE", started, out.result, out.attempts, last_status)
    }

    /// C-FIND; `on_match` sees each match as it arrives and may stop the query
    /// (C-CANCEL). An attempt that fails after matches were delivered is not retried.
    pub async fn find<F>(&self, query: &FindQuery, on_match: F) -> Outcome<FindOutcome>
    where
        F: FnMut(InMemDicomObject) -> ControlFlow<()> + Send,
    {
        self.find_with(query, &OpOptions::default(), on_match).await
    }

    /// C-FIND with a deadline and priority.
    pub async fn find_with<F>(&self, query: &FindQuery, opts: &OpOptions, on_match: F) -> Outcome<FindOutcome>
    where
        F: FnMut(InMemDicomObject) -> ControlFlow<()> + Send,
    {
        self.find_into(query, opts, FnSink(on_match)).await
    }

    /// C-FIND into an async [`MatchSink`]: each match is awaited into the sink, so
    /// a slow consumer slows the query instead of matches piling up. Results are
    /// complete when this returns `Ok`: a C-FIND the remote cancelled on its own
    /// (FE00 without our C-CANCEL) is [`OpError::Incomplete`]; one we cancelled
    /// (`Break`, or a closed sink) is `Ok` with `cancelled` set, even if the
    /// association was lost after our C-CANCEL.
    pub async fn find_into<S: MatchSink>(&self, query: &FindQuery, opts: &OpOptions, sink: S) -> Outcome<FindOutcome> {
        let span = tracing::debug_span!(
            "operation",
            node = %self.config.name,
            ae = %self.config.ae_title,
            op = "C-FIND",
            sop_class_uid = %query.model.sop_class(),
            level = %query.level.as_str(),
            attempts = tracing::field::Empty,
            status = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        let started = Instant::now();
        let req = ContextRequest::uncompressed(query.model.sop_class());
        let last_status = Mutex::new(None);
        let limits = self.config.limits;
        // Attempts run one after the other; the async mutex only lends the sink.
        let sink = tokio::sync::Mutex::new(CountingSink {
            inner: sink,
            delivered: 0,
        });
        let deadline = Self::deadline(opts);
        let out = self
            .executor
            .run(deadline, |attempt| {
                let req = &req;
                let last_status = &last_status;
                let sink = &sink;
                let limits = &limits;
                bounded(deadline, async move {
                    tracing::debug!(attempt, "C-FIND attempt");
                    let mut sink = sink.lock().await;
                    let before = sink.delivered;
                    let res: Result<FindOutcome, OpError> = async {
                        on_association!(self, opts, "C-FIND", req, |a| dimse::find_into(
                            a,
                            query,
                            dimse::Priority::Medium,
                            limits,
                            &mut *sink
                        )
                        .await)
                    }
                    .await;
                    let now = sink.delivered;
                    match res {
                        Ok(outcome) => {
                            set(last_status, outcome.status);
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
                        Err(e) if now > before => Err(OpError::Interrupted {
                            matches: now - before,
                            source: Box::new(e),
                        }),
                        Err(e) => Err(e),
                    }
                })
            })
            .instrument(span.clone())
            .await;
        self.finish(&span, "C-FIND", started, out.result, out.attempts, last_status)
    }

    /// C-FIND as a stream of matches, with backpressure: at most
    /// [`FIND_STREAM_BUFFER`] matches wait for the consumer, and the query waits
    /// while they do. Dropping the stream cancels the query (C-CANCEL, within one
    /// response or one DIMSE timeout); a failure, or results the remote cut short,
    /// ends the stream with one `Err`.
    pub fn find_stream(
        self: &Arc<Self>,
        query: FindQuery,
        opts: OpOptions,
    ) -> impl Stream<Item = Result<InMemDicomObject, OperationError>> + Send + 'static {
        let (tx, rx) = tokio::sync::mpsc::channel(FIND_STREAM_BUFFER);
        let node = self.clone();
        tokio::spawn(async move {
            let out = node.find_into(&query, &opts, ChannelSink { tx: tx.clone() }).await;
            if let Err(e) = out.result {
                let _ = tx.send(Err(e)).await;
            }
        });
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })
    }
}

/// Matches a [`Node::find_stream`] holds for its consumer at most.
pub const FIND_STREAM_BUFFER: usize = 16;

/// The sending half of a [`Node::find_stream`].
struct ChannelSink {
    tx: tokio::sync::mpsc::Sender<Result<InMemDicomObject, OperationError>>,
}

impl MatchSink for ChannelSink {
    fn deliver(&mut self, m: InMemDicomObject) -> impl std::future::Future<Output = ControlFlow<()>> + Send {
        let tx = self.tx.clone();
        async move {
            match tx.send(Ok(m)).await {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            }
        }
    }

    fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Counts what reached the caller's sink (an attempt that fails after that is
/// not retried: the caller would see matches twice).
struct CountingSink<S> {
    inner: S,
    delivered: usize,
}

impl<S: MatchSink> MatchSink for CountingSink<S> {
    fn deliver(&mut self, m: InMemDicomObject) -> impl std::future::Future<Output = ControlFlow<()>> + Send {
        self.delivered += 1;
        self.inner.deliver(m)
    }

    fn is_closed(&self) -> bool {
        self.inner.is_closed()
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
        borrows.lock().unwrap_or_else(|p| p.into_inner()).insert(id, operation);
        BorrowRecord {
            borrows: borrows.clone(),
            id,
        }
    }
}

impl Drop for BorrowRecord {
    fn drop(&mut self) {
        self.borrows.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
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

fn leak_reports(pool: &Pool<AssociationManager>, borrows: &Borrows) -> Vec<LeakReport> {
    let suspects = pool.leak_suspects();
    if suspects.is_empty() {
        return Vec::new();
    }
    let ops = borrows.lock().unwrap_or_else(|p| p.into_inner());
    suspects
        .into_iter()
        .map(|s| LeakReport {
            association: s.id,
            operation: ops.get(&s.id).map(|o| o.to_string()),
            held_secs: s.held_for.as_secs_f64(),
        })
        .collect()
}

/// Looks at the node every tick and logs the warnings that are due.
async fn watchdog(
    name: String,
    pool: Pool<AssociationManager>,
    executor: Arc<Executor>,
    borrows: Borrows,
    telemetry: Telemetry,
    labels: Labels,
    mut stop: tokio::sync::watch::Receiver<()>,
) {
    let mut dog = Watchdog::default();
    loop {
        tokio::select! {
            changed = stop.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(WATCHDOG_TICK) => {}
        }
        let stats = pool.stats();
        let breaker = executor.breaker().stats();
        let leaks = leak_reports(&pool, &borrows);
        for w in dog.check(&name, &stats, &breaker, &leaks, Instant::now()) {
            telemetry
                .warnings
                .get_or_create(&Telemetry::with(&labels, "kind", w.kind.as_str()))
                .inc();
            tracing::warn!(node = %name, kind = w.kind.as_str(), "{}", w.message);
        }
    }
}

/// Read a file's meta group and check its structure, on the blocking pool.
pub async fn open_instance(path: &Path) -> Result<InstanceFile, dimse::FileError> {
    let owned = path.to_path_buf();
    match tokio::task::spawn_blocking(move || InstanceFile::open(&owned)).await {
        Ok(r) => r,
        Err(e) => Err(dimse::FileError::Io(std::io::Error::other(e.to_string()))),
    }
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
    let progress = Arc::new(AcquireProgress::default());
    let attempt = ACQUIRE_PROGRESS.scope(progress.clone(), attempt);
    match deadline {
        Some(at) => match tokio::time::timeout_at(at, attempt).await {
            Ok(r) => r,
            Err(_) => Err(OpError::Deadline {
                waiting_for_pool: progress.phase() == AcquirePhase::Waiting,
            }),
        },
        None => attempt.await,
    }
}

fn set(cell: &Mutex<Option<Status>>, status: Status) {
    *cell.lock().unwrap_or_else(|p| p.into_inner()) = Some(status);
}

fn take(cell: Mutex<Option<Status>>) -> Option<Status> {
    cell.into_inner().unwrap_or_else(|p| p.into_inner())
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

fn is_stale_symptom(e: &AssociationError) -> bool {
    matches!(
        e,
        AssociationError::PeerClosed
            | AssociationError::PeerReleased
            | AssociationError::Aborted(_)
            | AssociationError::Io(_)
    )
}

// C-GET / C-MOVE: a child module, so that it runs through the same private wiring
// (`on_association!`, `borrow`, `finish`) as the operations above.
#[path = "retrieve.rs"]
mod retrieve;
pub use retrieve::{Retrieval, RetrievalItem, RetrieveReport, RetrieveRequest, RETRIEVAL_BUFFER};
