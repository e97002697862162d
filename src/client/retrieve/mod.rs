//! C-GET and C-MOVE through a node's pool, breaker and retry policy: the planning
//! of a C-GET's storage contexts (with the SCP role), the resilient operation, and
//! the stream of progress a caller can drop to cancel.
//!
//! A retrieve may be spread over several associations ([`RetrieveRequest::concurrency`],
//! see [`split`]).
//!
//! Retry: a retrieve is retried (by the node's policy, for the retryable failures
//! of the classification) only while nothing was received yet: no C-STORE
//! sub-operation and no pending response with a completed sub-operation. Past
//! that point a failure ends the retrieve ([`OpError::Interrupted`]): a retry
//! would fetch (and count) instances again, and for a C-MOVE make the PACS send
//! them again to the destination.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use dicom_dictionary_std::tags;
use futures::Stream;
use parking_lot::Mutex;

use crate::association::{uids, ContextRequest, Profile, ProposedContext, MAX_PRESENTATION_CONTEXTS};
use crate::dimse::{
    self, DimseError, FindQuery, FnSink, QueryKey, QueryLevel, RetrieveEvent, RetrieveKind, RetrieveOutcome,
    RetrieveSink, Status,
};

use crate::association::Association;

use super::error::OpError;
use super::node::Node;
use super::operation::Operation;
use super::outcome::{OpOptions, Outcome};

mod split;

/// Compressed (and other) transfer syntaxes we also take a retrieved instance in,
/// most common first, each in a context of its own per SOP class as far as the 128
/// contexts go: the PACS accepts one syntax per context, so a study that mixes
/// syntaxes within a SOP class needs one context per syntax to come back as it is
/// held. Instances are written in the syntax they arrive in, never decoded.
const COMPRESSED_TRANSFER_SYNTAXES: &[&str] = &[
    "1.2.840.10008.1.2.4.50", // JPEG Baseline
    "1.2.840.10008.1.2.4.70", // JPEG Lossless SV1
    "1.2.840.10008.1.2.4.90", // JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91", // JPEG 2000
    "1.2.840.10008.1.2.5",    // RLE Lossless
    "1.2.840.10008.1.2.4.80", // JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81", // JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.51", // JPEG Extended
    "1.2.840.10008.1.2.4.57", // JPEG Lossless
    uids::DEFLATED_EXPLICIT_VR_LE,
    uids::EXPLICIT_VR_BE,
];

/// A C-GET or C-MOVE to run.
#[derive(Debug, Clone)]
pub struct RetrieveRequest {
    /// Model, level and the keys with their values (the identifier).
    pub query: FindQuery,
    /// C-GET or C-MOVE (with its destination).
    pub kind: RetrieveKind,
    /// Where a C-GET writes what it receives (`DIR/<Study>/<Series>/<SOP>.dcm`).
    pub out_dir: PathBuf,
    /// Associations to spread the retrieve over. 1: one C-GET / C-MOVE with the
    /// query's identifier. More: the instances are listed first (C-FIND at IMAGE
    /// level) and retrieved in parts, up to this many at once, each an IMAGE-level
    /// C-GET / C-MOVE naming its instances by a SOP Instance UID list (PS3.4
    /// C.2.2.2.2): the PACS works on them in parallel. Falls back to one retrieve
    /// when the PACS does not list the instances.
    pub concurrency: usize,
}

impl RetrieveRequest {
    /// A C-GET of what `query` selects into `out_dir`, on one association.
    pub fn get(query: FindQuery, out_dir: &Path) -> Self {
        RetrieveRequest {
            query,
            kind: RetrieveKind::Get,
            out_dir: out_dir.to_path_buf(),
            concurrency: 1,
        }
    }

    /// A C-MOVE of what `query` selects to `destination`, on one association.
    pub fn move_to(query: FindQuery, destination: &str) -> Self {
        RetrieveRequest {
            query,
            kind: RetrieveKind::Move {
                destination: destination.to_string(),
            },
            out_dir: PathBuf::new(),
            concurrency: 1,
        }
    }

    /// The same retrieve spread over up to `n` associations (at least 1).
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }
}

