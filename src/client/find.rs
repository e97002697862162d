//! C-FIND on a node: into a callback, into an async sink, or as a stream.

use std::ops::ControlFlow;
use std::sync::Arc;

use dicom_object::InMemDicomObject;
use futures::Stream;

use crate::dimse::{FindOutcome, FindQuery, FnSink, MatchSink};

use super::node::Node;
use super::operation::{Advisory, Find};
use super::outcome::{OpOptions, OperationError, Outcome};

impl Node {
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
    /// (FE00 without our C-CANCEL) is [`OpError::Incomplete`](super::OpError::Incomplete); one we cancelled
    /// (`Break`, or a closed sink) is `Ok` with `cancelled` set, even if the
    /// association was lost after our C-CANCEL.
    pub async fn find_into<S: MatchSink>(&self, query: &FindQuery, opts: &OpOptions, sink: S) -> Outcome<FindOutcome> {
        self.run(&Find::new(query, self.config().limits, sink), opts).await
    }

    /// [`Node::find_into`] for a query another operation can do without: one
    /// attempt, its failure never held against the node
    /// ([`OpError::Advisory`](super::OpError::Advisory)).
    pub(crate) async fn find_advisory<S: MatchSink>(
        &self,
        query: &FindQuery,
        opts: &OpOptions,
        sink: S,
    ) -> Outcome<FindOutcome> {
        self.run(&Advisory(Find::new(query, self.config().limits, sink)), opts)
            .await
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
