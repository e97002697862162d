//! Modality Worklist C-FIND on a node (PS3.4 K.6): the Find operation with the
//! worklist SOP class, so it gets the pool, breaker, retry and C-CANCEL of find.

use std::ops::ControlFlow;

use dicom_object::InMemDicomObject;

use crate::dimse::{FindOutcome, FnSink, MatchSink, WorklistQuery};

use super::node::Node;
use super::operation::Find;
use super::outcome::{OpOptions, Outcome};

impl Node {
    /// Modality Worklist C-FIND; `on_match` sees each scheduled procedure step
    /// as it arrives and may stop the query (C-CANCEL).
    pub async fn worklist<F>(&self, query: &WorklistQuery, on_match: F) -> Outcome<FindOutcome>
    where
        F: FnMut(InMemDicomObject) -> ControlFlow<()> + Send,
    {
        self.worklist_into(query, &OpOptions::default(), FnSink(on_match)).await
    }

    /// Modality Worklist C-FIND into an async [`MatchSink`], with a deadline and
    /// priority; results are complete when this returns `Ok` (as [`Node::find_into`]).
    pub async fn worklist_into<S: MatchSink>(
        &self,
        query: &WorklistQuery,
        opts: &OpOptions,
        sink: S,
    ) -> Outcome<FindOutcome> {
        self.run(&Find::new(query, self.config().limits, sink), opts).await
    }
}