/// A finished retrieve: the operation's outcome, and the last response received
/// (its counts and Failed SOP Instance UID List), also when the retrieve failed.
#[derive(Debug)]
pub struct RetrieveReport {
    /// The operation's outcome.
    pub outcome: Outcome<RetrieveOutcome>,
    /// The last response received, also when the retrieve failed.
    pub last_response: Option<RetrieveOutcome>,
}

/// One item of a [`Retrieval`] stream.
#[derive(Debug)]
pub enum RetrievalItem {
    /// Progress of the retrieve.
    Event(RetrieveEvent),
    /// The last item.
    Finished(Box<RetrieveReport>),
}

/// A retrieve under way, as a stream of progress ending with
/// [`RetrievalItem::Finished`]. [`Retrieval::cancel`] (or dropping it) sends
/// C-CANCEL; after `cancel` the stream still ends with the outcome.
pub struct Retrieval {
    rx: tokio::sync::mpsc::Receiver<RetrievalItem>,
    cancel: Arc<AtomicBool>,
}

impl std::fmt::Debug for Retrieval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retrieval").finish_non_exhaustive()
    }
}

impl Retrieval {
    /// Ask the PACS to stop (C-CANCEL at the next message of the retrieve).
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }
}

impl Stream for Retrieval {
    type Item = RetrievalItem;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<RetrievalItem>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Retrieval {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::SeqCst);
    }
}

/// Events a [`Retrieval`] holds for its consumer at most.
pub const RETRIEVAL_BUFFER: usize = 64;

struct ChannelSink {
    tx: tokio::sync::mpsc::Sender<RetrievalItem>,
    cancel: Arc<AtomicBool>,
}

impl RetrieveSink for ChannelSink {
    fn deliver(&mut self, event: RetrieveEvent) -> impl std::future::Future<Output = ControlFlow<()>> + Send {
        let tx = self.tx.clone();
        let cancel = self.cancel.clone();
        async move {
            if cancel.load(Ordering::SeqCst) {
                return ControlFlow::Break(());
            }
            match tx.send(RetrievalItem::Event(event)).await {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            }
        }
    }

    fn is_closed(&self) -> bool {
        self.cancel.load(Ordering::SeqCst) || self.tx.is_closed()
    }
}

/// One C-GET or C-MOVE as the driver runs it. Attempts run one after the other;
/// the async mutex only lends them the sink.
struct Retrieve<'r, S> {
    request: &'r RetrieveRequest,
    context: ContextRequest,
    limits: crate::config::Limits,
    /// How long a response may take (`timeouts.retrieve_ms`).
    wait: std::time::Duration,
    sink: tokio::sync::Mutex<S>,
    /// Instances and completed sub-operations the current attempt delivered: one
    /// that fails after any is not retried.
    delivered: AtomicUsize,
    /// The last final response, also when it was a failure.
    last_response: Mutex<Option<RetrieveOutcome>>,
}

impl<S: RetrieveSink> Operation for Retrieve<'_, S> {
    type Output = RetrieveOutcome;

    fn name(&self) -> &'static str {
        self.request.kind.name()
    }

    fn context(&self) -> &ContextRequest {
        &self.context
    }

    fn span(&self, node: &str, ae_title: &str) -> tracing::Span {
        tracing::debug_span!(
            "operation",
            node = %node,
            ae = %ae_title,
            op = self.request.kind.name(),
            sop_class_uid = %self.context.abstract_syntax,
            level = %self.request.query.level.as_str(),
            attempts = tracing::field::Empty,
            status = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        )
    }

    async fn run(&self, a: &mut Association) -> Result<RetrieveOutcome, DimseError> {
        let mut sink = self.sink.lock().await;
        self.delivered.store(0, Ordering::SeqCst);
        let mut counting = Counting {
            inner: &mut *sink,
            delivered: &self.delivered,
        };
        dimse::retrieve(
            a,
            &self.request.query,
            &self.request.kind,
            dimse::DimsePriority::Medium,
            &self.limits,
            self.wait,
            &self.request.out_dir,
            &mut counting,
        )
        .await
    }

    fn status(output: &RetrieveOutcome) -> Status {
        output.status
    }

    fn judge(&self, outcome: RetrieveOutcome) -> Result<RetrieveOutcome, OpError> {
        *self.last_response.lock() = Some(outcome.clone());
        settle(outcome, self.delivered.load(Ordering::SeqCst) > 0)
    }

    fn failed(&self, error: OpError) -> OpError {
        match (self.delivered.load(Ordering::SeqCst), error) {
            // `judge` already made it an interruption.
            (_, e @ OpError::Interrupted { .. }) => e,
            (0, e) => e,
            (n, e) => OpError::Interrupted {
                matches: n,
                source: Box::new(e),
            },
        }
    }
}

/// Counts what reached the caller in this attempt.
struct Counting<'s, S> {
    inner: &'s mut S,
    delivered: &'s AtomicUsize,
}

impl<S: RetrieveSink> RetrieveSink for Counting<'_, S> {
    fn deliver(&mut self, event: RetrieveEvent) -> impl std::future::Future<Output = ControlFlow<()>> + Send {
        let counts = match &event {
            RetrieveEvent::Instance(_) => true,
            RetrieveEvent::Progress(c) => c.completed + c.failed + c.warning > 0,
            RetrieveEvent::Requested { .. } => false,
        };
        if counts {
            self.delivered.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.deliver(event)
    }

    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}

impl Node {
    /// C-GET as a stream: the instances matching `query` are written under
    /// `out_dir` as they arrive. Drop the stream (or call `cancel`) to cancel.
    pub fn get(self: &Arc<Self>, query: FindQuery, out_dir: &Path, opts: OpOptions) -> Retrieval {
        self.retrieval(RetrieveRequest::get(query, out_dir), opts)
    }

    /// C-MOVE to `destination` as a stream of its progress (the instances go to the
    /// destination AE on associations of their own).
    pub fn move_to(self: &Arc<Self>, query: FindQuery, destination: &str, opts: OpOptions) -> Retrieval {
        self.retrieval(RetrieveRequest::move_to(query, destination), opts)
    }

    /// Any [`RetrieveRequest`] (for one spread over several associations) as a
    /// stream of its progress; dropping it cancels.
    pub fn retrieval(self: &Arc<Self>, request: RetrieveRequest, opts: OpOptions) -> Retrieval {
        let (tx, rx) = tokio::sync::mpsc::channel(RETRIEVAL_BUFFER);
        let cancel = Arc::new(AtomicBool::new(false));
        let node = self.clone();
        let sink = ChannelSink {
            tx: tx.clone(),
            cancel: cancel.clone(),
        };
        tokio::spawn(async move {
            let report = node.retrieve_into(&request, &opts, sink).await;
            let _ = tx.send(RetrievalItem::Finished(Box::new(report))).await;
        });
        Retrieval { rx, cancel }
    }

    /// C-GET or C-MOVE into a [`RetrieveSink`] (awaited for each event). `Ok` when
    /// the final status is success or warning (B000: some sub-operations failed;
    /// see the counts), or when we cancelled it.
    pub async fn retrieve_into<S: RetrieveSink>(
        &self,
        request: &RetrieveRequest,
        opts: &OpOptions,
        sink: S,
    ) -> RetrieveReport {
        if request.concurrency > 1 {
            return self.retrieve_split(request, opts, sink).await;
        }
        let profile = self.retrieve_profile(request, opts).await;
        self.retrieve_one(request, profile, opts, sink).await
    }

    /// The contexts a retrieve's association proposes.
    async fn retrieve_profile(&self, request: &RetrieveRequest, opts: &OpOptions) -> Profile {
        match request.kind {
            RetrieveKind::Get => self.plan_get_profile(&request.query, opts).await,
            // FIND of the model too: some SCPs (dcmqrscp) expect it alongside MOVE.
            RetrieveKind::Move { .. } => Profile::Custom(vec![
                ProposedContext::new(request.kind.sop_class(&request.query), &uids::UNCOMPRESSED_LE),
                ProposedContext::new(request.query.model.sop_class(), &uids::UNCOMPRESSED_LE),
                ProposedContext::new(uids::VERIFICATION, &uids::UNCOMPRESSED_LE),
            ]),
        }
    }

    /// One C-GET or C-MOVE on one association, through the pool and the executor.
    async fn retrieve_one<S: RetrieveSink>(
        &self,
        request: &RetrieveRequest,
        profile: Profile,
        opts: &OpOptions,
        sink: S,
    ) -> RetrieveReport {
        let sop_class = request.kind.sop_class(&request.query);
        let op = Retrieve {
            request,
            context: ContextRequest {
                abstract_syntax: sop_class.to_string(),
                transfer_syntaxes: uids::UNCOMPRESSED_LE.iter().map(|s| s.to_string()).collect(),
                profile,
            },
            limits: self.config().limits,
            wait: self.config().timeouts.retrieve,
            sink: tokio::sync::Mutex::new(sink),
            delivered: AtomicUsize::new(0),
            last_response: Mutex::new(None),
        };
        let outcome = self.run(&op, opts).await;
        RetrieveReport {
            outcome,
            last_response: op.last_response.into_inner(),
        }
    }

    /// The contexts of a C-GET: its model, and a storage context (with the SCP
    /// role) for each SOP class it will bring back. The classes are learnt by
    /// C-FIND (SOP Classes in Study, else SOPClassUID at IMAGE level) where the
    /// peer answers (a study may hold classes outside any default set, and 128
    /// contexts cannot hold them all); otherwise the default storage classes.
    async fn plan_get_profile(&self, query: &FindQuery, opts: &OpOptions) -> Profile {
        let get = query.model.get_sop_class();
        let found = self.sop_classes_of(query, opts).await;
        let mut classes: Vec<String> = match found {
            Some(c) if !c.is_empty() => c.into_iter().collect(),
            _ => uids::DEFAULT_STORAGE_SOP_CLASSES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        if classes.len() > MAX_PRESENTATION_CONTEXTS - 1 {
            tracing::warn!(
                classes = classes.len(),
                "the retrieve holds more SOP classes than one association can carry; instances of the last {} classes will fail",
                classes.len() - (MAX_PRESENTATION_CONTEXTS - 1)
            );
            classes.truncate(MAX_PRESENTATION_CONTEXTS - 1);
        }
        let contexts = plan_contexts(get, &classes);
        Profile::WithScpRole {
            contexts,
            scp_role: classes,
        }
    }

    /// The SOP classes of the instances `query` selects: SOP Classes in Study
    /// (0008,0062) from one C-FIND at STUDY level where the PACS returns it (one
    /// response per study), else a C-FIND at IMAGE level for SOPClassUID (one
    /// response per instance); `None` when the PACS answers neither.
    async fn sop_classes_of(&self, query: &FindQuery, opts: &OpOptions) -> Option<BTreeSet<String>> {
        if let Some(classes) = self.sop_classes_in_study(query, opts).await {
            return Some(classes);
        }
        let mut keys: Vec<QueryKey> = query.keys.iter().filter(|k| !k.value.is_empty()).cloned().collect();
        keys.push(QueryKey::new(tags::SOP_CLASS_UID, "").ok()?);
        let image = FindQuery::new(query.model, QueryLevel::Image, keys).ok()?;
        self.collect_uids(&image, tags::SOP_CLASS_UID, opts)
            .await
            .map(|(c, _)| c)
    }

    /// SOP Classes in Study of the studies the query's patient and study keys
    /// select; `None` unless every matching study returned them.
    async fn sop_classes_in_study(&self, query: &FindQuery, opts: &OpOptions) -> Option<BTreeSet<String>> {
        let mut keys: Vec<QueryKey> = query
            .keys
            .iter()
            .filter(|k| !k.value.is_empty() && (k.tag == tags::PATIENT_ID || k.tag == tags::STUDY_INSTANCE_UID))
            .cloned()
            .collect();
        if keys.is_empty() {
            return None;
        }
        keys.push(QueryKey::new(tags::SOP_CLASSES_IN_STUDY, "").ok()?);
        let study = FindQuery::new(query.model, QueryLevel::Study, keys).ok()?;
        match self.collect_uids(&study, tags::SOP_CLASSES_IN_STUDY, opts).await {
            Some((classes, all_answered)) if all_answered && !classes.is_empty() => Some(classes),
            _ => None,
        }
    }

    /// Every valid UID of `tag` in the matches of `find`, and whether every match
    /// had one.
    pub(super) async fn collect_uids(
        &self,
        find: &FindQuery,
        tag: dicom_core::Tag,
        opts: &OpOptions,
    ) -> Option<(BTreeSet<String>, bool)> {
        let found = Mutex::new((BTreeSet::new(), true));
        let out = self
            .find_advisory(
                find,
                opts,
                FnSink(|m: dicom_object::InMemDicomObject| {
                    let values: Vec<String> = m
                        .element(tag)
                        .ok()
                        .and_then(|e| e.to_multi_str().ok().map(|v| v.to_vec()))
                        .unwrap_or_default()
                        .into_iter()
                        .map(|s| s.trim_end_matches(['\0', ' ']).trim().to_string())
                        .filter(|s| uids::is_valid_uid(s))
                        .collect();
                    let mut f = found.lock();
                    if values.is_empty() {
                        f.1 = false;
                    }
                    f.0.extend(values);
                    ControlFlow::Continue(())
                }),
            )
            .await;
        match out.result {
            Ok(_) => Some(found.into_inner()),
            Err(e) => {
                tracing::debug!(error = %e, level = find.level.as_str(), "C-FIND for the SOP classes failed");
                None
            }
        }
    }
}

/// The C-GET model's context, one uncompressed context per SOP class, then
/// contexts of one compressed syntax each, syntax by syntax, while they fit.
fn plan_contexts(get: &str, classes: &[String]) -> Vec<ProposedContext> {
    let mut contexts = vec![ProposedContext::new(get, &uids::UNCOMPRESSED_LE)];
    contexts.extend(classes.iter().map(|c| ProposedContext::new(c, &uids::UNCOMPRESSED_LE)));
    'fill: for ts in COMPRESSED_TRANSFER_SYNTAXES {
        for c in classes {
            if contexts.len() >= MAX_PRESENTATION_CONTEXTS {
                break 'fill;
            }
            contexts.push(ProposedContext::new(c, &[ts]));
        }
    }
    contexts
}

/// A retrieve's final status as the attempt's result.
fn settle(outcome: RetrieveOutcome, received: bool) -> Result<RetrieveOutcome, OpError> {
    if outcome.status.is_success() || (outcome.status == Status::CANCEL && outcome.cancelled) {
        return Ok(outcome);
    }
    let err = OpError::Status {
        status: outcome.status,
        comment: outcome.error_comment.clone(),
    };
    if received {
        // Already-received instances must not be fetched again by a retry.
        return Err(OpError::Interrupted {
            matches: outcome.received.max(outcome.sub_operations.completed as usize),
            source: Box::new(err),
        });
    }
    Err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_contexts_fit_in_128_uncompressed_first_for_every_class() {
        let many: Vec<String> = uids::DEFAULT_STORAGE_SOP_CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect();
        let contexts = plan_contexts(uids::STUDY_ROOT_GET, &many);
        assert_eq!(contexts.len(), MAX_PRESENTATION_CONTEXTS);
        assert_eq!(contexts[0].abstract_syntax, uids::STUDY_ROOT_GET);
        for c in &many {
            assert!(contexts
                .iter()
                .any(|p| &p.abstract_syntax == c && p.transfer_syntaxes.len() == 2));
        }
        // A study of two classes gets every syntax for both.
        let two = vec![
            "1.2.840.10008.5.1.4.1.1.2".to_string(),
            "1.2.840.10008.5.1.4.1.1.4".to_string(),
        ];
        let contexts = plan_contexts(uids::STUDY_ROOT_GET, &two);
        assert_eq!(contexts.len(), 1 + 2 + 2 * COMPRESSED_TRANSFER_SYNTAXES.len());
    }
}
